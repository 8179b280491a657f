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
import os
import sqlite3
from collections.abc import Iterator
from typing import Any

import diskcache
import filelock

from ..files import reason
from ..logs import log
from .disk import Claim, ImageFiles, Pins, try_claim, write_probe
from .index import MetaIndex
from .record import FALLBACK, KEY_RE, REAL, new_record
from .record import CacheError as CacheError
from .record import Entry as Entry
from .record import validate_meta as validate_meta


class ImageCache:
    """One cache directory: reads that serve only verified files, writes that never half-happen."""

    def __init__(self, directory: str, *, pin: bool = False) -> None:
        """Open (creating) the cache in `directory`; with `pin`, entries point at pinned files."""
        self.directory = os.path.abspath(directory)
        self._pins: Pins | None = None
        try:
            os.makedirs(os.path.join(self.directory, "locks"), exist_ok=True)
            self._files = ImageFiles(self.directory, os.path.realpath(self.directory))
            write_probe(self.directory)
            self._index = MetaIndex(self.directory)
            if pin:
                self._pins = Pins(self.directory)
        except (OSError, sqlite3.Error, diskcache.Timeout) as exc:
            raise CacheError(
                f"cannot use the image cache directory {self.directory}: {reason(exc)}. "
                "Make it writable or set cache_dir to a writable folder."
            ) from None

    # -- reading -------------------------------------------------------------------------------
    def get(self, key: str, *, fallback: bool = False) -> Entry | None:
        """The valid entry for `key`, or None; a damaged entry is dropped on the way."""
        if not KEY_RE.match(key):
            return None
        ns = FALLBACK if fallback else REAL
        for _attempt in range(3):  # the entry may be replaced while we look: look again
            meta, problem = self._index.read(key, ns)
            if meta is None:
                if problem:
                    self._drop(key, ns, None, problem)
                return None
            path = self._files.path(key, ns, meta["sha256"])
            published, problem = self._files.verify(path, meta, self._pins)
            if problem is None:
                assert published is not None
                return Entry(key=key, path=published, meta=meta, fallback=fallback)
            current, _ = self._index.read(key, ns)
            if current is not None and current["sha256"] != meta["sha256"]:
                continue  # replaced by a new image meanwhile: not damage
            self._drop(key, ns, meta, problem)
            return None
        return None

    def _drop(self, key: str, ns: str, seen: dict[str, Any] | None, why: str) -> None:
        """Forget a damaged entry; delete only the file the cache itself derives, inside it."""
        with contextlib.suppress(OSError, sqlite3.Error, diskcache.Timeout), self._index.transact():
            # Compare and delete: another process may have just replaced the entry with a good one.
            current, problem = self._index.read(key, ns)
            if seen is None:
                if current is not None or problem is None:
                    return None
            elif current is None or current["sha256"] != seen["sha256"]:
                return None
            self._index.forget(key, ns)
        if seen is not None:
            self._files.remove(self._files.path(key, ns, seen["sha256"]))
        log.info(f"cache entry {key} is damaged ({why}); it is dropped and will be regenerated")
        return None

    def read_bytes(self, entry: Entry) -> bytes:
        with open(entry.path, "rb") as fh:
            return fh.read()

    # -- writing -------------------------------------------------------------------------------
    def put(self, key: str, data: bytes, meta: dict[str, Any], *, fallback: bool = False) -> Entry:
        if not KEY_RE.match(key):
            raise ValueError(f"not a cache key: {key!r}")
        ns = FALLBACK if fallback else REAL
        meta, text = new_record(key, data, meta)
        path = self._files.path(key, ns, meta["sha256"])
        try:
            self._files.write(path, data)
            stale = self._switch(key, ns, text, meta["sha256"])
        except Exception as exc:
            raise CacheError(
                f"cannot write to the image cache directory {self.directory}: {reason(exc)}. "
                "Free disk space or make the directory writable; nothing half-written was kept."
            ) from None
        # Builds that pinned the old files keep their own links; nobody else needs them now.
        for old in stale:
            self._files.remove(old)
        published = path
        if self._pins is not None:
            try:
                published = self._pins.pin(path)
            except FileNotFoundError as exc:
                raise self._pins.error(path, exc) from None
        return Entry(key=key, path=published, meta=meta, fallback=fallback)

    def _switch(self, key: str, ns: str, text: str, sha256: str) -> list[str]:
        """Point the record at the new file in one transaction; return the files it replaced."""
        stale: list[str] = []
        with self._index.transact():
            before, _ = self._index.read(key, ns)
            if before is not None and before["sha256"] != sha256:
                stale.append(self._files.path(key, ns, before["sha256"]))
            self._index.write(key, ns, text)
            if ns == REAL:  # the real image supersedes any placeholder made for the key
                placeholder, _ = self._index.read(key, FALLBACK)
                if placeholder is not None:
                    stale.append(self._files.path(key, FALLBACK, placeholder["sha256"]))
                self._index.delete(key, FALLBACK)
        return stale

    def delete(self, key: str) -> int:
        """Remove every entry of `key`; return the bytes freed."""
        if not KEY_RE.match(key):
            return 0
        freed = 0
        for ns in (REAL, FALLBACK):
            files: list[str] = []
            with self._index.transact():
                meta, _ = self._index.read(key, ns)
                if self._index.forget(key, ns) and meta:
                    freed += meta["bytes"]
                    files.append(self._files.path(key, ns, meta["sha256"]))
            for path in files:
                self._files.remove(path)
        # The empty lock file stays: unlinking it while another process holds it breaks exclusion.
        return freed

    # -- listing -------------------------------------------------------------------------------
    def entries(self) -> Iterator[tuple[str, bool, dict[str, Any]]]:
        """(key, is_fallback, meta) of every stored image with a valid record."""
        for key, ns, meta in self._index.records():
            yield key, ns == FALLBACK, meta

    def strays(self) -> list[tuple[str, int]]:
        """Image files no record names: a run killed between writing an image and recording it."""
        named = {self._files.path(key, ns, meta["sha256"]) for key, ns, meta in self._index.records()}
        return self._files.strays(named)

    def remove_stray(self, path: str) -> int:
        """Remove a file `strays` listed if it still is one; the bytes freed."""
        return self._files.remove_stray(path)

    # -- claims --------------------------------------------------------------------------------
    def try_claim(self, key: str) -> filelock.BaseFileLock | Claim | None:
        """Take the cross-process claim on `key` if it is free; the caller releases it."""
        return try_claim(self._files.lock_path(key))

    def close(self) -> None:
        """Close the index and release this cache's pins (MkDocs has copied them by now)."""
        self._index.close()
        pins, self._pins = self._pins, None
        if pins is not None:
            pins.release()

    def __enter__(self) -> ImageCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
