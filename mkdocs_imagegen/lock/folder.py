"""The files of a lock folder: one image per key, the manifest, Git's settings, and past revisions.

A file name is always derived from the key and the format, never taken from the manifest, and an
image counts only when its bytes match the recorded size and SHA-256. Every write goes to a
temporary file renamed into place, so an interrupted run leaves the previous files intact.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import filelock

from ..files import atomic_write, read_head, sha256_file
from .manifest import (
    MANIFEST,
    MAX_MANIFEST_BYTES,
    LockError,
    Manifest,
    Record,
    manifest_text,
    parse_manifest,
    pick,
)

GITATTRIBUTES = "imagegen.lock merge=union\n"
GITIGNORE = "# unfinished writes of an interrupted run\n.*.tmp\n"


@dataclass(frozen=True)
class Locked:
    """A verified image of the lock: its record and the file that holds its bytes."""

    record: Record
    path: str


class LockFolder:
    """One lock folder on disk; what it finds wrong it returns, and the lock decides how to say it."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.manifest_path = os.path.join(folder, MANIFEST)

    def file(self, record: Record) -> str:
        return os.path.join(self.folder, record.file)

    # -- the manifest --------------------------------------------------------------------------
    def read_manifest(self) -> Manifest:
        try:
            raw = read_head(self.manifest_path, MAX_MANIFEST_BYTES + 1)
        except FileNotFoundError:
            return Manifest()
        except OSError as exc:
            raise LockError(f"cannot read {self.manifest_path}: {exc.strerror or exc}") from None
        return parse_manifest(raw.decode("utf-8", errors="replace"), show(self.manifest_path))

    def chosen(self, manifest: Manifest) -> dict[str, Record]:
        """One record per key; of repeated lines (a union merge), the one whose file is on disk wins."""
        return {
            key: pick(candidates, _digest(self.file(candidates[0])) if len(candidates) > 1 else None)
            for key, candidates in manifest.candidates.items()
        }

    def write_manifest(self, records: Iterable[Record]) -> None:
        atomic_write(self.manifest_path, manifest_text(records).encode())

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """A cross-process lock for rewriting the manifest, kept outside the committed folder."""
        digest = hashlib.sha256(self.folder.encode()).hexdigest()[:16]
        path = os.path.join(tempfile.gettempdir(), f"imagegen-lock-{digest}.lock")
        with filelock.FileLock(path, timeout=120):
            yield

    # -- images --------------------------------------------------------------------------------
    def verify(self, record: Record) -> tuple[Locked | None, str | None]:
        """(the image, None) when its file matches the record, else (None, what is wrong with it)."""
        path = self.file(record)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None, "is listed in imagegen.lock but missing from the lock folder"
        except OSError as exc:
            return None, f"cannot be read: {exc.strerror or exc}"
        if not os.path.isfile(path) or os.path.islink(path):
            return None, "is not a regular file"
        if st.st_size != record.bytes or _digest(path) != record.sha256:
            hint = ""
            if st.st_size < 1024 and _is_lfs_pointer(path):
                hint = " (it is a Git LFS pointer: run `git lfs pull`)"
            return None, (
                f"does not match the SHA-256 recorded in imagegen.lock{hint}; it is refused. Restore it "
                "(`git checkout -- <file>`), or delete it and its line to generate it again"
            )
        return Locked(record, path), None

    def write_image(self, record: Record, data: bytes) -> Locked:
        if hashlib.sha256(data).hexdigest() != record.sha256 or len(data) != record.bytes:
            raise LockError("internal error: the image bytes do not match their lock record")
        self.ensure()
        path = self.file(record)
        atomic_write(path, data)
        return Locked(record, path)

    def remove_image(self, record: Record) -> int:
        """Delete the image's file (derived from the key); return the bytes freed."""
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.file(record))
            return record.bytes
        return 0

    def ensure(self) -> None:
        """Create the folder, with the Git settings that make two branches' manifests merge."""
        try:
            os.makedirs(self.folder, exist_ok=True)
            for name, text in ((".gitattributes", GITATTRIBUTES), (".gitignore", GITIGNORE)):
                path = os.path.join(self.folder, name)
                if not os.path.exists(path):
                    atomic_write(path, text.encode())
                elif name == ".gitattributes":
                    with open(path, encoding="utf-8", errors="replace") as fh:
                        current = fh.read(65536)
                    if "merge=union" not in current:
                        atomic_write(path, (current.rstrip("\n") + "\n" + GITATTRIBUTES).lstrip().encode())
        except OSError as exc:
            raise LockError(
                f"cannot write the lock folder {self.folder}: {exc.strerror or exc}. "
                "Make it writable, or remove the lock option"
            ) from None


def show(path: str) -> str:
    """A path as the user knows it: relative to the current folder when inside it."""
    with contextlib.suppress(ValueError):
        rel = os.path.relpath(path)
        if not rel.startswith(".."):
            return rel
    return path


def _digest(path: str) -> str | None:
    try:
        return sha256_file(path)[0]
    except OSError:
        return None


def _is_lfs_pointer(path: str) -> bool:
    with contextlib.suppress(OSError):
        return read_head(path, 64).startswith(b"version https://git-lfs.github.com/spec/")
    return False


# -- the folder at a git revision ----------------------------------------------------------------


def _git_show(revision: str, folder: str, name: str) -> tuple[bytes | None, str | None]:
    """A file of the lock folder at a git revision: (bytes, None), (None, None) if absent, or why not."""
    import subprocess

    if not revision or revision.startswith("-"):
        return None, f"{revision!r} is not a git revision"
    # `REV:./path` is relative to the working directory, so no repository root is needed.
    cwd, rel = (
        (folder, name)
        if os.path.isdir(folder)
        else (os.path.dirname(folder), f"{os.path.basename(folder)}/{name}")
    )
    try:
        proc = subprocess.run(
            ["git", "show", f"{revision}:./{rel}"], cwd=cwd, capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"cannot run git: {exc}"
    if proc.returncode == 0:
        return proc.stdout, None
    message = proc.stderr.decode("utf-8", errors="replace").strip()
    if "exists on disk, but not in" in message or "does not exist in" in message:
        return None, None
    return None, f"git show {revision}:{rel} failed: {message or proc.returncode}"


def read_manifest_at(revision: str, folder: str) -> tuple[Manifest, str | None]:
    """The manifest as it was at a git revision, or why it cannot be read (none there: empty)."""
    data, problem = _git_show(revision, folder, MANIFEST)
    if data is None:
        return Manifest(), problem
    return parse_manifest(data[:MAX_MANIFEST_BYTES].decode("utf-8", errors="replace")), None


def image_at(revision: str, folder: str, record: Record) -> bytes | None:
    """An image's bytes at a git revision, verified against its record; None when absent or wrong."""
    data, _ = _git_show(revision, folder, record.file)
    if data is None or len(data) != record.bytes or hashlib.sha256(data).hexdigest() != record.sha256:
        return None
    return data
