"""Whether bytes as an API sent them may be published byte for byte, or must be re-encoded.

Bytes kept as sent are never re-encoded (no quality lost, C2PA content credentials kept); bytes
carrying text, EXIF/XMP, animation or anything after the image are re-encoded from their pixels.
"""

from __future__ import annotations

import struct

from .base import PNG_MAGIC

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
    if not data.startswith(PNG_MAGIC) or data[12:16] != b"IHDR" or data[24] > 8:
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
