"""The cache's files beside its index: the images, a build's pins of them, and per-key claims.

An image's path is derived from its key and recorded digest, never read from the index, and a
file is served only when it is where the cache put it and holds the recorded bytes. Pins are hard
links (copies where links are not possible) in a folder private to one build. Claims are OS file
locks, released by the kernel if a build dies.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import sys
import tempfile
import time
from typing import Any

import filelock

from ..files import BINARY, NOFOLLOW, atomic_write, inside, reason, sha256_file
from .record import FALLBACK, KEY_RE, MAGIC, REAL, CacheError

if sys.platform != "win32":  # on Windows, filelock's msvcrt locks
    import fcntl

PIN_MAX_AGE = 24 * 3600.0  # pins of a build that died without cleaning up
# A file no record names yet may be a put under way (written, not yet recorded): only older
# ones are strays, left by a run killed between the two.
STRAY_AGE = 3600.0
STRAY_DIGEST = re.compile(r"^[0-9a-f]{16}\.img$")


class ImageFiles:
    """Where the images of a cache live, and whether a file there is the image a record describes."""

    def __init__(self, directory: str, real: str) -> None:
        self.directory = directory
        self._real = real

    def path(self, key: str, ns: str, sha256: str) -> str:
        """Where the image of (key, namespace, digest) lives: derived, never read from the index."""
        return os.path.join(self.directory, "images", ns, key[:2], f"{key}-{sha256[:16]}.img")

    def lock_path(self, key: str) -> str:
        if not KEY_RE.match(key):
            raise ValueError(f"not a cache key: {key!r}")
        return os.path.join(self.directory, "locks", f"{key}.lock")

    def write(self, path: str, data: bytes) -> None:
        """A complete new file, renamed into place: files are never changed in place."""
        os.makedirs(os.path.dirname(path), exist_ok=True)
        atomic_write(path, data, durable=False, prefix=".tmp-", suffix="")

    def strays(self, named: set[str], min_age: float = STRAY_AGE) -> list[tuple[str, int]]:
        """(path, bytes) of the image files no record names, older than `min_age`.

        Only files the cache itself writes are candidates (`images/<ns>/<key[:2]>/<key>-<digest>.img`
        and their `.tmp-` files), in real folders: a symlink, or a file of another name (a
        `cache_dir` shared with something else), is never touched.
        """
        found: list[tuple[str, int]] = []
        for ns in (REAL, FALLBACK):
            top = os.path.join(self.directory, "images", ns)
            for sub in _real_dirs(top):
                for name in _listdir(os.path.join(top, sub)):
                    path = os.path.join(top, sub, name)
                    if path not in named and _own_name(sub, name) and self._is_stray(path, min_age):
                        found.append((path, os.lstat(path).st_size))
        return sorted(found)

    def remove_stray(self, path: str, min_age: float = STRAY_AGE) -> int:
        """Remove a stray found earlier if it still is one (not rewritten meanwhile); its bytes, or 0."""
        with contextlib.suppress(OSError):
            if self._is_stray(path, min_age):
                size = os.lstat(path).st_size
                os.remove(path)
                return size
        return 0

    def _is_stray(self, path: str, min_age: float) -> bool:
        """A regular file, old enough, whose real place is the one its path names inside the cache."""
        try:
            st = os.lstat(path)
        except OSError:
            return False
        real = os.path.realpath(path)
        return (
            stat.S_ISREG(st.st_mode)
            and time.time() - st.st_mtime > min_age
            and real == os.path.join(self._real, os.path.relpath(path, self.directory))
        )

    def remove(self, path: str) -> None:
        if inside(self._real, os.path.realpath(os.path.dirname(path))):
            with contextlib.suppress(OSError):
                os.remove(path)  # a symlink there is removed itself, never what it points to

    def verify(self, path: str, meta: dict[str, Any], pins: Pins | None) -> tuple[str | None, str | None]:
        """Check the file against the record; return (the path to publish, None) or (None, problem).

        With `pins`, the file is linked into the build's pin folder first and the link is what
        gets checked and published: files are never changed in place, so those bytes stay.
        """
        problem = self._place_problem(path, meta)
        if problem is not None:
            return None, problem
        target = path
        if pins is not None:
            try:
                target = pins.pin(path)
            except FileNotFoundError:
                return None, "its image file is missing"
        problem = self._content_problem(target, meta)
        return (None, problem) if problem is not None else (target, None)

    def _place_problem(self, path: str, meta: dict[str, Any]) -> str | None:
        """Why the file at a derived path cannot be the recorded image (without reading it), or None."""
        # No symlinked folder on the way: the real path must be the one the cache derived.
        expected = os.path.join(self._real, os.path.relpath(path, self.directory))
        if os.path.realpath(path) != expected:
            return "its image file leads outside the cache directory"
        try:
            st = os.lstat(path)
        except OSError:
            return "its image file is missing"
        if not stat.S_ISREG(st.st_mode):
            return "its image file is not a regular file"
        if st.st_size != meta["bytes"]:
            return f"its image file has {st.st_size} bytes instead of {meta['bytes']}"
        return None

    def _content_problem(self, path: str, meta: dict[str, Any]) -> str | None:
        """Why the bytes of a file are not the recorded image, or None."""
        # Always the digest, not the clock: bit rot and CI cache archives keep sizes and mtimes.
        # Hashing is cheap next to the copy MkDocs makes of the same bytes anyway.
        try:
            digest, head = sha256_file(path, follow_symlinks=False)
        except OSError:
            return "its image file cannot be read"
        if digest != meta["sha256"]:
            return "its image file does not match the recorded digest"
        fmt = meta.get("format")
        magic = MAGIC[fmt] if fmt else tuple(m for ms in MAGIC.values() for m in ms)
        if not head.startswith(magic):
            return f"its image file is not a {(fmt or 'PNG, JPEG or WebP').upper()} image"
        return None


class Pins:
    """One build's private folder under `pins/`, holding a link to every file it verified.

    The file MkDocs copies is then the file that was checked, even while another build or
    `generate --force` replaces the entry: the replacement is a new file, the link keeps the old.
    """

    def __init__(self, directory: str) -> None:
        pins = os.path.join(directory, "pins")
        os.makedirs(pins, exist_ok=True)
        _sweep_pins(pins)
        self.folder = tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=pins)

    def pin(self, path: str) -> str:
        """The pinned twin of `path`; FileNotFoundError when it is gone, CacheError when it cannot be made."""
        target = os.path.join(self.folder, os.path.basename(path))
        try:
            _link_or_copy(path, target)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise self.error(path, exc) from None
        return target

    def error(self, path: str, exc: OSError) -> CacheError:
        return CacheError(f"cannot pin {path} in {self.folder}: {reason(exc)}")

    def release(self) -> None:
        """Remove the folder (MkDocs has copied the pinned files by now)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def _own_name(sub: str, name: str) -> bool:
    """A name the cache gives its image files (or their temporary files) in folder `sub`."""
    if name.startswith(".tmp-"):
        return True
    key, _, rest = name.rpartition("-")
    return bool(STRAY_DIGEST.match(rest)) and bool(KEY_RE.match(key)) and key[:2] == sub


