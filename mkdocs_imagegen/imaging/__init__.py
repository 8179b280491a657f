"""Verify, crop, resize and encode images that come back from an image API.

Everything here treats its input as untrusted: `decode` opens only PNG, JPEG and WebP and
checks sizes before Pillow allocates pixels; `geometry` is the arithmetic of sizes and crops;
`encoding` writes deterministic, metadata-free bytes; `clean` says when an API's bytes may be
published as they are. The steps below string them together.
"""

from __future__ import annotations

from PIL import Image, features

from .base import FORMATS, MAX_PIXELS, MAX_SIDE, MIME_TYPES, ImageError, ImageInfo, normalize_format
from .clean import is_clean
from .decode import (
    DECODE_SLOTS,
    MAX_DECODES,
    check_declared_size,
    declared_size,
    inspect,
    load,
    load_pixels,
    open_image,
)
from .encoding import DEFAULT_QUALITY, PNG_COMPRESS_LEVEL, encode, flatten_on_white, working_mode
from .geometry import closest_size, cover_resize, target_size

__all__ = [
    "DEFAULT_QUALITY",
    "FORMATS",
    "MAX_DECODES",
    "MAX_PIXELS",
    "MAX_SIDE",
    "MIME_TYPES",
    "PNG_COMPRESS_LEVEL",
    "ImageError",
    "ImageInfo",
    "check_declared_size",
    "closest_size",
    "cover",
    "declared_size",
    "encode",
    "finalize",
    "inspect",
    "is_clean",
    "normalize_format",
    "thumbnail",
]


def finalize(
    data: bytes,
    *,
    width: int | None,
    height: int | None,
    fmt: str,
    quality: int | None = None,
) -> tuple[bytes, ImageInfo]:
    """Verify ``data`` and make it exactly the requested size and format.

    A size mismatch is fixed by a centred cover-crop to the target aspect ratio and a
    LANCZOS resize; a format mismatch by re-encoding. When nothing needs to change the
    ORIGINAL bytes come back untouched, so what the API encoded is never re-encoded.
    ``width``/``height`` of None mean "keep what came back" (one None keeps the aspect).
    """
    fmt = normalize_format(fmt)
    with DECODE_SLOTS:
        return _finalize(data, width=width, height=height, fmt=fmt, quality=quality)


def _finalize(
    data: bytes, *, width: int | None, height: int | None, fmt: str, quality: int | None
) -> tuple[bytes, ImageInfo]:
    img, info = load(data)
    target = target_size((info.width, info.height), width, height)
    resized = target != (info.width, info.height)
    if not resized and info.format == fmt and is_clean(data, fmt):
        return data, info

    work = cover_resize(working_mode(img), target) if resized else img
    out = encode(work, fmt, quality=quality)
    return out, ImageInfo(fmt, target[0], target[1])


def cover(data: bytes, width: int, height: int) -> Image.Image:
    """``data`` verified, decoded and cover-cropped to exactly ``width`` x ``height``, in RGB.

    For drawing over (an edit's placeholder shows its source image), never for storing as is.
    """
    img, info = load(data)
    work = working_mode(img)
    work = flatten_on_white(work) if "A" in work.mode else work.convert("RGB")
    if (info.width, info.height) != (width, height):
        work = cover_resize(work, (width, height))
    return work


def thumbnail(data: bytes, max_side: int = 320) -> tuple[bytes, str]:
    """A small preview for a self-contained HTML report: (bytes, mime), WebP when available else PNG."""
    if max_side <= 0:
        raise ValueError(f"max_side must be positive, got {max_side}")
    with DECODE_SLOTS:
        return _thumbnail(data, max_side)


def _thumbnail(data: bytes, max_side: int) -> tuple[bytes, str]:
    img, fmt = open_image(data)
    if fmt == "jpeg":
        # Let libjpeg decode at 1/2..1/8 scale: much faster for a preview.
        img.draft("RGB", (max_side, max_side))
    load_pixels(img, fmt)
    small = working_mode(img)
    small.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    if features.check("webp"):
        return encode(small, "webp", quality=80), MIME_TYPES["webp"]
    return encode(small, "png", compress_level=6), MIME_TYPES["png"]
