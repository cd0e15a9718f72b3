"""The package layout rules of the README's architecture section: imports point downward
only (core <- models <- tasks <- pipelines <- bids_app; interfaces sit beside tasks), and
every method is one package with the same module names."""
import ast
from pathlib import Path

import pytest

import srprep

PACKAGE = Path(srprep.__file__).parent
#: layer of each subpackage; a module may import only from layers at or below its own
LAYERS = {"core": 0, "models": 1, "tasks": 2, "interfaces": 2, "pipelines": 3, "bids_app": 4}
METHODS = ("unires", "babyai", "easysr", "pccnn", "aid")


def _imports(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in a file, function-level ones included."""
    tree = ast.parse(path.read_text() if source is None else source, filename=str(path))
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = parts[:-1]                 # a module's package; __init__'s is its folder
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return found


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "srprep" or len(parts) < 2:
        return None
    return LAYERS.get(parts[1])


def test_imports_point_downward_only():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = _layer(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts))
        if own is None:
            continue
        for line, module in _imports(path):
            target = _layer(module)
            if target is not None and target > own:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_every_internal_import_resolves():
    """Function-level imports run only when called: check every ``srprep`` module (and
    every name imported from one) exists, so a moved module cannot leave one behind."""
    import importlib

    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for line, module in _imports(path):
            if module.split(".")[0] != "srprep":
                continue
            try:
                mod = importlib.import_module(module)
            except ModuleNotFoundError:
                missing.append(f"{path.relative_to(PACKAGE.parent)}:{line} {module}")
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.lineno == line:
                    for alias in node.names:
                        if alias.name != "*" and not hasattr(mod, alias.name):
                            try:
                                importlib.import_module(f"{module}.{alias.name}")
                            except ModuleNotFoundError:
                                missing.append(f"{path.relative_to(PACKAGE.parent)}:{line} "
                                               f"{module}.{alias.name}")
    assert not missing, "unresolved imports:\n" + "\n".join(missing)


def test_the_rule_sees_upward_imports():
    """The checker itself: relative and absolute imports that climb are resolved."""
    probe = PACKAGE / "models" / "unires" / "probe.py"
    assert _imports(probe, "from ..aid import x\nfrom ...bids_app import demo\n") == [
        (1, "srprep.models.aid"), (2, "srprep.bids_app")]
    init = PACKAGE / "models" / "unires" / "__init__.py"
    assert _imports(init, "def f():\n    from .fit import fit\n") == [(2, "srprep.models.unires.fit")]
    assert _layer("srprep.bids_app") > _layer("srprep.models.unires") > _layer("srprep.core.x")


@pytest.mark.parametrize("method", METHODS)
def test_every_method_is_one_package(method):
    folder = PACKAGE / "models" / method
    assert (folder / "__init__.py").is_file()
    names = {p.stem for p in folder.glob("*.py")}
    # the solver stands in for the network of the model-based method
    assert ({"solver"} if method == "unires" else {"network", "train", "data"}) <= names
    assert {"inference", "recon", "fit"} & names            # the entry point that runs it
    for layer in ("tasks", "pipelines"):
        assert (PACKAGE / layer / f"{method}.py").is_file(), f"{layer}/{method}.py"
    from srprep.bids_app.methods import METHODS

    if method == "aid":                    # its front end is its own command, srprep-recon
        assert (PACKAGE / "bids_app" / "cli" / "recon.py").is_file()
    else:                                  # the App adapter carries the method's name
        assert (PACKAGE / "bids_app" / "methods" / f"{method}.py").is_file()
        assert METHODS[method][0] == f".{method}"
    if method != "unires":                 # the model-based method needs no training
        assert (PACKAGE / "bids_app" / "cli" / "train" / f"{method}.py").is_file()
    mod = __import__(f"srprep.models.{method}", fromlist=["*"])
    public = {"unires": "Settings", "babyai": "from_official_checkpoint",
              "easysr": "from_official_checkpoint", "pccnn": "from_official_checkpoint",
              "aid": "from_official_checkpoint"}[method]
    assert callable(getattr(mod, public))
