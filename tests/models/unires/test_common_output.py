"""--common-output: alignment to a template by a 7-parameter similarity (UniRes'
reference default) or rigidly (--atlas-rigid), the whole-head template when it is in the
weights cache, and the App's space-<template> outputs with the exported transform."""
import json

import nibabel as nib
import numpy as np
import pytest

from srprep.core.resample import grid_for_voxel_size, resample
from srprep.models.unires import files


def _similarity(deg: float, scale: float, shift) -> np.ndarray:
    """Template point -> image point (RAS): rotation about z and x, isotropic scale."""
    a, b = np.radians(deg), np.radians(deg / 2)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    m = np.eye(4)
    m[:3, :3] = scale * rz @ rx
    m[:3, 3] = shift
    return m


@pytest.fixture(scope="module")
def head_template(tmp_path_factory):
    """A whole-head template: the MNI152 brain (2 mm) inside a bright scalp shell and a
    dark skull gap, as the cached ``mni152-head`` file of a weights folder."""
    data, affine = files.atlas_image()
    grid, shape = grid_for_voxel_size(affine, data.shape, 2.0)
    brain = resample(data, affine, grid, shape, order=1)
    ijk = np.indices(shape).reshape(3, -1).T
    xyz = (grid[:3, :3] @ ijk.T).T + grid[:3, 3]
    centre = np.array([0.0, -18.0, 8.0])
    r = np.linalg.norm((xyz - centre) / np.array([78.0, 98.0, 86.0]), axis=1).reshape(shape)
    head = brain + np.where((r > 0.97) & (r < 1.07), 0.8 * brain.max(), 0.0).astype(np.float32)
    folder = tmp_path_factory.mktemp("weights")
    path = folder / "templates" / "tpl-MNI152NLin2009cAsym_res-01_T1w.nii.gz"
    path.parent.mkdir(parents=True)
    nib.save(nib.Nifti1Image(head.astype(np.float32), grid), path)
    return folder, head.astype(np.float32), grid


def test_whole_head_template_is_used_when_cached(head_template, monkeypatch, tmp_path):
    folder, head, grid = head_template
    monkeypatch.setenv("SRPREP_WEIGHTS_DIR", str(tmp_path))            # empty cache
    _, _, name, whole = files.registration_template()
    assert (name, whole) == ("MNI152NLin2009aSym", False)
    monkeypatch.setenv("SRPREP_WEIGHTS_DIR", str(folder))
    data, affine, name, whole = files.registration_template()
    assert (name, whole) == ("MNI152NLin2009cAsym", True)
    np.testing.assert_array_equal(affine, grid)


def test_similarity_recovers_a_rotated_scaled_head_and_rigid_keeps_the_size(
        head_template, monkeypatch):
    folder, head, grid = head_template
    monkeypatch.setenv("SRPREP_WEIGHTS_DIR", str(folder))
    truth = _similarity(7.0, 1.08, (5.0, -4.0, 3.0))
    # the subject: the template's head 8 % larger, turned and moved, on its own 2 mm grid
    subject_grid = grid.copy()
    subject_grid[:3, 3] -= 10.0
    subject_shape = tuple(int(s * 1.15) for s in head.shape)
    subject = resample(head, grid, np.linalg.inv(truth) @ subject_grid, subject_shape,
                       order=1)
    found = files.align_to_atlas(subject, subject_grid, seed=1)
    assert np.abs(found[:3, :3] - truth[:3, :3]).max() < 0.02
    assert np.abs(found[:3, 3] - truth[:3, 3]).max() < 1.5
    assert np.cbrt(np.linalg.det(found[:3, :3])) == pytest.approx(1.08, abs=0.01)
    rigid = files.align_to_atlas(subject, subject_grid, seed=1, rigid=True)
    assert np.cbrt(np.linalg.det(rigid[:3, :3])) == pytest.approx(1.0, abs=1e-3)


def test_app_names_the_template_space_and_exports_the_transform(demo_dataset, monkeypatch,
                                                                 tmp_path):
    from srprep.bids_app.cli.run import main
    from srprep.bids_app.validate import find_validator, validate_dataset
    from srprep.core.register import read_ras_matrix

    monkeypatch.setenv("SRPREP_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    out = demo_dataset / "out"
    assert main([str(demo_dataset / "bids"), str(out), "participant", "-w",
                 str(demo_dataset / "work"), "--participant-label", "01", "--method",
                 "unires", "--common-output", "--linear", "--vx", "4",
                 "--skip-bids-validation"]) == 0
    anat = out / "sub-01" / "ses-1" / "anat"
    names = sorted(p.name for p in anat.glob("*.nii.gz"))
    assert names == [f"sub-01_ses-1_space-MNI152NLin2009aSym_res-4mm_desc-unires_{s}.nii.gz"
                     for s in ("PDw", "T1w", "T2w")]
    sidecar = json.loads((anat / names[1].replace(".nii.gz", ".json")).read_text())
    assert sidecar["SpatialReference"] == "MNI152NLin2009aSym"
    xfm = anat / "sub-01_ses-1_from-T1w_to-MNI152NLin2009aSym_mode-image_xfm.txt"
    # the sidecar points at the exported transform, not at the work directory
    assert sidecar["srprep"]["Fit"]["atlas"]["file"] == f"sub-01/ses-1/anat/{xfm.name}"
    meta = json.loads(xfm.with_suffix(".json").read_text())
    assert meta["Type"] == "similarity" and meta["WholeHeadTemplate"] is False
    matrix = read_ras_matrix(xfm)
    np.testing.assert_allclose(matrix, meta["srprep"]["MatrixRAS"], atol=1e-5)
    # the demo's sub-01 is the template itself: the alignment is (nearly) the identity
    assert np.abs(matrix[:3, :3] - np.eye(3)).max() < 0.01 and \
        np.abs(matrix[:3, 3]).max() < 1.0
    # the T1w output, pulled back through the transform, overlays the input T1w
    t1 = nib.load(demo_dataset / "bids/sub-01/ses-1/anat/sub-01_ses-1_T1w.nii.gz")
    o = nib.load(anat / names[1])
    back = resample(np.asarray(o.dataobj, np.float32), o.affine,
                    np.linalg.inv(matrix) @ t1.affine, t1.shape, order=1)
    a, b = np.asarray(t1.dataobj, np.float32).ravel(), back.ravel()
    inside = (a > 0) & (b > 0)
    assert np.corrcoef(a[inside], b[inside])[0, 1] > 0.95
    if find_validator() is not None:
        report = validate_dataset(out, scratch=tmp_path)
        assert report.ok, report.errors
