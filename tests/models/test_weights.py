"""Weights cache: download from a loopback HTTP server, checksums, structure checks."""
import functools
import http.server
import threading

import pytest
import torch

from srprep.bids_app.cli.weights import main as weights_main
from srprep.core.errors import ConfigurationError
from srprep.models import weights


@pytest.fixture
def server(tmp_path):
    """HTTP server on 127.0.0.1 serving tmp_path/www (bounded: stopped after the test)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def fake_entry(monkeypatch, server):
    www, base = server
    state = {"layer.weight": torch.randn(4, 3), "layer.bias": torch.zeros(4)}
    torch.save(state, www / "model.pth")
    entry = weights.WeightsFile("toy", "toymethod", "model.pth", f"{base}/model.pth", "toy",
                                structure="tests.models.test_weights:toy_shapes")
    monkeypatch.setitem(weights.REGISTRY, "toy", entry)
    return www, state


def toy_shapes():
    return {"layer.weight": (4, 3), "layer.bias": (4,)}


def test_fetch_verify_path_via_cli(fake_entry, tmp_path, capsys, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("SRPREP_WEIGHTS_DIR", str(cache))
    assert weights_main(["fetch", "toy"]) == 0
    target = cache / "toymethod" / "model.pth"
    assert target.is_file() and (cache / "toymethod" / "model.pth.sha256").is_file()
    assert weights_main(["path", "toy"]) == 0
    assert capsys.readouterr().out.strip().endswith(str(target))
    assert weights_main(["verify", "toy"]) == 0
    assert '"structure": "ok (2 tensors)"' in capsys.readouterr().out
    loaded = weights.load_state_dict(target)
    assert torch.equal(loaded["layer.weight"], fake_entry[1]["layer.weight"])


def test_corrupted_cache_and_wrong_structure_are_reported(fake_entry, tmp_path):
    cache = tmp_path / "c"
    target = weights.fetch("toy", cache, progress=False)
    target.write_bytes(target.read_bytes()[:-10])
    with pytest.raises(ConfigurationError, match="checksum mismatch"):
        weights.verify("toy", cache)
    with pytest.raises(ConfigurationError, match=r"1 shape mismatch\(es\), e.g. layer.weight"):
        weights.check_structure({"layer.weight": torch.zeros(3, 3), "layer.bias": torch.zeros(4)},
                                toy_shapes())
    with pytest.raises(ConfigurationError, match="1 missing key"):
        weights.check_structure({"layer.weight": torch.zeros(4, 3)}, toy_shapes())


def test_published_checksum_is_enforced_and_nothing_is_left(fake_entry, tmp_path, monkeypatch):
    bad = weights.WeightsFile("toy", "toymethod", "model.pth", weights.REGISTRY["toy"].url, "toy",
                              sha256="0" * 64)
    monkeypatch.setitem(weights.REGISTRY, "toy", bad)
    with pytest.raises(ConfigurationError, match="checksum mismatch"):
        weights.fetch("toy", tmp_path / "c", progress=False)
    assert not list((tmp_path / "c").rglob("*.pth"))


def test_missing_weights_message_names_the_command(tmp_path):
    with pytest.raises(ConfigurationError, match="srprep-weights fetch babyai"):
        weights.path("babyai", tmp_path)


def test_lookup_order(tmp_path, monkeypatch):
    monkeypatch.setenv("SRPREP_WEIGHTS_DIR", str(tmp_path / "env"))
    assert weights.weights_dir() == tmp_path / "env"
    assert weights.weights_dir(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("SRPREP_WEIGHTS_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights.weights_dir() == tmp_path / "xdg" / "srprep" / "weights"


def test_official_registry_urls():
    assert weights.REGISTRY["pccnn"].url == "https://zenodo.org/record/10210758/files/pccnn_weights.pt"
    assert weights.REGISTRY["babyai"].url.endswith("almalennartsson/baby-ai/resolve/main/pretrained_weights.pth")
    assert {w.method for w in weights.REGISTRY.values()} == {"babyai", "easysr", "pccnn", "aid",
                                                             "templates"}
    assert weights.REGISTRY["mni152-head"].url == (
        "https://templateflow.s3.amazonaws.com/tpl-MNI152NLin2009cAsym/"
        "tpl-MNI152NLin2009cAsym_res-01_T1w.nii.gz")


def test_cli_list_and_unknown(capsys):
    assert weights_main(["list"]) == 0
    assert "easysr-g-mixed" in capsys.readouterr().out
    assert weights_main(["fetch", "nope"]) == 1
    assert "unknown weights or method 'nope'" in capsys.readouterr().err
