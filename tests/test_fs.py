"""The atomic-write helper: readers see the old file or the complete new one, never a torn
write; failures leave nothing behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from signrt._fs import atomic_write, write_bytes_atomic, write_text_atomic


def test_replaces_atomically_and_leaves_no_temporary(tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"old")
    with atomic_write(dest) as fh:
        fh.write(b"new content")
        assert dest.read_bytes() == b"old"  # not visible before the block ends
        tmp = Path(fh.name)
        assert tmp.parent == tmp_path and tmp.name.startswith(".f.bin.")
    assert dest.read_bytes() == b"new content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    dest = tmp_path / "f.txt"
    dest.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_write(dest) as fh:
        fh.write(b"partial")
        raise RuntimeError("boom")
    assert dest.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def test_interrupt_also_cleans_up(tmp_path: Path) -> None:
    dest = tmp_path / "f.txt"
    with pytest.raises(KeyboardInterrupt), atomic_write(dest) as fh:
        fh.write(b"x")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_permissions_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        path = write_bytes_atomic(tmp_path / "p.bin", b"1")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_helpers_create_parents_and_write_utf8(tmp_path: Path) -> None:
    path = write_text_atomic(tmp_path / "a" / "b" / "t.txt", "größe ✓")
    assert path.read_bytes() == "größe ✓".encode()
    with pytest.raises(FileNotFoundError), atomic_write(tmp_path / "missing" / "x") as fh:
        fh.write(b"x")
