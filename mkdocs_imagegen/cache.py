"""The image cache: a diskcache store of finished images, their metadata and per-key claims.

What a key holds (one diskcache transaction, so readers see all of it or none of it):

* `img:<key>`: the image bytes, stored by diskcache as a file of its own;
* `meta:<key>`: a JSON-able dict (format, width, height, bytes, sha256, provider, model, prompt,
  created, cost, and the provider's revised prompt and usage).

Placeholder images made because real generation failed live in a separate namespace (`fb:`), so
a fallback never satisfies a key whose provider is a real one. A file that changed behind our
back (size, then SHA-256 digest) is dropped and regenerated, never served.

Claims are OS file locks (one per key, under `locks/`), released by the kernel if a build dies, so
concurrent builds sharing a cache generate each key once. A second, remote tier can later sit
behind `get`/`put` without the engine noticing.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import diskcache
import filelock

from .logs import log

if sys.platform != "win32":  # on Windows, filelock's msvcrt locks
    import fcntl


REAL, FALLBACK = "img", "fb"


class CacheError(RuntimeError):
    """The cache directory cannot be used; the message names it and says what to do."""


@dataclass(frozen=True)
class Entry:
    key: str
    path: str  # the file that holds the image bytes
    meta: dict[str, Any]
    fallback: bool = False

    @property
    def width(self) -> int:
        return int(self.meta["width"])

    @property
    def height(self) -> int:
        return int(self.meta["height"])


class ImageCache:
    def __init__(self, directory: str) -> None:
        self.directory = os.path.abspath(directory)
        try:
            os.makedirs(os.path.join(self.directory, "locks"), exist_ok=True)
            probe = os.path.join(self.directory, f".write-test-{os.getpid()}")
            with open(probe, "wb") as fh:
                fh.write(b"ok")
            os.remove(probe)
            self._store = diskcache.Cache(
                self.directory,
                eviction_policy="none",  # paid images are never evicted behind the user's back
                statistics=False,
                timeout=60,
            )
        except (OSError, sqlite3.Error, diskcache.Timeout) as exc:
            raise CacheError(
                f"cannot use the image cache directory {self.directory}: {_reason(exc)}. "
                "Make it writable or set cache_dir to a writable folder."
            ) from None

    # -- reading -------------------------------------------------------------------------------
    def get(self, key: str, *, fallback: bool = False) -> Entry | None:
        """The valid entry for `key`, or None; a damaged entry is dropped on the way."""
        ns = FALLBACK if fallback else REAL
        meta = self._store.get(f"{ns}-meta:{key}")
        if meta is None:
            return None
        handle = self._store.get(f"{ns}:{key}", read=True)
        if handle is None:
            self._drop(key, ns, meta, "its image file is missing")
            return None
        with handle:
            path = handle.name
        problem = self._check(path, meta)
        if problem:
            self._drop(key, ns, meta, problem)
            return None
        return Entry(key=key, path=path, meta=meta, fallback=fallback)

    def _check(self, path: str, meta: dict[str, Any]) -> str | None:
        try:
            st = os.stat(path)
        except OSError:
            return "its image file is missing"
        if st.st_size != meta.get("bytes"):
            return f"its image file has {st.st_size} bytes instead of {meta.get('bytes')}"
        # Always the digest, not the clock: bit rot and CI cache archives keep sizes and mtimes.
        # Hashing is cheap next to the copy MkDocs makes of the same bytes anyway.
        if _sha256_file(path) != meta.get("sha256"):
            return "its image file does not match the recorded digest"
        return None

    def _drop(self, key: str, ns: str, seen: dict[str, Any], why: str) -> None:
        with contextlib.suppress(OSError, sqlite3.Error, diskcache.Timeout), self._store.transact():
            # Compare and delete: another process may have just replaced the entry with a good one.
            current = self._store.get(f"{ns}-meta:{key}")
            if current is None or current.get("sha256") != seen.get("sha256"):
                return None
            self._store.delete(f"{ns}:{key}")
            self._store.delete(f"{ns}-meta:{key}")
        log.info(f"cache entry {key} is damaged ({why}); it is dropped and will be regenerated")
        return None

    def read_bytes(self, entry: Entry) -> bytes:
        with open(entry.path, "rb") as fh:
            return fh.read()

    # -- writing -------------------------------------------------------------------------------
    def put(self, key: str, data: bytes, meta: dict[str, Any], *, fallback: bool = False) -> Entry:
        ns = FALLBACK if fallback else REAL
        meta = {**meta, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        meta.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        try:
            with self._store.transact():
                self._store.set(f"{ns}:{key}", io.BytesIO(data), read=True)
                handle = self._store.get(f"{ns}:{key}", read=True)
                with handle:
                    path = handle.name
                self._store.set(f"{ns}-meta:{key}", meta)
                if not fallback:  # the real image supersedes any placeholder made for the key
                    self._store.delete(f"{FALLBACK}:{key}")
                    self._store.delete(f"{FALLBACK}-meta:{key}")
        except Exception as exc:
            raise CacheError(
                f"cannot write to the image cache directory {self.directory}: {_reason(exc)}. "
                "Free disk space or make the directory writable; nothing half-written was kept."
            ) from None
        return Entry(key=key, path=path, meta=meta, fallback=fallback)

    def delete(self, key: str) -> int:
        """Remove every entry of `key`; return the bytes freed."""
        freed = 0
        for ns in (REAL, FALLBACK):
            with self._store.transact():
                meta = self._store.get(f"{ns}-meta:{key}")
                if self._store.delete(f"{ns}:{key}") and meta:
                    freed += int(meta.get("bytes", 0))
                self._store.delete(f"{ns}-meta:{key}")
        # The empty lock file stays: unlinking it while another process holds it breaks exclusion.
        return freed

    # -- listing -------------------------------------------------------------------------------
    def entries(self) -> Iterator[tuple[str, bool, dict[str, Any]]]:
        """(key, is_fallback, meta) of every stored image."""
        for name in list(self._store.iterkeys()):
            if not isinstance(name, str) or "-meta:" not in name:
                continue
            ns, _, key = name.partition("-meta:")
            meta = self._store.get(name)
            if meta is not None:
                yield key, ns == FALLBACK, meta

    # -- claims --------------------------------------------------------------------------------
    def _lock_path(self, key: str) -> str:
        return os.path.join(self.directory, "locks", f"{key}.lock")

    def try_claim(self, key: str) -> filelock.BaseFileLock | _Claim | None:
        """Take the cross-process claim on `key` if it is free; the caller releases it."""
        if sys.platform == "win32":
            return self._try_filelock(key)
        # The same flock() that filelock takes on POSIX (so the two exclude each other), without
        # its per-call bookkeeping: about 1 ms with the GIL held, here about 30 us.
        path = self._lock_path(key)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
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
        self._store.close()

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


def _sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror + (f" ({exc.filename})" if exc.filename else "")
    return str(exc) or type(exc).__name__
