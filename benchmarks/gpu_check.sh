#!/usr/bin/env bash
# The prepared GPU check (issue #18): run on a machine with a GPU, from the repository root
# of an installed checkout:
#
#     bash benchmarks/gpu_check.sh [--weights-dir DIR]
#
# 1. each method's GPU path on the demo against the same computation on the CPU
#    (benchmarks/gpu_check.py: one line per method with seconds, peak GPU memory, and
#    whether the output matches the CPU result within tolerance);
# 2. with two or more GPUs visible, a two-device scheduling run: the BIDS App on two demo
#    participants with UniRes on the GPU, --gpus 2 --nprocs 2; prints the device each
#    participant's fit ran on (they must differ) and the wall time.
# Designed to finish in under 8 minutes on one GPU; record the figures in
# benchmarks/RESULTS.md.
set -uo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
python benchmarks/gpu_check.py --device cuda "$@"
rc=$?
gpus=$(python -c "import torch; print(torch.cuda.device_count())")
if [ "${gpus:-0}" -ge 2 ]; then
    tmp=$(mktemp -d)
    python -c "from pathlib import Path; from srprep.bids_app.demo import build_demo; \
build_demo(Path('$tmp/demo'), participants=2, resolution=4.0)"
    t0=$(date +%s)
    srprep "$tmp/demo/bids" "$tmp/out" participant -w "$tmp/work" --method unires --vx 2 \
        --device cuda --gpus 2 --nprocs 2 --omp-nthreads 1 --skip-bids-validation \
        >"$tmp/app.log" 2>&1 || rc=1
    python - "$tmp/out" "$(( $(date +%s) - t0 ))" <<'PY' || rc=1
import json, sys
from pathlib import Path
out, wall = Path(sys.argv[1]), sys.argv[2]
devices = {}
for sidecar in sorted(out.glob("sub-*/**/*desc-unires_T2w.json")):
    fit = json.loads(sidecar.read_text()).get("srprep", {}).get("Fit", {})
    devices[sidecar.name.split("_")[0]] = fit.get("device", "?")
print(f"two-device run: {devices}, wall {wall} s")
sys.exit(0 if len(set(devices.values())) == 2 else 1)
PY
fi
echo "gpu_check: $(( $(date +%s) - start )) s, exit $rc"
exit $rc
