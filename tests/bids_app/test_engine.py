"""Engine: resume after failure and kill, one-line error summaries, purge rules."""
import os
from pathlib import Path

import pytest
from pydra.compose import python, workflow

from srprep.bids_app import engine


@python.define
def CountingStep(x: int, log_dir: str) -> int:
    """First step: records each execution in log_dir."""
    Path(log_dir, f"step1-{os.getpid()}-{os.urandom(4).hex()}").touch()
    return x + 1


@python.define
def FragileStep(x: int) -> int:
    """Second step: fails while SRPREP_TEST_FAIL is set (read at run time, not hashed)."""
    if os.environ.get("SRPREP_TEST_FAIL"):
        raise ValueError("sub-01_T1w.nii.gz: 3 voxels are NaN or infinite")
    return x * 10


@workflow.define
def TwoSteps(x: int, log_dir: str) -> int:
    a = workflow.add(CountingStep(x=x, log_dir=log_dir), name="count")
    b = workflow.add(FragileStep(x=a.out), name="fragile")
    return b.out


@pytest.mark.parametrize("worker", ["debug", "cf"])
def test_failed_run_resumes_and_reuses_finished_steps(tmp_path, monkeypatch, worker):
    logs = tmp_path / "logs"
    logs.mkdir()
    cache = tmp_path / "cache"
    monkeypatch.setenv("SRPREP_TEST_FAIL", "1")
    first = engine.run(TwoSteps(x=1, log_dir=str(logs)), cache, worker=worker, n_procs=2)
    assert not first.ok
    assert first.error == "fragile (FragileStep): ValueError: sub-01_T1w.nii.gz: 3 voxels are NaN or infinite"
    assert first.failures[0].crash_file.name == "_error.pklz"
    assert len(list(logs.iterdir())) == 1
    monkeypatch.delenv("SRPREP_TEST_FAIL")
    second = engine.run(TwoSteps(x=1, log_dir=str(logs)), cache, worker=worker, n_procs=2)
    assert second.ok, second.error          # succeeds in one submission (purge workaround)
    assert second.outputs.out == 20
    assert len(list(logs.iterdir())) == 1   # the finished first step was reused


def test_purge_removes_errored_unfinished_and_locks(tmp_path):
    for name, files in {"python-done": ["_job.pklz", "_result.pklz"],
                        "python-err": ["_job.pklz", "_result.pklz", "_error.pklz"],
                        "python-killed": ["_job.pklz"], "other": []}.items():
        (tmp_path / name).mkdir()
        for f in files:
            (tmp_path / name / f).touch()
    (tmp_path / "python-killed.lock").touch()
    assert engine.purge_incomplete(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "python-done"]


def test_make_worker():
    worker, kwargs = engine.make_worker("cf", n_procs=3)
    assert worker.n_procs == 3 and kwargs == {}
    assert worker.pool._mp_context.get_start_method() == "spawn"
    assert engine.make_worker("debug") == ("debug", {})
    worker, kwargs = engine.make_worker("slurm", sbatch_args="-p short",
                                        per_node_args={"infer": "--gres=gpu:1"})
    assert worker.per_node_args == {"infer": "--gres=gpu:1"} and kwargs == {}
    with pytest.raises(ValueError, match="--error"):
        engine.make_worker("slurm", sbatch_args="--error=x.err")
    with pytest.raises(ValueError, match="unknown worker"):
        engine.make_worker("dask")


def test_configure_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("PYDRA_HASH_CACHE", raising=False)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "MPLCONFIGDIR", "NO_ET"):
        monkeypatch.setenv(var, "1")  # restored after the test
    engine.configure_environment(tmp_path, omp_nthreads=3)
    assert os.environ["PYDRA_HASH_CACHE"].startswith(str(tmp_path))
    assert os.environ["OMP_NUM_THREADS"] == "3"
