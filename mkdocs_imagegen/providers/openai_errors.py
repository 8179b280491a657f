"""An Images API's failures as ProviderErrors: what went wrong, in words, and whether a retry may help.

OpenAI's `{"error": {...}}`, Lumenfall's upper-case codes and httpx's own failures all end here, so
the engine sees one kind of error and every message is scrubbed (no key, no control characters).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import httpx

from .. import models
from . import ProviderError, clean_text
from .retry import RETRY_STATUSES, decide, parse_retry_after

MAX_ERROR_CHARS = 300
# Error codes that mean no other request of this run would fare better (OpenAI's, Lumenfall's):
# the account has no money left, or the key is not accepted.
BALANCE_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached", "INSUFFICIENT_BALANCE"})
KEY_CODES = frozenset({"invalid_api_key", "missing_api_key", "account_deactivated", "AUTHENTICATION_FAILED"})
STOP_CODES = BALANCE_CODES | KEY_CODES
# Lumenfall's codes that say a retry may help (whatever the HTTP status).
RETRY_CODES = frozenset({"RATE_LIMITED", "ALL_PROVIDERS_EXHAUSTED"})
GONE_CODES = frozenset({"model_not_found", "MODEL_NOT_FOUND", "MODEL_DISABLED"})

Scrub = Callable[[str], str]


@contextlib.contextmanager
def transport_errors(subject: str, timeout: float, scrub: Scrub) -> Iterator[None]:
    """httpx's failures as ProviderErrors that say what failed and whether a retry may help."""
    try:
        yield
    except httpx.TooManyRedirects:
        raise ProviderError(f"{subject} redirected too many times", code="redirect_loop") from None
    except httpx.TimeoutException:
        raise ProviderError(
            f"{subject} did not answer within {timeout:g} s (timeout)",
            code="timeout",
            retryable=True,
        ) from None
    except httpx.TransportError as exc:
        raise ProviderError(
            f"{subject} could not be reached: {scrub(str(exc)) or type(exc).__name__}",
            code="connection_error",
            retryable=True,
        ) from None


def api_error(
    response: httpx.Response,
    model: str | None,
    *,
    base_url: str,
    api_key_env: str,
    provider: str,
    scrub: Scrub,
) -> ProviderError:
    """The error an answer of HTTP 400 or more stands for; `model` is the one that was asked."""
    status = response.status_code
    message, code = error_detail(response, scrub)
    detail = scrub(f"{message} ({code})" if code else message or response.reason_phrase)
    retryable_code: bool | None = None
    if code in RETRY_CODES:
        retryable_code = True
    elif code in STOP_CODES or code in GONE_CODES:
        retryable_code = False
    decision = decide(status, response.headers, retryable_code=retryable_code)
    stop = status in (401, 402) or code in STOP_CODES  # 402: Payment Required
    if code in BALANCE_CODES or (status == 402 and code not in KEY_CODES):
        text = (
            f"the account behind {api_key_env} has no credit left at {base_url} "
            f"(HTTP {status}): {detail}. Top it up, then build again; nothing more is asked this run"
        )
    elif code == "account_deactivated":
        text = (
            f"the account behind {api_key_env} is deactivated at {base_url} (HTTP {status}): {detail}. "
            f"Set {api_key_env} to the key of an active account; nothing more is asked this run"
        )
    elif stop:
        text = (
            f"the API rejected the key in {api_key_env} (HTTP {status}): {detail}. "
            f"Set {api_key_env} to a valid key"
        )
    elif code == "moderation_blocked" or "safety system" in message:
        text = f"the prompt was refused by the provider's safety system (HTTP {status}): {detail}"
    elif code in GONE_CODES or (status == 404 and "model" in message.lower()):
        code = code or "model_not_found"
        known = models.find(model)
        elsewhere = (
            "; provider: lumenfall still serves it"
            if known is not None and known.lumenfall and provider != "lumenfall"
            else ""
        )
        text = (
            f"model '{model}' is not served at {base_url} (HTTP {status}): {detail}. "
            f"It may have been retired: set another model: (see the README's model table){elsewhere}; "
            "cached images keep working"
        )
    else:
        text = f"the API answered HTTP {status}: {detail}"
    if not decision.retry and decision.reason and (status in RETRY_STATUSES or status >= 500):
        text += f" (not retried: {decision.reason})"
    return ProviderError(
        text, code=code, status=status, retryable=decision.retry, retry_after=decision.delay, stop=stop
    )


def retry_after(headers: httpx.Headers) -> float | None:
    """Seconds the server asked us to wait, when it is a delay openai-python would honour."""
    delay = parse_retry_after(headers)
    return delay if delay is not None and 0 < delay <= 120 else None


def error_detail(response: httpx.Response, scrub: Scrub = clean_text) -> tuple[str, str | None]:
    """(message, code) of an error answer: OpenAI's `{"error": {...}}`, Lumenfall's upper-case codes,
    or, for any other body (a 422's validation details, an HTML page), the body itself, trimmed.

    Everything is scrubbed (control characters, the key) before it is trimmed, never after: a cut
    must never leave a piece of the key behind."""
    message, code = _error_fields(response)
    message = scrub(message)
    if len(message) > MAX_ERROR_CHARS:
        message = message[: MAX_ERROR_CHARS - 1] + "…"
    return message, scrub(code)[:80] if code else None


def _error_fields(response: httpx.Response) -> tuple[str, str | None]:
    try:
        payload = response.json()
    except (ValueError, RecursionError):
        payload = None
    if isinstance(payload, dict):
        err = payload.get("error")
        if isinstance(err, dict) and (err.get("message") or err.get("code")):
            code = err.get("code") or err.get("type")
            return str(err.get("message") or ""), str(code) if code else None
        if isinstance(err, str) and err:
            code = payload.get("code")
            return err, str(code) if isinstance(code, str) else None
        if isinstance(payload.get("code"), str) and isinstance(payload.get("message"), str):
            return payload["message"], payload["code"]
    return " ".join(response.text.split()), None
