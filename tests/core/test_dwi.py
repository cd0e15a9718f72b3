import numpy as np
import pytest

from srprep.core.dwi import (denormalise_dwi, load_q_first, normalise_dwi, q_last,
                             read_bvals_bvecs, save_q_first, save_xmax, load_xmax, shell_labels,
                             upsampled_scheme, write_bvals_bvecs, xmax_per_shell, dwi_to_npy_file,
                             npy_to_dwi_file)
from srprep.core.errors import InputError
from tests.helpers import write_nifti


def _table(tmp_path, n=7):
    bvals = np.array([0, 995, 1005, 2000, 1990, 3010, 5][:n], float)
    rng = np.random.default_rng(0)
    bvecs = rng.normal(size=(n, 3))
    bvecs /= np.linalg.norm(bvecs, axis=1, keepdims=True)
    bvecs[0] = 0
    return write_bvals_bvecs(bvals, bvecs, tmp_path / "d.bval", tmp_path / "d.bvec"), bvals, bvecs


def test_gradient_table_round_trip(tmp_path):
    (bval, bvec), bvals, bvecs = _table(tmp_path)
    rb, rv = read_bvals_bvecs(bval, bvec, n_volumes=7)
    np.testing.assert_allclose(rb, bvals)
    np.testing.assert_allclose(rv, bvecs, atol=1e-7)
    assert bvec.read_text().count("\n") == 3   # FSL layout: three rows


def test_count_mismatch_is_reported(tmp_path):
    (bval, bvec), *_ = _table(tmp_path)
    with pytest.raises(InputError, match=r"count mismatch \(7 b-values, 7 b-vectors, 8 volumes\)"):
        read_bvals_bvecs(bval, bvec, n_volumes=8)
    bval.write_text("0 1000 1000\n")
    with pytest.raises(InputError, match="3 b-values, 7 b-vectors"):
        read_bvals_bvecs(bval, bvec)


def test_nan_b0_vectors_are_accepted_but_not_for_weighted_volumes(tmp_path):
    (tmp_path / "a.bval").write_text("0 1000\n")
    (tmp_path / "a.bvec").write_text("nan 1\nnan 0\nnan 0\n")
    bvals, bvecs = read_bvals_bvecs(tmp_path / "a.bval", tmp_path / "a.bvec")
    np.testing.assert_array_equal(bvecs[0], 0)
    (tmp_path / "a.bvec").write_text("0 nan\n0 0\n0 0\n")
    with pytest.raises(InputError, match="NaN b-vector"):
        read_bvals_bvecs(tmp_path / "a.bval", tmp_path / "a.bvec")


def test_shell_labels():
    labels = shell_labels(np.array([0, 5, 995, 1005, 1985, 2015, 3000, 700]))
    assert labels.tolist() == [0, 0, 1000, 1000, 2000, 2000, 3000, 700]


def test_xmax_and_normalisation_round_trip():
    rng = np.random.default_rng(0)
    bvals = np.array([0, 1000, 1000, 2000, 2000])
    data = (rng.random((6, 6, 6, 5)) * np.array([3000, 1000, 1000, 500, 500])).astype(np.float32)
    mask = np.zeros((6, 6, 6), bool)
    mask[1:5, 1:5, 1:5] = True
    xmax = xmax_per_shell(data, bvals, mask)
    assert set(xmax) == {1000, 2000}
    assert xmax[1000] == pytest.approx(np.percentile(data[mask][:, 1:3], 99))
    norm = normalise_dwi(data, bvals, xmax)
    np.testing.assert_array_equal(norm[..., 0], data[..., 0])     # b0 untouched
    assert np.percentile(norm[mask][:, 1:3], 99) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(denormalise_dwi(norm, bvals, xmax), data, rtol=1e-5, atol=1e-3)


def test_xmax_json_is_plain_floats(tmp_path):
    save_xmax({1000: np.float32(990.5), 2000: np.float64(800)}, tmp_path / "x.json")
    assert (tmp_path / "x.json").read_text().startswith('{\n  "1000": 990.5')
    assert load_xmax(tmp_path / "x.json") == {1000: 990.5, 2000: 800.0}


def test_q_first_npy_layout_and_lazy_read(tmp_path):
    data = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    save_q_first(data, tmp_path / "d.npy")
    arr = load_q_first(tmp_path / "d.npy")
    assert isinstance(arr, np.memmap) and arr.shape == (5, 2, 3, 4)
    assert arr.flags["C_CONTIGUOUS"] and arr.dtype == np.float32
    np.testing.assert_array_equal(arr[3], data[..., 3])
    np.testing.assert_array_equal(q_last(arr), data)


def test_nifti_npy_round_trip(tmp_path):
    data = np.random.default_rng(3).random((4, 5, 6, 7)).astype(np.float32)
    affine = np.diag([2, 2, 2.5, 1.0])
    src = write_nifti(tmp_path / "dwi.nii.gz", data, affine)
    assert dwi_to_npy_file(src, tmp_path / "q.npy") == [7, 4, 5, 6]
    out = npy_to_dwi_file(tmp_path / "q.npy", src, tmp_path / "back.nii.gz")
    import nibabel as nib
    back = nib.load(out)
    np.testing.assert_allclose(back.affine, affine)
    np.testing.assert_array_equal(np.asarray(back.dataobj), data)


def _unit_dirs(n, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_upsampled_scheme_counts_and_uniformity():
    bvals = np.concatenate([np.zeros(3), np.full(10, 995.0), np.full(12, 2005.0)])
    bvecs = np.concatenate([np.zeros((3, 3)), _unit_dirs(10), _unit_dirs(12, 1)])
    tb, tv = upsampled_scheme(bvals, bvecs, 3)
    assert (tb == 0).sum() == 3 and (np.abs(tb - 995) < 1).sum() == 30
    assert (np.abs(tb - 2005) < 1).sum() == 36
    np.testing.assert_allclose(np.linalg.norm(tv[3:], axis=1), 1, atol=1e-6)
    dots = np.abs(tv[3:33] @ tv[3:33].T) - np.eye(30)
    assert np.degrees(np.arccos(dots.max())) > 15               # well spread, no duplicates
