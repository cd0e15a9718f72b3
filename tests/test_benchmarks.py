"""The prepared GPU check and the GPU-slot simulation keep working (run on the CPU here:
the same code paths, CPU against CPU)."""
import importlib
import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _load(name, monkeypatch):
    """A benchmark script as a module (importable by spawned processes too)."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    return importlib.import_module(name)


def test_gpu_check_runs_every_method_path_on_cpu(capsys, monkeypatch):
    check = _load("gpu_check", monkeypatch)
    assert check.main(["--device", "cpu", "--methods", "unires", "easysr", "pccnn"]) == 0
    rows = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| ")][1:]
    assert [r.split("|")[1].strip() for r in rows] == ["unires", "easysr", "pccnn"]
    assert all(r.split("|")[5].strip() == "0.00e+00" and r.endswith("| yes |") for r in rows)
    script = ROOT / "benchmarks" / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    assert set(check.CHECKS) == {"unires", "babyai", "easysr", "pccnn", "aid"}


def test_gpu_slots_fill_every_device_of_a_four_gpu_node(monkeypatch):
    sim = _load("gpu_schedule", monkeypatch)
    r = sim.simulate(4, procs=6, steps=3, seconds=0.3)
    assert r["most_at_once"] == 4
    assert all(abs(share - 0.25) < 0.15 for share in r["share"].values())
    one = sim.simulate(1, procs=3, steps=2, seconds=0.2)
    assert one["most_at_once"] == 1                     # one slot per device
