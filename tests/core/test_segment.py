"""Atropos k-means segmentation: labels by intensity, nothing left in the temp folder."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest

from srprep.core.segment import segment_tissues, tissue_volumes


def _three_classes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    truth = np.zeros((24, 24, 24), np.int16)
    truth[4:20, 4:20, 4:20] = 1
    truth[8:16, 8:16, 8:16] = 2
    truth[10:14, 10:14, 10:14] = 3
    data = np.choose(truth, [0.0, 100.0, 300.0, 500.0]).astype(np.float32)
    data += rng.normal(0, 10, data.shape).astype(np.float32)
    return data, truth > 0, truth


def test_segment_labels_by_increasing_intensity_and_cleans_up():
    data, mask, truth = _three_classes()
    before = set(Path(tempfile.gettempdir()).glob("antsr*prob*.nii.gz"))
    labels = segment_tissues(data, mask)
    after = set(Path(tempfile.gettempdir()).glob("antsr*prob*.nii.gz"))
    assert after - before == set()            # atropos' probability maps are removed
    assert tempfile.tempdir is None or Path(tempfile.tempdir).exists()
    assert np.mean(labels[mask] == truth[mask]) > 0.99
    assert np.all(labels[~mask] == 0)


def test_tissue_volumes_in_millilitres():
    data, mask, truth = _three_classes()
    vols = tissue_volumes(data, mask, voxel_volume_ml=0.008, contrast="T1w")
    assert vols["csf_ml"] == pytest.approx((truth == 1).sum() * 0.008, rel=0.02)
    assert vols["wm_ml"] == pytest.approx((truth == 3).sum() * 0.008, rel=0.02)

