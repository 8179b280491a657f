"""The image cache: a diskcache index of finished images, the image files, and per-key claims.

Everything read back from the cache directory is treated as hostile (a restored CI cache, a
shared runner, later a remote tier can all write it):

* the index (`cache.db`, a diskcache store) holds one metadata record per key, `img-meta:<key>`
  or `fb-meta:<key>`: JSON text, never a pickle. Our diskcache `Disk` refuses to unpickle
  anything or to read or delete a file named by a row, so an edited row can run nothing, read
  nothing and delete nothing outside the cache;
* the image bytes live in files whose paths the cache derives from the key and the recorded
  SHA-256 (`images/<ns>/<key[:2]>/<key>-<sha256[:16]>.img`), never from stored data; a path that
  resolves outside `cache_dir`, a symlink or a file that is not the recorded image is damage;
* a metadata record is validated as plain data (types and bounds); one that is not a mapping,
  or does not describe a PNG, JPEG or WebP image, is damage. Damage is dropped (only inside
  `cache_dir`) and regenerated, never served.

Files are never changed in place: a new image goes to a new file, renamed into place, and the
record is switched to it in one transaction. A build pins what it verified (a hard link in a
private folder under `pins/`, a copy where links are not possible), so the file MkDocs copies is
the file that was checked even while `mkdocs-imagegen generate --force` or another build
replaces the entry.

Placeholder images made because real generation failed live in a separate namespace (`fb`), so
a fallback never satisfies a key whose provider is a real one.

Claims are OS file locks (one per key, under `locks/`), released by the kernel if a build dies, so
concurrent builds sharing a cache generate each key once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import sqlite3
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import diskcache
import diskcache.core
import filelock

from .logs import log

if sys.platform != "win32":  # on Windows, filelock's msvcrt locks
    import fcntl

REAL, FALLBACK = "img", "fb"
KEY_RE = re.compile(r"^[0-9A-Za-z_ -]{1,128}$")  # a spec key is 32 hex digits; never a path part
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
MAX_META_CHARS = 256 * 1024  # a record is a few hundred bytes; a megabyte of JSON is an attack
MAX_IMAGE_BYTES = 256 * 1024 * 1024
MAX_SIDE = 16384
_MAGIC = {"png": (b"\x89PNG\r\n\x1a\n",), "jpeg": (b"\xff\xd8\xff",), "webp": (b"RIFF",)}
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_BINARY = getattr(os, "O_BINARY", 0)
PIN_MAX_AGE = 24 * 3600.0  # pins of a build that died without cleaning up


class CacheError(RuntimeError):
    """The cache directory cannot be used; the message names it and says what to do."""


class _Refused(ValueError):
    """A row of the index that our rules do not allow to be read (a pickle, a file)."""


@dataclass(frozen=True)
class Entry:
    key: str
    path: str  # the file that holds the image bytes (a pinned copy when the cache pins)
    meta: dict[str, Any]
    fallback: bool = False

    @property
    def width(self) -> int:
        return int(self.meta["width"])

    @property
    def height(self) -> int:
        return int(self.meta["height"])


class _SafeDisk(diskcache.Disk):  # type: ignore[misc]  # diskcache ships no types
    """diskcache's serialisation, minus everything that trusts the database.

    Keys and values are text only. A pickled key or value, or a value kept in a file named by
    the row, is refused instead of loaded; a file a row names is deleted only when it really
    is inside the cache directory (diskcache would delete any path, and its empty folders).
    """

    def __init__(self, directory: str, **kwargs: Any) -> None:
        super().__init__(directory, **kwargs)
        self._real = os.path.realpath(directory)

    def put(self, key: Any) -> tuple[Any, bool]:
        if not isinstance(key, str):
            raise TypeError(f"cache keys are text, not {type(key).__name__}")
        return key, True

    def get(self, key: Any, raw: bool) -> Any:
        if not raw or not isinstance(key, str):
            return None  # a pickled (or binary) key is not one of ours: never unpickled
        return key

    def store(self, value: Any, read: bool, key: Any = diskcache.core.UNKNOWN) -> tuple[Any, ...]:
        if not isinstance(value, str):
            raise TypeError(f"cache values are JSON text, not {type(value).__name__}")
        return 0, diskcache.core.MODE_RAW, None, value

    def fetch(self, mode: int, filename: Any, value: Any, read: bool) -> Any:
        if mode != diskcache.core.MODE_RAW or filename is not None or not isinstance(value, str):
            raise _Refused("not a JSON text value")
        return value

    def remove(self, file_path: Any) -> None:
        if not isinstance(file_path, str) or not file_path:
            return
        full = os.path.join(self._directory, file_path)
        real = os.path.realpath(full)
        if not _inside(self._real, real) or os.path.islink(full):
            return  # a row naming a file outside the cache: leave that file alone
        with contextlib.suppress(OSError):
            os.remove(real)


class ImageCache:
    def __init__(self, directory: str, *, pin: bool = False) -> None:
        """Open (creating) the cache in `directory`; with `pin`, entries point at pinned files."""
        self.directory = os.path.abspath(directory)
        self._pin_dir: str | None = None
        try:
            os.makedirs(os.path.join(self.directory, "locks"), exist_ok=True)
            self._real = os.path.realpath(self.directory)
            _write_probe(self.directory)
            _forget_foreign_settings(os.path.join(self.directory, diskcache.core.DBNAME))
            self._store = diskcache.Cache(
                self.directory,
                disk=_SafeDisk,
                eviction_policy="none",  # paid images are never evicted behind the user's back
                statistics=False,
                timeout=60,
                disk_min_file_size=2**40,  # every value inline in the database, never a file
            )
            if pin:
                pins = os.path.join(self.directory, "pins")
                os.makedirs(pins, exist_ok=True)
                _sweep_pins(pins)
                self._pin_dir = tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=pins)
        except (OSError, sqlite3.Error, diskcache.Timeout) as exc:
            raise CacheError(
                f"cannot use the image cache directory {self.directory}: {_reason(exc)}. "
                "Make it writable or set cache_dir to a writable folder."
            ) from None

    # -- paths ---------------------------------------------------------------------------------
    def _file(self, key: str, ns: str, sha256: str) -> str:
        """Where the image of (key, namespace, digest) lives: derived, never read from the index."""
        return os.path.join(self.directory, "images", ns, key[:2], f"{key}-{sha256[:16]}.img")

    # -- reading -------------------------------------------------------------------------------
    def get(self, key: str, *, fallback: bool = False) -> Entry | None:
        """The valid entry for `key`, or None; a damaged entry is dropped on the way."""
        if not KEY_RE.match(key):
            return None
        ns = FALLBACK if fallback else REAL
        for _attempt in range(3):  # the entry may be replaced while we look: look again
            meta, problem = self._read_meta(key, ns)
            if meta is None:
                if problem:
                    self._drop(key, ns, None, problem)
                return None
            path = self._file(key, ns, meta["sha256"])
            published, problem = self._verify(path, meta)
            if problem is None:
                assert published is not None
                return Entry(key=key, path=published, meta=meta, fallback=fallback)
            current, _ = self._read_meta(key, ns)
            if current is not None and current["sha256"] != meta["sha256"]:
                continue  # replaced by a new image meanwhile: not damage
            self._drop(key, ns, meta, problem)
            return None
        return None

    def _read_meta(self, key: str, ns: str) -> tuple[dict[str, Any] | None, str | None]:
        """(record, None), (None, None) when there is none, or (None, why it is damaged)."""
        try:
            text = self._store.get(f"{ns}-meta:{key}")
        except _Refused:
            return None, "its metadata record is not JSON text"
        if text is None:
            return None, None
        try:
            return validate_meta(text), None
        except ValueError as exc:
            return None, f"its metadata record is invalid: {exc}"

    def _verify(self, path: str, meta: dict[str, Any]) -> tuple[str | None, str | None]:
        """Check the file against the record; return (the path to publish, None) or (None, problem).

        With pinning, the file is linked into this cache's private pin folder first and the link
        is what gets checked and published: files are never changed in place, so those bytes stay.
        """
        # No symlinked folder on the way: the real path must be the one the cache derived.
        expected = os.path.join(self._real, os.path.relpath(path, self.directory))
        if os.path.realpath(path) != expected:
            return None, "its image file leads outside the cache directory"
        try:
            st = os.lstat(path)
        except OSError:
            return None, "its image file is missing"
        if not stat.S_ISREG(st.st_mode):
            return None, "its image file is not a regular file"
        if st.st_size != meta["bytes"]:
            return None, f"its image file has {st.st_size} bytes instead of {meta['bytes']}"
        target = path
        if self._pin_dir is not None:
            target = os.path.join(self._pin_dir, os.path.basename(path))
            try:
                _link_or_copy(path, target)
            except FileNotFoundError:
                return None, "its image file is missing"
            except OSError as exc:
                raise CacheError(f"cannot pin {path} in {self._pin_dir}: {_reason(exc)}") from None
        # Always the digest, not the clock: bit rot and CI cache archives keep sizes and mtimes.
        # Hashing is cheap next to the copy MkDocs makes of the same bytes anyway.
        try:
            digest, head = _sha256_file(target)
        except OSError:
            return None, "its image file cannot be read"
        if digest != meta["sha256"]:
            return None, "its image file does not match the recorded digest"
        fmt = meta.get("format")
        magic = _MAGIC[fmt] if fmt else tuple(m for ms in _MAGIC.values() for m in ms)
        if not head.startswith(magic):
            return None, f"its image file is not a {(fmt or 'PNG, JPEG or WebP').upper()} image"
        return target, None

    def _drop(self, key: str, ns: str, seen: dict[str, Any] | None, why: str) -> None:
        """Forget a damaged entry; delete only the file the cache itself derives, inside it."""
        name = f"{ns}-meta:{key}"
        with contextlib.suppress(OSError, sqlite3.Error, diskcache.Timeout), self._store.transact():
            # Compare and delete: another process may have just replaced the entry with a good one.
            current, problem = self._read_meta(key, ns)
            if seen is None:
                if current is not None or problem is None:
                    return None
            elif current is None or current["sha256"] != seen["sha256"]:
                return None
            self._store.delete(name)
            self._store.delete(f"{ns}:{key}")  # an image row of an earlier layout, if any
        if seen is not None:
            self._remove_file(self._file(key, ns, seen["sha256"]))
        log.info(f"cache entry {key} is damaged ({why}); it is dropped and will be regenerated")
        return None

    def _remove_file(self, path: str) -> None:
        if _inside(self._real, os.path.realpath(os.path.dirname(path))):
            with contextlib.suppress(OSError):
                os.remove(path)  # a symlink there is removed itself, never what it points to

    def read_bytes(self, entry: Entry) -> bytes:
        with open(entry.path, "rb") as fh:
            return fh.read()

    # -- writing -------------------------------------------------------------------------------
    def put(self, key: str, data: bytes, meta: dict[str, Any], *, fallback: bool = False) -> Entry:
        if not KEY_RE.match(key):
            raise ValueError(f"not a cache key: {key!r}")
        ns = FALLBACK if fallback else REAL
        meta = {**meta, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        meta.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        try:
            text = json.dumps(meta, ensure_ascii=False, allow_nan=False)
            meta = validate_meta(text)
        except (TypeError, ValueError, RecursionError) as exc:
            raise ValueError(f"cannot store the metadata of image {key}: {exc}") from None
        path = self._file(key, ns, meta["sha256"])
        stale: list[str] = []
        try:
            _write_new(path, data)
            with self._store.transact():
                before, _ = self._read_meta(key, ns)
                if before is not None and before["sha256"] != meta["sha256"]:
                    stale.append(self._file(key, ns, before["sha256"]))
                self._store.set(f"{ns}-meta:{key}", text)
                if not fallback:  # the real image supersedes any placeholder made for the key
                    placeholder, _ = self._read_meta(key, FALLBACK)
                    if placeholder is not None:
                        stale.append(self._file(key, FALLBACK, placeholder["sha256"]))
                    self._store.delete(f"{FALLBACK}-meta:{key}")
        except Exception as exc:
            raise CacheError(
                f"cannot write to the image cache directory {self.directory}: {_reason(exc)}. "
                "Free disk space or make the directory writable; nothing half-written was kept."
            ) from None
        # Builds that pinned the old files keep their own links; nobody else needs them now.
        for old in stale:
            self._remove_file(old)
        published = path
        if self._pin_dir is not None:
            published = os.path.join(self._pin_dir, os.path.basename(path))
            try:
                _link_or_copy(path, published)
            except OSError as exc:
                raise CacheError(f"cannot pin {path} in {self._pin_dir}: {_reason(exc)}") from None
        return Entry(key=key, path=published, meta=meta, fallback=fallback)

    def delete(self, key: str) -> int:
        """Remove every entry of `key`; return the bytes freed."""
        if not KEY_RE.match(key):
            return 0
        freed = 0
        for ns in (REAL, FALLBACK):
            files: list[str] = []
            with self._store.transact():
                meta, _ = self._read_meta(key, ns)
                if self._store.delete(f"{ns}-meta:{key}") and meta:
                    freed += meta["bytes"]
                    files.append(self._file(key, ns, meta["sha256"]))
                self._store.delete(f"{ns}:{key}")  # an image row of an earlier version, if any
            for path in files:
                self._remove_file(path)
        # The empty lock file stays: unlinking it while another process holds it breaks exclusion.
        return freed

    # -- listing -------------------------------------------------------------------------------
    def entries(self) -> Iterator[tuple[str, bool, dict[str, Any]]]:
        """(key, is_fallback, meta) of every stored image with a valid record."""
        for name in list(self._store.iterkeys()):
            if not isinstance(name, str):
                continue
            ns, sep, key = name.partition("-meta:")
            if not sep or ns not in (REAL, FALLBACK) or not KEY_RE.match(key):
                continue
            meta, _ = self._read_meta(key, ns)
            if meta is not None:
                yield key, ns == FALLBACK, meta

    # -- claims --------------------------------------------------------------------------------
    def _lock_path(self, key: str) -> str:
        if not KEY_RE.match(key):
            raise ValueError(f"not a cache key: {key!r}")
        return os.path.join(self.directory, "locks", f"{key}.lock")

    def try_claim(self, key: str) -> filelock.BaseFileLock | _Claim | None:
        """Take the cross-process claim on `key` if it is free; the caller releases it."""
        if sys.platform == "win32":
            return self._try_filelock(key)
        # The same flock() that filelock takes on POSIX (so the two exclude each other), without
        # its per-call bookkeeping: about 1 ms with the GIL held, here about 30 us.
        path = self._lock_path(key)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o644)
        except OSError as exc:
            raise CacheError(f"cannot lock {path}: {_reason(exc)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except OSError as exc:
            os.close(fd)
            raise CacheError(f"cannot lock {path}: {_reason(exc)}") from None
        return _Claim(fd)

    def _try_filelock(self, key: str) -> filelock.BaseFileLock | None:
        lock = filelock.FileLock(self._lock_path(key), timeout=0, thread_local=False)
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            return None
        except OSError as exc:
            raise CacheError(f"cannot lock {self._lock_path(key)}: {_reason(exc)}") from None
        return lock

    def close(self) -> None:
        """Close the index and release this cache's pins (MkDocs has copied them by now)."""
        self._store.close()
        pins, self._pin_dir = self._pin_dir, None
        if pins is not None:
            shutil.rmtree(pins, ignore_errors=True)

    def __enter__(self) -> ImageCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Claim:
    """A held flock(); closing the descriptor releases it (and the kernel does, if we die)."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


# -- metadata as plain data ---------------------------------------------------------------------

_OPTIONAL_TEXT = ("provider", "model", "prompt", "size", "created", "revised_prompt", "reason")


def validate_meta(text: Any) -> dict[str, Any]:
    """Parse and check a metadata record; raise ValueError saying what is wrong with it."""
    if not isinstance(text, str):
        raise ValueError("not text")
    if len(text) > MAX_META_CHARS:
        raise ValueError(f"{len(text)} characters, over {MAX_META_CHARS}")
    try:
        meta = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if not isinstance(meta, dict):
        raise ValueError(f"a {type(meta).__name__}, not a mapping")
    if meta.get("format") is not None and meta["format"] not in _MAGIC:
        raise ValueError(f"format {meta.get('format')!r} is not png, jpeg or webp")
    for name in ("width", "height"):
        if not _whole(meta.get(name), 1, MAX_SIDE):
            raise ValueError(f"{name} {meta.get(name)!r} is not a whole number from 1 to {MAX_SIDE}")
    if not _whole(meta.get("bytes"), 1, MAX_IMAGE_BYTES):
        raise ValueError(f"bytes {meta.get('bytes')!r} is not a size from 1 to {MAX_IMAGE_BYTES}")
    if not isinstance(meta.get("sha256"), str) or not _SHA_RE.match(meta["sha256"]):
        raise ValueError("sha256 is not a SHA-256 digest")
    for name in _OPTIONAL_TEXT:
        if meta.get(name) is not None and not isinstance(meta[name], str):
            raise ValueError(f"{name} is not text")
    cost = meta.get("cost")
    if cost is not None and (
        isinstance(cost, bool) or not isinstance(cost, (int, float)) or not math.isfinite(cost) or cost < 0
    ):
        raise ValueError(f"cost {cost!r} is not an amount")
    if meta.get("usage") is not None and not isinstance(meta["usage"], dict):
        raise ValueError("usage is not a mapping")
    return meta


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


# -- files ----------------------------------------------------------------------------------------


def _inside(root: str, path: str) -> bool:
    return path != root and os.path.commonpath([root, path]) == root


def _write_probe(directory: str) -> None:
    """Prove the directory is writable with an exclusive create that follows no symlink.

    A name sprayed in advance (a symlink, say) makes the create fail, never write through it.
    """
    for _attempt in range(8):
        probe = os.path.join(directory, f".write-test-{os.getpid()}-{os.urandom(6).hex()}")
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _BINARY, 0o600)
        except FileExistsError:
            continue
        try:
            os.write(fd, b"ok")
        finally:
            os.close(fd)
            os.remove(probe)
        return
    raise OSError(f"cannot create a unique test file in {directory}")


def _write_new(path: str, data: bytes) -> None:
    """Write a complete file under a private temporary name, then rename it into place."""
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)  # O_EXCL | O_NOFOLLOW
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def _link_or_copy(src: str, dst: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(dst)
    try:
        os.link(src, dst, follow_symlinks=False)
    except FileNotFoundError:
        raise
    except OSError:  # a filesystem without hard links: a private copy does the same job
        fd = os.open(src, os.O_RDONLY | _NOFOLLOW | _BINARY)
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


def _forget_foreign_settings(db: str) -> None:
    """Drop settings diskcache does not define: it would apply any `sqlite_*` row as a pragma."""
    if not os.path.isfile(db):
        return
    known = [*diskcache.core.DEFAULT_SETTINGS, *diskcache.core.METADATA]
    with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(db, timeout=60)) as con:
        placeholders = ",".join("?" * len(known))
        with con:
            con.execute(f"DELETE FROM Settings WHERE key NOT IN ({placeholders})", known)


def _sha256_file(path: str) -> tuple[str, bytes]:
    """(hex digest, first bytes) of a regular file, opened without following a symlink."""
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _BINARY)
    with os.fdopen(fd, "rb") as fh:
        head = b""
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            if not head:
                head = chunk[:16]
            digest.update(chunk)
    return digest.hexdigest(), head


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror + (f" ({exc.filename})" if exc.filename else "")
    return str(exc) or type(exc).__name__
