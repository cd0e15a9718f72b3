from pathlib import Path

from srprep.bids_app.config import Settings, to_toml


def test_settings_toml_round_trip(tmp_path):
    s = Settings(bids_dir=tmp_path / "bids", output_dir=tmp_path / "out", work_dir=tmp_path / "w",
                 participant_labels=["01", "02"], output_resolution=[1.0, 1.0, 2.5],
                 method_options={"unires": {"reg_scl": 4.0, "linear": False}})
    path = s.save()
    assert path == s.run_dir / "config.toml" and path.parent.parts[-2] == "runs"
    back = Settings.load(path)
    assert back == s
    assert isinstance(back.bids_dir, Path) and back.weights_dir is None


def test_toml_escaping():
    text = to_toml({"a": 'say "hi"\\', "b": [1, 2.5], "c": True, "d": None})
    assert text == 'a = "say \\"hi\\"\\\\"\nb = [1, 2.5]\nc = true\n'
