"""The nipype interfaces run inside a nipype workflow and match the core functions."""
import nibabel as nib
import numpy as np
import pytest

from srprep.core.resample import reslice
from srprep.interfaces import Reslice, init_sr_wf
from srprep.models.unires.phantom import ellipsoid_phantom
from tests.helpers import blob_volume, write_nifti


def test_reslice_interface(tmp_path):
    f = write_nifti(tmp_path / "a.nii.gz", blob_volume((10, 10, 5)), np.diag([1, 1, 2, 1.0]))
    res = Reslice(in_file=str(f), voxel_size=[1.0], interpolation="cubic").run(cwd=str(tmp_path))
    out = nib.load(res.outputs.out_file)
    img = nib.load(f)
    data = np.asarray(img.dataobj, np.float32)
    expected, affine = reslice(data, img.affine, 1.0, order=3)
    expected = np.clip(expected, data.min(), data.max())     # the file step clips overshoot
    assert out.shape == expected.shape == (10, 10, 10)
    np.testing.assert_allclose(out.affine, affine, atol=1e-6)
    np.testing.assert_allclose(np.asarray(out.dataobj), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("plugin", ["Linear", "MultiProc"])
def test_sr_workflow_runs_in_nipype(tmp_path, plugin):
    ph = ellipsoid_phantom()
    files = [str(write_nifti(tmp_path / f"{n}.nii.gz", im.data, im.affine))
             for n, im in zip(ph.names, ph.images)]
    wf = init_sr_wf(method="unires", coregister=False, options={"max_iter": 3})
    wf.base_dir = str(tmp_path / "work")
    wf.inputs.inputnode.in_files = files
    args = {"n_procs": 2, "mp_context": "spawn"} if plugin == "MultiProc" else {}
    graph = wf.run(plugin=plugin, plugin_args=args)
    node = next(n for n in graph.nodes() if n.name == "unires")
    outs = node.result.outputs.out_files
    # the phantom's grid: the default rule's (the inputs' lattice, holding every slice)
    assert len(outs) == 3 and all(nib.load(o).shape == ph.shape == (42, 50, 42) for o in outs)
    assert all(np.allclose(nib.load(o).affine, ph.affine, atol=1e-5) for o in outs)
    assert node.result.outputs.summary["iterations"] == 3


def test_baseline_workflow_maps_over_inputs(tmp_path):
    files = [str(write_nifti(tmp_path / f"x{i}.nii.gz", blob_volume((8, 8, 4), seed=i),
                             np.diag([1, 1, 2, 1.0]))) for i in range(2)]
    wf = init_sr_wf(method="linear", voxel_size=1.0)
    wf.base_dir = str(tmp_path / "w")
    wf.inputs.inputnode.in_files = files
    graph = wf.run()
    node = next(n for n in graph.nodes() if n.name == "reslice")
    assert [nib.load(f).shape for f in node.result.outputs.out_file] == [(8, 8, 8)] * 2
    for src, out in zip(files, node.result.outputs.out_file):
        img = nib.load(src)
        expected, _ = reslice(np.asarray(img.dataobj, np.float32), img.affine, 1.0, order=1)
        np.testing.assert_allclose(np.asarray(nib.load(out).dataobj), expected, atol=1e-4)


def test_unires_interface_carries_a_label_map(tmp_path):
    import nibabel as nib
    import numpy as np

    from srprep.interfaces.steps import UniRes
    from srprep.models.unires.phantom import ellipsoid_labels, ellipsoid_phantom
    from tests.helpers import write_nifti

    ph = ellipsoid_phantom()
    files = [str(write_nifti(tmp_path / f"{n}.nii.gz", im.data, im.affine))
             for n, im in zip(ph.names, ph.images)]
    host = ph.images[1]
    lab = write_nifti(tmp_path / "lab.nii.gz", ellipsoid_labels(host.affine, host.data.shape)
                      .astype(np.uint8), host.affine, dtype=np.uint8)
    node = UniRes(in_files=files, coregister=False, options={"linear": True},
                  label_files=[str(lab)], label_hosts=[1])
    res = node.run(cwd=str(tmp_path))
    out = nib.load(res.outputs.label_out_files[0])
    assert out.shape == ph.shape == (42, 50, 42) and out.get_data_dtype() == np.uint8
    truth = ellipsoid_labels(out.affine, out.shape)
    got = np.asarray(out.dataobj)
    assert 2 * ((got == 4) & (truth == 4)).sum() / ((got == 4).sum() + (truth == 4).sum()) > 0.85
