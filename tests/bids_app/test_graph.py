"""The dataset as one graph (engine.run_graph): every unit (participant x method) is a
node of one Pydra workflow, jobs land in their unit's cache root, a failing unit stops
nothing else, each unit is finished (exported) as it ends, and job log lines reach the
unit's participant log."""
import json
import logging
import os
import time
from pathlib import Path

from pydra.compose import python, workflow

from srprep.bids_app import engine


@python.define
def Stamp(x: int, record_dir: str, seconds: float = 0.0) -> int:
    """Sleeps, then records when it ran (start, end, pid) so tests can see overlap."""
    start = time.time()
    time.sleep(seconds)
    if x < 0:
        raise ValueError(f"negative input {x}")
    logging.getLogger("srprep.test").info("stamp %d done", x)
    Path(record_dir, f"{x}-{os.getpid()}.json").write_text(
        json.dumps({"x": x, "start": start, "end": time.time(), "pid": os.getpid()}))
    return x * 10


@workflow.define
def Chain(x: int, record_dir: str, seconds: float = 0.0) -> int:
    a = workflow.add(Stamp(x=x, record_dir=record_dir, seconds=seconds), name="first")
    b = workflow.add(Stamp(x=a.out, record_dir=record_dir, seconds=seconds), name="second")
    return b.out


def _units(tmp_path, record, seconds=0.0):
    return {
        "sub_01__chain": (Chain(x=1, record_dir=str(record), seconds=seconds),
                          tmp_path / "sub-01" / "chain"),
        "sub_01__split": (Stamp(record_dir=str(record), seconds=seconds).split(x=[2, 3]),
                          tmp_path / "sub-01" / "split"),
        "sub_02__chain": (Chain(x=-4, record_dir=str(record), seconds=seconds),
                          tmp_path / "sub-02" / "chain"),
        "sub_03__chain": (Chain(x=5, record_dir=str(record), seconds=seconds),
                          tmp_path / "sub-03" / "chain"),
    }


def test_units_run_as_one_graph_in_parallel_and_fail_alone(tmp_path):
    record = tmp_path / "record"
    record.mkdir()
    units = _units(tmp_path, record, seconds=1.0)
    done = []
    outcomes = engine.run_graph(units, tmp_path / "run", worker="cf", n_procs=2,
                                on_done=lambda name, out: done.append((name, out)))
    assert sorted(name for name, _ in done) == sorted(units)     # each finished once
    assert outcomes["sub_01__chain"].ok and outcomes["sub_01__chain"].outputs.out == 100
    assert outcomes["sub_01__split"].outputs.out == [20, 30]      # a split unit: lists
    assert outcomes["sub_03__chain"].outputs.out == 500
    bad = outcomes["sub_02__chain"]
    assert not bad.ok
    assert bad.error == "first (Stamp): ValueError: negative input -4"
    # every job's cache folder is in its own unit's root, and only there
    for name, (_, root) in units.items():
        jobs = list(root.glob("python-*/_result.pklz"))
        failed = [p for p in jobs if (p.parent / "_error.pklz").exists()]
        assert (len(jobs), len(failed)) == {"sub_01__chain": (2, 0), "sub_01__split": (2, 0),
                                            "sub_02__chain": (1, 1),
                                            "sub_03__chain": (2, 0)}[name]
        assert [r["task"] for r in outcomes[name].usage] or name == "sub_02__chain"
    assert not list((tmp_path / "run").glob("python-*"))
    # the pool saw jobs of different units at once: two of them overlapped in time
    runs = [json.loads(p.read_text()) for p in record.glob("*.json")]
    assert len(runs) == 6 and len({r["pid"] for r in runs}) == 2
    runs.sort(key=lambda r: r["start"])
    assert any(b["start"] < a["end"] for a, b in zip(runs, runs[1:]))


def test_second_graph_in_one_process_uses_its_own_tasks(tmp_path):
    """Pydra caches constructed workflows by class and inputs within a process: a second
    run with the same unit names must not reuse the first run's nodes."""
    for x, expected in ((1, 100), (7, 700)):
        record = tmp_path / f"record{x}"
        record.mkdir()
        units = {"sub_01__chain": (Chain(x=x, record_dir=str(record)),
                                   tmp_path / f"c{x}" / "sub-01")}
        outcomes = engine.run_graph(units, tmp_path / f"run{x}", worker="cf", n_procs=1)
        assert outcomes["sub_01__chain"].outputs.out == expected


