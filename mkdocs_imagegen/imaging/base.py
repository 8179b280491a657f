"""What every part of imaging agrees on: the formats, the size limits and the one error."""

from __future__ import annotations

from dataclasses import dataclass

FORMATS = ("png", "jpeg", "webp")
"""Our format names; Pillow calls them PNG/JPEG/WEBP."""

MAX_PIXELS = 64_000_000
"""Decompression-bomb limit on width * height."""

MAX_SIDE = 16384
"""No side may be longer than this, whatever the pixel count."""

MIME_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class ImageError(ValueError):
    """A human-readable reason the bytes are not an acceptable image."""


@dataclass(frozen=True)
class ImageInfo:
    """What a verified image is, so callers never need to reopen it to know."""

    format: str
    width: int
    height: int


def normalize_format(fmt: str) -> str:
    """Map user spellings ("JPG", "Png") onto FORMATS so every caller agrees on one name."""
    name = fmt.strip().lower()
    if name == "jpg":
        name = "jpeg"
    if name not in FORMATS:
        raise ValueError(f"unsupported output format {fmt!r} (choose one of {', '.join(FORMATS)})")
    return name