def _real_dirs(top: str) -> list[str]:
    """The sub-folders of `top` that are real folders; none when `top` itself is not one."""
    if not _is_real_dir(top):
        return []
    return [name for name in _listdir(top) if _is_real_dir(os.path.join(top, name))]


def _is_real_dir(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _link_or_copy(src: str, dst: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(dst)
    try:
        os.link(src, dst, follow_symlinks=False)
    except FileNotFoundError:
        raise
    except OSError:  # a filesystem without hard links: a private copy does the same job
        fd = os.open(src, os.O_RDONLY | NOFOLLOW | BINARY)
        with os.fdopen(fd, "rb") as reader, open(dst, "xb") as writer:
            shutil.copyfileobj(reader, writer, 1 << 20)


def _sweep_pins(pins: str) -> None:
    """Remove pin folders of builds that ended without cleaning up (killed, say)."""
    now = time.time()
    with contextlib.suppress(OSError), os.scandir(pins) as it:
        for item in it:
            pid = item.name.split("-", 1)[0]
            try:
                old = now - item.stat(follow_symlinks=False).st_mtime > PIN_MAX_AGE
            except OSError:
                continue
            if old or (pid.isdigit() and not _alive(int(pid))):
                if item.is_dir(follow_symlinks=False):
                    shutil.rmtree(item.path, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        os.remove(item.path)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def write_probe(directory: str) -> None:
    """Prove the directory is writable with an exclusive create that follows no symlink.

    A name sprayed in advance (a symlink, say) makes the create fail, never write through it.
    """
    for _attempt in range(8):
        probe = os.path.join(directory, f".write-test-{os.getpid()}-{os.urandom(6).hex()}")
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW | BINARY, 0o600)
        except FileExistsError:
            continue
        try:
            os.write(fd, b"ok")
        finally:
            os.close(fd)
            os.remove(probe)
        return
    raise OSError(f"cannot create a unique test file in {directory}")


# -- claims ---------------------------------------------------------------------------------------


class Claim:
    """A held flock(); closing the descriptor releases it (and the kernel does, if we die)."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def try_claim(path: str) -> filelock.BaseFileLock | Claim | None:
    """Take the OS lock on the file at `path` if it is free; the caller releases it."""
    if sys.platform == "win32":
        return _try_filelock(path)
    # The same flock() that filelock takes on POSIX (so the two exclude each other), without
    # its per-call bookkeeping: about 1 ms with the GIL held, here about 30 us.
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | NOFOLLOW, 0o644)
    except OSError as exc:
        raise CacheError(f"cannot lock {path}: {reason(exc)}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except OSError as exc:
        os.close(fd)
        raise CacheError(f"cannot lock {path}: {reason(exc)}") from None
    return Claim(fd)


def _try_filelock(path: str) -> filelock.BaseFileLock | None:
    lock = filelock.FileLock(path, timeout=0, thread_local=False)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        return None
    except OSError as exc:
        raise CacheError(f"cannot lock {path}: {reason(exc)}") from None
    return lock
