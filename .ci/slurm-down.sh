#!/usr/bin/env bash
# Stop the test cluster started by slurm-up.sh.
state=${1:?state dir}
for pid in "$state"/run/slurmd.pid "$state"/run/slurmctld.pid; do
  [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
done
exit 0
