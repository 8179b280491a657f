"""Asking the provider: wait out a shared pause, take a request slot, pass the spending guard,
and ask again as the retry policy says."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..providers import GeneratedImage, Provider, ProviderError
from .jobs import Job
from .retry import Pause, RetryPolicy
from .spending import SpendingGuard


@dataclass
class Brake:
    """Why no job should ask the provider any more, shared by every job of a build."""

    halted: bool = False  # on_error: fail, and an image failed: spend nothing more
    disabled: str | None = None  # the provider refused our key: no other request would fare better
    reason: str | None = None  # why images were not tried, told to each when the run keeps going

    @property
    def engaged(self) -> bool:
        return self.halted or self.disabled is not None


class Stopped(Exception):
    """A job that will not ask the provider after all (the brake is on)."""


class Refused(Exception):
    """A job turned away by the spending guard; the message names the cap."""


class Asker:
    def __init__(
        self,
        provider: Provider,
        *,
        concurrency: int,
        guard: SpendingGuard,
        retry: RetryPolicy,
        brake: Brake,
        log: logging.LoggerAdapter[Any] | logging.Logger,
        keep: Callable[[Job], None] = lambda job: None,
    ) -> None:
        self.provider = provider
        self.keep = keep  # raises `Dropped` for a job no page uses any more
        self.requests = asyncio.Semaphore(concurrency)  # requests in flight, site-wide
        self.guard = guard
        self.retry = retry
        self.brake = brake
        self.pause = Pause()
        self.log = log

    async def ask(self, job: Job) -> GeneratedImage:
        request = job.request()
        attempt, reserved = 0, False
        while True:
            if (pause := self.pause.remaining()) > 0:
                await asyncio.sleep(pause)
            try:
                async with self.requests:
                    # Re-checked here: while this job waited for a slot, another may have learnt
                    # that the key is refused, or failed a build that must stop.
                    if self.brake.engaged:
                        raise Stopped()
                    # The last moment before money is spent: a key that every page stopped using
                    # while this job waited (a burst of edits while serving) is dropped.
                    self.keep(job)
                    # Reserved when the request is about to leave, once per job whatever the retries.
                    if self.provider.paid and not reserved:
                        refused = self.guard.reserve(self.provider.estimate_cost(job.spec))
                        if refused:
                            raise Refused(refused)
                        reserved = True
                    return await self.provider.generate(request)
            except ProviderError as exc:
                delay = self.retry.delay(exc, attempt)
                if delay is None:
                    if exc.retryable:
                        exc.message = f"{exc.message} (gave up after {attempt + 1} attempts)"
                    raise
                if self.retry.shared(exc):
                    self.pause.extend(delay)
                attempt += 1
                self.log.info(
                    self.provider.scrub(
                        f"{job.where}: {exc.message}; retry {attempt} of {self.retry.max_retries} "
                        f"in {delay:.1f} s"
                    )
                )
                await asyncio.sleep(delay)
