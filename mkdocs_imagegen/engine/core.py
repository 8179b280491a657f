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
uses any more is dropped before its request (at the top of `Producer.produce`, and again just before
the request leaves, in `ask`); `on_done` hears of each image finished late. Room is left for a
job that depends on another image (a dark variant made from the light one's digest): submitted
from the first job's future's done-callback, its spec carrying the digest in `inputs`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..cache import ImageCache
from ..lock import LockError
from ..locktier import LockTier
from ..logs import log
from ..providers import Provider
from ..spec import ImageSpec, Occurrence
from .ask import Asker, Brake
from .fallback import Fallback, Renderer
from .jobs import Job, JobBoard, Outcome, Stats, Tally
from .loop import WorkerPool
from .produce import FROZEN as FROZEN
from .produce import Producer
from .retry import RetryPolicy
from .spending import SpendingGuard
from .tiers import Tier, Tiers

if TYPE_CHECKING:
    from ..remote import RemoteTier


class Engine:
    """De-duplicated submission, rounds and bookkeeping; `Producer` makes each image on the loop."""

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
        self.lock = lock
        self.owns_lock = owns_lock  # save the lock's manifest on close (else its owner does)
        self.tiers = Tiers(cache, tiers, remote, front=[lock] if lock is not None else [])
        self.guard = SpendingGuard(max_new_images, max_cost)
        self.brake = Brake()
        self._board = JobBoard()
        self._tally = Tally()
        retry = RetryPolicy(max_retries=max_retries, backoff=backoff)
        self.asker = Asker(
            provider,
            concurrency=concurrency,
            guard=self.guard,
            retry=retry,
            brake=self.brake,
            log=self.log,
            keep=self._board.drop_if_unwanted,
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
        self.producer = Producer(self.asker, self.fallback, self.tiers, lock, self._tally, frozen=frozen)
        self.on_done: Callable[[Outcome], None] | None = None  # called from the engine thread
        self._pool = WorkerPool(self._run, self._abandon, concurrency=concurrency)

    @property
    def stats(self) -> Stats:
        """This round's counts (a build is one round)."""
        return self._tally.stats

    # -- the public side -----------------------------------------------------------------------
    def submit(self, occurrence: Occurrence, *, force: bool = False) -> concurrent.futures.Future[Outcome]:
        """Ask for the image of an occurrence; the same key is only ever one job."""
        job, new = self._board.add(occurrence, force=force)
        if new is False:
            return job.future
        self._tally.update(Stats.used)
        if new is None:  # an earlier rebuild's job: count it in this one's summary
            if job.future.done():
                status = job.future.result().status
                self._tally.count("cached" if status == "generated" else status)
            return job.future
        outcome = self.producer.first_look(job)
        if outcome is not None:
            self._finish(job, outcome)
        else:
            self._pool.schedule(job)
        return job.future

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
        self._tally.reset()
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
        return self._board.wait()

    def done_outcomes(self) -> list[Outcome]:
        return self._board.done_outcomes()

    def specs_not_from_cache(self) -> tuple[list[ImageSpec], list[ImageSpec]]:
        """(every spec in use, those this build did not find in the cache): for the model notes."""
        return self._board.specs_not_from_cache()

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
        if self.lock is not None and self.owns_lock:
            try:
                self.lock.finish(self._board.finished(), record_pages=not self.frozen)
            except (LockError, OSError) as exc:
                self.log.error(f"cannot save the image lock: {exc}")

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one job, on the loop ------------------------------------------------------------------
    async def _run(self, job: Job) -> None:
        try:
            outcome = await self.producer.run(job)
        except asyncio.CancelledError:
            self._abandon(job)
            raise
        self._finish(job, outcome)

    # -- bookkeeping ---------------------------------------------------------------------------
    def _finish(self, job: Job, outcome: Outcome) -> None:
        # A job that ends after its rebuild counts in the rebuild that shows it, not here: the
        # round is read under the tally's lock, which `begin_round`'s reset also takes.
        self._tally.count(outcome.status, only_if=lambda: job.round == self._board.round)
        if not job.future.done():
            job.future.set_result(outcome)
            if self.on_done is not None and outcome.status != "dropped":
                with contextlib.suppress(Exception):  # a listener never breaks the engine
                    self.on_done(outcome)

    def _abandon(self, job: Job) -> None:
        self._finish(job, Outcome(job.key, "failed"))
