"""Pixels to published bytes: deterministic, metadata-free, and encoded with the GIL released."""

from __future__ import annotations

import io
import os
import tempfile

from PIL import Image

from .base import normalize_format

DEFAULT_QUALITY = {"jpeg": 90, "webp": 90}
"""Output quality when the caller gives none: high, since these are final images."""

PNG_COMPRESS_LEVEL = 2
"""zlib level for PNG: 1-3 is several times faster than Pillow's 6 for ~5-15 % larger files."""


def working_mode(img: Image.Image) -> Image.Image:
    """Bring odd modes (palette, 1-bit, 16-bit, CMYK) to L/LA/RGB/RGBA for resampling and saving."""
    mode = img.mode
    if mode in ("RGB", "RGBA", "L", "LA"):
        return img
    if mode.startswith("I") or mode == "F":
        # 16-bit greyscale: scale to 8 bits (a plain convert would clip at 255).
        return img.convert("I").point(lambda v: v / 256).convert("L")
    if mode in ("P", "PA", "1", "La", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"):
        alpha = "A" in mode or "a" in mode or img.has_transparency_data
        if mode == "1" or (mode == "P" and not alpha and _palette_is_grey(img)):
            return img.convert("L")
        return img.convert("RGBA" if alpha else "RGB")
    return img.convert("RGBA" if img.has_transparency_data else "RGB")


def _palette_is_grey(img: Image.Image) -> bool:
    """True when a palette image uses only greys, so it can stay single-channel."""
    palette = img.getpalette("RGB") or []
    return all(palette[i] == palette[i + 1] == palette[i + 2] for i in range(0, len(palette), 3))


def flatten_on_white(img: Image.Image) -> Image.Image:
    """JPEG has no alpha: composite on white instead of letting transparent pixels go black."""
    rgba = img.convert("RGBA")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _save_to_fd(img: Image.Image, fmt: str, **options: object) -> bytes:
    """Save through a real file descriptor so Pillow encodes with the GIL released.

    Pillow's encoders run under ImagingSectionEnter only in ``encode_to_file``, used
    when the target has a fileno(); with BytesIO the JPEG encoder holds the GIL, so two
    threads encoding JPEGs would take turns instead of using two cores. An in-memory
    file (memfd) costs microseconds; the bytes are identical either way.
    """
    try:
        if hasattr(os, "memfd_create"):
            handle = open(os.memfd_create("mkdocs-imagegen", 0), "w+b")  # noqa: SIM115
        else:
            handle = tempfile.TemporaryFile()  # noqa: SIM115
    except OSError:
        out = io.BytesIO()
        img.save(out, fmt, **options)
        return out.getvalue()
    with handle:
        img.save(handle, fmt, **options)
        handle.seek(0)
        return handle.read()


def encode(
    img: Image.Image,
    fmt: str,
    *,
    quality: int | None = None,
    compress_level: int | None = None,
    webp_method: int = 4,
    lossless: bool = False,
) -> bytes:
    """Encode deterministically: same pixels give the same bytes (no timestamps, EXIF, text or ICC).

    ``quality`` (0-100) applies to jpeg/webp; ``compress_level`` (0-9, default
    PNG_COMPRESS_LEVEL) to png. ``webp_method`` trades WebP speed (0) for size (6);
    ``lossless`` selects lossless WebP. JPEG output from an image with alpha is
    composited on white.
    """
    fmt = normalize_format(fmt)
    if quality is not None and not 0 <= quality <= 100:
        raise ValueError(f"quality must be 0-100, got {quality}")
    out = io.BytesIO()
    if fmt == "png":
        if img.mode not in ("1", "L", "LA", "P", "RGB", "RGBA"):
            img = working_mode(img)  # 16-bit and odd modes: published images are 8-bit
        level = PNG_COMPRESS_LEVEL if compress_level is None else compress_level
        # exif/icc_profile are read from img.info unless overridden; keep output metadata-free.
        img.save(out, "PNG", compress_level=level, icc_profile=None, exif=b"")
    elif fmt == "jpeg":
        if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
            img.mode in ("P", "L", "RGB") and img.has_transparency_data
        ):
            img = flatten_on_white(img)
        elif img.mode not in ("L", "RGB"):
            img = working_mode(img)
            if img.mode not in ("L", "RGB"):
                img = flatten_on_white(img)
        q = DEFAULT_QUALITY["jpeg"] if quality is None else quality
        return _save_to_fd(img, "JPEG", quality=q, optimize=False, progressive=False, comment=b"")
    else:
        if img.mode not in ("RGB", "RGBA"):
            img = img.convert("RGBA" if img.has_transparency_data else "RGB")
        q = DEFAULT_QUALITY["webp"] if quality is None else quality
        img.save(out, "WEBP", quality=q, method=webp_method, lossless=lossless)
    return out.getvalue()
