"""Reading what an Images API answered: the image, and only plain, bounded, scrubbed data besides.

An answer may be anything (a gateway's page, a hostile server's JSON): nothing of it is kept or
shown unless it has the expected shape, and its text is scrubbed and cut before it is stored.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from .. import imaging, options
from ..spec import ImageSpec
from . import GeneratedImage, ProviderError, clean_text
from .openai_errors import Scrub
from .openai_request import api_size

MAX_DECLARED_FACTOR = 4  # an answer may hold up to 4x the pixels asked for, never more
MAX_STORED_TEXT = 4000  # revised_prompt
MAX_USAGE_CHARS = 4096
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


async def read_image(
    response: httpx.Response, spec: ImageSpec, *, scrub: Scrub, fetch: Callable[[str], Awaitable[bytes]]
) -> GeneratedImage:
    """The image of a successful answer, as b64_json or as a URL that `fetch` downloads."""
    payload, item = _first_item(response)
    info: dict[str, Any] = {}
    if isinstance(item.get("revised_prompt"), str) and item["revised_prompt"].strip():
        info["revised_prompt"] = scrub(item["revised_prompt"])[:MAX_STORED_TEXT]
    usage = _plain(payload.get("usage"), scrub) if isinstance(payload, dict) else None
    if isinstance(usage, dict) and len(json.dumps(usage)) <= MAX_USAGE_CHARS:
        info["usage"] = usage
    if isinstance(item.get("b64_json"), str):
        try:
            data = base64.b64decode(item["b64_json"], validate=True)
        except (binascii.Error, ValueError):
            raise ProviderError(
                "the API answered with invalid base64 image data", code="invalid_base64"
            ) from None
    elif isinstance(item.get("url"), str):
        data = await fetch(item["url"])
    else:
        raise ProviderError("the API answer has neither b64_json nor url", code="invalid_response")
    asked = options.parse_size(api_size(spec))
    try:
        imaging.check_declared_size(data, asked, factor=MAX_DECLARED_FACTOR)
    except imaging.ImageError as exc:
        raise ProviderError(
            f"the API's answer is not an acceptable image: {exc}", code="invalid_image"
        ) from None
    return GeneratedImage(data=data, info=info, cost=reported_cost(payload))


def _first_item(response: httpx.Response) -> tuple[Any, dict[str, Any]]:
    try:
        payload = json.loads(response.content)
        item = payload["data"][0]
        if not isinstance(item, dict):
            raise TypeError
    except (ValueError, KeyError, IndexError, TypeError, RecursionError):
        # Never the answer's bytes: they may be anything (a page from an internal address).
        kind = clean_text(response.headers.get("content-type", "unknown"))[:60]
        raise ProviderError(
            f"the API answered {response.status_code} with something that is not an image answer "
            f"(content-type {kind}, {len(response.content)} bytes)",
            code="invalid_response",
        ) from None
    return payload, item


def reported_cost(payload: Any) -> float | None:
    """The cost a gateway reports with its answer (Lumenfall: `metadata.cost`), or None."""
    if not isinstance(payload, dict):
        return None
    for holder in (payload.get("metadata"), payload):
        if isinstance(holder, dict):
            for name in ("cost", "estimated_cost"):
                value = holder.get(name)
                if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1000:
                    return float(value)
    return None


def shutdown_dates(data: Any) -> dict[str, str]:
    """`GET /models`'s `data`: model id -> shutdown_date (ISO, or a Unix time) where one is listed."""
    dates: dict[str, str] = {}
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        value = item.get("shutdown_date")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                value = datetime.datetime.fromtimestamp(value, datetime.timezone.utc).date().isoformat()
            except (OverflowError, OSError, ValueError):
                continue
        if isinstance(value, str) and _ISO_DATE.match(value):
            dates[item["id"][:200]] = value[:10]
    return dates


def _plain(value: Any, scrub: Scrub, depth: int = 0) -> Any:
    """JSON-plain data (mappings, lists, text, numbers) at most 4 levels deep, text scrubbed; else None."""
    if depth > 4:
        return None
    if isinstance(value, dict):
        out = {}
        for key, item in list(value.items())[:50]:
            clean = _plain(item, scrub, depth + 1)
            if clean is not None:
                out[scrub(str(key))[:100]] = clean
        return out
    if isinstance(value, list):
        return [x for x in (_plain(item, scrub, depth + 1) for item in value[:50]) if x is not None]
    if isinstance(value, str):
        return scrub(value)[:200]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else None
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    return None
