"""When no real image can be had: fail the build (on_error: fail) or store and show a placeholder."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from ..cache import Entry
from ..providers import GeneratedImage, Provider
from ..spec import ImageSpec
from .ask import Brake
from .finish import finish
from .jobs import Job, Outcome
from .tiers import Tiers

# Draws the stand-in for a key that has no real image: (spec, label, an edit's source file or
# None) -> encoded bytes.
Renderer = Callable[[ImageSpec, str, str | None], bytes]


class Fallback:
    def __init__(
        self,
        *,
        on_error: str,
        keep_going: bool = False,
        tiers: Tiers,
        renderer: Renderer,
        provider: Provider,
        brake: Brake,
        log: logging.LoggerAdapter[Any] | logging.Logger,
    ) -> None:
        self.on_error = on_error
        # With on_error "fail": False stops everything at the first failure (a build that must
        # fail spends nothing more); True fails that image only, and stops early only when no
        # later request could succeed (a rejected key, no credit), as `mkdocs-imagegen generate` does.
        self.keep_going = keep_going
        self.tiers = tiers
        self.renderer = renderer
        self.provider = provider
        self.brake = brake
        self.log = log
        self._announced = False  # the provider's unavailability was told once
        self._lock = threading.Lock()

    async def unavailable(self, job: Job, reason: str) -> Outcome:
        """The provider cannot generate at all: say so once, for the whole build."""
        with self._lock:
            first, self._announced = not self._announced, True
        if self.on_error == "fail":
            self.brake.halted = True
            if self.keep_going:
                self.brake.reason = self.brake.reason or self.provider.scrub(reason)
                return self.untried(job)
            return Outcome(job.key, "failed", error=f"{job.where}: {reason}" if first else None)
        if first:
            self.log.warning(f"{reason}. Images that are not cached get placeholders in this build")
        return await self.placeholder(job, "the provider cannot generate (see the message above)")

    async def failed(self, job: Job, message: str) -> Outcome:
        text = self.provider.scrub(f"{job.where}: {message}")
        if self.on_error == "fail":
            self.brake.halted = self.brake.halted or not self.keep_going
            return Outcome(job.key, "failed", error=text)
        self.log.warning(f"{text}; a placeholder is shown instead")
        return await self.placeholder(job, self.provider.scrub(message))

    def untried(self, job: Job) -> Outcome:
        """A job the brake stopped before it asked; says why when the run keeps going."""
        reason = self.brake.reason
        error = f"{job.where}: not tried: {reason}" if reason and self.keep_going else None
        return Outcome(job.key, "failed", error=error, untried=True)

    async def placeholder(self, job: Job, reason: str) -> Outcome:
        """A placeholder for a key that has no real image; kept apart from real images."""
        source = job.occurrences[0].source_path  # an edit's stand-in shows what it edits
        entry = await asyncio.to_thread(self._entry, job.spec, reason, source)
        return Outcome(job.key, "fallback", entry, error=f"{job.where}: {reason}")

    def _entry(self, spec: ImageSpec, reason: str, source: str | None) -> Entry:
        entry = self.tiers.fallback(spec.key)
        if entry is None:
            drawn = self.renderer(spec, f"placeholder — not generated: {reason}"[:120], source)
            image = GeneratedImage(drawn, exact=True, info={"reason": reason})
            data, meta = finish(spec, image, provider="placeholder", model=None)
            entry = self.tiers.store_fallback(spec.key, data, meta)
        return entry
