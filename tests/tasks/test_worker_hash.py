"""Task functions hash the same in a spawned worker as in the parent (issue #14).

Regression: with cloudpickle >= 3.1.3 a task function pickled *by value* arrives in the
worker without source, Pydra hashes its byte code instead, and every job of the default
``cf`` worker aborted with "Input field hashes have changed during the execution".
"""
from __future__ import annotations

import concurrent.futures
import importlib
import inspect
import multiprocessing
import pickle
import pkgutil

import attrs
import cloudpickle
import numpy as np
import pytest

import srprep.pipelines
import srprep.tasks
from srprep.bids_app.cli.run import main
from srprep.tasks.compose import define_python, importable
from tests.helpers import write_nifti


def _task_classes():
    """Every Pydra task/workflow class that srprep defines (tasks and pipelines)."""
    from pydra.compose.base import Task

    found = {}
    for package in (srprep.tasks, srprep.pipelines):
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            module = importlib.import_module(info.name)
            for name, obj in vars(module).items():
                if inspect.isclass(obj) and issubclass(obj, Task) and obj is not Task \
                        and obj.__module__ == "types" and not name.startswith("_"):
                    found[f"{info.name}.{name}"] = obj
    return found


TASKS = _task_classes()


def test_every_task_function_is_pickled_by_reference():
    assert len(TASKS) >= 50          # all of srprep's tasks and workflows were found
    for name, klass in TASKS.items():
        fields = {f.name: f.default for f in attrs.fields(klass)}
        func = fields.get("function") or fields["constructor"]
        # the standard pickler can only pickle a function that it can import again
        assert pickle.loads(pickle.dumps(func)) is func, name
        assert cloudpickle.dumps(func) == pickle.dumps(func, protocol=cloudpickle.DEFAULT_PROTOCOL), name


def _hashes_in_worker(payload: bytes) -> tuple[bytes, dict]:
    """Run in a spawned process: unpickle a task as the ``cf`` worker does and hash it."""
    task = cloudpickle.loads(payload)
    return task._compute_hashes()


def _three_tasks(tmp_path):
    """An anatomical, a diffusion and a training task with real file inputs."""
    from srprep.tasks.dwi import NormaliseDwi
    from srprep.tasks.resample import Reslice
    from srprep.tasks.babyai import PrepareTrainingPair

    rng = np.random.default_rng(0)
    t1 = write_nifti(tmp_path / "t1.nii.gz", rng.random((8, 8, 8), dtype=np.float32))
    t2 = write_nifti(tmp_path / "t2.nii.gz", rng.random((8, 8, 4), dtype=np.float32))
    dwi = write_nifti(tmp_path / "dwi.nii.gz", rng.random((8, 8, 8, 3), dtype=np.float32))
    bval = tmp_path / "dwi.bval"
    bval.write_text("0 1000 1000\n")
    return [
        Reslice(in_file=t2, voxel_size=[2.0, 2.0, 2.0], interpolation="cubic"),
        NormaliseDwi(in_file=dwi, bval=bval, xmax={"0": 1.0, "1000": 0.5}),
        PrepareTrainingPair(t1w=t1, t2w=t2, atlas=t1, name="sub-01"),
    ]


def test_task_hashes_agree_between_parent_and_spawned_worker(tmp_path):
    tasks = _three_tasks(tmp_path)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        in_worker = [pool.submit(_hashes_in_worker, cloudpickle.dumps(t)).result(timeout=300)
                     for t in tasks]
    for task, (checksum, fields) in zip(tasks, in_worker):
        parent_checksum, parent_fields = task._compute_hashes()
        assert fields == parent_fields, type(task).__name__
        assert checksum == parent_checksum


def test_nested_functions_are_refused():
    def inner(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="module level"):
        define_python(inner)
    with pytest.raises(TypeError, match="module level"):
        importable(lambda x: x)


def test_app_default_worker_processes_every_participant(demo_dataset, capsys):
    """A real App run through the spawned ``cf`` worker (the default)."""
    out = demo_dataset / "out"
    code = main([str(demo_dataset / "bids"), str(out), "participant", "-w",
                 str(demo_dataset / "work"), "--vx", "4", "--method", "linear",
                 "--skip-bids-validation"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "hashes have changed" not in err
    names = sorted(p.name for p in out.rglob("*_desc-linear_*.nii.gz"))
    assert len(names) == 2 * 4                        # 2 participants x (T1w, T2w, PDw, dwi)
    assert "sub-02_ses-1_res-4mm_desc-linear_dwi.nii.gz" in names
