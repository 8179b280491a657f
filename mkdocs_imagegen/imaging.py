"""Verify, crop, resize and encode images that come back from an image API.

Everything here treats its input as untrusted: Pillow opens only PNG, JPEG and WebP
(``Image.open(..., formats=...)``), a declared size is checked *before* Pillow allocates
pixel memory, then the image is fully decoded so truncated downloads are caught before
anything is stored.
"""

from __future__ import annotations

import io
import math
import os
import struct
import tempfile
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from PIL import Image, ImageFile, UnidentifiedImageError, features

__all__ = [
    "FORMATS",
    "MAX_PIXELS",
    "MAX_SIDE",
    "ImageError",
    "ImageInfo",
    "check_declared_size",
    "closest_size",
    "declared_size",
    "encode",
    "finalize",
    "inspect",
    "normalize_format",
    "thumbnail",
]

FORMATS = ("png", "jpeg", "webp")
"""Our format names; Pillow calls them PNG/JPEG/WEBP."""

MAX_PIXELS = 64_000_000
"""Decompression-bomb limit on width * height."""

MAX_SIDE = 16384
"""No side may be longer than this, whatever the pixel count."""

DEFAULT_QUALITY = {"jpeg": 90, "webp": 90}
"""Output quality when the caller gives none: high, since these are final images."""

PNG_COMPRESS_LEVEL = 2
"""zlib level for PNG: 1-3 is several times faster than Pillow's 6 for ~5-15 % larger files."""

MIME_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}

MAX_DECODES = 2
"""Images decoded at once in this process, whatever the number of answers in flight: with the
pixel limits below, peak memory stays flat however many large answers arrive together."""
_DECODE_SLOTS = threading.BoundedSemaphore(MAX_DECODES)

_PIL_NAMES = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
_PIL_FORMATS = tuple(_PIL_NAMES.values())
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


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


# --------------------------------------------------------------------------- sniffing


def _foreign_format(data: bytes) -> str | None:
    """Pillow's name for some other image format, using only its cheap prefix tests.

    Only the plugins' ``accept`` functions run, so a hostile GIF or TIFF is never parsed.
    """
    prefix = data[:16]
    Image.init()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in Image.ID:
            _factory, accept = Image.OPEN[name]
            try:
                if accept is not None and accept(prefix) is True:
                    return name
            except Exception:  # a plugin's sniffing quirk is not our error
                continue
    return None


def _header_size(data: bytes) -> tuple[int, int] | None:
    """Declared canvas size read straight from a PNG or WebP header, before Pillow parses it.

    WebP needs this because libwebp allocates the whole canvas as soon as the file is
    parsed; PNG's IHDR is trivial. JPEG is left to Pillow, whose parser reads only the
    markers and allocates nothing until load().
    """
    if data.startswith(_PNG_MAGIC) and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
            w, h = struct.unpack("<HH", data[26:30])
            return w & 0x3FFF, h & 0x3FFF
        if chunk == b"VP8L" and data[20] == 0x2F:
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if chunk == b"VP8X":
            w = int.from_bytes(data[24:27], "little") + 1
            h = int.from_bytes(data[27:30], "little") + 1
            return w, h
    return None


def _check_size(width: int, height: int) -> None:
    """Reject absurd sizes before any pixel memory exists."""
    if width <= 0 or height <= 0:
        raise ImageError(f"image has an empty size ({width}x{height})")
    if width * height > MAX_PIXELS:
        raise ImageError(f"image is {width}x{height} pixels, over the {MAX_PIXELS}-pixel limit")
    if width > MAX_SIDE or height > MAX_SIDE:
        raise ImageError(f"image is {width}x{height} pixels, over the {MAX_SIDE}-pixel side limit")


