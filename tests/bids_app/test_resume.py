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
    return {p.parent.name: p.stat().st_mtime for p in cache_root.glob("*/python-*/_result.pklz")}


def test_killed_run_resumes_and_matches_uninterrupted_run(demo_dataset):
    _run_until_marker(demo_dataset, SITECUSTOMIZE, _args(demo_dataset, "out", "work"))

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


EXPORT_HOOK = textwrap.dedent("""
    import os
    marker = os.environ.get("SRPREP_TEST_HANG_MARKER")
    if marker:
        import pathlib, shutil, time
        original = shutil.copyfile
        calls = []
        def half_copy_then_hang(src, dst, **kwargs):
            calls.append(dst)
            if len(calls) == 2:   # one derivative exported; the second half written
                data = pathlib.Path(src).read_bytes()
                pathlib.Path(dst).write_bytes(data[: len(data) // 2])
                pathlib.Path(marker).write_text("inside the export")
                time.sleep(600)
            return original(src, dst, **kwargs)
        shutil.copyfile = half_copy_then_hang
""")


def _run_until_marker(demo, hook_source, args):
    marker = demo / "marker"
    hook = demo / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(hook_source)
    env = dict(os.environ, SRPREP_TEST_HANG_MARKER=str(marker),
               PYTHONPATH=os.pathsep.join([str(hook), *sys.path]))
    proc = subprocess.Popen([sys.executable, "-m", "srprep.bids_app.cli.run", *args],
                            start_new_session=True, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "run ended before the hang"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def test_run_killed_during_export_resumes(demo_dataset):
    import srprep.bids_app.export as export
    args = _args(demo_dataset, "out", "work")
    _run_until_marker(demo_dataset, EXPORT_HOOK, args)
    out = demo_dataset / "out"
    written = [p for p in out.rglob("*.nii.gz") if not p.name.startswith(".")]
    assert len(written) == 1                               # first file complete, no partial one
    assert [p for p in out.rglob(".*.tmp*")]               # the killed temporary is visible...
    assert main(args) == 0
    assert not [p for p in out.rglob(".*.tmp*")]           # ...and cleaned up by the rerun
    assert len(list(out.rglob("*.nii.gz"))) == 4
    assert main(_args(demo_dataset, "clean", "work-clean")) == 0
    for a, b in zip(sorted(out.rglob("*.nii.gz")), sorted((demo_dataset / "clean").rglob("*.nii.gz"))):
        assert a.name == b.name
        np.testing.assert_array_equal(np.asarray(nib.load(a).dataobj), np.asarray(nib.load(b).dataobj))
    assert export.BIDSIGNORE == (out / ".bidsignore").read_text()


def test_second_concurrent_run_is_refused(demo_dataset, capsys):
    from filelock import FileLock

    out = demo_dataset / "out"
    (out / "logs" / ".locks").mkdir(parents=True)
    with FileLock(str(out / "logs" / ".locks" / "sub-01.lock")):   # a run busy with sub-01
        code = main(_args(demo_dataset, "out", "work"))
        assert code == 2
        assert "another srprep run is writing to" in capsys.readouterr().err
        # another participant is not blocked (job arrays share one output folder)
        other = _args(demo_dataset, "out", "work")
        other[other.index("--participant-label") + 1] = "02"
        assert main(other) == 0
    assert not list((out / "sub-01").rglob("*.nii.gz"))
