"""atomic_write: the old file or the new one, never half of one; no temp files left behind."""

import os

import pytest

from coursekit.runtime.files import atomic_write, temp_path


def test_writes_with_the_usual_permissions_and_no_leftovers(tmp_path):
    path = atomic_write(tmp_path / "sub" / "a.txt", lambda tmp: tmp.write_text("new"))
    assert path.read_text() == "new"
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in path.parent.iterdir()] == ["a.txt"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")

    def half_then_fail(tmp):
        tmp.write_text("ha")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, half_then_fail)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_the_temp_name_is_hidden_and_per_process(tmp_path):
    assert temp_path(tmp_path / "x.bin", pid=42).name == ".x.bin.tmp-42"
    assert temp_path(tmp_path / "x.bin").name == f".x.bin.tmp-{os.getpid()}"