def _open(data: bytes) -> tuple[ImageFile.ImageFile, str]:
    """Open (but do not decode) ``data`` as one of FORMATS, and no other, with Pillow.

    Our own size limit applies first, from the header where that is cheap; Pillow's global
    MAX_IMAGE_PIXELS is neither relied on nor changed.
    """
    if not data:
        raise ImageError("no image data (0 bytes)")
    declared = _header_size(data)
    if declared is not None:
        _check_size(*declared)
    try:
        img = Image.open(io.BytesIO(data), formats=_PIL_FORMATS)
    except UnidentifiedImageError:
        other = _foreign_format(data)
        if other is not None:
            raise ImageError(f"unsupported image format {other}") from None
        # Never the bytes themselves: they may be anything (a page from an internal address).
        raise ImageError(f"not an image ({len(data)} bytes that are not PNG, JPEG or WebP)") from None
    except Image.DecompressionBombError:  # a JPEG whose size only its parser knows
        raise ImageError(f"image is over the {MAX_PIXELS}-pixel limit") from None
    except Exception as exc:  # any parser failure means "bad bytes"
        raise ImageError(f"truncated or corrupt {_guess_name(data)}") from exc
    assert isinstance(img, ImageFile.ImageFile) and img.format in _PIL_FORMATS
    # The header parse may have found a size our cheap reader could not (JPEG).
    _check_size(*img.size)
    return img, img.format.lower()


def _guess_name(data: bytes) -> str:
    """What a corrupt file claims to be, for the message."""
    if data.startswith(_PNG_MAGIC):
        return "PNG"
    return "JPEG" if data.startswith(b"\xff\xd8") else "WEBP"


def _load(data: bytes) -> tuple[Image.Image, ImageInfo]:
    """Open and fully decode, so truncation anywhere in the pixel data is an error."""
    img, fmt = _open(data)
    try:
        img.load()
    except Exception as exc:  # OSError, SyntaxError, EOFError, zlib.error...
        raise ImageError(f"truncated or corrupt {_PIL_NAMES[fmt]}") from exc
    return img, ImageInfo(fmt, img.width, img.height)


def inspect(data: bytes) -> ImageInfo:
    """Verify that ``data`` is a complete PNG/JPEG/WebP within the size limits.

    Raises ImageError with a short plain reason otherwise.
    """
    with _DECODE_SLOTS:
        return _load(data)[1]


def declared_size(data: bytes) -> tuple[int, int] | None:
    """The canvas size an image's header declares, read without decoding; None if not an image."""
    size = _header_size(data)
    if size is None and data.startswith(b"\xff\xd8\xff"):
        try:
            with Image.open(io.BytesIO(data), formats=("JPEG",)) as img:  # markers only, no pixels
                size = img.size
        except Exception:
            return None
    return size


def check_declared_size(data: bytes, asked: tuple[int, int] | None, *, factor: int = 4) -> None:
    """Refuse an image declaring far more pixels than were asked for, before anything decodes it.

    A 2.5 KB WebP can declare 16383x3906 pixels (a quarter of a gigabyte once decoded); an answer
    to a 1024x1024 request has no business being more than `factor` times that.
    """
    size = declared_size(data)
    if size is None:
        return  # not an image at all: verification says so
    limit = factor * asked[0] * asked[1] if asked else 4096 * 4096
    width, height = size
    if width * height > limit:
        wanted = f"{asked[0]}x{asked[1]}" if asked else "auto"
        raise ImageError(
            f"image declares {width}x{height} pixels, far more than the {wanted} asked for "
            f"(at most {limit} pixels)"
        )


# --------------------------------------------------------------------------- geometry


