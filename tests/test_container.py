"""The container recipe: parsed (spython), shell sections linted, and -- as root with
debootstrap -- built by emulation in a Debian bookworm chroot (``%files``, ``%post``,
``%test``, then the runscript on the demo dataset).  No container engine exists here."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

ROOT = Path(__file__).parents[1]
RECIPE = ROOT / "Singularity"
LOCK = ROOT / "srprep" / "data" / "requirements.lock"


def sections(text: str) -> dict[str, str]:
    """Header (``_header``) and ``%section`` bodies of an Apptainer definition file."""
    out, name, lines = {}, "_header", []
    for line in text.splitlines():
        if line.startswith("%"):
            out[name] = textwrap.dedent("\n".join(lines)).strip()
            name, lines = line[1:].split()[0], []
        else:
            lines.append(line)
    out[name] = textwrap.dedent("\n".join(lines)).strip()
    return out


def test_recipe_parses_with_spython():
    from spython.main.parse.parsers import SingularityParser

    recipe = next(iter(SingularityParser(str(RECIPE)).recipe.values()))
    assert recipe.fromHeader == "debian:bookworm-slim"
    env = " ".join(recipe.environ)
    for var in ("PYTHONNOUSERSITE=1", "NO_ET=1", "SRPREP_WEIGHTS_DIR=/opt/srprep/weights",
                "HF_HUB_OFFLINE=1"):
        assert var in env
    assert recipe.cmd == 'exec /opt/venv/bin/srprep "$@"'
    for entry in recipe.files:
        src, dst = entry.split()
        assert (ROOT / src).exists(), src
        assert dst.startswith("/opt/srprep/")
    assert any("install.sh" in line for line in recipe.install)
    labels = " ".join(recipe.labels)
    assert "org.opencontainers.image.version 0.1.0" in labels


@pytest.mark.parametrize("section", ["post", "environment", "runscript", "test"])
def test_shell_sections_pass_bash_n(section, tmp_path):
    body = sections(RECIPE.read_text())[section]
    script = tmp_path / f"{section}.sh"
    script.write_text(body + "\n")
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


def test_install_script_and_dockerfile_agree_with_recipe():
    assert subprocess.run(["sh", "-n", str(ROOT / "container" / "install.sh")]).returncode == 0
    docker = (ROOT / "Dockerfile").read_text()
    for entry in sections(RECIPE.read_text())["files"].splitlines():
        src, dst = entry.split()
        if src in ("pyproject.toml", "setup.py", "README.md"):
            assert src in docker
        else:
            assert f"COPY {src} {dst}" in docker
    assert "RUN sh /opt/srprep/install.sh" in docker
    # both recipes copy the package, lock included, and install.sh installs from the lock
    install = (ROOT / "container" / "install.sh").read_text()
    assert "lock=$src/srprep/data/requirements.lock" in install
    assert install.count('-c "$lock"') == 2 and LOCK.is_file()
    broken = "if then fi"
    assert subprocess.run(["bash", "-n"], input=broken, text=True,
                          capture_output=True).returncode == 2   # the linter does fail


# ------------------------------------------------------------------ emulated build
def _run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise AssertionError(f"{cmd[:4]} failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return proc


def _chroot(root: Path, script: str, *args: str, timeout=1800):
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "HOME": "/root", "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive",
           "TMPDIR": "/tmp"}
    return _run(["chroot", str(root), "/bin/sh", "-ec", script, "sh", *args], env=env,
                timeout=timeout)


@pytest.fixture(scope="session")
def bookworm_rootfs(tmp_path_factory):
    """A minimal Debian bookworm root (debootstrap), standing in for debian:bookworm-slim."""
    if os.geteuid() != 0 or shutil.which("debootstrap") is None or shutil.which("chroot") is None:
        pytest.skip("container emulation needs root, debootstrap and chroot")
    cache = Path(os.environ.get("SRPREP_ROOTFS_CACHE") or tmp_path_factory.mktemp("rootfs"))
    base = cache / "bookworm"
    if not (base / "usr" / "bin" / "apt-get").exists():
        _run(["debootstrap", "--variant=minbase", "bookworm", str(base),
              "http://deb.debian.org/debian"], timeout=1200)
    return base


@pytest.mark.slow
@pytest.mark.container
def test_emulated_build_test_and_runscript(bookworm_rootfs, tmp_path, demo_dataset_session):
    root = tmp_path / "root"
    _run(["cp", "-a", str(bookworm_rootfs), str(root)])
    parts = sections(RECIPE.read_text())
    for entry in parts["files"].splitlines():          # %files
        src, dst = entry.split()
        target = root / dst.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / src).is_dir():
            shutil.copytree(ROOT / src, target, dirs_exist_ok=True)
        else:
            shutil.copy2(ROOT / src, target)
    # offline wheelhouse built on the host (CPU PyTorch), as for an offline HPC build,
    # holding the locked versions that install.sh asks for
    _run([sys.executable, "-m", "pip", "download", "-q", "-d", str(root / "opt/srprep/wheels"),
          "-c", str(LOCK), "torch==2.13.0", "setuptools>=77", "wheel", str(ROOT)], timeout=1800)
    shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")   # apt in %post
    # the root must be a mount point, as in a container (fileformats checks /proc/mounts)
    _run(["mount", "--bind", str(root), str(root)])
    (root / "proc").mkdir(exist_ok=True)
    _run(["mount", "-t", "proc", "proc", str(root / "proc")])
    # multiprocessing needs /dev/shm (apptainer provides it); a private tmpfs, never the
    # host's /dev, so that deleting the test folder cannot touch the host
    (root / "dev" / "shm").mkdir(parents=True, exist_ok=True)
    _run(["mount", "-t", "tmpfs", "-o", "size=512m", "tmpfs", str(root / "dev" / "shm")])
    try:
        _chroot(root, parts["post"])                                    # %post
        env_file = root / ".singularity.d" / "env" / "90-environment.sh"
        env_file.parent.mkdir(parents=True)
        env_file.write_text(parts["environment"] + "\n")
        source = ". /.singularity.d/env/90-environment.sh\n"
        _chroot(root, source + parts["test"])                           # %test
        shutil.copytree(demo_dataset_session / "bids", root / "data" / "bids")
        args = ["/data/bids", "/data/out", "participant", "-w", "/data/work", "--vx", "4",
                "--method", "cubic", "unires", "--max-iter", "3", "--participant-label", "01"]
        _chroot(root, source + parts["runscript"], *args)               # %runscript
    finally:
        for mounted in (root / "dev" / "shm", root / "proc", root):
            if subprocess.run(["umount", str(mounted)]).returncode != 0:
                subprocess.run(["umount", "-l", str(mounted)], check=False)
    out = root / "data" / "out"
    names = sorted(p.name for p in out.rglob("*.nii.gz"))
    assert "sub-01_ses-1_res-4mm_desc-cubic_T2w.nii.gz" in names
    assert "sub-01_ses-1_res-4mm_desc-unires_T2w.nii.gz" in names   # at 4 mm the T2w grid is the T1w grid
    assert not list((root / "opt" / "srprep" / "wheels").glob("*.whl"))   # not baked in
    # same numbers as a native run of the same version
    from srprep.bids_app.cli.run import main
    native = tmp_path / "native"
    assert main([str(demo_dataset_session / "bids"), str(native), "participant", "-w",
                 str(tmp_path / "work"), "--vx", "4", "--method", "cubic",
                 "--participant-label", "01", "--skip-bids-validation"]) == 0
    for f in native.rglob("*desc-cubic*.nii.gz"):
        other = out / f.relative_to(native)
        np.testing.assert_array_equal(np.asarray(nib.load(f).dataobj),
                                      np.asarray(nib.load(other).dataobj))
