"""Jobs and outcomes: one job per key, whatever the number of directives that use it.

While serving, one board outlives every rebuild. Each rebuild is a round: a job remembers the
last round whose pages used its key, and a key that the last finished round did not use is no
longer wanted (a prompt edited again before its image came): it is dropped when its turn comes.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from ..cache import Entry
from ..providers import GenerationRequest
from ..spec import ImageSpec, Occurrence, where

Status = Literal["cached", "generated", "fallback", "failed", "outdated", "dropped"]


class Dropped(Exception):
    """A job whose key no page uses any more: given up before it costs anything."""


@dataclass
class Outcome:
    key: str
    status: Status
    entry: Entry | None = None
    error: str | None = None  # what went wrong, already naming page and line
    fatal: bool = False  # the build must fail whatever on_error says (frozen mode, broken cache)
    untried: bool = False  # never asked for: an earlier answer made every request pointless


@dataclass
class Job:
    spec: ImageSpec
    occurrences: list[Occurrence]
    future: concurrent.futures.Future[Outcome] = field(default_factory=concurrent.futures.Future)
    force: bool = False  # regenerate even when a tier holds the image
    round: int = 0  # the last rebuild (while serving) whose pages use this key

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def where(self) -> str:
        return where(self.occurrences)

    def request(self) -> GenerationRequest:
        """What the provider is asked: the spec, plus the first directive's non-key options."""
        first = self.occurrences[0]
        return GenerationRequest(
            spec=self.spec,
            moderation=first.moderation,
            source_path=first.source_path,
            mask_path=first.mask_path,
        )


class JobBoard:
    """Every job of a build by key: de-duplication, and what waiting callers read."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self.round = 0  # the rebuild under way (0: a build, which has no rounds)
        self._settled = 0  # the last rebuild that rendered every page

    def add(self, occurrence: Occurrence, *, force: bool = False) -> tuple[Job, bool | None]:
        """The job for the occurrence's key, and whether it is new.

        False: the occurrence joins a job of this round; None: the first use of an earlier
        round's job (done, or still under way) in this round, which serves it again as it is.
        """
        spec = occurrence.spec
        assert spec is not None, "occurrences with errors are not submitted"
        with self._lock:
            job = self._jobs.get(spec.key)
            if job is not None:
                if job.round == self.round:
                    job.occurrences.append(occurrence)
                    return job, False
                job.round, job.occurrences = self.round, [occurrence]
                return job, None
            job = self._jobs[spec.key] = Job(spec, [occurrence], force=force, round=self.round)
            return job, True

    def get(self, key: str) -> Job:
        return self._jobs[key]

    def peek(self, key: str) -> Job | None:
        with self._lock:
            return self._jobs.get(key)

    # -- rounds (mkdocs serve) -----------------------------------------------------------------
    def begin_round(self, *, retry: tuple[Status, ...]) -> None:
        """A rebuild starts; finished jobs with a status in `retry` are forgotten, to be asked again."""
        with self._lock:
            self.round += 1
            for key, job in list(self._jobs.items()):
                if job.future.done() and job.future.result().status in retry:
                    del self._jobs[key]

    def end_round(self) -> None:
        """A rebuild has rendered every page: keys it did not use are no longer wanted."""
        with self._lock:
            self._settled = self.round

    def wanted(self, job: Job) -> bool:
        return job.round >= self._settled

    def drop_if_unwanted(self, job: Job) -> None:
        """Raise `Dropped` for a job no page uses any more (and forget it, so a later use starts afresh)."""
        with self._lock:
            if job.round >= self._settled:
                return
            if self._jobs.get(job.key) is job:
                del self._jobs[job.key]
        raise Dropped()

    def under_way(self) -> int:
        """Jobs of the current round not finished yet."""
        with self._lock:
            return sum(1 for j in self._jobs.values() if j.round == self.round and not j.future.done())

    def all(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def __len__(self) -> int:
        return len(self._jobs)

    def wait(self) -> dict[str, Outcome]:
        jobs = self.all()
        concurrent.futures.wait([j.future for j in jobs])
        return {j.key: j.future.result() for j in jobs}

    def finished(self) -> list[tuple[Entry | None, list[Occurrence]]]:
        """Each finished job's entry and the directives that use it: what the lock records."""
        return [(j.future.result().entry, j.occurrences) for j in self.all() if j.future.done()]

    def done_outcomes(self) -> list[Outcome]:
        return [j.future.result() for j in self.all() if j.future.done()]

    def specs_not_from_cache(self) -> tuple[list[ImageSpec], list[ImageSpec]]:
        jobs = self.all()
        fresh = [j.spec for j in jobs if not j.future.done() or j.future.result().status != "cached"]
        return [j.spec for j in jobs], fresh


@dataclass
class Stats:
    """What the build summary reports."""

    in_use: int = 0
    cached: int = 0
    remote: int = 0  # of the cached: filled from the remote store
    generated: int = 0
    fallback: int = 0
    failed: int = 0
    outdated: int = 0  # shown from the lock's pin to the directive's intent, not generated
    cost: float = 0.0
    cost_known: bool = True
    started: float = field(default_factory=time.monotonic)
    last_done: float | None = None

    def count(self, status: Status) -> None:
        if status == "dropped":
            return
        if status == "cached":
            self.cached += 1
        elif status == "generated":
            self.generated += 1
        elif status == "fallback":
            self.fallback += 1
        elif status == "outdated":
            self.outdated += 1
        else:
            self.failed += 1
        self.last_done = time.monotonic()

    def used(self) -> None:
        self.in_use += 1

    def filled_from_remote(self) -> None:
        self.remote += 1

    def spent(self, cost: float | None) -> None:
        if cost is None:
            self.cost_known = False
        else:
            self.cost += cost

    @property
    def seconds(self) -> float:
        """From the engine's start to its last finished image: the build's generation time."""
        return (self.last_done or self.started) - self.started


class Tally:
    """The current round's counts, shared by the loop, its worker threads and the caller."""

    def __init__(self) -> None:
        self.stats = Stats()
        self._lock = threading.Lock()

    def update(self, change: Callable[[Stats], object]) -> None:
        with self._lock:
            change(self.stats)

    def count(self, status: Status, *, only_if: Callable[[], bool] = lambda: True) -> None:
        """Count an outcome; `only_if` is asked under the lock (whether it is still this round's)."""
        with self._lock:
            if only_if():
                self.stats.count(status)

    def reset(self) -> None:
        with self._lock:
            self.stats = Stats()
