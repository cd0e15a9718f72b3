import pytest

from srprep.bids_app.naming import BIDSName, clean_label, resolution_label


def test_parse_and_rebuild_in_schema_order():
    name = BIDSName.parse("/data/sub-01/ses-1/anat/sub-01_ses-1_acq-fast_run-2_T2w.nii.gz")
    assert name.entities == {"sub": "01", "ses": "1", "acq": "fast", "run": "2"}
    assert name.suffix == "T2w" and name.extension == ".nii.gz"
    out = name.with_entities(desc="linear", res="1mm")
    assert out.filename == "sub-01_ses-1_acq-fast_run-2_res-1mm_desc-linear_T2w.nii.gz"
    assert out.directory("anat") == "sub-01/ses-1/anat"
    assert out.replace(extension=".json").filename.endswith("_desc-linear_T2w.json")


def test_space_goes_before_res_and_desc_last():
    name = BIDSName.parse("sub-1_T1w.nii").with_entities(desc="unires", space="MNI152", res="2mm")
    assert name.filename == "sub-1_space-MNI152_res-2mm_desc-unires_T1w.nii"


@pytest.mark.parametrize("bad", ["T1w.nii.gz", "ses-1_T1w.nii.gz", "sub-01_acq_T1w.nii.gz"])
def test_parse_rejects_non_bids(bad):
    with pytest.raises(ValueError):
        BIDSName.parse(bad)


def test_labels_must_be_alphanumeric():
    with pytest.raises(ValueError, match="alphanumeric"):
        BIDSName.parse("sub-01_T1w.nii").with_entities(desc="my-method")


@pytest.mark.parametrize("vs, label", [(1.0, "1mm"), (0.5, "0p5mm"), ([1, 1, 2.5], "1x1x2p5mm"),
                                       ([0.8, 0.8, 0.8], "0p8mm")])
def test_resolution_label(vs, label):
    assert resolution_label(vs) == label


@pytest.mark.parametrize("raw, ok", [("01", "01"), ("sub-01", "01"), ("sub-ab12", "ab12")])
def test_clean_label(raw, ok):
    assert clean_label(raw, "sub") == ok


@pytest.mark.parametrize("raw", ["../x", "01/..", "sub-", "a b", "sub-0_1", ""])
def test_clean_label_rejects_path_tricks(raw):
    with pytest.raises(ValueError, match="invalid sub label"):
        clean_label(raw, "sub")
