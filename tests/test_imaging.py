"""Tests for mkdocs_imagegen.imaging: untrusted bytes in, exactly-what-was-asked bytes out."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from mkdocs_imagegen import imaging
from mkdocs_imagegen.imaging import ImageError, ImageInfo

# --------------------------------------------------------------------------- helpers


def _image(width: int, height: int, mode: str = "RGB") -> Image.Image:
    """A noisy gradient, so encoders cannot compress it to nothing and truncation bites."""
    noise = Image.effect_noise((width, height), 40)
    grad = Image.linear_gradient("L").resize((width, height))
    channels = {"RGB": (noise, grad, Image.new("L", (width, height), 90))}
    if mode == "RGBA":
        alpha = Image.new("L", (width, height), 255)
        alpha.paste(0, (0, 0, width // 2, height))  # left half fully transparent
        channels["RGBA"] = (*channels["RGB"], alpha)
    return Image.merge(mode, channels[mode])


def _bytes(img: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **options)
    return out.getvalue()


def _png_header(width: int, height: int) -> bytes:
    """A PNG signature plus a valid IHDR (correct CRC) declaring any size, with no pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + crc


def _webp_vp8x_header(width: int, height: int) -> bytes:
    payload = b"\0\0\0\0" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    chunk = b"VP8X" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def _jpeg_header(width: int, height: int) -> bytes:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    sos = b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00\x00\x3f\x00"
    return b"\xff\xd8" + sof + sos + b"\0" * 16 + b"\xff\xd9"


@pytest.fixture(scope="module")
def png_1536x1024() -> bytes:
    return _bytes(_image(1536, 1024), "PNG")


# --------------------------------------------------------------------------- inspect


@pytest.mark.parametrize(
    ("pil_name", "fmt", "size"),
    [("PNG", "png", (64, 48)), ("JPEG", "jpeg", (33, 17)), ("WEBP", "webp", (100, 7))],
)
def test_inspect_accepts_supported_formats(pil_name: str, fmt: str, size: tuple[int, int]) -> None:
    data = _bytes(_image(*size), pil_name)
    assert imaging.inspect(data) == ImageInfo(fmt, *size)


def test_inspect_rejects_empty() -> None:
    with pytest.raises(ImageError, match="0 bytes"):
        imaging.inspect(b"")


def test_inspect_rejects_html() -> None:
    with pytest.raises(ImageError) as err:
        imaging.inspect(b"<!DOCTYPE html>\n<html><body>502 Bad Gateway</body></html>")
    # Never the bytes themselves: an answer may be a page from an internal address.
    assert str(err.value) == "not an image (57 bytes that are not PNG, JPEG or WebP)"


