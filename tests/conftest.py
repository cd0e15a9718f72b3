"""Shared fixtures: Pydra environment, small synthetic images, the demo dataset."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # share the cores between the xdist workers instead of oversubscribing them
    _threads = str(max(1, (os.cpu_count() or 1)
                       // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)))
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_var, _threads)


#: the longest test files (CI figures, seconds of one worker), run first so that the xdist
#: workers finish together (longest-first scheduling) instead of one waiting on a long file
#: that happened to be collected last
_LONGEST_FIRST = ("bids_app/test_pccnn_e2e.py",       # ~500
                  "bids_app/test_easysr_e2e.py",      # ~380
                  "models/unires/test_fit.py",        # ~300
                  "bids_app/test_babyai_e2e.py",      # ~270
                  "test_container.py",                # ~235, mostly waiting on I/O
                  "bids_app/test_eval.py",            # ~90
                  "bids_app/test_recon_cli.py",       # ~75
                  "bids_app/test_slurm.py",           # ~75
                  "bids_app/test_unires_quality.py",  # ~65
                  "bids_app/test_cli_unires.py")      # ~60


def _file_rank(item) -> int:
    path = item.path.as_posix()
    for rank, suffix in enumerate(_LONGEST_FIRST):
        if path.endswith("tests/" + suffix):
            return rank
    return len(_LONGEST_FIRST)


def pytest_collection_modifyitems(config, items):
    items.sort(key=_file_rank)                # stable: test order within a file is kept
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)


@pytest.fixture(autouse=True)
def _pydra_env(tmp_path, tmp_path_factory, monkeypatch):
    """No telemetry ping; Pydra's hash cache inside the test's folder; one matplotlib
    font cache per test session (building it costs ~2 s in every process)."""
    monkeypatch.setenv("NO_ET", "1")
    monkeypatch.setenv("PYDRA_HASH_CACHE", str(tmp_path / ".pydra-hashes"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path_factory.getbasetemp() / ".mpl"))


@pytest.fixture(scope="session")
def mni_t1() -> tuple[np.ndarray, np.ndarray]:
    """nilearn's MNI152 2009 T1 (1 mm, brain-masked) as float32 and its affine."""
    from nilearn import datasets

    img = nib.load(Path(datasets.__file__).parent / "data"
                   / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")
    return np.asarray(img.dataobj, dtype=np.float32), img.affine.copy()


@pytest.fixture(scope="session")
def demo_dataset_session(tmp_path_factory) -> Path:
    """The demo dataset at 4 mm (fast), built once per session; copy before writing."""
    from srprep.bids_app.demo import build_demo

    root = tmp_path_factory.mktemp("demo")
    build_demo(root, participants=2, resolution=4.0)
    return root


@pytest.fixture
def demo_dataset(demo_dataset_session, tmp_path) -> Path:
    """A private copy of the session demo dataset (tests may modify it)."""
    dst = tmp_path / "demo"
    shutil.copytree(demo_dataset_session, dst)
    return dst


@pytest.fixture
def chdir_tmp(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path

