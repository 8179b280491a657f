"""The images of one build (or of one `mkdocs serve`): what the cache has, what the engine makes.

Kept apart from the directives that ask for them: a directive only submits its occurrence and
asks for an entry; here the cache, the lock and the engine are consulted, and waited on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import pricing
from .lock import LockError
from .logs import log

if TYPE_CHECKING:
    from .cache import Entry, ImageCache
    from .engine import Engine, Outcome
    from .locktier import LockTier
    from .spec import Occurrence

PROGRESS_EVERY = 4.0  # seconds between "waiting for images" lines of a build


class Images:
    """The images of one build: cache hits answered at once, the rest through the engine.

    A warm build never opens the engine (no event loop, no HTTP client, no Pillow); the first key
    missing from the cache opens it. With a lock folder, it is looked at first, a real image found
    only in the cache is copied into it, and a key with neither but with its intent pinned in the
    lock shows the pinned image (`outdated`); the lock's manifest is saved on close.

    While serving (`blocking` False) one `Images` serves every rebuild: nothing waits for the
    engine, a rebuild is a round (`begin_round`, `end_round`, which also saves the lock's
    manifest), and keys already known cost neither a lookup nor a request. With `generate`
    False (serve_mode: placeholder) a key missing from the cache is only noted as missing.
    """

    def __init__(
        self,
        cache: ImageCache,
        open_engine: Callable[[], Engine],
        *,
        lock: LockTier | None = None,
        frozen: bool = False,
        blocking: bool = True,
        generate: bool = True,
    ) -> None:
        self.cache, self.lock, self.frozen = cache, lock, frozen
        self._open_engine = open_engine
        self.blocking, self.generate = blocking, generate
        self.engine: Engine | None = None
        self.cached: dict[str, Entry] = {}
        self.outdated: dict[str, Entry] = {}  # keys shown from the lock's pin (also in `cached`)
        self.pending: dict[str, Occurrence] = {}  # keys the engine has
        self.missing: dict[str, Occurrence] = {}  # not cached, and not to be generated
        self.filenames: dict[str, str] = {}
        self._used: dict[str, None] = {}  # keys this build uses, in order
        self.errors = 0
        self._progress = Progress()
        self._uses: dict[str, list[Occurrence]] = {}  # with a lock: the pages that use each key

    def submit(self, occurrence: Occurrence) -> None:
        spec = occurrence.spec
        assert spec is not None
        key = spec.key
        if self.lock is not None:
            self._uses.setdefault(key, []).append(occurrence)
        self._used[key] = None
        if key in self.cached:
            return
        self.filenames[key] = spec.filename
        if key not in self.pending:
            if key not in self.missing:
                try:
                    entry = lookup(self.cache, self.lock, key, occurrence, self.outdated)
                except Exception:  # the engine reports an unreadable cache with page and line
                    entry = None
                if entry is not None:
                    self.cached[key] = entry
                    return
            if not self.generate:
                self.missing.setdefault(key, occurrence)
                return
            self.pending[key] = occurrence
        if self.engine is None:
            self.engine = self._open_engine()
            self._progress.start()
        self.engine.submit(occurrence)

    def used(self) -> list[str]:
        return list(self._used)

    def entry(self, key: str) -> Entry | None:
        if key in self.cached:
            return self.cached[key]
        outcome = self.outcome(key)
        return outcome.entry if outcome is not None else None

    def outcome(self, key: str) -> Outcome | None:
        """The key's outcome; while serving, None as long as it is being made (never a wait)."""
        if key not in self.pending or self.engine is None:
            return None
        return self._progress.wait_for(self.engine, key) if self.blocking else self.engine.peek(key)

    def occurrence(self, key: str) -> Occurrence | None:
        """A directive that uses a key with no image yet (for its placeholder)."""
        return self.pending.get(key) or self.missing.get(key)

    def wait(self) -> dict[str, Outcome]:
        if self.engine is None:
            return {}
        if not self.blocking:  # while serving: what is known by now
            return {k: o for k in self._used if (o := self.outcome(k)) is not None}
        for key in list(self.pending):  # one by one, so that a long wait says how it goes
            self._progress.wait_for(self.engine, key)
        return self.engine.wait()

    # -- rounds (mkdocs serve) -------------------------------------------------------------
    def begin_round(self, *, retry_failed: bool) -> None:
        """A rebuild starts; with `retry_failed` (a save), failed images are asked for again."""
        self._used = {}
        self._uses = {}
        self.errors = 0
        self.missing = {}  # `mkdocs-imagegen generate` may have made them meanwhile
        for key, entry in list(self.cached.items()):
            if not os.path.exists(entry.path):  # pruned behind our back: look again
                del self.cached[key]
        if self.engine is not None:
            self.engine.begin_round(retry_failed=retry_failed)
            for key in list(self.pending):
                outcome = self.engine.peek(key)
                if outcome is not None and (
                    outcome.status == "dropped" or (retry_failed and outcome.status in ("failed", "fallback"))
                ):
                    del self.pending[key]

    def end_round(self) -> str:
        """A rebuild has rendered every page; what its summary line adds, while serving."""
        if self.engine is not None:
            self.engine.end_round()
        self._save_lock(self._made(), last=False)  # images finished by now, the rest next time
        note = ""
        if waiting := sum(1 for k in self._used if k in self.pending and self.outcome(k) is None):
            note = f", {waiting} being generated in the background"
        if self.missing:
            note += f", {len(self.missing)} not generated (serve_mode: placeholder)"
        return note

    def close(self) -> None:
        made = self._made()
        engine, self.engine = self.engine, None
        if engine is not None:
            engine.close()
        self._save_lock(made)
        self.cache.close()

    def _made(self) -> dict[str, Entry | None]:
        return {o.key: o.entry for o in self.engine.done_outcomes()} if self.engine is not None else {}

    def _save_lock(self, made: dict[str, Entry | None], *, last: bool = True) -> None:
        """Record which pages use each locked image, and write the manifest once per build."""
        lock = self.lock
        if last:
            self.lock = None
        if lock is not None:
            used = [(self.cached.get(key) or made.get(key), uses) for key, uses in self._uses.items()]
            save_lock(lock, used, frozen=self.frozen)


