"""Whether to retry an HTTP answer and after how long: openai-python's rules, as one pure function.

Read from openai-python's `_base_client.py` (`_parse_retry_after_header`, `_should_retry`,
`_calculate_retry_timeout`): a server delay over two minutes means no retry at all; otherwise the
`x-should-retry` header wins; otherwise 408, 409, 429 and 5xx are retried. A delay the server
gives is honoured when 0 < delay <= 120 s; 0, negative, unparsable or past values fall back to
the caller's exponential backoff (None here).
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

MAX_RETRY_AFTER = 120.0
RETRY_STATUSES = frozenset({408, 409, 429})


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    delay: float | None  # seconds the server asked for; None: the caller backs off itself
    reason: str = ""


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds from `retry-after-ms`, else `Retry-After` (seconds or an HTTP date); may be <= 0."""
    lower = {k.lower(): v for k, v in headers.items()}
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = lower.get(name)
        if value is None:
            continue
        try:
            delay = float(value)
        except ValueError:
            continue
        if math.isnan(delay):
            continue
        if math.isinf(delay):
            return MAX_RETRY_AFTER + 1 if delay > 0 else None
        return delay / divisor
    value = lower.get("retry-after")
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed.timestamp() - (time.time() if now is None else now)


def decide(
    status: int,
    headers: Mapping[str, str],
    *,
    retryable_code: bool | None = None,
    now: float | None = None,
) -> RetryDecision:
    """Retry this answer? `retryable_code` is what the error's code says (None: it says nothing)."""
    delay = parse_retry_after(headers, now)
    if delay is not None and delay > MAX_RETRY_AFTER:
        return RetryDecision(
            False, None, f"the server asked to wait {delay:.0f} s, over {MAX_RETRY_AFTER:g} s"
        )
    should = {k.lower(): v for k, v in headers.items()}.get("x-should-retry", "").strip().lower()
    honoured = delay if delay is not None and 0 < delay <= MAX_RETRY_AFTER else None
    if should == "true":
        return RetryDecision(True, honoured, "x-should-retry: true")
    if should == "false":
        return RetryDecision(False, None, "x-should-retry: false")
    if retryable_code is not None:
        return RetryDecision(retryable_code, honoured if retryable_code else None)
    retry = status in RETRY_STATUSES or status >= 500
    return RetryDecision(retry, honoured if retry else None)
