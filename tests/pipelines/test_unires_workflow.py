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
    assert [nib.load(str(f)).shape for f in res.outputs.out_files] == [(41, 49, 41)] * 3
    assert res.outputs.summary["iterations"] == 5 and res.outputs.summary["device"] == "cpu"
