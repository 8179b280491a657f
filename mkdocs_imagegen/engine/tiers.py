"""Where finished images are kept, and the claim that makes concurrent builds generate a key once.

The lookup walks a list: the lock folder (in front of the cache, when the site has one), the
local cache, and later a remote store behind it. Each tier only has to `get` and `put` plain
entries by key; a tier with a `fill` method also receives what a later tier had and it lacked.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ..cache import CacheError, Entry, ImageCache

if TYPE_CHECKING:
    from ..remote import RemoteTier

CLAIM_POLL = 0.05
CLAIM_TIMEOUT = 900.0  # another build holding a key this long is stuck, not slow


class Tier(Protocol):
    def get(self, key: str) -> Entry | None: ...

    def put(self, key: str, data: bytes, meta: dict[str, Any]) -> Entry | None: ...


class Claim(Protocol):
    def release(self) -> None: ...


class Tiers:
    """The tiers of one build, in lookup order; the local cache also holds claims and fallbacks."""

    def __init__(
        self,
        local: ImageCache,
        others: Sequence[Tier] = (),
        remote: RemoteTier | None = None,
        front: Sequence[Tier] = (),
    ) -> None:
        self.local = local
        # The lock folder (when the site has one) comes before the cache: it is what the site
        # commits, and what a fresh clone has.
        self.order: list[Tier] = [*front, local, *others]
        # The remote store is slow and shared: looked up only under the claim (`core`), after
        # every local tier missed, so a warm build never touches the network.
        self.remote = remote

    def lookup(self, key: str) -> Entry | None:
        """The first tier's valid entry for `key`; damaged entries are dropped by the tier itself."""
        for n, tier in enumerate(self.order):
            entry = tier.get(key)
            if entry is not None:
                for earlier in self.order[:n]:
                    fill = getattr(earlier, "fill", None)
                    if fill is not None:
                        fill(entry)
                return entry
        return None

    def store(self, key: str, data: bytes, meta: dict[str, Any]) -> Entry:
        """A real image goes into every tier; the local entry is the one the site is built from."""
        entry = self.local.put(key, data, meta)
        for tier in self.order:
            if tier is not self.local:
                tier.put(key, data, meta)
        if self.remote is not None:
            self.remote.upload(key, data, entry.meta)
        return entry

    def fallback(self, key: str) -> Entry | None:
        return self.local.get(key, fallback=True)

    def store_fallback(self, key: str, data: bytes, meta: dict[str, Any]) -> Entry:
        """Placeholders stay local: they are never shared as if they were the image."""
        return self.local.put(key, data, meta, fallback=True)

    def try_claim(self, key: str, *, force: bool) -> tuple[Claim, Entry | None] | None:
        """Claim the key and look again under the claim: another build may have just made it."""
        claim = self.local.try_claim(key)
        if claim is None:
            return None
        try:
            return claim, None if force else self.lookup(key)
        except BaseException:
            claim.release()
            raise

    async def claim(self, key: str, *, force: bool) -> tuple[Claim, Entry | None]:
        """Wait for the claim on `key` (polling: the lock is another process's)."""
        deadline = time.monotonic() + CLAIM_TIMEOUT
        while True:
            # A plain executor future, not a task: closing the engine cancels every task.
            attempt = asyncio.get_running_loop().run_in_executor(
                None, functools.partial(self.try_claim, key, force=force)
            )
            try:
                claimed = await asyncio.shield(attempt)
            except asyncio.CancelledError:
                # Cancelled (Ctrl-C, the engine closing) while the thread was taking the lock:
                # the thread finishes anyway, so release what it took, or the lock stays held
                # by this process and a later engine of the same `mkdocs serve` waits for it.
                attempt.add_done_callback(_release_taken)
                raise
            if claimed is not None:
                return claimed
            if time.monotonic() > deadline:
                raise CacheError(f"another build has held the claim on image {key} for {CLAIM_TIMEOUT:g} s")
            await asyncio.sleep(CLAIM_POLL)

    def close(self) -> None:
        self.local.close()


def _release_taken(attempt: asyncio.Future[tuple[Claim, Entry | None] | None]) -> None:
    if not attempt.cancelled() and attempt.exception() is None and (taken := attempt.result()):
        taken[0].release()
