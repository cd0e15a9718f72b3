"""GPU slots: device assignment across processes with fake device lists (CPU only)."""
from __future__ import annotations

import multiprocessing
import time
from argparse import Namespace

import pytest

from srprep.core import device as dev
from srprep.core.errors import ConfigurationError


@pytest.fixture(autouse=True)
def _private_locks(tmp_path, monkeypatch):
    monkeypatch.setenv("SRPREP_LOCK_DIR", str(tmp_path / "locks"))


def test_cpu_steps_never_take_a_slot(tmp_path):
    with dev.gpu_slot("cpu", devices=[0]) as d:
        assert d == "cpu"
    assert not (tmp_path / "locks").exists() or not list((tmp_path / "locks").iterdir())


def test_concurrent_steps_spread_over_devices():
    with dev.gpu_slot("cuda", devices=[0, 1, 2]) as a:
        with dev.gpu_slot("cuda", devices=[0, 1, 2]) as b:
            with dev.gpu_slot("cuda", devices=[0, 1, 2]) as c:
                assert sorted({a, b, c}) == ["cuda:0", "cuda:1", "cuda:2"]
    # released: the next step gets a device again
    with dev.gpu_slot("cuda", devices=[0, 1, 2]) as d:
        assert d in {"cuda:0", "cuda:1", "cuda:2"}


def test_an_explicit_device_is_kept():
    with dev.gpu_slot("cuda:3", devices=[0, 1]) as d:
        assert d == "cuda:3"


def _hold(devices, seconds, queue):
    with dev.gpu_slot("cuda", devices=devices, poll_s=0.05) as d:
        queue.put((d, time.monotonic()))
        time.sleep(seconds)
        queue.put((d, time.monotonic()))


def test_a_step_waits_when_every_device_is_busy(tmp_path, monkeypatch):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    # two processes on a one-device node: one slot, so the second waits for the first
    procs = [ctx.Process(target=_hold, args=([0], 1.0, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    events = [queue.get(timeout=60) for _ in range(4)]
    for p in procs:
        p.join(timeout=60)
    first_release = events[1][1]
    assert [d for d, _ in events] == ["cuda:0"] * 4
    assert events[2][1] >= first_release          # the second started after the release


def test_two_processes_on_a_two_gpu_node_run_at_once(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_hold, args=([0, 1], 1.0, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    events = [queue.get(timeout=60) for _ in range(4)]
    for p in procs:
        p.join(timeout=60)
    starts = [t for d, t in events[:2]]
    assert len({d for d, _ in events}) == 2                  # one device each
    assert max(starts) < min(t for _, t in events[2:])       # both held a slot together


def test_no_visible_gpu_is_a_clear_error():
    with pytest.raises(ConfigurationError, match="no GPU is visible"):
        with dev.gpu_slot("cuda", devices=[]):
            pass


def test_locks_are_node_local_by_default(monkeypatch, tmp_path):
    monkeypatch.delenv("SRPREP_LOCK_DIR")
    monkeypatch.setattr(dev.tempfile, "gettempdir", lambda: str(tmp_path / "node-tmp"))
    assert dev.lock_folder().parent == tmp_path / "node-tmp"


def test_gpus_cap_from_the_environment(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert dev.visible_gpus() == [0, 1, 2, 3]
    monkeypatch.setenv("SRPREP_GPUS", "2")
    assert dev.visible_gpus() == [0, 1]


def test_memory_error_names_method_estimate_and_device(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda i: Namespace(total_memory=8 * 2**30))
    with pytest.raises(ConfigurationError) as err:
        dev.check_device_memory("unires", 11.5, "cuda:1")
    assert str(err.value).startswith("unires needs ~11.5 GB of GPU memory but cuda:1 has 8.0 GB")
    dev.check_device_memory("unires", 7.0, "cuda:1")          # fits: no error
    dev.check_device_memory("unires", 99.0, "cpu")            # CPU: not checked


def test_slurm_requests_gpus_only_when_there_are_any(monkeypatch):
    from srprep.bids_app.cli.run import _gpu_node_args

    opts = Namespace(device="auto", gpu_sbatch_args="--gres=gpu:1", method=["unires", "cubic"])
    monkeypatch.setattr(dev, "gpus_present", lambda: False)
    assert _gpu_node_args(opts, "slurm") == {}                 # CPU-only cluster
    monkeypatch.setattr(dev, "gpus_present", lambda: True)
    assert _gpu_node_args(opts, "slurm") == {"fit": "--gres=gpu:1"}
    monkeypatch.setattr(dev, "gpus_present", lambda: False)
    opts.device = "cuda"                                       # asked for: always requested
    assert _gpu_node_args(opts, "slurm") == {"fit": "--gres=gpu:1"}
    opts.device = "cpu"
    assert _gpu_node_args(opts, "slurm") == {}
    assert _gpu_node_args(Namespace(**{**vars(opts), "device": "cuda"}), "cf") == {}


def test_gpus_present_honours_an_empty_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert dev.gpus_present() is False


def test_locks_are_named_by_the_physical_gpu(monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,GPU-8f3a")
    assert dev.physical_gpu(0) == "2" and dev.physical_gpu(1) == "GPU-8f3a"
    with dev.gpu_slot("cuda:1", devices=[0, 1]) as d:
        assert d == "cuda:1"
        assert (tmp_path / "locks" / "srprep-gpu-GPU-8f3a.lock").exists()
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert dev.physical_gpu(3) == "3"
