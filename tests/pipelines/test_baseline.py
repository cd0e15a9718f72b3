import nibabel as nib
import numpy as np
import pytest
from pydra.engine.submitter import Submitter

from srprep.bids_app import engine
from srprep.pipelines.baseline import ResliceWorkflow
from tests.helpers import blob_volume, write_nifti


def test_graph(tmp_path):
    f = write_nifti(tmp_path / "a.nii.gz", blob_volume((8, 8, 8)))
    wf = ResliceWorkflow(in_file=f, source_name="x", voxel_size=[1.0, 1.0, 1.0])
    assert wf.construct().node_names == ["reslice"]


@pytest.mark.parametrize("worker", ["debug", "cf"])
def test_split_over_inputs_keeps_order(tmp_path, worker):
    files = []
    for i, zoom in enumerate((2.0, 3.0)):
        vol = blob_volume((20, 20, 12), seed=i) + i  # different content per input
        files.append(str(write_nifti(tmp_path / f"sub-0{i}_T2w.nii.gz", vol,
                                     np.diag([1, 1, zoom, 1.0]))))
    task = ResliceWorkflow(voxel_size=[1.0, 1.0, 1.0], interpolation="cubic").split(
        ("in_file", "source_name"), in_file=files, source_name=["a", "b"])
    plugin, kw = engine.make_worker(worker, n_procs=2)   # srprep's spawn-based cf worker
    with Submitter(worker=plugin, cache_root=tmp_path / "cache", **kw) as sub:
        res = sub(task)
    assert not res.errored
    shapes = [nib.load(str(p)).shape for p in res.outputs.out_file]
    assert shapes == [(20, 20, 24), (20, 20, 36)]
    assert [g["in_zooms"][2] for g in res.outputs.geometry] == [2.0, 3.0]
