"""When to ask again: one small pure policy, and the pause that every job shares."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..providers import ProviderError

# The provider already refuses longer waits (providers.retry, as openai-python): this bounds a bad one.
MAX_RETRY_AFTER = 120.0
MAX_BACKOFF = 8.0


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter; the server's Retry-After wins when it gives one."""

    max_retries: int = 3
    backoff: float = 0.5
    jitter: Callable[[], float] = field(default=lambda: random.uniform(0.75, 1.0), compare=False)

    def delay(self, error: ProviderError, attempt: int) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None to give up now."""
        if not error.retryable or attempt >= self.max_retries:
            return None
        if error.retry_after is not None:
            return min(error.retry_after, MAX_RETRY_AFTER)
        backoff: float = min(MAX_BACKOFF, self.backoff * 2**attempt)
        return backoff * self.jitter()

    @staticmethod
    def shared(error: ProviderError) -> bool:
        """A Retry-After is the server asking every job to wait, not just this one."""
        return error.retry_after is not None


class Pause:
    """A moment before which no job sends a request."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until = 0.0
        self._lock = threading.Lock()

    def extend(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, self._clock() + seconds)

    def remaining(self) -> float:
        return max(0.0, self._until - self._clock())
