"""The engine: each key's way from the tiers, through the provider, to a finished image.

submit ─▶ board (one job per key) ─▶ tiers.lookup ──hit──▶ cached
                                         │ miss
                                         ▼
             pool (loop) ─▶ claim, look again ─▶ frozen? unavailable? ─▶ fallback
                                         │
                                         ▼
       ask: shared pause ─▶ request slot ─▶ spending guard ─▶ provider ─▶ retry policy
                                         │
                                         ▼
                  finish (verify, crop, encode) ─▶ tiers.store ─▶ generated

With a lock folder, it is the first tier, and a key that no tier holds but whose directive's
intent has an image in the lock is `outdated`: the pinned image is shown and nothing is asked
(before scheduling with `outdated: keep`; otherwise only when nothing can be generated).

While serving, one engine serves every rebuild (`begin_round`/`end_round`): finished keys are
answered again without a lookup, a key under way is never asked for twice, and a key no page
uses any more is dropped before its request (at the top of `_produce`, and again just before
the request leaves, in `ask`); `on_done` hears of each image finished late. Room is left for a
job that depends on another image (a dark variant made from the light one's digest): submitted
from the first job's future's done-callback, its spec carrying the digest in `inputs`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .. import imaging
from ..cache import CacheError, Entry, ImageCache
from ..lock import LockError
from ..locktier import LockTier
from ..logs import log
from ..providers import GeneratedImage, Provider, ProviderError
from ..spec import ImageSpec, Occurrence
from .ask import Asker, Brake, Refused, Stopped
from .fallback import Fallback, Renderer
from .finish import finish
from .jobs import Dropped, Job, JobBoard, Outcome, Stats
from .loop import WorkerPool
from .retry import RetryPolicy
from .spending import SpendingGuard
from .tiers import Tier, Tiers

if TYPE_CHECKING:
    from ..remote import RemoteTier

# API error codes after which no other request of the run could succeed (OpenAI's, Lumenfall's).
STOP_CODES = frozenset(
    {
        "invalid_api_key",
        "insufficient_quota",
        "billing_hard_limit_reached",
        "account_deactivated",
        "AUTHENTICATION_FAILED",
        "INSUFFICIENT_BALANCE",
    }
)

FROZEN = (
    "image not in the cache and frozen mode forbids generating it. Run `mkdocs-imagegen generate` "
    "(with the API key) and keep the cache, or turn frozen off"
)


class Engine:
    def __init__(
        self,
        cache: ImageCache,
        provider: Provider,
        *,
        placeholder: Renderer,
        concurrency: int = 4,
        on_error: str = "placeholder",
        max_new_images: int | None = 50,
        max_cost: float | None = None,
        max_retries: int = 3,
        frozen: bool = False,
        keep_going: bool = False,
        backoff: float = 0.5,
        tiers: Sequence[Tier] = (),
        remote: RemoteTier | None = None,
        lock: LockTier | None = None,
        owns_lock: bool = True,
        logger: logging.LoggerAdapter[Any] | logging.Logger | None = None,
    ) -> None:
        self.provider = provider
        self.frozen = frozen
        self.log = logger or log
        self.stats = Stats()
        self.lock = lock
        self.owns_lock = owns_lock  # save the lock's manifest on close (else its owner does)
        self.tiers = Tiers(cache, tiers, remote, front=[lock] if lock is not None else [])
        self.guard = SpendingGuard(max_new_images, max_cost)
        self.brake = Brake()
        self.asker = Asker(
            provider,
            concurrency=concurrency,
            guard=self.guard,
            retry=RetryPolicy(max_retries=max_retries, backoff=backoff),
            brake=self.brake,
            log=self.log,
        )
        self.fallback = Fallback(
            on_error=on_error,
            keep_going=keep_going,
            tiers=self.tiers,
            renderer=placeholder,
            provider=provider,
            brake=self.brake,
            log=self.log,
        )
        self._board = JobBoard()
        self.asker.keep = self._board.drop_if_unwanted
        self.on_done: Callable[[Outcome], None] | None = None  # called from the engine thread
        self._pool = WorkerPool(self._run, self._abandon, concurrency=concurrency)
        self._lock = threading.Lock()

    # -- the public side -----------------------------------------------------------------------
    def submit(self, occurrence: Occurrence, *, force: bool = False) -> concurrent.futures.Future[Outcome]:
        """Ask for the image of an occurrence; the same key is only ever one job."""
        job, new = self._board.add(occurrence, force=force)
        if new is False:
            return job.future
        with self._lock:
            self.stats.in_use += 1
            if new is None:  # an earlier rebuild's job: count it in this one's summary
                if job.future.done():
                    status = job.future.result().status
                    self.stats.count("cached" if status == "generated" else status)
                return job.future
        try:
            entry = None if force else self.tiers.lookup(job.key)
        except Exception as exc:
            entry = None
            self._finish(job, self._fatal(job, CacheError(f"cannot read the image cache: {exc}")))
        if entry is not None:
            self._finish(job, Outcome(job.key, "cached", entry))
        elif not job.future.done():
            pinned = None if force or self.lock is None or not self.lock.keep_outdated else self._pin(job)
            if pinned is not None:
                self._finish(job, pinned)
            else:
                self._pool.schedule(job)
        return job.future

    def _pin(self, job: Job) -> Outcome | None:
        """The lock's image for the directive's intent: a re-key (model, template) that costs nothing."""
        entry = self.lock.pin(job.key, job.occurrences[0]) if self.lock is not None else None
        return None if entry is None else Outcome(job.key, "outdated", entry)

    def outcome(self, key: str, timeout: float | None = None) -> Outcome:
        return self._board.get(key).future.result(timeout)

    def peek(self, key: str) -> Outcome | None:
        """The outcome of `key` if it is known by now; None while it is being made."""
        job = self._board.peek(key)
        return job.future.result() if job is not None and job.future.done() else None

    # -- rounds: one engine for every rebuild of `mkdocs serve` --------------------------------
    def begin_round(self, *, retry_failed: bool) -> None:
        """A rebuild starts: fresh counts; with `retry_failed` (a save), failed keys are tried again."""
        self._board.begin_round(retry=("failed", "fallback") if retry_failed else ())
        with self._lock:
            self.stats = Stats()
        self.guard.refused.clear()
        if retry_failed:
            self.brake.halted = False

    def end_round(self) -> None:
        """A rebuild has rendered every page: keys it did not use are dropped when their turn comes."""
        self._board.end_round()

    def wanted(self, key: str) -> bool:
        job = self._board.peek(key)
        return job is not None and self._board.wanted(job)

    def under_way(self) -> int:
        return self._board.under_way()

    def wait(self) -> dict[str, Outcome]:
        jobs = self._board.all()
        concurrent.futures.wait([j.future for j in jobs])
        return {j.key: j.future.result() for j in jobs}

    def done_outcomes(self) -> list[Outcome]:
        return [j.future.result() for j in self._board.all() if j.future.done()]

    def specs_not_from_cache(self) -> tuple[list[ImageSpec], list[ImageSpec]]:
        """(every spec in use, those this build did not find in the cache): for the model notes."""
        jobs = self._board.all()
        fresh = [j.spec for j in jobs if not j.future.done() or j.future.result().status != "cached"]
        return [j.spec for j in jobs], fresh

    def finish_report(self) -> None:
        """Say once what the spending guard held back, and how to lift it."""
        message = self.guard.report()
        for line in (message or "").splitlines():
            self.log.warning(line)

    def close(self) -> None:
        self._pool.close(self.provider.aclose)
        self._finish_lock()
        self.tiers.close()

    def _finish_lock(self) -> None:
        """Save the lock's manifest once per run, with the pages that use each image."""
        if self.lock is None or not self.owns_lock:
            return
        used = [(j.future.result().entry, j.occurrences) for j in self._board.all() if j.future.done()]
        try:
            self.lock.finish(used, record_pages=not self.frozen)
        except (LockError, OSError) as exc:
            self.log.error(f"cannot save the image lock: {exc}")

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one job, on the loop ------------------------------------------------------------------
    async def _run(self, job: Job) -> None:
        try:
            outcome = await self._produce(job)
        except CacheError as exc:
            outcome = self._fatal(job, exc)
        except Dropped:
            outcome = Outcome(job.key, "dropped")
        except asyncio.CancelledError:
            self._abandon(job)
            raise
        except Exception as exc:
            outcome = self._fatal(job, RuntimeError(f"internal error: {type(exc).__name__}: {exc}"))
        self._finish(job, outcome)

    async def _produce(self, job: Job) -> Outcome:
        if self.brake.halted:
            return self.fallback.untried(job)
        self._board.drop_if_unwanted(job)
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
                pinned = self._pin(job)  # nothing can be generated: a pin beats a failure
                if pinned is not None:
                    return pinned
            if self.frozen:
                return self._fatal(job, FROZEN)
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
        with self._lock:
            self.stats.remote += 1
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
            if exc.stop or exc.status in (401, 402) or exc.code in STOP_CODES:
                self.brake.disabled = self.provider.scrub(exc.message)
            return await self.fallback.failed(job, exc.message)
        except imaging.ImageError as exc:
            return await self.fallback.failed(job, f"the API's answer is not an acceptable image: {exc}")
        with self._lock:
            self.stats.spent(cost)
        return Outcome(job.key, "generated", entry)

    def _store(self, spec: ImageSpec, image: GeneratedImage, cost: float | None) -> Entry:
        """Finish and store an answer: one trip to a worker thread."""
        data, meta = finish(spec, image, cost=cost)
        return self.tiers.store(spec.key, data, meta)

    # -- bookkeeping ---------------------------------------------------------------------------
    def _finish(self, job: Job, outcome: Outcome) -> None:
        with self._lock:
            # A job that ends after its rebuild counts in the rebuild that shows it, not here.
            if job.round == self._board.round:
                self.stats.count(outcome.status)
        if not job.future.done():
            job.future.set_result(outcome)
            if self.on_done is not None and outcome.status != "dropped":
                with contextlib.suppress(Exception):  # a listener never breaks the engine
                    self.on_done(outcome)

    def _abandon(self, job: Job) -> None:
        self._finish(job, Outcome(job.key, "failed"))

    def _fatal(self, job: Job, problem: Exception | str) -> Outcome:
        text = self.provider.scrub(f"{job.where}: {problem}")
        return Outcome(job.key, "failed", error=text, fatal=True)
