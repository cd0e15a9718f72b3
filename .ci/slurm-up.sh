#!/usr/bin/env bash
# Start a single-node SLURM cluster on loopback for the tests (root only).
# Usage: .ci/slurm-up.sh STATE_DIR    (writes slurm.conf there; prints the SLURM_CONF path)
# Stop with: .ci/slurm-down.sh STATE_DIR
set -euo pipefail
state=${1:?state dir}
mkdir -p "$state"/{spool/ctld,spool/d,log,run}
host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))

# munge: one key, one daemon (sockets under $state so nothing system-wide is touched)
if [ ! -s /etc/munge/munge.key ]; then
  mkdir -p /etc/munge
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown munge:munge /etc/munge/munge.key 2>/dev/null || true
chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/lib/munge /var/log/munge
chown munge:munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
if ! pgrep -x munged >/dev/null; then
  runuser -u munge -- /usr/sbin/munged --force
fi

cat > "$state/slurm.conf" <<CONF
ClusterName=srpreptest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
MinJobAge=3600
SlurmctldPidFile=$state/run/slurmctld.pid
SlurmdPidFile=$state/run/slurmd.pid
SlurmdSpoolDir=$state/spool/d
StateSaveLocation=$state/spool/ctld
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
GresTypes=gpu
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=60 State=UP
CONF
# a stand-in GPU so that --gres=gpu:1 jobs schedule on this GPU-less test node
echo "NodeName=$host Name=gpu Count=1 File=/dev/null" > "$state/gres.conf"
cp "$state/gres.conf" "$(dirname "$state/slurm.conf")/gres.conf" 2>/dev/null || true

export SLURM_CONF=$state/slurm.conf
/usr/sbin/slurmctld -f "$SLURM_CONF"
/usr/sbin/slurmd -f "$SLURM_CONF"
for _ in $(seq 1 60); do
  if sinfo -h -o %T 2>/dev/null | grep -q idle; then
    echo "$SLURM_CONF"
    exit 0
  fi
  sleep 1
done
echo "slurm did not come up; see $state/log" >&2
exit 1
