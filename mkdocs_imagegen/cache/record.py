"""What a cache entry is: its key, its metadata record, and the checks that record must pass.

A record comes back from a directory anyone may have written, so it is parsed as JSON text and
checked as plain data (types and bounds) before any of it is used.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from dataclasses import dataclass
from typing import Any

REAL, FALLBACK = "img", "fb"
KEY_RE = re.compile(r"^[0-9A-Za-z_ -]{1,128}$")  # a spec key is 32 hex digits; never a path part
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
MAX_META_CHARS = 256 * 1024  # a record is a few hundred bytes; a megabyte of JSON is an attack
MAX_IMAGE_BYTES = 256 * 1024 * 1024
MAX_SIDE = 16384
MAGIC = {"png": (b"\x89PNG\r\n\x1a\n",), "jpeg": (b"\xff\xd8\xff",), "webp": (b"RIFF",)}
_OPTIONAL_TEXT = ("provider", "model", "prompt", "size", "created", "revised_prompt", "reason")


class CacheError(RuntimeError):
    """The cache directory cannot be used; the message names it and says what to do."""


@dataclass(frozen=True)
class Entry:
    key: str
    path: str  # the file that holds the image bytes (a pinned copy when the cache pins)
    meta: dict[str, Any]
    fallback: bool = False

    @property
    def width(self) -> int:
        return int(self.meta["width"])

    @property
    def height(self) -> int:
        return int(self.meta["height"])


def validate_meta(text: Any) -> dict[str, Any]:
    """Parse and check a metadata record; raise ValueError saying what is wrong with it."""
    if not isinstance(text, str):
        raise ValueError("not text")
    if len(text) > MAX_META_CHARS:
        raise ValueError(f"{len(text)} characters, over {MAX_META_CHARS}")
    try:
        meta = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if not isinstance(meta, dict):
        raise ValueError(f"a {type(meta).__name__}, not a mapping")
    if meta.get("format") is not None and meta["format"] not in MAGIC:
        raise ValueError(f"format {meta.get('format')!r} is not png, jpeg or webp")
    for name in ("width", "height"):
        if not _whole(meta.get(name), 1, MAX_SIDE):
            raise ValueError(f"{name} {meta.get(name)!r} is not a whole number from 1 to {MAX_SIDE}")
    if not _whole(meta.get("bytes"), 1, MAX_IMAGE_BYTES):
        raise ValueError(f"bytes {meta.get('bytes')!r} is not a size from 1 to {MAX_IMAGE_BYTES}")
    if not isinstance(meta.get("sha256"), str) or not _SHA_RE.match(meta["sha256"]):
        raise ValueError("sha256 is not a SHA-256 digest")
    for name in _OPTIONAL_TEXT:
        if meta.get(name) is not None and not isinstance(meta[name], str):
            raise ValueError(f"{name} is not text")
    cost = meta.get("cost")
    if cost is not None and (
        isinstance(cost, bool) or not isinstance(cost, (int, float)) or not math.isfinite(cost) or cost < 0
    ):
        raise ValueError(f"cost {cost!r} is not an amount")
    if meta.get("usage") is not None and not isinstance(meta["usage"], dict):
        raise ValueError("usage is not a mapping")
    return meta


def new_record(key: str, data: bytes, meta: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The record of new image bytes, as checked data and as the JSON text the index keeps.

    It passes the same checks as a record read back, so the cache never writes what it would drop.
    """
    meta = {**meta, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    meta.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    try:
        text = json.dumps(meta, ensure_ascii=False, allow_nan=False)
        return validate_meta(text), text
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"cannot store the metadata of image {key}: {exc}") from None


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