def test_rerun_reuses_finished_units_and_retries_the_failed_one(tmp_path):
    record = tmp_path / "record"
    record.mkdir()
    units = _units(tmp_path, record)
    engine.run_graph(units, tmp_path / "run1", worker="cf", n_procs=2)
    assert len(list(record.iterdir())) == 6
    units["sub_02__chain"] = (Chain(x=4, record_dir=str(record)),
                              tmp_path / "sub-02" / "chain")
    outcomes = engine.run_graph(units, tmp_path / "run2", worker="cf", n_procs=2)
    assert all(o.ok for o in outcomes.values())
    assert len(list(record.iterdir())) == 8        # only the repaired unit's two jobs ran
    assert outcomes["sub_02__chain"].outputs.out == 400


def test_job_log_lines_are_routed_to_their_participant_log(tmp_path):
    record = tmp_path / "record"
    record.mkdir()
    units = _units(tmp_path, record)
    del units["sub_02__chain"]
    logs = {p: tmp_path / f"sub-{p}.log" for p in ("01", "03")}
    routes = {str(tmp_path / f"sub-{p}"): str(f) for p, f in logs.items()}
    logger = logging.getLogger("srprep")
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        engine.run_graph(units, tmp_path / "run", worker="cf", n_procs=2, log_routes=routes)
    finally:
        logger.setLevel(old)
    sub01, sub03 = (logs[p].read_text() for p in ("01", "03"))
    assert sorted(ln.split()[-2] for ln in sub01.splitlines()) == ["1", "10", "2", "3"]
    assert sorted(ln.split()[-2] for ln in sub03.splitlines()) == ["5", "50"]


def _overlaps(record) -> int:
    runs = sorted((json.loads(p.read_text()) for p in record.glob("*.json")),
                  key=lambda r: r["start"])
    return sum(b["start"] < a["end"] for a, b in zip(runs, runs[1:]))


def test_mem_budget_keeps_jobs_from_starting_past_it(tmp_path):
    """--mem: with 2 processes, jobs of 0.6 GB each never run two at a time under a
    1 GB budget (the pool alone would run them in pairs, as the 2 GB run shows)."""
    from srprep.tasks.compose import _MEMORY, job_memory_gb, memory_estimate

    memory_estimate(Stamp, lambda task: 0.6)
    try:
        assert job_memory_gb(Stamp(x=1, record_dir="x")) == 0.6
        for budget, expect_overlap in ((1.0, False), (2.0, True)):
            record = tmp_path / f"record{budget}"
            record.mkdir()
            units = {f"sub_0{i}__stamp": (Stamp(x=i, record_dir=str(record), seconds=1.0),
                                          tmp_path / f"b{budget}" / f"sub-0{i}")
                     for i in (1, 2, 3, 4)}
            outcomes = engine.run_graph(units, tmp_path / f"run{budget}", worker="cf",
                                        n_procs=2, mem_gb=budget)
            assert all(o.ok for o in outcomes.values())
            assert (_overlaps(record) > 0) is expect_overlap, budget
    finally:
        _MEMORY.pop(f"{Stamp.__module__}.{Stamp.__name__}", None)


def test_generic_memory_estimate_reads_nifti_headers(tmp_path):
    import nibabel as nib
    import numpy as np

    from srprep.tasks.compose import BASE_JOB_GB, job_memory_gb
    from srprep.tasks.resample import Reslice

    path = tmp_path / "img.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((64, 64, 32), np.float32), np.eye(4)), path)
    need = job_memory_gb(Reslice(in_file=path, voxel_size=[1.0, 1.0, 1.0]))
    assert need == BASE_JOB_GB + 6 * 8 * 64 * 64 * 32 / 2**30
    # UniRes' fit: its own estimate on the output grid (2 channels, 1 mm from 2 mm)
    from srprep.models.unires.fit import estimate_memory_gb
    from srprep.tasks.unires import UniResFit

    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    for i in range(2):
        nib.save(nib.Nifti1Image(np.zeros((40, 40, 30), np.float32), affine),
                 tmp_path / f"c{i}.nii.gz")
    fit = UniResFit(in_files=[tmp_path / "c0.nii.gz", tmp_path / "c1.nii.gz"],
                    channels=[0, 1], names=["T1w", "T2w"], options={"voxel_size": [1.0] * 3})
    from srprep.models.unires.fit import output_grid

    shape = output_grid([affine] * 2, [(40, 40, 30)] * 2, [1.0] * 3)[1]
    assert abs(np.prod(shape) / (80 * 80 * 60) - 1) < 0.06          # 1 mm over the FOV
    assert job_memory_gb(fit) == BASE_JOB_GB + estimate_memory_gb(2, 2, int(np.prod(shape)))


