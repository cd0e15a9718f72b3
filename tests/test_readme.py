"""The README's commands and Python example stay true."""
import re
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

from srprep.core.resample import reslice

README = Path(__file__).parents[1] / "README.md"


def _blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.S)


def test_first_two_commands_are_demo_and_tests():
    """CI executes both blocks as written (.ci/run); here: they do what they say."""
    install_demo, install_tests = _blocks("bash")[:2]
    lock = "-c srprep/data/requirements.lock"
    assert f"pip install {lock} -e . " in install_demo
    assert install_demo.strip().endswith("srprep-demo demo")
    assert f'pip install {lock} -e ".[test,train]"' in install_tests
    assert install_tests.strip().endswith("python -m pytest -q")
    assert (README.parent / "srprep" / "data" / "requirements.lock").is_file()
    printed = [subprocess.run([sys.executable, str(README.parent / ".ci" / "readme_command.py"),
                               str(n)], capture_output=True, text=True, check=True).stdout.strip()
               for n in (1, 2)]
    assert printed == [install_demo.strip(), install_tests.strip()]


def test_python_api_example_runs(tmp_path, mni_t1, monkeypatch):
    data, affine = mni_t1
    atlas, atlas_affine = reslice(data, affine, 3.0, order=1)
    nib.save(nib.Nifti1Image(atlas, atlas_affine), tmp_path / "mni.nii.gz")
    moved = atlas_affine.copy()
    moved[:3, 3] += [3.0, -2.0, 1.0]
    nib.save(nib.Nifti1Image(atlas, moved), tmp_path / "sub-01_T1w.nii.gz")
    code = _blocks("python")[0]
    script = tmp_path / "example.py"
    script.write_text(code)
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    in_atlas, back = out.stdout.strip().splitlines()
    aligned = nib.load(in_atlas)
    np.testing.assert_allclose(aligned.affine, atlas_affine)
    inside = atlas > 20
    assert np.corrcoef(aligned.get_fdata()[inside], atlas[inside])[0, 1] > 0.98
    assert nib.load(back).shape == atlas.shape
