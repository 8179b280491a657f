"""File helpers shared by the cache and the lock folder, both of which read back hostile data.

Writes never change a file in place (a reader sees the old file or the new one, never half of
one), reads are bounded, and a read that must not follow a symlink says so.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
BINARY = getattr(os, "O_BINARY", 0)


def atomic_write(
    path: str, data: bytes, *, durable: bool = True, prefix: str | None = None, suffix: str = ".tmp"
) -> None:
    """Write a complete file under a private temporary name in its folder, then rename it into place.

    The temporary file is created exclusively and follows no symlink; a failure or an interrupt
    removes it. `durable` flushes the bytes to disk before the rename, for a file nothing checks
    when it is read back (a cache image is checked against its digest, so it skips the cost).
    The temporary name is `.<name>.<random><suffix>` unless `prefix` replaces `.<name>.`.
    """
    folder, name = os.path.split(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}." if prefix is None else prefix, suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def inside(root: str, path: str) -> bool:
    """Whether `path` is below `root` (both real paths); `root` itself is not inside."""
    return path != root and within(root, path)


def within(root: str, path: str) -> bool:
    """Whether `path` is `root` or below it (both real paths); on Windows, another drive is not."""
    try:
        return os.path.commonpath([root, path]) == root
    except ValueError:  # different drives, or one path relative and the other absolute
        return False


def sha256_file(path: str, *, follow_symlinks: bool = True) -> tuple[str, bytes]:
    """(hex digest, first bytes) of a file, read in chunks; raises OSError."""
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | BINARY | (0 if follow_symlinks else NOFOLLOW))
    try:
        fh = os.fdopen(fd, "rb")
    except BaseException:  # a folder opens, but is no file: do not leak its descriptor
        os.close(fd)
        raise
    with fh:
        head = b""
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            if not head:
                head = chunk[:16]
            digest.update(chunk)
    return digest.hexdigest(), head


def read_head(path: str, limit: int) -> bytes:
    """At most `limit` bytes from the start of a file: a hostile file can be any size."""
    with open(path, "rb") as fh:
        return fh.read(limit)


def reason(exc: BaseException) -> str:
    """An error as a user can act on it: the system's words and the file they are about."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror + (f" ({exc.filename})" if exc.filename else "")
    return str(exc) or type(exc).__name__