def test_the_app_runs_participants_in_one_pool_with_the_debug_run_s_outputs(demo_dataset,
                                                                          caplog):
    """The CLI: both participants' jobs go through one pool of 2 processes (the
    one-at-a-time loop starts a pool per participant x method), the outputs equal those
    of the in-process one-at-a-time run bit for bit, and each participant's log holds its
    own lines only."""
    import nibabel as nib
    import numpy as np

    from srprep.bids_app.cli.run import main

    caplog.set_level(logging.INFO)          # the CLI's level (pytest's root is WARNING)
    base = [str(demo_dataset / "bids"), "participant", "--vx", "4", "--method", "linear",
            "cubic", "--skip-bids-validation", "--omp-nthreads", "1"]

    def run(out, *extra):
        args = base[:1] + [str(demo_dataset / out)] + base[1:] + ["-w",
                                                                  str(demo_dataset / f"w-{out}")]
        assert main(args + list(extra)) == 0
        return {p.name: np.asarray(nib.load(p).dataobj)
                for p in sorted((demo_dataset / out).rglob("*.nii.gz"))}

    graph = run("graph", "--nprocs", "2")
    debug = run("debug", "--worker", "debug")
    assert graph.keys() == debug.keys() and len(graph) == 2 * 2 * 4
    for name in graph:
        np.testing.assert_array_equal(graph[name], debug[name], err_msg=name)
    pids = set()
    for label in ("01", "02"):
        status = json.loads((demo_dataset / "graph" / "logs" /
                             f"sub-{label}_status.json").read_text())
        assert [m["name"] for m in status["methods"]] == ["linear", "cubic"]
        pids |= {r["pid"] for m in status["methods"] for r in m["resources"]}
        log = next((demo_dataset / "graph" / "logs").glob(f"*/sub-{label}.log")).read_text()
        other = "02" if label == "01" else "01"
        assert f"sub-{label}/ses-1/anat/sub-{label}_ses-1_res-4mm_desc-cubic_T2w" in log
        assert f"sub-{other}" not in log
    assert len(pids) <= 2                   # 16 jobs of 2 participants, one 2-process pool


@python.define
def Crash(x: int) -> int:
    """Kills its worker process (as the kernel's OOM killer would)."""
    import signal

    if x == 13:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def test_a_killed_worker_process_fails_its_unit_only(tmp_path):
    """One spawned process killed (out of memory) must not break the pool for the other
    participants: the pool is replaced and only the unit whose job died fails."""
    record = tmp_path / "record"
    record.mkdir()
    units = {"sub_01__crash": (Crash(x=13), tmp_path / "sub-01" / "crash")}
    units.update({f"sub_0{i}__chain": (Chain(x=i, record_dir=str(record), seconds=0.5),
                                       tmp_path / f"sub-0{i}" / "chain") for i in (2, 3, 4)})
    outcomes = engine.run_graph(units, tmp_path / "run", worker="cf", n_procs=2)
    assert not outcomes["sub_01__crash"].ok
    assert "terminated abruptly" in outcomes["sub_01__crash"].error
    assert [outcomes[f"sub_0{i}__chain"].outputs.out for i in (2, 3, 4)] == [200, 300, 400]


def test_planning_unires_does_not_import_torch(tmp_path):
    """The App's main process plans every UniRes run (the --mem check) and the default
    worker asks each fit job for its memory estimate; both read headers only and must
    not load torch (~1.3 s of the main process per run, before any job starts)."""
    import subprocess
    import sys

    import nibabel as nib
    import numpy as np

    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    for i in range(2):
        nib.save(nib.Nifti1Image(np.zeros((40, 40, 30), np.float32), affine),
                 tmp_path / f"c{i}.nii.gz")
    script = f"""
import sys
from types import SimpleNamespace
from pathlib import Path
from srprep.bids_app.methods.unires import _memory_warnings
from srprep.tasks.compose import job_memory_gb
from srprep.tasks.unires import UniResFit
files = [Path({str(tmp_path)!r}) / f"c{{i}}.nii.gz" for i in range(2)]
settings = SimpleNamespace(mem_gb=0.001, output_resolution=[1.0], method_options={{}})
warnings = _memory_warnings([SimpleNamespace(path=f) for f in files], 2, settings)
need = job_memory_gb(UniResFit(in_files=files, channels=[0, 1], names=["T1w", "T2w"],
                               options={{"voxel_size": [1.0] * 3}}))
print(len(warnings), need > 0.25, "torch" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["1", "True", "False"]
