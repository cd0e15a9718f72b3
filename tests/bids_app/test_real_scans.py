"""A real scan through the App (issue #17, first part): dipy's ``aniso_vox`` (a real
58x58x24 head at 4x4x5 mm, int16, LPS; shipped with dipy) under RAS, LAS, LPS and oblique
headers and as uint8 / float32: every output overlays its input in world space and keeps
the input's data type and range."""
import nibabel as nib
import numpy as np
import pytest

from srprep.bids_app.cli.run import main
from tests.helpers import flipped, overlay_correlation, write_anat_dataset


def _aniso_vox():
    from dipy.data import get_fnames

    img = nib.load(str(get_fnames(name="aniso_vox")))
    return np.asarray(img.dataobj), img.affine


def _variants():
    data, affine = _aniso_vox()                                  # LPS, int16
    out = {"lps": (data, affine)}
    out["las"] = flipped(data, affine, [0])
    out["ras"] = flipped(*out["las"], [1])
    a = np.radians(15.0)                                         # an oblique header
    rot = np.array([[np.cos(a), -np.sin(a), 0, 0], [np.sin(a), np.cos(a), 0, 0],
                    [0, 0, 1, 0], [0, 0, 0, 1]])
    out["obl"] = (data, rot @ affine)
    out["u8"] = (np.round(data / data.max() * 255).astype(np.uint8), affine)
    out["f32"] = (data.astype(np.float32) * 0.37, affine)
    return out


@pytest.fixture(scope="module")
def real_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    bids = write_anat_dataset(root / "bids", {(label, "T1w"): v for label, v in
                                              _variants().items()},
                              "dipy aniso_vox under several headers")
    assert main([str(bids), str(root / "out"), "participant", "-w", str(root / "work"),
                 "--method", "cubic", "unires", "--vx", "4", "--nprocs", "2",
                 "--omp-nthreads", "1", "--skip-bids-validation"]) == 0
    return root


@pytest.mark.parametrize("label", ["lps", "las", "ras", "obl", "u8", "f32"])
@pytest.mark.parametrize("method", ["cubic", "unires"])
def test_output_overlays_input_and_keeps_dtype_and_range(real_dataset, label, method):
    src = nib.load(real_dataset / "bids" / f"sub-{label}" / "anat" / f"sub-{label}_T1w.nii.gz")
    (out_file,) = (real_dataset / "out" / f"sub-{label}" / "anat").glob(
        f"*desc-{method}_T1w.nii.gz")
    out = nib.load(out_file)
    assert out.get_data_dtype() == src.get_data_dtype()
    x = np.asarray(src.dataobj, np.float64)
    y = np.asarray(out.dataobj, np.float64)
    assert y.min() >= min(0.0, x.min()) and y.max() <= 1.1 * x.max()
    # pulled back onto the input's grid through world space: the same head, same place
    r = overlay_correlation(x, src.affine, y, out.affine)
    assert r > 0.9, f"{method} on {label}: r = {r:.3f}"
    # a wrong orientation (the left-right flipped head) correlates clearly worse
    assert overlay_correlation(x, src.affine, np.flip(y, 0), out.affine) < r - 0.05
