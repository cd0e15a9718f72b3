"""SLURM for real: a single-node cluster on loopback (slurm-wlm + munge from Debian),
started by this module when the daemons are installed and we are root."""
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from srprep.bids_app.cli.run import main
from srprep.bids_app.cli.slurm import main as slurm_main

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.skipif(
    shutil.which("slurmctld") is None or shutil.which("sbatch") is None or os.geteuid() != 0,
    reason="needs slurm-wlm and munge installed and root (see .ci/run)")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    state = tmp_path_factory.mktemp("slurm")
    up = subprocess.run(["bash", str(ROOT / ".ci" / "slurm-up.sh"), str(state)],
                        capture_output=True, text=True, timeout=180)
    if up.returncode != 0:
        pytest.fail(f"could not start the test cluster: {up.stderr}")
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = up.stdout.strip().splitlines()[-1]
    yield state
    subprocess.run(["bash", str(ROOT / ".ci" / "slurm-down.sh"), str(state)], check=False)
    if old is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = old


def _voxels(folder):
    return {p.name: np.asarray(nib.load(p).dataobj) for p in sorted(folder.rglob("*.nii.gz"))}


def _local_reference(demo, args):
    assert main([str(demo / "bids"), str(demo / "local"), "participant", "-w",
                 str(demo / "work-local"), *args]) == 0
    return _voxels(demo / "local")


def test_pydra_slurm_worker_with_per_task_resources(cluster, demo_dataset, monkeypatch):
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    args = ["--vx", "4", "--method", "cubic", "unires", "--linear", "--no-coregister",
            "--skip-bids-validation"]
    reference = _local_reference(demo_dataset, args)
    # as if the submitting node had a GPU (--device auto requests one only then; the
    # steps themselves run on this CPU-only machine's CPU)
    monkeypatch.setattr("srprep.core.device.gpus_present", lambda: True)
    code = main([str(demo_dataset / "bids"), str(demo_dataset / "slurm"), "participant", "-w",
                 str(demo_dataset / "work-slurm"), "--worker", "slurm",
                 "--sbatch-args=--mem=1000", *args])
    assert code == 0
    produced = _voxels(demo_dataset / "slurm")
    assert produced.keys() == reference.keys() and len(produced) == 2 * (4 + 3)
    for name in reference:
        np.testing.assert_array_equal(produced[name], reference[name], err_msg=name)
    # every step was its own sbatch job; only the GPU step asked for a GPU
    lines = []
    for tsv in (demo_dataset / "work-slurm").glob("srprep-*/sub-*/*/sbatch-args.tsv"):
        lines += [ln.split("\t") for ln in tsv.read_text().splitlines()]
    nodes = {node: args for node, args in lines}
    assert nodes["fit"] == "--mem=1000 --gres=gpu:1"
    assert nodes["reslice"] == "--mem=1000"
    assert sum(1 for node, _ in lines if node == "reslice") == 8
    # SLURM steps leave the same resource records as local ones (participant report)
    import json

    status = json.loads((demo_dataset / "slurm" / "logs" / "sub-01_status.json").read_text())
    steps = {m["name"]: [r["task"] for r in m["resources"]] for m in status["methods"]}
    assert steps["cubic"] == ["reslice"] * 4 and "fit" in steps["unires"]
    assert all(r["peak_rss_gb"] > 0.05 and r["ok"] for m in status["methods"]
               for r in m["resources"])


FAKE_APPTAINER = textwrap.dedent("""\
    #!{python}
    # Stand-in for 'apptainer run [--nv] [--cleanenv] -B host:cont[:ro] ... IMAGE ARGS':
    # runs the native srprep with container paths mapped back to host paths.
    import os, sys
    args = sys.argv[1:]
    assert args.pop(0) == "run"
    binds = {{}}
    while args[0].startswith("-"):
        flag = args.pop(0)
        if flag == "-B":
            host, cont = args.pop(0).split(":")[:2]
            binds[cont] = host
    image = args.pop(0)
    assert os.path.isfile(image), image
    mapped = [binds.get(a, a) for a in args]
    os.execv("{srprep}", ["srprep", *mapped])
""")


def _wait_for_array(job_id: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["squeue", "-h", "-j", job_id], capture_output=True, text=True)
        if not out.stdout.strip():
            return
        time.sleep(2)
    raise AssertionError(f"array job {job_id} did not finish in {timeout} s")


def test_job_array_script_runs_the_container_per_participant(cluster, demo_dataset, capsys,
                                                             monkeypatch):
    bin_dir = demo_dataset / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "apptainer"
    fake.write_text(FAKE_APPTAINER.format(python=sys.executable,
                                          srprep=Path(sys.executable).parent / "srprep"))
    fake.chmod(0o755)
    image = demo_dataset / "srprep.sif"
    image.write_bytes(b"stand-in image")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    args = ["--vx", "4", "--method", "cubic"]
    reference = _local_reference(demo_dataset, [*args, "--skip-bids-validation"])
    code = slurm_main([str(demo_dataset / "bids"), str(demo_dataset / "array"), "-w",
                       str(demo_dataset / "work-array"), "--container", str(image),
                       "--sbatch=--cpus-per-task=1 --mem=1000", "--gpu",
                       "--script", str(demo_dataset / "array.sh"), "--submit", "--", *args])
    assert code == 0
    job_id = capsys.readouterr().out.strip().splitlines()[-1]
    script = (demo_dataset / "array.sh").read_text()
    assert "#SBATCH --array=1-2" in script and "#SBATCH --gres=gpu:1" in script
    assert "apptainer run --nv --cleanenv -B" in script
    _wait_for_array(job_id)
    logs = sorted((demo_dataset / "array" / "logs" / "slurm").glob("srprep-*.out"))
    assert len(logs) == 2 and all("sub-0" in log.read_text() for log in logs)
    produced = _voxels(demo_dataset / "array")
    assert produced.keys() == reference.keys() and len(produced) == 8
    for name in reference:
        np.testing.assert_array_equal(produced[name], reference[name], err_msg=name)
    index = (demo_dataset / "array" / "index.html").read_text()
    assert "sub-01.html" in index or "sub-02.html" in index
