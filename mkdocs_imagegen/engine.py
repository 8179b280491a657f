"""The generation engine: one place for concurrency, de-duplication, claims, retries and spending.

Jobs run on an asyncio loop in a background thread, so a build can submit every directive of the
site up front (in `on_files`) and go on reading pages while images are made. Each key is one job,
whatever the number of directives that use it; a cross-process claim makes concurrent builds
sharing a cache generate it once in total. Finished images go to the cache (disk) as they arrive.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from mkdocs.plugins import get_plugin_logger

from . import imaging
from .cache import CacheError, Entry, ImageCache
from .providers import GeneratedImage, GenerationRequest, Provider, ProviderError
from .providers.placeholder import render_spec
from .spec import ImageSpec, Occurrence

log = get_plugin_logger("mkdocs_imagegen")

Status = Literal["cached", "generated", "fallback", "failed"]
CLAIM_POLL = 0.05
CLAIM_TIMEOUT = 900.0  # another build holding a key this long is stuck, not slow
MAX_RETRY_AFTER = 60.0


class _Stopped(Exception):
    """A job that will not ask the provider after all."""


class _Capped(Exception):
    """A job turned away by max_new_images."""


@dataclass
class Outcome:
    key: str
    status: Status
    entry: Entry | None = None
    error: str | None = None  # what went wrong, already naming page and line
    fatal: bool = False  # the build must fail whatever on_error says (frozen mode, broken cache)


@dataclass
class Stats:
    in_use: int = 0
    cached: int = 0
    generated: int = 0
    fallback: int = 0
    failed: int = 0
    skipped_by_cap: int = 0
    cost: float = 0.0
    cost_known: bool = True
    started: float = field(default_factory=time.monotonic)
    last_done: float | None = None

    @property
    def seconds(self) -> float:
        """From the engine's start to its last finished image: the build's generation time."""
        return (self.last_done or self.started) - self.started


@dataclass
class _Job:
    spec: ImageSpec
    occurrences: list[Occurrence]
    future: concurrent.futures.Future[Outcome]
    force: bool = False

    @property
    def where(self) -> str:
        first = self.occurrences[0].where
        more = len(self.occurrences) - 1
        return first + (f" (and {more} more)" if more else "")


class Engine:
    def __init__(
        self,
        cache: ImageCache,
        provider: Provider,
        *,
        concurrency: int = 4,
        on_error: str = "placeholder",
        max_new_images: int = 50,
        max_retries: int = 3,
        frozen: bool = False,
        backoff: float = 0.5,
        logger: logging.LoggerAdapter[Any] | logging.Logger | None = None,
    ) -> None:
        self.cache = cache
        self.provider = provider
        self.concurrency = concurrency
        self.on_error = on_error
        self.max_new_images = max_new_images
        self.max_retries = max_retries
        self.frozen = frozen
        self.backoff = backoff
        self.log = logger or log
        self.stats = Stats()
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._paid_started = 0
        self._unavailable_announced = False
        self._disabled: str | None = None  # the provider refused our key: ask it nothing more
        self._halted = False
        self._pause_until = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._requests: asyncio.Semaphore | None = None
        self._queue: collections.deque[_Job] = collections.deque()
        self._workers: set[asyncio.Task[None]] = set()
        self._wake_pending = False  # a _start_workers call is scheduled on the loop
        self._active = 0

    # -- the public side -----------------------------------------------------------------------
    def submit(self, occurrence: Occurrence, *, force: bool = False) -> concurrent.futures.Future[Outcome]:
        """Ask for the image of an occurrence; the same key is only ever one job."""
        spec = occurrence.spec
        assert spec is not None, "occurrences with errors are not submitted"
        with self._lock:
            job = self._jobs.get(spec.key)
            if job is not None:
                job.occurrences.append(occurrence)
                return job.future
            job = _Job(spec, [occurrence], concurrent.futures.Future(), force)
            self._jobs[spec.key] = job
            self.stats.in_use += 1
        entry = None if force else self._cache_get(job)
        if entry is not None:
            self._finish(job, Outcome(spec.key, "cached", entry))
        elif not job.future.done():
            self._schedule(job)
        return job.future

    def _schedule(self, job: _Job) -> None:
        """Queue a job; a burst of submissions wakes the loop once, not once per job."""
        loop = self._ensure_loop()
        with self._lock:
            self._queue.append(job)
            # Wake the loop again whenever more workers may start, not only when the queue was
            # empty: a loop that woke for the first job of a burst started one worker only.
            wake = not self._wake_pending and self._active < self._max_workers()
            self._wake_pending = self._wake_pending or wake
        if wake:
            loop.call_soon_threadsafe(self._start_workers)

    def outcome(self, key: str, timeout: float | None = None) -> Outcome:
        return self._jobs[key].future.result(timeout)

    def wait(self) -> dict[str, Outcome]:
        with self._lock:
            jobs = list(self._jobs.values())
        concurrent.futures.wait([j.future for j in jobs])
        return {j.spec.key: j.future.result() for j in jobs}

    def done_outcomes(self) -> list[Outcome]:
        with self._lock:
            jobs = list(self._jobs.values())
        return [j.future.result() for j in jobs if j.future.done()]

    def finish_report(self) -> None:
        """Say once what the spending guard held back, and how to lift it."""
        if self.stats.skipped_by_cap:
            self.log.warning(
                f"{self.stats.skipped_by_cap} image(s) were not generated because this build reached "
                f"max_new_images ({self.max_new_images}); they show placeholders. Raise max_new_images in "
                "mkdocs.yml, or run `mkdocs-imagegen generate --max-new-images N`, to generate them"
            )

    def close(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            self.cache.close()
            return
        with contextlib.suppress(Exception):  # closing must not mask the build's own error
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=30)
        loop.close()
        self.cache.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the loop ------------------------------------------------------------------------------
    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._requests = None
                self._thread = threading.Thread(target=loop.run_forever, name="imagegen-engine", daemon=True)
                self._thread.start()
                self._loop = loop
            return self._loop

    async def _shutdown(self) -> None:
        with self._lock:
            queued, self._queue = list(self._queue), collections.deque()
        for job in queued:  # never started: whoever waits for them must not wait forever
            self._finish(job, Outcome(job.spec.key, "failed"))
        me = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not me]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.provider.aclose()

    def _cache_get(self, job: _Job) -> Entry | None:
        try:
            return self.cache.get(job.spec.key)
        except Exception as exc:
            self._finish(job, self._fatal(job, CacheError(f"cannot read the image cache: {exc}")))
            return None

    def _finish(self, job: _Job, outcome: Outcome) -> None:
        with self._lock:
            setattr(self.stats, outcome.status, getattr(self.stats, outcome.status) + 1)
            self.stats.last_done = time.monotonic()
        if not job.future.done():
            job.future.set_result(outcome)

    def _clean(self, text: str) -> str:
        """Every message passes here before a log, the cache or a placeholder's pixels see it."""
        return self.provider.scrub(text)

    def _fatal(self, job: _Job, exc: Exception) -> Outcome:
        return Outcome(job.spec.key, "failed", error=self._clean(f"{job.where}: {exc}"), fatal=True)

    def _start_workers(self) -> None:
        """Run queued jobs on a bounded set of worker tasks.

        Jobs under way (each holding a claim: an open lock file) are bounded by the number of
        workers, however large the site, and so is the memory of waiting coroutines; requests in
        flight are bounded tighter, by `concurrency`, so a request slot is free again while the
        previous answer is verified, cropped and stored.
        """
        if self._requests is None:
            self._requests = asyncio.Semaphore(self.concurrency)
        with self._lock:
            self._wake_pending = False
            wanted = min(self._max_workers(), self._active + len(self._queue))
            new, self._active = wanted - self._active, max(wanted, self._active)
        for _ in range(new):
            task = asyncio.get_running_loop().create_task(self._worker())
            self._workers.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(self._workers.discard)

    def _max_workers(self) -> int:
        return max(4 * self.concurrency, 16)

    async def _worker(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._active -= 1  # counted here, not in a done-callback that runs later
                    return
                job = self._queue.popleft()
            await self._run(job)

    async def _run(self, job: _Job) -> None:
        try:
            outcome = await self._produce(job)
        except CacheError as exc:
            outcome = self._fatal(job, exc)
        except asyncio.CancelledError:
            self._finish(job, Outcome(job.spec.key, "failed"))
            raise
        except Exception as exc:
            outcome = self._fatal(job, RuntimeError(f"internal error: {type(exc).__name__}: {exc}"))
        self._finish(job, outcome)

    async def _produce(self, job: _Job) -> Outcome:
        key = job.spec.key
        if self._halted:  # on_error: fail, and an earlier image failed: spend nothing more
            return Outcome(key, "failed")
        claim, entry = await self._claim(job)
        try:
            if entry is not None:
                return Outcome(key, "cached", entry)
            if self.frozen:
                return Outcome(
                    key,
                    "failed",
                    error=f"{job.where}: image not in the cache and frozen mode forbids generating it. "
                    "Run `mkdocs-imagegen generate` (with the API key) and keep the cache, "
                    "or turn frozen off",
                    fatal=True,
                )
            reason = self._disabled or self.provider.unavailable_reason()
            if reason:
                return await self._unavailable(job, reason)
            try:
                image = await self._generate(job)
                cost = self.provider.estimate_cost(job.spec)
                entry = await asyncio.to_thread(self._store, job.spec, image, cost)
            except _Capped:
                return await self._fallback(job, "max_new_images reached")
            except _Stopped:
                if self._disabled:
                    return await self._unavailable(job, self._disabled)
                return Outcome(key, "failed")
            except ProviderError as exc:
                if exc.status is not None and self.provider.paid:
                    self._refund()  # the API answered with an error: nothing was billed
                if exc.status == 401 or exc.code in ("invalid_api_key", "insufficient_quota"):
                    self._disabled = self._clean(exc.message)  # no other request would fare better
                return await self._failed(job, exc.message)
            except imaging.ImageError as exc:
                return await self._failed(job, f"the API's answer is not an acceptable image: {exc}")
            with self._lock:
                if cost is None:
                    self.stats.cost_known = False
                else:
                    self.stats.cost += cost
            return Outcome(key, "generated", entry)
        finally:
            claim.release()

    def _reserve(self) -> bool:
        """Count a paid image against max_new_images before asking for it."""
        with self._lock:
            if self._paid_started >= self.max_new_images:
                self.stats.skipped_by_cap += 1
                return False
            self._paid_started += 1
            return True

    def _refund(self) -> None:
        with self._lock:
            self._paid_started -= 1

    def _try_claim(self, job: _Job) -> tuple[Any, Entry | None] | None:
        """Claim the key and look again under the claim: another build may have just made it."""
        claim = self.cache.try_claim(job.spec.key)
        if claim is None:
            return None
        try:
            return claim, None if job.force else self.cache.get(job.spec.key)
        except BaseException:
            claim.release()
            raise

    async def _claim(self, job: _Job) -> tuple[Any, Entry | None]:
        deadline = time.monotonic() + CLAIM_TIMEOUT
        while True:
            claimed = await asyncio.to_thread(self._try_claim, job)
            if claimed is not None:
                return claimed
            if time.monotonic() > deadline:
                raise CacheError(
                    f"another build has held the claim on image {job.spec.key} for {CLAIM_TIMEOUT:g} s"
                )
            await asyncio.sleep(CLAIM_POLL)

    async def _generate(self, job: _Job) -> GeneratedImage:
        occurrence = job.occurrences[0]
        request = GenerationRequest(
            spec=job.spec,
            moderation=occurrence.moderation,
            source_path=occurrence.source_path,
            mask_path=occurrence.mask_path,
        )
        loop = asyncio.get_running_loop()
        attempt = 0
        reserved = False
        while True:
            pause = self._pause_until - loop.time()
            if pause > 0:  # the server asked everyone to wait (Retry-After), not just one job
                await asyncio.sleep(pause)
            try:
                assert self._requests is not None
                async with self._requests:
                    # Re-checked here: while this job waited for a slot, another may have learnt
                    # that the key is refused, or failed a build that must stop.
                    if self._disabled or self._halted:
                        raise _Stopped()
                    # Counted when the request is about to leave, so refunds of failed ones
                    # (below) come back before later jobs are turned away.
                    if self.provider.paid and not reserved:
                        if not self._reserve():
                            raise _Capped()
                        reserved = True
                    return await self.provider.generate(request)
            except ProviderError as exc:
                if not exc.retryable or attempt >= self.max_retries:
                    if exc.retryable:
                        exc.message = f"{exc.message} (gave up after {attempt + 1} attempts)"
                    raise
                delay = self._delay(attempt, exc.retry_after)
                if exc.retry_after is not None:
                    self._pause_until = max(self._pause_until, loop.time() + delay)
                attempt += 1
                self.log.info(
                    self._clean(
                        f"{job.where}: {exc.message}; retry {attempt} of {self.max_retries} in {delay:.1f} s"
                    )
                )
                await asyncio.sleep(delay)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter; the server's Retry-After wins when it gives one."""
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER)
        return min(8.0, self.backoff * 2**attempt) * random.uniform(0.75, 1.0)

    def _store(self, spec: ImageSpec, image: GeneratedImage, cost: float | None) -> Entry:
        """Verify, crop and store an answer: one trip to a worker thread."""
        data, meta = self._finalize(spec, image)
        meta["cost"] = cost
        return self.cache.put(spec.key, data, meta)

    @staticmethod
    def _finalize(spec: ImageSpec, image: GeneratedImage) -> tuple[bytes, dict[str, Any]]:
        if image.exact:
            width, height = spec.dimensions or (1024, 1024)
            data, fmt = image.data, spec.format
        else:
            dims = spec.dimensions
            data, info = imaging.finalize(
                image.data,
                width=dims[0] if dims else None,
                height=dims[1] if dims else None,
                fmt=spec.format,
                quality=spec.output_compression,
            )
            width, height, fmt = info.width, info.height, info.format
        meta = {
            "provider": spec.provider,
            "model": spec.model,
            "prompt": spec.prompt,
            "size": spec.size,
            "format": fmt,
            "width": width,
            "height": height,
            **image.info,
        }
        return data, meta

    # -- when no real image can be had -------------------------------------------------------------
    async def _unavailable(self, job: _Job, reason: str) -> Outcome:
        with self._lock:
            first, self._unavailable_announced = not self._unavailable_announced, True
        if self.on_error == "fail":
            self._halted = True
            return Outcome(job.spec.key, "failed", error=f"{job.where}: {reason}" if first else None)
        if first:
            self.log.warning(f"{reason}. Images that are not cached get placeholders in this build")
        return await self._fallback(job, "the provider cannot generate (see the message above)")

    async def _failed(self, job: _Job, message: str) -> Outcome:
        text = self._clean(f"{job.where}: {message}")
        if self.on_error == "fail":
            self._halted = True
            return Outcome(job.spec.key, "failed", error=text)
        self.log.warning(f"{text}; a placeholder is shown instead")
        return await self._fallback(job, self._clean(message))

    async def _fallback(self, job: _Job, reason: str) -> Outcome:
        """A placeholder for a key that has no real image; kept apart from real images."""
        key = job.spec.key
        entry = await asyncio.to_thread(self.cache.get, key, fallback=True)
        if entry is None:
            label = f"placeholder — not generated: {reason}"
            data = await asyncio.to_thread(render_spec, job.spec, label=label[:120], tone="error")
            width, height = job.spec.dimensions or (1024, 1024)
            meta = {
                "provider": "placeholder",
                "model": None,
                "prompt": job.spec.prompt,
                "size": job.spec.size,
                "format": job.spec.format,
                "width": width,
                "height": height,
                "reason": reason,
            }
            entry = await asyncio.to_thread(self.cache.put, key, data, meta, fallback=True)
        return Outcome(key, "fallback", entry, error=f"{job.where}: {reason}")


def open_engine(plugin_config: Any, cache_dir: str, *, frozen: bool) -> Engine:
    """The cache, provider and engine of one build or one CLI run, from the plugin's options."""
    from .providers import make_provider

    cache = ImageCache(cache_dir)
    return Engine(
        cache,
        make_provider(plugin_config),
        concurrency=plugin_config["concurrency"],
        on_error=plugin_config["on_error"],
        max_new_images=plugin_config["max_new_images"],
        max_retries=plugin_config["max_retries"],
        frozen=frozen,
    )
