import nibabel as nib
import pytest

from srprep.bids_app import engine
from srprep.models.unires.phantom import ellipsoid_phantom
from srprep.pipelines.unires import UniResWorkflow
from tests.helpers import write_nifti


@pytest.fixture
def phantom_files(tmp_path):
    ph = ellipsoid_phantom()
    return ph, [str(write_nifti(tmp_path / f"{n}.nii.gz", im.data, im.affine))
                for n, im in zip(ph.names, ph.images)]


def test_graph_with_and_without_coregistration(phantom_files):
    _, files = phantom_files
    kw = dict(in_files=files, channels=[0, 1, 2], names=["T1w", "T2w", "PDw"],
              source_names=["a", "b", "c"], options={})
    assert UniResWorkflow(**kw).construct().node_names == ["coregister", "fit"]
    assert UniResWorkflow(coregister=False, **kw).construct().node_names == ["fit"]


def test_workflow_runs_with_cf_worker(phantom_files, tmp_path):
    ph, files = phantom_files
    wf = UniResWorkflow(in_files=files, channels=[0, 1, 2], names=["T1w", "T2w", "PDw"],
                        source_names=["a", "b", "c"], options={"max_iter": 5}, coregister=False)
    outcome = engine.run(wf, tmp_path / "cache", worker="cf", n_procs=1)
    assert outcome.ok, outcome.error
    res = outcome
    # the phantom's grid: the default rule's (the inputs' lattice, holding every slice)
    assert [nib.load(str(f)).shape for f in res.outputs.out_files] == [ph.shape] * 3
    assert ph.shape == (42, 50, 42)
    assert res.outputs.summary["iterations"] == 5 and res.outputs.summary["device"] == "cpu"


def test_res_origin_adds_a_reset_step_for_ct_only(phantom_files):
    _, files = phantom_files
    kw = dict(in_files=files, channels=[0, 1, 2], names=["a", "b", "c"],
              source_names=["a", "b", "c"])
    wf = UniResWorkflow(options={"ct": True, "res_origin": True}, **kw)
    assert wf.construct().node_names == ["reset_origin", "coregister", "fit"]
    with pytest.raises(ValueError, match="for CT"):
        UniResWorkflow(options={"res_origin": True}, **kw).construct()


def test_res_origin_workflow_recentres_ct(tmp_path):
    from tests.helpers import write_nifti
    import numpy as np

    ct = np.full((24, 24, 8), -1000.0, np.float32)
    ct[6:18, 6:18, 2:6] = 40.0
    affine = np.diag([1.0, 1.0, 3.0, 1.0])
    affine[:3, 3] = [400, 400, -900]                        # scanner origin far off
    f = str(write_nifti(tmp_path / "ct.nii.gz", ct, affine, dtype=np.int16))
    wf = UniResWorkflow(in_files=[f], channels=[0], names=["ct"], source_names=["ct"],
                        options={"ct": True, "res_origin": True, "linear": True,
                                 "voxel_size": 1.5})
    outcome = engine.run(wf, tmp_path / "cache", worker="debug")
    assert outcome.ok, outcome.error
    img = nib.load(str(outcome.outputs.out_files[0]))
    centre = img.affine[:3, :3] @ ((np.array(img.shape) - 1) / 2) + img.affine[:3, 3]
    assert np.all(np.abs(centre) <= 1.5 + 1e-6)   # centred (UniRes 1-based box: <= 1 voxel)
    assert img.get_data_dtype() == np.int16
    data = np.asarray(img.dataobj)
    assert data.min() == -1000 and data.max() == 40
