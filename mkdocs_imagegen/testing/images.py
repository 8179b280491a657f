"""Images the fake API hands out: solid colours by prompt, exact sizes, and hostile bytes."""

from __future__ import annotations

import functools
import hashlib
import io
import re
import struct
import zlib
from dataclasses import dataclass
from typing import Any

from PIL import Image

from .script import RecordedRequest, _BadRequest

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
_SIZE_RE = re.compile(r"^(\d{1,5})x(\d{1,5})$")
_MAX_SIDE = 4096


def colour_for(prompt: str, index: int = 0) -> tuple[int, int, int]:
    """The RGB colour of image ``index`` generated for ``prompt``."""
    key = prompt if index == 0 else f"{prompt}\x00{index}"
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return digest[0], digest[1], digest[2]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


@functools.lru_cache(maxsize=16)
def _zero_rows_deflate(width: int, height: int) -> tuple[bytes, bytes]:
    """Raw scanlines 1..height-1 of a solid image ("Up" filter: all zeros), and
    their raw-deflate compression (final block, independent of prior data)."""
    raw = (b"\x02" + b"\x00" * (3 * width)) * (height - 1)
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    return raw, comp.compress(raw) + comp.flush(zlib.Z_FINISH)


def _solid_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour 8-bit RGB PNG, built by hand in ~1 ms (Pillow takes ~25 ms).

    Row 0 uses the "Sub" filter (first pixel, then zeros), the other rows the
    "Up" filter (all zeros), so only row 0 depends on the colour: it is
    compressed and full-flushed, then the cached deflate of the other rows is
    appended.
    """
    row0 = b"\x01" + bytes(rgb) + b"\x00" * (3 * width - 3)
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    head = comp.compress(row0) + comp.flush(zlib.Z_FULL_FLUSH)
    if height > 1:
        tail_raw, tail_deflate = _zero_rows_deflate(width, height)
    else:
        tail_raw, tail_deflate = b"", zlib.compressobj(6, zlib.DEFLATED, -15).flush()
    adler = zlib.adler32(tail_raw, zlib.adler32(row0))
    idat = b"\x78\x9c" + head + tail_deflate + struct.pack(">I", adler & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


@functools.lru_cache(maxsize=1024)
def encode_image(
    width: int,
    height: int,
    fmt: str,
    rgb: tuple[int, int, int],
    compression: int | None = None,
) -> bytes:
    """Encoded solid-colour image, cached per (size, format, colour, compression)."""
    if fmt == "png":
        return _solid_png(width, height, rgb)
    buf = io.BytesIO()
    image = Image.new("RGB", (width, height), rgb)
    quality = 90 if compression is None else max(1, min(100, compression))
    if fmt == "jpeg":
        image.save(buf, "JPEG", quality=quality)
    elif fmt == "webp":
        image.save(buf, "WEBP", quality=quality, method=0)
    else:
        raise ValueError(f"unsupported format {fmt!r}")
    return buf.getvalue()


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A small, well-formed PNG whose IHDR declares ``width`` x ``height``.

    Chunk CRCs are correct; the IDAT holds only one (compressed) scanline, so
    a decoder that trusts the header would try to allocate width*height pixels.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    idat = zlib.compress(b"\x00" * (width + 1), 9)
    return PNG_SIGNATURE + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


NOT_IMAGE_BYTES = b"This is not an image. It is plain text pretending to be one.\n"
# Fails base64 decoding both with and without validate=True (bad characters,
# and after discarding them the length is not a multiple of 4).
INVALID_BASE64 = "not*valid*base64!"
HTML_ERROR_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    b"<body><h1>502 Bad Gateway</h1><p>The upstream server returned an invalid "
    b"response.</p></body></html>\n"
)
INVALID_JSON_BODY = b'{"created": 1700000000, "data": [{"b64_json": "iVBORw0KGgo'


@dataclass
class _ImageSpec:
    prompt: str
    n: int
    width: int
    height: int
    fmt: str
    quality: str
    background: str
    compression: int | None

    @classmethod
    def from_params(cls, params: dict[str, Any], endpoint: str, record: RecordedRequest) -> _ImageSpec:
        prompt = params.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            raise _BadRequest("Missing required parameter: 'prompt'.", "prompt")
        if endpoint == "edits" and not any(p.name in ("image", "image[]") for p in record.file_parts):
            raise _BadRequest("Missing required parameter: 'image'.", "image")
        try:
            n = int(params.get("n", 1) if params.get("n") is not None else 1)
        except (TypeError, ValueError):
            raise _BadRequest("Invalid value for 'n'.", "n") from None
        if not 1 <= n <= 10:
            raise _BadRequest(f"Invalid 'n': {n}. Expected a value between 1 and 10.", "n")
        size = str(params.get("size") or "auto")
        if size == "auto":
            width = height = 1024
        else:
            match = _SIZE_RE.match(size)
            if not match:
                raise _BadRequest(f"Invalid value: '{size}'.", "size")
            width, height = int(match.group(1)), int(match.group(2))
            if not (1 <= width <= _MAX_SIDE and 1 <= height <= _MAX_SIDE):
                raise _BadRequest(f"Invalid value: '{size}'.", "size")
        fmt = str(params.get("output_format") or "png").lower()
        if fmt not in _CONTENT_TYPES:
            raise _BadRequest(
                f"Invalid value: '{fmt}'. Supported values are: 'png', 'jpeg', and 'webp'.",
                "output_format",
            )
        compression_raw = params.get("output_compression")
        compression: int | None = None
        if compression_raw is not None and fmt != "png":
            try:
                compression = int(compression_raw)
            except (TypeError, ValueError):
                raise _BadRequest("Invalid value for 'output_compression'.", "output_compression") from None
        return cls(
            prompt=prompt,
            n=n,
            width=width,
            height=height,
            fmt=fmt,
            quality=str(params.get("quality") or "auto"),
            background=str(params.get("background") or "opaque"),
            compression=compression,
        )

    def encode(self, rgb: tuple[int, int, int]) -> bytes:
        return encode_image(self.width, self.height, self.fmt, rgb, self.compression)


# --------------------------------------------------------------------------
# The fixture
# --------------------------------------------------------------------------
