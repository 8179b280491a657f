"""The lock folder as the tier in front of the cache, and the pins the engine asks it for.

The engine looks here before the cache; a real image found only in the cache is copied here
(`fill`), a generated one is stored here too (`put`), and a re-keyed directive is shown its
intent's image (`pin`). The manifest is saved once, when the engine closes (`finish`). Only
images of a paid provider are locked: placeholders, from the placeholder provider or a
fallback, are never committed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .cache import Entry
from .lock import ImageLock, Locked, LockError, record_for
from .spec import Occurrence


def entry_of(found: Locked) -> Entry:
    return Entry(key=found.record.key, path=found.path, meta=found.record.meta())


class LockTier:
    def __init__(self, lock: ImageLock, *, paid: bool, keep_outdated: bool = True) -> None:
        self.lock = lock
        self.paid = paid
        self.keep_outdated = keep_outdated  # pin before generating (`outdated: keep`)
        # Set by a command that submits only part of the site: the keys the rest still shows,
        # and whether this run may drop an image replaced by a newer one of the same intent.
        self.keep: set[str] = set()
        self.replace_pins = True

    # -- the Tier protocol ---------------------------------------------------------------------
    def get(self, key: str) -> Entry | None:
        found = self.lock.get(key)
        return None if found is None else entry_of(found)

    def put(self, key: str, data: bytes, meta: dict[str, Any]) -> Entry | None:
        if not self.paid:
            return None
        return entry_of(self.lock.add(record_for(key, data, meta, intent=None), data))

    def fill(self, entry: Entry) -> None:
        """A real image found only in the cache joins the lock (a cache turning into a lock)."""
        if not self.paid or entry.fallback or entry.meta.get("provider") in (None, "placeholder"):
            return
        try:
            with open(entry.path, "rb") as fh:
                data = fh.read()
            self.lock.add(record_for(entry.key, data, entry.meta, intent=None), data)
        except (OSError, LockError, KeyError, ValueError, TypeError):
            return  # the cache still has it; the next run tries again

    # -- pins ----------------------------------------------------------------------------------
    def pin(self, key: str, occurrence: Occurrence) -> Entry | None:
        """The image the lock pins to this directive's intent, when its own key has none."""
        if occurrence.intent is None:
            return None
        found = self.lock.pinned(occurrence.intent, occurrence.page)
        if found is None or found.record.key == key:
            return None
        return entry_of(found)

    # -- the end of a run ----------------------------------------------------------------------
    def finish(self, used: Iterable[tuple[Entry | None, list[Occurrence]]], *, record_pages: bool) -> None:
        """Record which pages use each locked image, drop replaced pins, and save the manifest."""
        keys = set(self.keep)
        for entry, occurrences in used:
            if entry is None or entry.fallback or self.lock.record(entry.key) is None:
                continue
            keys.add(entry.key)
            intent = next((o.intent for o in occurrences if o.intent), None)
            self.lock.use(entry.key, (o.page for o in occurrences) if record_pages else (), intent)
        if self.replace_pins:
            self.lock.replace_pins(keys)
        self.lock.save()
