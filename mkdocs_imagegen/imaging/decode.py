"""Untrusted bytes to pixels, bounded: only PNG, JPEG and WebP, sizes checked before any allocation.

Pillow opens only those three (``Image.open(..., formats=...)``), a declared size is checked
*before* Pillow allocates pixel memory, then the image is fully decoded so truncated downloads
are caught before anything is stored.
"""

from __future__ import annotations

import io
import struct
import threading
import warnings

from PIL import Image, ImageFile, UnidentifiedImageError

from .base import MAX_PIXELS, MAX_SIDE, PNG_MAGIC, ImageError, ImageInfo

MAX_DECODES = 2
"""Images decoded at once in this process, whatever the number of answers in flight: with the
pixel limits below, peak memory stays flat however many large answers arrive together."""
DECODE_SLOTS = threading.BoundedSemaphore(MAX_DECODES)

_PIL_NAMES = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
_PIL_FORMATS = tuple(_PIL_NAMES.values())


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
    if data.startswith(PNG_MAGIC) and len(data) >= 24 and data[12:16] == b"IHDR":
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


def open_image(data: bytes) -> tuple[ImageFile.ImageFile, str]:
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
    if data.startswith(PNG_MAGIC):
        return "PNG"
    return "JPEG" if data.startswith(b"\xff\xd8") else "WEBP"


def load_pixels(img: ImageFile.ImageFile, fmt: str) -> None:
    """Decode all of an opened image, so truncation anywhere in the pixel data is an error."""
    try:
        img.load()
    except Exception as exc:  # OSError, SyntaxError, EOFError, zlib.error...
        raise ImageError(f"truncated or corrupt {_PIL_NAMES[fmt]}") from exc


def load(data: bytes) -> tuple[Image.Image, ImageInfo]:
    """Open and fully decode ``data``."""
    img, fmt = open_image(data)
    load_pixels(img, fmt)
    return img, ImageInfo(fmt, img.width, img.height)


def inspect(data: bytes) -> ImageInfo:
    """Verify that ``data`` is a complete PNG/JPEG/WebP within the size limits.

    Raises ImageError with a short plain reason otherwise.
    """
    with DECODE_SLOTS:
        return load(data)[1]


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
