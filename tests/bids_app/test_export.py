import json
import os
import time

import numpy as np

from srprep.bids_app.export import BIDSIGNORE, export_derivatives, prepare_output_dir
from srprep.bids_app.methods import Derivative
from srprep.bids_app.naming import BIDSName
from srprep.bids_app.query import SourceImage
from tests.helpers import write_nifti


def _derivative(tmp_path):
    src_file = write_nifti(tmp_path / "raw" / "sub-01_T2w.nii.gz", np.ones((4, 4, 4)))
    src = SourceImage(src_file, "sub-01/anat/sub-01_T2w.nii.gz",
                      BIDSName.parse(src_file.name), "anat")
    out = write_nifti(tmp_path / "cache" / "resliced.nii.gz", np.full((4, 4, 8), 2.0))
    name = src.name.with_entities(res="1mm", desc="linear")
    return Derivative(name, "anat", out, {"SkullStripped": False, "Sources": [src.uri]}, [src])


def test_export_is_idempotent_and_restores_deleted_files(tmp_path):
    d = _derivative(tmp_path)
    out = tmp_path / "out"
    (target,) = export_derivatives([d], out)
    assert target == out / "sub-01/anat/sub-01_res-1mm_desc-linear_T2w.nii.gz"
    sidecar = target.with_name("sub-01_res-1mm_desc-linear_T2w.json")
    assert json.loads(sidecar.read_text())["Sources"] == ["bids:raw:sub-01/anat/sub-01_T2w.nii.gz"]
    mtimes = (target.stat().st_mtime_ns, sidecar.stat().st_mtime_ns)
    export_derivatives([d], out)
    assert (target.stat().st_mtime_ns, sidecar.stat().st_mtime_ns) == mtimes  # untouched
    target.unlink()
    export_derivatives([d], out)
    assert target.read_bytes() == d.file.read_bytes()


def test_prepare_output_dir(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "dataset_description.json").write_text(json.dumps(
        {"Name": "x", "BIDSVersion": "1.10.0", "License": "CC0", "DatasetDOI": "10.1/abc"}))
    out = tmp_path / "out"
    out.mkdir()
    stale, fresh = out / ".x.nii.gz.1.ab.tmp.nii.gz", out / ".y.json.2.cd.tmp.json"
    stale.write_text("left by a run killed 2 h ago")
    fresh.write_text("being written by a concurrent run")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    prepare_output_dir(out, raw)
    desc = json.loads((out / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative" and desc["GeneratedBy"][0]["Name"] == "srprep"
    assert desc["License"] == "CC0" and desc["SourceDatasets"][0]["DOI"] == "10.1/abc"
    assert desc["DatasetLinks"]["raw"].startswith("file://")
    assert (out / ".bidsignore").read_text() == BIDSIGNORE
    assert not stale.exists() and fresh.exists()
