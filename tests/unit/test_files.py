"""The file helpers the cache and the lock share: whole files or none, and reads that stay bounded."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

from mkdocs_imagegen.files import atomic_write, inside, read_head, sha256_file


def test_an_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")
    atomic_write(str(target), b"new", durable=False)
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["file.bin"]


def test_an_interrupted_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")
    names: list[str] = []

    def interrupted(src: str, dst: str) -> None:
        names.append(os.path.basename(src))
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(str(target), b"new", prefix=".tmp-", suffix="")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["file.bin"]
    assert names[0].startswith(".tmp-") and not names[0].endswith(".tmp")


def test_the_default_temporary_name_is_hidden_and_ends_in_tmp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    real_replace = os.replace

    def replace(src: str, dst: str) -> None:
        seen.append(os.path.basename(src))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    atomic_write(str(tmp_path / "imagegen.lock"), b"x")
    assert seen[0].startswith(".imagegen.lock.") and seen[0].endswith(".tmp")


def test_inside_means_strictly_below(tmp_path: Path) -> None:
    root = str(tmp_path)
    assert inside(root, os.path.join(root, "a", "b"))
    assert not inside(root, root)
    assert not inside(root, os.path.dirname(root))


def test_a_digest_comes_with_the_first_bytes(tmp_path: Path) -> None:
    path = tmp_path / "image"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * 100)
    digest, head = sha256_file(str(path))
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest() and head == path.read_bytes()[:16]


@pytest.mark.skipif(sys.platform == "win32", reason="O_NOFOLLOW is POSIX")
def test_a_digest_that_must_not_follow_a_symlink_refuses_it(tmp_path: Path) -> None:
    (tmp_path / "real").write_bytes(b"secret")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert sha256_file(str(tmp_path / "link"))[0] == hashlib.sha256(b"secret").hexdigest()
    with pytest.raises(OSError):
        sha256_file(str(tmp_path / "link"), follow_symlinks=False)


def test_a_folder_has_no_digest(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        sha256_file(str(tmp_path))


def test_a_bounded_read_stops_at_its_limit(tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(b"a" * 1000)
    assert read_head(str(path), 10) == b"a" * 10