def lookup(
    cache: ImageCache, lock: LockTier | None, key: str, occurrence: Occurrence, outdated: dict[str, Entry]
) -> Entry | None:
    """The key's image: the lock's, else the cache's (copied into the lock), else the lock's pin."""
    if lock is None:
        return cache.get(key)
    entry = lock.get(key)
    if entry is not None:
        return entry
    entry = cache.get(key)
    if entry is not None:
        lock.fill(entry)
        return entry
    if lock.keep_outdated:
        entry = lock.pin(key, occurrence)
        if entry is not None:
            outdated[key] = entry
    return entry


def save_lock(lock: LockTier, used: list[tuple[Entry | None, list[Occurrence]]], *, frozen: bool) -> None:
    """A lock that cannot be saved is an error of the build, not a crash of it."""
    try:
        lock.finish(used, record_pages=not frozen)
    except (OSError, LockError) as exc:
        log.error(f"cannot save the image lock: {exc}")


class Progress:
    """A build waiting on generation logs a progress line every few seconds, not silence."""

    def __init__(self) -> None:
        self._next = 0.0  # when a build still waiting on images says so next

    def start(self) -> None:
        self._next = time.monotonic() + PROGRESS_EVERY

    def wait_for(self, engine: Engine, key: str) -> Outcome:
        while True:
            try:
                return engine.outcome(key, timeout=max(0.0, self._next - time.monotonic()))
            except TimeoutError:
                if time.monotonic() >= self._next:
                    log.info(progress_line(engine))
                    self._next = time.monotonic() + PROGRESS_EVERY


def progress_line(engine: Engine) -> str:
    done, total = len(engine.done_outcomes()), engine.stats.in_use
    s = engine.stats
    failed = s.failed + s.fallback - engine.guard.held_back()
    cost = ""
    if engine.provider.paid:
        cost = f", {pricing.format_cost(s.cost)} so far" if s.cost_known else ", cost unknown"
    return f"waiting for images: {done} of {total} done, {failed} failed{cost}"
