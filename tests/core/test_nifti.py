import gzip

import nibabel as nib
import numpy as np
import pytest

from srprep.core.errors import InputError
from srprep.core.nifti import (check_header, from_canonical, load_image, save_image, save_like,
                               to_canonical, voxel_sizes)
from tests.helpers import blob_volume, write_nifti


def test_load_valid_image_keeps_on_disk_dtype(tmp_path):
    f = write_nifti(tmp_path / "a.nii.gz", blob_volume(), np.diag([1, 1, 4, 1.0]), dtype=np.int16)
    img = load_image(f)
    assert img.shape == (32, 36, 30)
    assert img.header.get_data_dtype() == np.int16
    assert np.asarray(img.dataobj).dtype == np.float32
    assert check_header(f).zooms == (1.0, 1.0, 4.0)


@pytest.mark.parametrize("case, pattern", [
    ("missing", "file not found"),
    ("garbage", "not a readable NIfTI"),
    ("truncated", "truncated or corrupt"),
    ("2d", "3-D volume is required"),
    ("singleslice", "3-D volume is required"),
    ("nan", "NaN or infinite"),
    ("singular", "singular"),
    ("zoom", "implausible voxel size"),
    ("5d", "only 3-D and 4-D"),
])
def test_bad_images_give_one_line_errors(tmp_path, case, pattern):
    f = tmp_path / "bad.nii.gz"
    vol = blob_volume((8, 8, 8))
    if case == "garbage":
        f.write_bytes(b"this is not an image" * 20)
    elif case == "truncated":
        write_nifti(f, np.random.default_rng(0).normal(size=(40, 40, 40)))
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    elif case == "2d":
        write_nifti(f, vol[:, :, 0])
    elif case == "singleslice":
        write_nifti(f, vol[:, :, :1])
    elif case == "nan":
        vol[2, 2, 2] = np.nan
        write_nifti(f, vol)
    elif case == "singular":
        header = nib.Nifti1Image(vol.astype(np.float32), np.eye(4)).header
        header["qform_code"], header["sform_code"] = 0, 1
        header["srow_z"] = [0, 0, 0, 0]  # collapsed z axis in the sform
        nib.save(nib.Nifti1Image(vol.astype(np.float32), None, header), str(f))
    elif case == "zoom":
        write_nifti(f, vol, np.diag([1, 1, 500, 1.0]))
    elif case == "5d":
        write_nifti(f, np.zeros((4, 4, 4, 2, 2)))
    with pytest.raises(InputError, match=pattern) as err:
        load_image(f)
    assert "\n" not in str(err.value) and "bad.nii.gz" in str(err.value)


def test_4d_rejected_where_3d_required(tmp_path):
    f = write_nifti(tmp_path / "s.nii.gz", np.ones((4, 4, 4, 3)))
    with pytest.raises(InputError, match="4-D image"):
        load_image(f, allow_4d=False)
    assert load_image(f).shape == (4, 4, 4, 3)


def test_canonical_round_trip_restores_axes_and_affine():
    data = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    # LPI-stored, oblique-free image with a translation
    affine = np.array([[0, 0, -2.0, 10], [-1.0, 0, 0, 20], [0, -3.0, 0, 30], [0, 0, 0, 1]])
    img = nib.Nifti1Image(data, affine)
    ras, ornt = to_canonical(img)
    assert nib.aff2axcodes(ras.affine) == ("R", "A", "S")
    back = from_canonical(ras, ornt)
    np.testing.assert_allclose(back.affine, affine)
    np.testing.assert_array_equal(np.asarray(back.dataobj), data)
    # the same world point holds the same value in both orientations
    ijk = np.array([1, 2, 3, 1.0])
    world = affine @ ijk
    ijk_ras = np.rint(np.linalg.solve(ras.affine, world)).astype(int)[:3]
    assert np.asarray(ras.dataobj)[tuple(ijk_ras)] == data[1, 2, 3]


def test_save_like_rounds_to_int16_and_keeps_units(tmp_path):
    src = write_nifti(tmp_path / "src.nii.gz", np.full((4, 4, 4), 7), dtype=np.int16)
    out = save_like(np.full((4, 4, 4), 3.6), np.eye(4), tmp_path / "out.nii.gz", load_image(src))
    img = nib.load(out)
    assert img.get_data_dtype() == np.int16
    assert np.all(np.asarray(img.dataobj) == 4)
    assert img.header.get_xyzt_units() == ("mm", "sec")


def test_save_image_is_atomic_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "x.nii.gz"

    def boom(img, filename):
        with open(filename, "wb") as fh:
            fh.write(b"partial")
        raise OSError(28, "No space left on device")

    import srprep.core.nifti as nifti

    monkeypatch.setattr(nifti, "_write", boom)
    with pytest.raises(OSError, match="No space left"):
        save_image(np.zeros((3, 3, 3)), np.eye(4), target)
    assert list(tmp_path.iterdir()) == []


def test_voxel_sizes_of_oblique_affine():
    c, s = np.cos(0.3), np.sin(0.3)
    affine = np.array([[c * 2, -s * 3, 0, 0], [s * 2, c * 3, 0, 0], [0, 0, 4, 0], [0, 0, 0, 1]])
    np.testing.assert_allclose(voxel_sizes(affine), [2, 3, 4])


def test_gzip_of_truncated_file_is_really_truncated(tmp_path):
    """Guard for the truncated-file case above: the fixture must break gzip itself."""
    f = write_nifti(tmp_path / "t.nii.gz", np.random.default_rng(1).normal(size=(40, 40, 40)))
    f.write_bytes(f.read_bytes()[:2000])
    with pytest.raises((EOFError, OSError)):
        gzip.decompress(f.read_bytes())
