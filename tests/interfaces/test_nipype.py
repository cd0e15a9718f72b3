"""The nipype interfaces run inside a nipype workflow and match the core functions."""
import nibabel as nib
import numpy as np
import pytest

from srprep.interfaces import Reslice, init_sr_wf
from srprep.models.unires.phantom import ellipsoid_phantom
from tests.helpers import blob_volume, write_nifti


def test_reslice_interface(tmp_path):
    f = write_nifti(tmp_path / "a.nii.gz", blob_volume((10, 10, 5)), np.diag([1, 1, 2, 1.0]))
    res = Reslice(in_file=str(f), voxel_size=[1.0], interpolation="cubic").run(cwd=str(tmp_path))
    assert nib.load(res.outputs.out_file).shape == (10, 10, 10)


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
    assert len(outs) == 3 and all(nib.load(o).shape == (41, 49, 41) for o in outs)
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