def closest_size(width: int, height: int, supported: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """The supported size whose aspect ratio is nearest to width:height.

    Distance is the ratio between the two aspect ratios (symmetric, like a log
    distance) computed exactly with fractions, so ties are real ties; a tie goes to
    the larger size so the result is downscaled rather than upscaled.
    """
    if not supported:
        raise ValueError("no supported sizes to choose from")
    if width <= 0 or height <= 0:
        raise ValueError(f"size must be positive, got {width}x{height}")

    def key(size: tuple[int, int]) -> tuple[Fraction, int, int]:
        sw, sh = size
        ratio = Fraction(width * sh, height * sw)
        return (max(ratio, 1 / ratio), -(sw * sh), -sw)

    return min(supported, key=key)


def _target_size(src: tuple[int, int], width: int | None, height: int | None) -> tuple[int, int]:
    """Resolve None ("auto") sides: both None keeps the source, one None keeps its aspect."""
    sw, sh = src
    if width is None and height is None:
        return sw, sh
    if width is None:
        assert height is not None
        width = max(1, round(sw * height / sh))
    elif height is None:
        height = max(1, round(sh * width / sw))
    if width <= 0 or height <= 0:
        raise ValueError(f"target size must be positive, got {width}x{height}")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise ValueError(f"target size {width}x{height} is over the size limit")
    return width, height


def _cover_box(src: tuple[int, int], dst: tuple[int, int]) -> tuple[float, float, float, float]:
    """The centred source region with the target's aspect ratio (a "cover" crop)."""
    sw, sh = src
    tw, th = dst
    if sw * th > tw * sh:  # source is wider: trim left and right
        cw = sh * tw / th
        x0 = (sw - cw) / 2
        return (x0, 0.0, x0 + cw, float(sh))
    ch = sw * th / tw  # source is taller (or equal): trim top and bottom
    y0 = (sh - ch) / 2
    return (0.0, y0, float(sw), y0 + ch)


# --------------------------------------------------------------------------- encoding


def _working_mode(img: Image.Image) -> Image.Image:
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


def _flatten_on_white(img: Image.Image) -> Image.Image:
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
            img = _working_mode(img)  # 16-bit and odd modes: published images are 8-bit
        level = PNG_COMPRESS_LEVEL if compress_level is None else compress_level
        # exif/icc_profile are read from img.info unless overridden; keep output metadata-free.
        img.save(out, "PNG", compress_level=level, icc_profile=None, exif=b"")
    elif fmt == "jpeg":
        if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
            img.mode in ("P", "L", "RGB") and img.has_transparency_data
        ):
            img = _flatten_on_white(img)
        elif img.mode not in ("L", "RGB"):
            img = _working_mode(img)
            if img.mode not in ("L", "RGB"):
                img = _flatten_on_white(img)
        q = DEFAULT_QUALITY["jpeg"] if quality is None else quality
        return _save_to_fd(img, "JPEG", quality=q, optimize=False, progressive=False, comment=b"")
    else:
        if img.mode not in ("RGB", "RGBA"):
            img = img.convert("RGBA" if img.has_transparency_data else "RGB")
        q = DEFAULT_QUALITY["webp"] if quality is None else quality
        img.save(out, "WEBP", quality=q, method=webp_method, lossless=lossless)
    return out.getvalue()


# --------------------------------------------------------------------------- pipeline


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
    with _DECODE_SLOTS:
        return _finalize(data, width=width, height=height, fmt=fmt, quality=quality)


def _finalize(
    data: bytes, *, width: int | None, height: int | None, fmt: str, quality: int | None
) -> tuple[bytes, ImageInfo]:
    img, info = _load(data)
    target = _target_size((info.width, info.height), width, height)
    resized = target != (info.width, info.height)
    if not resized and info.format == fmt and is_clean(data, fmt):
        return data, info

    work = _cover_resize(_working_mode(img), target) if resized else img
    out = encode(work, fmt, quality=quality)
    return out, ImageInfo(fmt, target[0], target[1])


def _cover_resize(work: Image.Image, target: tuple[int, int]) -> Image.Image:
    """A centred cover-crop to the target's aspect ratio, then a LANCZOS resize."""
    x0, y0, x1, y1 = _cover_box(work.size, target)
    # Crop to whole pixels first: resize() alone would let LANCZOS sample the
    # discarded margins and bleed them into the edges. The fractional remainder
    # of the box keeps the centring exact.
    bounds = (math.floor(x0), math.floor(y0), math.ceil(x1), math.ceil(y1))
    if bounds != (0, 0, work.width, work.height):
        work = work.crop(bounds)
    box = (x0 - bounds[0], y0 - bounds[1], x1 - bounds[0], y1 - bounds[1])
    return work.resize(target, Image.Resampling.LANCZOS, box=box)


def cover(data: bytes, width: int, height: int) -> Image.Image:
    """``data`` verified, decoded and cover-cropped to exactly ``width`` x ``height``, in RGB.

    For drawing over (an edit's placeholder shows its source image), never for storing as is.
    """
    img, info = _load(data)
    work = _working_mode(img)
    work = _flatten_on_white(work) if "A" in work.mode else work.convert("RGB")
    if (info.width, info.height) != (width, height):
        work = _cover_resize(work, (width, height))
    return work


