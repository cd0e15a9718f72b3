import os
import signal
import subprocess
import sys
import time

import pytest

from srprep.core.atomic import atomic_path, copy_file, remove_stale_temporaries, write_json


def test_exception_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "a.nii.gz") as tmp:
            assert tmp.name.endswith(".nii.gz") and tmp.name.startswith(".a.nii.gz.")
            tmp.write_bytes(b"half")
            raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_existing_file_survives_a_failed_rewrite(tmp_path):
    write_json(tmp_path / "x.json", {"a": 1})
    with pytest.raises(OSError):
        with atomic_path(tmp_path / "x.json") as tmp:
            tmp.write_text("{broken")
            raise OSError(28, "No space left on device")
    assert (tmp_path / "x.json").read_text() == '{\n  "a": 1\n}\n'


def test_copy_and_cleanup(tmp_path):
    (tmp_path / "src").write_bytes(b"x" * 100)
    copy_file(tmp_path / "src", tmp_path / "out" / "dst")
    assert (tmp_path / "out" / "dst").read_bytes() == b"x" * 100
    (tmp_path / "out" / ".dst.123.abcd.tmp").write_text("stale")
    assert remove_stale_temporaries(tmp_path / "out") == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["dst"]


def test_killed_writer_leaves_no_file_under_final_name(tmp_path):
    script = (
        "import sys, time\n"
        "from srprep.core.atomic import atomic_path\n"
        "with atomic_path(sys.argv[1]) as tmp:\n"
        "    fh = open(tmp, 'wb'); fh.write(b'x' * 1000); fh.flush()\n"
        "    print('writing', flush=True); time.sleep(60)\n"
    )
    final = tmp_path / "out.nii.gz"
    proc = subprocess.Popen([sys.executable, "-c", script, str(final)], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert not final.exists()
    assert remove_stale_temporaries(tmp_path) == 1
    time.sleep(0.01)
    assert list(tmp_path.iterdir()) == []
