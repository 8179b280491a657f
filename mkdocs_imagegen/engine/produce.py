"""One job's way on the loop: a claim, the tiers again, the remote store, then the provider.

Everything here runs on the engine's loop, one job at a time per key (the claim makes that
true across processes too). The outcome it returns is finished by the engine.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .. import imaging
from ..cache import CacheError, Entry
from ..locktier import LockTier
from ..providers import GeneratedImage, ProviderError
from ..spec import ImageSpec
from .ask import Asker, Refused, Stopped
from .fallback import Fallback
from .finish import finish
from .jobs import Dropped, Job, Outcome, Stats, Tally
from .tiers import Tiers

if TYPE_CHECKING:
    from ..remote import RemoteTier

FROZEN = (
    "image not in the cache and frozen mode forbids generating it. Run `mkdocs-imagegen generate` "
    "(with the API key) and keep the cache, or turn frozen off"
)


class Producer:
    def __init__(
        self,
        asker: Asker,
        fallback: Fallback,
        tiers: Tiers,
        lock: LockTier | None,
        tally: Tally,
        *,
        frozen: bool,
    ) -> None:
        self.asker = asker
        self.fallback = fallback
        self.tiers = tiers
        self.lock = lock
        self.tally = tally
        self.frozen = frozen
        # The parts every job shares, as the asker holds them.
        self.provider, self.guard, self.brake, self.keep = (
            asker.provider,
            asker.guard,
            asker.brake,
            asker.keep,
        )

    def first_look(self, job: Job) -> Outcome | None:
        """Before scheduling: a tier's image, or the lock's pin under `outdated: keep`; None: schedule."""
        try:
            entry = None if job.force else self.tiers.lookup(job.key)
        except Exception as exc:
            return self.fatal(job, CacheError(f"cannot read the image cache: {exc}"))
        if entry is not None:
            return Outcome(job.key, "cached", entry)
        keep = not job.force and self.lock is not None and self.lock.keep_outdated
        return self.pin(job) if keep else None

    def pin(self, job: Job) -> Outcome | None:
        """The lock's image for the directive's intent: a re-key (model, template) that costs nothing."""
        entry = self.lock.pin(job.key, job.occurrences[0]) if self.lock is not None else None
        return None if entry is None else Outcome(job.key, "outdated", entry)

    def fatal(self, job: Job, problem: Exception | str) -> Outcome:
        text = self.provider.scrub(f"{job.where}: {problem}")
        return Outcome(job.key, "failed", error=text, fatal=True)

    async def run(self, job: Job) -> Outcome:
        """The job's outcome: whatever goes wrong on the way is an outcome too, never an escape."""
        try:
            return await self.produce(job)
        except CacheError as exc:
            return self.fatal(job, exc)
        except Dropped:
            return Outcome(job.key, "dropped")
        except Exception as exc:  # not CancelledError: the engine abandons a cancelled job
            return self.fatal(job, RuntimeError(f"internal error: {type(exc).__name__}: {exc}"))

    async def produce(self, job: Job) -> Outcome:
        if self.brake.halted:
            return self.fallback.untried(job)
        self.keep(job)
        claim, entry = await self.tiers.claim(job.key, force=job.force)
        try:
            if entry is not None:
                return Outcome(job.key, "cached", entry)
            remote = self.tiers.remote
            if remote is not None and not job.force:
                entry = await asyncio.to_thread(remote.fetch, job.spec, self.tiers.local)
                if entry is not None:
                    return self._from_remote(job, entry)
            reason = self.brake.disabled or self.provider.unavailable_reason()
            if self.frozen or reason:
                pinned = self.pin(job)  # nothing can be generated: a pin beats a failure
                if pinned is not None:
                    return pinned
            if self.frozen:
                return self.fatal(job, FROZEN)
            if reason:
                return await self.fallback.unavailable(job, reason)
            if remote is None or job.force:
                return await self._make(job)
            return await self._make_shared(job, remote)
        finally:
            claim.release()

    async def _make_shared(self, job: Job, remote: RemoteTier) -> Outcome:
        """Generate a key once across runners: under the store's lease, or wait for its holder."""
        lease = await asyncio.to_thread(remote.store.claim, job.key)
        if lease is None and remote.store.writable and remote.store.available:
            entry = await remote.wait(job.spec, self.tiers.local)
            if entry is not None:
                return self._from_remote(job, entry)
            # The holder finished without an image, or its lease lapsed: try once more, then
            # generate anyway (a lapsed runner may still upload; the first entry stays).
            lease = await asyncio.to_thread(remote.store.claim, job.key)
        try:
            return await self._make(job)
        finally:
            if lease is not None:
                await asyncio.to_thread(remote.store.release, lease)

    def _from_remote(self, job: Job, entry: Entry) -> Outcome:
        self.tally.update(Stats.filled_from_remote)
        if self.lock is not None:
            self.lock.fill(entry)  # a real image the site uses belongs in its lock too
        return Outcome(job.key, "cached", entry)

    async def _make(self, job: Job) -> Outcome:
        try:
            image = await self.asker.ask(job)
            # What the provider says it charged (Lumenfall's metadata.cost), else the estimate.
            cost = image.cost if image.cost is not None else self.provider.estimate_cost(job.spec)
            entry = await asyncio.to_thread(self._store, job.spec, image, cost)
        except Refused as exc:
            return await self.fallback.placeholder(job, f"{exc} reached")
        except Stopped:
            if self.brake.disabled:
                return await self.fallback.unavailable(job, self.brake.disabled)
            return self.fallback.untried(job)
        except ProviderError as exc:
            if exc.status is not None and self.provider.paid:
                # The API answered with an error: nothing was billed.
                self.guard.refund(self.provider.estimate_cost(job.spec))
            if exc.stop:  # the provider knows which of its answers end the run (a key, a balance)
                self.brake.disabled = self.provider.scrub(exc.message)
            return await self.fallback.failed(job, exc.message)
        except imaging.ImageError as exc:
            return await self.fallback.failed(job, f"the API's answer is not an acceptable image: {exc}")
        self.tally.update(lambda stats: stats.spent(cost))
        return Outcome(job.key, "generated", entry)

    def _store(self, spec: ImageSpec, image: GeneratedImage, cost: float | None) -> Entry:
        """Finish and store an answer: one trip to a worker thread."""
        data, meta = finish(spec, image, cost=cost)
        return self.tiers.store(spec.key, data, meta)