def thumbnail(data: bytes, max_side: int = 320) -> tuple[bytes, str]:
    """A small preview for a self-contained HTML report: (bytes, mime), WebP when available else PNG."""
    if max_side <= 0:
        raise ValueError(f"max_side must be positive, got {max_side}")
    with _DECODE_SLOTS:
        return _thumbnail(data, max_side)


def _thumbnail(data: bytes, max_side: int) -> tuple[bytes, str]:
    img, fmt = _open(data)
    if fmt == "jpeg":
        # Let libjpeg decode at 1/2..1/8 scale: much faster for a preview.
        img.draft("RGB", (max_side, max_side))
    try:
        img.load()
    except Exception as exc:
        raise ImageError(f"truncated or corrupt {_PIL_NAMES[fmt]}") from exc
    small = _working_mode(img)
    small.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    if features.check("webp"):
        return encode(small, "webp", quality=80), MIME_TYPES["webp"]
    return encode(small, "png", compress_level=6), MIME_TYPES["png"]


# --------------------------------------------------------------------------- clean bytes

# PNG chunks a published image may carry as the API sent it: pixels, colour, and C2PA content
# credentials (caBX). Text (tEXt, zTXt, iTXt), EXIF, animation (acTL, fcTL, fdAT) and anything
# unknown make the image be re-encoded from its pixels instead.
_PNG_KEEP = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT"}
_PNG_KEEP |= {b"pHYs", b"bKGD", b"caBX"}
# JPEG segments kept: JFIF (APP0), ICC (APP2), Adobe (APP14), C2PA/JUMBF (APP11), and the coding
# segments. EXIF/XMP (APP1), comments (COM) and other application data are not.
_JPEG_KEEP_APP = {0xE0, 0xE2, 0xEB, 0xEE}
_WEBP_KEEP = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ICCP", b"C2PA"}


def is_clean(data: bytes, fmt: str) -> bool:
    """True when `data` may be published byte for byte: one still 8-bit image, nothing after its
    end, no text or EXIF/XMP metadata. C2PA content credentials are allowed (and so kept)."""
    try:
        if fmt == "png":
            return _png_clean(data)
        if fmt == "jpeg":
            return _jpeg_clean(data)
        if fmt == "webp":
            return _webp_clean(data)
    except (IndexError, struct.error):
        return False
    return False


def _png_clean(data: bytes) -> bool:
    if not data.startswith(_PNG_MAGIC) or data[12:16] != b"IHDR" or data[24] > 8:
        return False
    pos = 8
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        if kind not in _PNG_KEEP:
            return False
        pos += 12 + length
        if kind == b"IEND":
            return pos == len(data)
    return False


def _jpeg_clean(data: bytes) -> bool:
    if not data.startswith(b"\xff\xd8"):
        return False
    pos = 2
    while pos + 2 <= len(data):
        if data[pos] != 0xFF:
            return False
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:  # EOI: nothing may follow
            return pos + 2 == len(data)
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        if marker == 0xFE or (0xE0 <= marker <= 0xEF and marker not in _JPEG_KEEP_APP):
            return False
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        pos += 2 + length
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next real marker
            while True:
                pos = data.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= len(data):
                    return False
                following = data[pos + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7:
                    pos += 2
                    continue
                break
    return False


def _webp_clean(data: bytes) -> bool:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return False
    (riff_size,) = struct.unpack("<I", data[4:8])
    if riff_size + 8 != len(data):
        return False  # bytes after the RIFF container (or a lying size)
    pos = 12
    while pos + 8 <= len(data):
        kind = data[pos : pos + 4]
        (length,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        if kind not in _WEBP_KEEP:
            return False  # ANIM/ANMF (animation), EXIF, XMP, unknown
        if kind == b"VP8X" and data[pos + 8] & 0x0E:
            return False  # flags: animation, EXIF, XMP (ICC and alpha are fine)
        pos += 8 + length + (length & 1)
    return pos == len(data)
