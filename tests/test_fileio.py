"""sightsound.fileio: a write either lands whole or leaves the old content, and never a temp file."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from sightsound.fileio import (atomic_write, remove_quietly, staged_directory, write_bytes_atomic,
                               write_json_atomic, write_text_atomic)


def names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_write_bytes_atomic_writes_and_replaces(tmp_path):
    target = tmp_path / "out.bin"
    assert write_bytes_atomic(target, b"first") == target
    write_bytes_atomic(target, b"second")
    assert target.read_bytes() == b"second"
    assert names(tmp_path) == ["out.bin"]


def test_write_bytes_atomic_failure_keeps_old_content_and_no_temp(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(TypeError):
        write_bytes_atomic(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert names(tmp_path) == ["out.bin"]


def test_text_and_json(tmp_path):
    assert write_text_atomic(tmp_path / "a.txt", "héllo\n").read_bytes() == "héllo\n".encode()
    assert write_json_atomic(tmp_path / "b.json", {"k": "é"}).read_text() == '{\n "k": "\\u00e9"\n}\n'
    assert names(tmp_path) == ["a.txt", "b.json"]


def test_atomic_write_exposes_the_temp_file_and_drops_it_on_error(tmp_path):
    target = tmp_path / "data.part-test"
    with pytest.raises(ValueError, match="bad content"):
        with atomic_write(target, suffix=".part") as handle:
            handle.write(b"abc")
            handle.flush()
            temp = os.fspath(handle.name)
            assert os.path.basename(temp).startswith(".data.part-test.") and temp.endswith(".part")
            with open(temp, "rb") as check:
                assert check.read() == b"abc"
            raise ValueError("bad content")
    assert names(tmp_path) == []


def test_atomic_write_permissions_follow_the_umask_or_are_private(tmp_path):
    umask = os.umask(0o022)
    try:
        public = write_bytes_atomic(tmp_path / "public", b"x")
        with atomic_write(tmp_path / "private", permissions=0o600) as handle:
            handle.write(b"y")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(public.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o600


def test_atomic_write_rejects_other_modes(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with atomic_write(tmp_path / "x", "ab"):
            pass
    assert names(tmp_path) == []


def test_atomic_write_into_a_missing_folder_raises_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_bytes_atomic(tmp_path / "missing" / "x", b"x")


def test_remove_quietly(tmp_path):
    (tmp_path / "f").write_bytes(b"")
    remove_quietly(tmp_path / "f")
    remove_quietly(tmp_path / "f")
    assert names(tmp_path) == []


def test_staged_directory_publishes_whole_folder(tmp_path):
    umask = os.umask(0o022)
    try:
        with staged_directory(tmp_path / "out") as folder:
            assert folder.parent == tmp_path and folder.name.startswith(".out.") and folder.name.endswith(".partial")
            (folder / "a").write_text("a")
            assert not (tmp_path / "out").exists()
    finally:
        os.umask(umask)
    assert names(tmp_path) == ["out"] and names(tmp_path / "out") == ["a"]
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755


def test_staged_directory_replaces_an_empty_folder_only_unless_asked(tmp_path):
    (tmp_path / "out").mkdir()
    with staged_directory(tmp_path / "out") as folder:
        (folder / "new").write_text("1")
    assert names(tmp_path / "out") == ["new"]
    with pytest.raises(OSError) as raised:
        with staged_directory(tmp_path / "out") as folder:
            (folder / "newer").write_text("2")
    assert raised.value.errno in (errno.ENOTEMPTY, errno.EEXIST)
    assert names(tmp_path) == ["out"] and names(tmp_path / "out") == ["new"]
    with staged_directory(tmp_path / "out", replace=True) as folder:
        (folder / "newest").write_text("3")
    assert names(tmp_path) == ["out"] and names(tmp_path / "out") == ["newest"]


def test_staged_directory_failure_removes_the_staging_folder_unless_kept(tmp_path):
    with pytest.raises(RuntimeError):
        with staged_directory(tmp_path / "out") as folder:
            (folder / "a").write_text("a")
            raise RuntimeError("boom")
    assert names(tmp_path) == []

    class Keep(Exception):
        pass

    with pytest.raises(Keep):
        with staged_directory(tmp_path / "out", staging=tmp_path / ".mine", keep_on=(Keep,)) as folder:
            assert folder == tmp_path / ".mine"
            (folder / "a").write_text("a")
            raise Keep()
    assert names(tmp_path) == [".mine"] and names(tmp_path / ".mine") == ["a"]
