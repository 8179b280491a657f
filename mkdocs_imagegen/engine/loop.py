"""The runner: an asyncio loop in a background thread, feeding queued jobs to a bounded pool.

A build submits every directive of the site up front and goes on reading pages while images are
made. Jobs under way (each may hold a claim: an open lock file) are bounded by the number of
workers however large the site, and so is the memory of waiting coroutines; requests in flight
are bounded tighter, by `concurrency` (in `ask`), so a request slot is free again while the
previous answer is verified, cropped and stored.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from collections.abc import Awaitable, Callable

from .jobs import Job


class WorkerPool:
    def __init__(
        self,
        run: Callable[[Job], Awaitable[None]],
        abandon: Callable[[Job], None],
        *,
        concurrency: int,
    ) -> None:
        self._run = run
        self._abandon = abandon  # a queued job that will never run: its waiters must not wait forever
        self.max_workers = max(4 * concurrency, 16)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._queue: collections.deque[Job] = collections.deque()
        self._workers: set[asyncio.Task[None]] = set()
        self._wake_pending = False  # a _start_workers call is scheduled on the loop
        self._active = 0

    def schedule(self, job: Job) -> None:
        """Queue a job; a burst of submissions wakes the loop once, not once per job."""
        loop = self._ensure_loop()
        with self._lock:
            self._queue.append(job)
            # Wake the loop again whenever more workers may start, not only when the queue was
            # empty: a loop that woke for the first job of a burst started one worker only.
            wake = not self._wake_pending and self._active < self.max_workers
            self._wake_pending = self._wake_pending or wake
        if wake:
            loop.call_soon_threadsafe(self._start_workers)

    def close(self, last: Callable[[], Awaitable[None]]) -> None:
        """Abandon what is queued, cancel what runs, then run `last` on the loop and stop it."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        with contextlib.suppress(Exception):  # closing must not mask the build's own error
            asyncio.run_coroutine_threadsafe(self._shutdown(last), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=30)
        loop.close()

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=loop.run_forever, name="imagegen-engine", daemon=True)
                self._thread.start()
                self._loop = loop
            return self._loop

    async def _shutdown(self, last: Callable[[], Awaitable[None]]) -> None:
        with self._lock:
            queued, self._queue = list(self._queue), collections.deque()
        for job in queued:
            self._abandon(job)
        me = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not me]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Cancelling a task does not stop the worker thread it waited for (a claim being taken,
        # an image being stored): let those end, and their clean-up callbacks run, before the
        # cache closes.
        await asyncio.get_running_loop().shutdown_default_executor()
        for _ in range(3):
            await asyncio.sleep(0)
        await last()

    def _start_workers(self) -> None:
        with self._lock:
            self._wake_pending = False
            wanted = min(self.max_workers, self._active + len(self._queue))
            new, self._active = wanted - self._active, max(wanted, self._active)
        for _ in range(new):
            task = asyncio.get_running_loop().create_task(self._worker())
            self._workers.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(self._workers.discard)

    async def _worker(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._active -= 1  # counted here, not in a done-callback that runs later
                    return
                job = self._queue.popleft()
            await self._run(job)