def test_inspect_rejects_truncated_png(png_1536x1024: bytes) -> None:
    with pytest.raises(ImageError, match=r"^truncated or corrupt PNG$"):
        imaging.inspect(png_1536x1024[: len(png_1536x1024) // 2])


def test_inspect_rejects_truncated_jpeg() -> None:
    data = _bytes(_image(256, 256), "JPEG")
    with pytest.raises(ImageError, match=r"^truncated or corrupt JPEG$"):
        imaging.inspect(data[: len(data) // 2])


def test_inspect_rejects_gif() -> None:
    with pytest.raises(ImageError, match=r"^unsupported image format GIF$"):
        imaging.inspect(_bytes(_image(8, 8), "GIF"))


def test_inspect_rejects_png_bomb_from_header_alone() -> None:
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageError) as err:
        imaging.inspect(_png_header(100_000, 100_000))
    assert str(err.value) == "image is 100000x100000 pixels, over the 64000000-pixel limit"
    assert before == Image.MAX_IMAGE_PIXELS  # Pillow's global is neither used nor changed


@pytest.mark.parametrize(
    ("data", "message"),
    [
        # Just over our limit, under Pillow's own 89M: only our check can catch it.
        (_png_header(8001, 8000), "image is 8001x8000 pixels, over the 64000000-pixel limit"),
        (_png_header(20_000, 10), "image is 20000x10 pixels, over the 16384-pixel side limit"),
        (_webp_vp8x_header(16000, 16000), "image is 16000x16000 pixels, over the 64000000-pixel limit"),
        # A JPEG's size is known only to its parser, whose own bomb check stops this one first.
        (_jpeg_header(60000, 60000), "image is over the 64000000-pixel limit"),
        (_jpeg_header(9000, 8000), "image is 9000x8000 pixels, over the 64000000-pixel limit"),
    ],
)
def test_inspect_rejects_oversized_headers(data: bytes, message: str) -> None:
    with pytest.raises(ImageError) as err:
        imaging.inspect(data)
    assert str(err.value) == message


def test_image_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        imaging.inspect(b"\0" * 32)


# --------------------------------------------------------------------------- finalize


def test_finalize_returns_original_bytes_when_nothing_to_do(png_1536x1024: bytes) -> None:
    out, info = imaging.finalize(png_1536x1024, width=1536, height=1024, fmt="png", quality=50)
    assert out is png_1536x1024
    assert info == ImageInfo("png", 1536, 1024)
    out, info = imaging.finalize(png_1536x1024, width=None, height=None, fmt="png")
    assert out is png_1536x1024


def test_finalize_verifies_even_when_nothing_to_do(png_1536x1024: bytes) -> None:
    with pytest.raises(ImageError, match="truncated"):
        imaging.finalize(png_1536x1024[:-2000], width=None, height=None, fmt="png")


def test_finalize_cover_crops_around_centre_then_resizes() -> None:
    # 1536x1024 -> 2:1 keeps the middle 768 rows: blue bands top/bottom 128 rows are cut off.
    img = Image.new("RGB", (1536, 1024), (0, 0, 255))
    img.paste((0, 200, 0), (0, 128, 1536, 896))
    out, info = imaging.finalize(_bytes(img, "PNG"), width=800, height=400, fmt="png")
    assert info == ImageInfo("png", 800, 400)
    result = Image.open(io.BytesIO(out))
    assert result.size == (800, 400)
    assert imaging.inspect(out) == info
    for xy in [(0, 0), (799, 0), (400, 200), (0, 399), (799, 399)]:
        r, g, b = result.getpixel(xy)
        assert g > 180 and b < 40, (xy, (r, g, b))


def test_finalize_crops_sides_of_a_too_wide_image() -> None:
    img = Image.new("RGB", (1000, 500), (255, 0, 0))
    img.paste((0, 0, 0), (250, 0, 750, 500))  # centre square is black
    out, _ = imaging.finalize(_bytes(img, "PNG"), width=100, height=100, fmt="png")
    result = Image.open(io.BytesIO(out))
    assert result.size == (100, 100)
    assert max(result.getextrema()[0]) < 10  # no red left


def test_finalize_one_side_auto_keeps_aspect(png_1536x1024: bytes) -> None:
    out, info = imaging.finalize(png_1536x1024, width=768, height=None, fmt="png")
    assert (info.width, info.height) == (768, 512)
    assert Image.open(io.BytesIO(out)).size == (768, 512)


def test_finalize_converts_png_to_jpeg(png_1536x1024: bytes) -> None:
    out, info = imaging.finalize(png_1536x1024, width=1536, height=1024, fmt="jpeg", quality=80)
    assert info == ImageInfo("jpeg", 1536, 1024)
    assert out.startswith(b"\xff\xd8")
    assert imaging.inspect(out) == info


def test_finalize_rgba_to_jpeg_composites_on_white() -> None:
    data = _bytes(_image(200, 100, "RGBA"), "PNG")
    out, info = imaging.finalize(data, width=None, height=None, fmt="jpeg")
    assert info == ImageInfo("jpeg", 200, 100)
    result = Image.open(io.BytesIO(out))
    assert result.mode == "RGB"
    assert all(v > 245 for v in result.getpixel((20, 50)))  # transparent half became white


def test_finalize_resizes_and_converts_to_webp(png_1536x1024: bytes) -> None:
    out, info = imaging.finalize(png_1536x1024, width=256, height=256, fmt="webp")
    assert imaging.inspect(out) == info == ImageInfo("webp", 256, 256)


def test_finalize_quality_changes_jpeg_size(png_1536x1024: bytes) -> None:
    low, _ = imaging.finalize(png_1536x1024, width=512, height=512, fmt="jpeg", quality=20)
    high, _ = imaging.finalize(png_1536x1024, width=512, height=512, fmt="jpeg", quality=95)
    assert len(low) < len(high)


def test_finalize_rejects_garbage() -> None:
    with pytest.raises(ImageError, match="not an image"):
        imaging.finalize(b"Internal Server Error", width=10, height=10, fmt="png")


def test_finalize_handles_palette_and_greyscale_sources() -> None:
    pal = _image(64, 64).convert("P")
    grey16 = Image.linear_gradient("L").resize((64, 64)).convert("I").point(lambda v: v * 256)
    for img in (pal, grey16.convert("I;16")):
        out, info = imaging.finalize(_bytes(img, "PNG"), width=32, height=16, fmt="jpeg")
        assert imaging.inspect(out) == info == ImageInfo("jpeg", 32, 16)
    out, _ = imaging.finalize(_bytes(grey16.convert("I;16"), "PNG"), width=32, height=32, fmt="png")
    assert Image.open(io.BytesIO(out)).convert("L").getextrema()[1] > 200  # scaled, not clipped


# --------------------------------------------------------------------------- closest_size

SIZES = ((1024, 1024), (1536, 1024), (1024, 1536))


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        ((800, 400), (1536, 1024)),
        ((400, 800), (1024, 1536)),
        ((500, 500), (1024, 1024)),
        ((1920, 1080), (1536, 1024)),
        ((1100, 1000), (1024, 1024)),
    ],
)
def test_closest_size(wanted: tuple[int, int], expected: tuple[int, int]) -> None:
    assert imaging.closest_size(*wanted, SIZES) == expected


def test_closest_size_tie_prefers_larger() -> None:
    assert imaging.closest_size(100, 100, [(256, 256), (1024, 1024), (512, 512)]) == (1024, 1024)


def test_closest_size_needs_candidates() -> None:
    with pytest.raises(ValueError):
        imaging.closest_size(10, 10, [])


# --------------------------------------------------------------------------- encode / thumbnail


@pytest.mark.parametrize("fmt", imaging.FORMATS)
def test_encode_is_deterministic_and_ignores_metadata(fmt: str) -> None:
    img = _image(96, 64)
    tagged = img.copy()
    tagged.info.update({"icc_profile": b"not really a profile", "exif": b"Exif\0\0junk", "comment": b"hi"})
    first = imaging.encode(img, fmt)
    assert first == imaging.encode(img, fmt)
    assert first == imaging.encode(tagged, fmt)
    assert imaging.inspect(first) == ImageInfo(fmt, 96, 64)


def test_encode_png_compress_level_is_tunable() -> None:
    img = _image(128, 128)
    assert imaging.encode(img, "png", compress_level=9) != imaging.encode(img, "png", compress_level=0)


def test_encode_rejects_unknown_format() -> None:
    with pytest.raises(ValueError):
        imaging.encode(_image(4, 4), "gif")
    assert imaging.normalize_format("JPG") == "jpeg"


def test_thumbnail_is_small(png_1536x1024: bytes) -> None:
    data, mime = imaging.thumbnail(png_1536x1024)
    assert mime in ("image/webp", "image/png")
    thumb = Image.open(io.BytesIO(data))
    assert thumb.size == (320, 213)
    jpeg = _bytes(_image(1200, 1600), "JPEG")
    data, _ = imaging.thumbnail(jpeg, max_side=100)
    assert max(Image.open(io.BytesIO(data)).size) == 100


def test_thumbnail_rejects_garbage() -> None:
    with pytest.raises(ImageError):
        imaging.thumbnail(b"nope")
