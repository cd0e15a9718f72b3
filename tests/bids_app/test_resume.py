"""A run killed in the middle of a task resumes: finished work is reused, the rest re-runs,
and the derivatives equal those of an uninterrupted run."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import nibabel as nib
import numpy as np

from srprep.bids_app.cli.run import main

# Loaded by every Python process of the killed run (the CLI and its spawned workers) via
# PYTHONPATH: reslice_file hangs on the T2w image, after PDw and T1w are done (with one
# worker process the jobs run in sorted order).
SITECUSTOMIZE = textwrap.dedent("""
    import os
    marker = os.environ.get("SRPREP_TEST_HANG_MARKER")
    if marker:
        import pathlib, time
        import srprep.core.resample as resample
        original = resample.reslice_file
        def hang_on_t2w(in_file, out_file, *args, **kwargs):
            if "T2w" in str(in_file):
                pathlib.Path(marker).write_text("inside the T2w task")
                time.sleep(600)
            return original(in_file, out_file, *args, **kwargs)
        resample.reslice_file = hang_on_t2w
""")


def _args(demo, out, work):
    return [str(demo / "bids"), str(demo / out), "participant", "-w", str(demo / work),
            "--vx", "2", "--method", "cubic", "--participant-label", "01", "--nprocs", "1",
            "--skip-bids-validation"]


def _results(cache_root):
    return {p.parent.name: p.stat().st_mtime for p in cache_root.glob("python-*/_result.pklz")}


def test_killed_run_resumes_and_matches_uninterrupted_run(demo_dataset):
    marker = demo_dataset / "marker"
    hook = demo_dataset / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = dict(os.environ, SRPREP_TEST_HANG_MARKER=str(marker),
               PYTHONPATH=os.pathsep.join([str(hook), *sys.path]))
    proc = subprocess.Popen([sys.executable, "-m", "srprep.bids_app.cli.run",
                             *_args(demo_dataset, "out", "work")], start_new_session=True,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "run ended before the hang"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    cache = next((demo_dataset / "work").glob("srprep-*/sub-01"))
    finished_before = _results(cache)
    assert len(finished_before) == 2                      # PDw and T1w were done
    assert not list((demo_dataset / "out").rglob("*.nii.gz"))

    resumed_at = time.time()
    assert main(_args(demo_dataset, "out", "work")) == 0
    after = _results(cache)
    assert len(after) == 4
    reused = [k for k, t in after.items() if t < resumed_at]
    assert sorted(reused) == sorted(finished_before)      # not recomputed

    assert main(_args(demo_dataset, "clean", "work-clean")) == 0
    resumed = sorted((demo_dataset / "out").rglob("*.nii.gz"))
    clean = sorted((demo_dataset / "clean").rglob("*.nii.gz"))
    assert [p.name for p in resumed] == [p.name for p in clean] and len(clean) == 4
    for a, b in zip(resumed, clean):
        ia, ib = nib.load(a), nib.load(b)
        np.testing.assert_array_equal(np.asarray(ia.dataobj), np.asarray(ib.dataobj))
        np.testing.assert_array_equal(ia.affine, ib.affine)
