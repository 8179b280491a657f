"""The image lock: the real images a site uses, committed beside its docs, and their manifest.

A lock folder holds one image file per key, named by the key (`<key>.png`), and `imagegen.lock`,
a JSON Lines manifest with one record per image, sorted by key. The folder is meant for Git: its
`.gitattributes` declares the `union` merge driver for the manifest, so two branches that add
different images merge without a conflict, and reading accepts the unsorted or repeated lines a
union merge leaves (the next write normalises them).

Everything read back is hostile data: the manifest is parsed as JSON and validated field by
field, bounded in size, never executed; a file name is always derived from the key and the
format, never taken from the manifest; an image is served only when its bytes match the
recorded size and SHA-256. Writes go to a temporary file renamed into place, so an interrupted
run leaves the previous manifest (and every previous image) intact.

The format lives in `manifest`, the files in `folder`; the package imports nothing else from the
package but the file helpers and the logger: the engine and the command use it as one tier in
front of the cache.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from ..logs import log
from .folder import Locked as Locked
from .folder import LockFolder, show
from .folder import image_at as image_at
from .folder import read_manifest_at as read_manifest_at
from .manifest import EXTENSIONS as EXTENSIONS
from .manifest import LockError as LockError
from .manifest import Record as Record
from .manifest import choose as choose
from .manifest import intent_id as intent_id
from .manifest import manifest_text as manifest_text
from .manifest import parse_manifest as parse_manifest
from .manifest import record_for as record_for


class ImageLock:
    """The lock folder of one site: verified reads, atomic writes, one save at the end of a run."""

    def __init__(
        self, folder: str, *, logger: logging.Logger | logging.LoggerAdapter[Any] | None = None
    ) -> None:
        self.folder = os.path.abspath(folder)
        self.log = logger or log
        self._files = LockFolder(self.folder)
        self._mutex = threading.Lock()
        self._verified: dict[str, Locked | None] = {}
        self._records: dict[str, Record] = {}  # the one record chosen per key
        self._added: dict[str, Record] = {}  # written by this run
        self._pages: dict[str, set[str]] = {}  # pages using each key in this run
        self._removed: set[str] = set()
        self._warned: set[str] = set()
        if os.path.exists(self.folder) and not os.path.isdir(self.folder):
            raise LockError(f"the lock folder {self.folder} is a file; set lock to a folder")
        manifest = self._files.read_manifest()
        for problem in manifest.problems:
            self.log.warning(f"lock {show(problem)}")
        self._records.update(self._files.chosen(manifest))

    @property
    def manifest_path(self) -> str:
        return self._files.manifest_path

    # -- reading -------------------------------------------------------------------------------
    def records(self) -> list[Record]:
        with self._mutex:
            return sorted(self._records.values(), key=lambda r: r.key)

    def record(self, key: str) -> Record | None:
        return self._records.get(key)

    def get(self, key: str) -> Locked | None:
        """The verified image of `key`, or None; a file that does not match its record is refused."""
        with self._mutex:
            if key in self._verified:
                return self._verified[key]
            record = self._records.get(key)
        found = None if record is None else self._verify(record)
        with self._mutex:
            self._verified[key] = found
        return found

    def pinned(self, intent: str, page: str | None = None) -> Locked | None:
        """The image pinned to an intent: the one this page already used, else the newest."""
        with self._mutex:
            candidates = [r for r in self._records.values() if r.intent == intent]
        candidates.sort(key=lambda r: (page is not None and page in r.pages, r.created, r.key), reverse=True)
        for record in candidates:
            found = self.get(record.key)
            if found is not None:
                return found
        return None

    def _verify(self, record: Record) -> Locked | None:
        """The image if its file matches the record; else None, with one warning per key."""
        found, why = self._files.verify(record)
        if found is not None:
            return found
        with self._mutex:
            if record.key in self._warned:
                return None
            self._warned.add(record.key)
        self.log.warning(f"lock image {show(self._files.file(record))} {why}")
        return None

    # -- writing -------------------------------------------------------------------------------
    def add(self, record: Record, data: bytes) -> Locked:
        """Write a real image into the folder (temp file, then rename) and remember its line."""
        found = self._files.write_image(record, data)
        with self._mutex:
            self._records[record.key] = record
            self._added[record.key] = record
            self._removed.discard(record.key)
            self._verified[record.key] = found
        return found

    def use(self, key: str, pages: Iterable[str], intent: str | None = None) -> None:
        """Record that these pages use `key` in this run (kept in the record's `pages`).

        An image written in this run learns its directive's intent here, if it had none.
        """
        seen = set(pages)
        with self._mutex:
            if seen:
                self._pages.setdefault(key, set()).update(seen)
            record = self._added.get(key)
            if record is not None and record.intent is None and intent is not None:
                record = replace(record, intent=intent)
                self._added[key] = self._records[key] = record

    def remove(self, key: str) -> int:
        """Forget a key and delete its file (derived from the key); return the bytes freed."""
        with self._mutex:
            record = self._records.pop(key, None)
            self._added.pop(key, None)
            self._verified.pop(key, None)
            self._removed.add(key)
        return 0 if record is None else self._files.remove_image(record)

    def replace_pins(self, used: set[str]) -> list[str]:
        """Drop images whose intent has a newer image from this run and that nothing uses now."""
        with self._mutex:
            fresh = {r.intent for r in self._added.values() if r.intent}
            stale = [
                r.key
                for r in self._records.values()
                if r.intent in fresh and r.key not in used and r.key not in self._added
            ]
        for key in stale:
            self.remove(key)
        return stale

    @property
    def dirty(self) -> bool:
        with self._mutex:
            if self._added or self._removed:
                return True
            return any(
                key in self._records and not pages <= set(self._records[key].pages)
                for key, pages in self._pages.items()
            )

    def save(self) -> bool:
        """Write the manifest if this run changed anything; True when it did.

        Under a file lock, the manifest on disk is read again and this run's changes laid over
        it, so two runs sharing a folder (a build and a `generate`) never lose each other's lines.
        """
        if not self.dirty:
            return False
        self._files.ensure()
        with self._files.exclusive():
            merged = self._files.chosen(self._files.read_manifest())
            with self._mutex:
                for key in self._removed:
                    merged.pop(key, None)
                merged.update(self._added)
                for key, pages in self._pages.items():
                    if key in merged:
                        # Pages of this run replace the recorded ones only where the run saw the key.
                        merged[key] = replace(merged[key], pages=tuple(sorted(pages)))
                self._files.write_manifest(merged.values())
                self._records = merged
                self._added.clear()
                self._removed.clear()
        return True
