"""Tests for mkdocs_imagegen.wireframe: deterministic, exact-size, offline placeholder images."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from PIL import Image, ImageFont

from mkdocs_imagegen import imaging, wireframe
from mkdocs_imagegen.imaging import ImageInfo

PROMPT = "A watercolor illustration of a lighthouse on a rocky cliff at sunset, seagulls circling"
SEED = "3f2a9c0d1e7b"


def _open(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


@pytest.mark.parametrize("fmt", imaging.FORMATS)
@pytest.mark.parametrize(
    "size", [(16, 16), (64, 48), (300, 120), (1024, 1024), (1536, 1024), (1024, 1536), (17, 333)]
)
def test_exact_size_and_format(fmt: str, size: tuple[int, int]) -> None:
    data = wireframe.render(PROMPT, *size, fmt, seed=SEED)
    assert imaging.inspect(data) == ImageInfo(fmt, *size)


@pytest.mark.parametrize("fmt", imaging.FORMATS)
def test_deterministic(fmt: str) -> None:
    kwargs = {"seed": SEED, "label": "placeholder — generation failed: timeout", "tone": "error"}
    first = wireframe.render(PROMPT, 640, 480, fmt, **kwargs)
    second = wireframe.render(PROMPT, 640, 480, fmt, **kwargs)
    assert first == second


def test_inputs_change_the_image() -> None:
    base = wireframe.render(PROMPT, 320, 240, seed=SEED)
    variants = [
        wireframe.render(PROMPT, 320, 240, seed="0123abcd"),
        wireframe.render(PROMPT + " at night", 320, 240, seed=SEED),
        wireframe.render(PROMPT, 320, 240, seed=SEED, label="placeholder — generation failed"),
        wireframe.render(PROMPT, 320, 240, seed=SEED, tone="error"),
    ]
    assert len({base, *variants}) == 5


def _background(img: Image.Image) -> tuple[int, ...]:
    """A pixel inside the dashed border, above the text block and off the diagonals."""
    return img.convert("RGBA").getpixel((img.width // 2, round(img.height * 0.06)))


def test_seed_picks_the_background_colour() -> None:
    a = _background(_open(wireframe.render(PROMPT, 400, 400, seed="aaaa")))
    b = _background(_open(wireframe.render(PROMPT, 400, 400, seed="bbbb")))
    assert a != b
    assert min(a[:3]) > 150  # a soft, light tint


def test_error_tone_is_reddish() -> None:
    r, g, b, _ = _background(_open(wireframe.render(PROMPT, 400, 400, seed=SEED, tone="error")))
    assert r > g + 15 and r > b + 15


@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_transparent_background_has_alpha(fmt: str) -> None:
    img = _open(wireframe.render(PROMPT, 400, 300, fmt, seed=SEED, background="transparent"))
    rgba = img.convert("RGBA")
    assert _background(img)[3] == 0
    assert rgba.getchannel("A").getextrema() == (0, 255)  # the text itself is opaque


def test_transparent_jpeg_falls_back_to_opaque() -> None:
    data = wireframe.render(PROMPT, 200, 200, "jpeg", seed=SEED, background="transparent")
    assert imaging.inspect(data) == ImageInfo("jpeg", 200, 200)
    assert min(_background(_open(data))[:3]) > 150  # the soft tint, not black


def test_opaque_png_has_no_alpha() -> None:
    img = _open(wireframe.render(PROMPT, 200, 200, seed=SEED, background="opaque"))
    assert "transparency" not in img.info


def _indices(img: Image.Image) -> Image.Image:
    """The raw palette indices as an "L" image: the renderer draws "ink amount" as the index."""
    assert img.mode == "P"
    return Image.frombytes("L", img.size, img.tobytes())


def _ink_columns(img: Image.Image, threshold: int = 200) -> tuple[int, int]:
    """Leftmost and rightmost column holding text ink (palette index = ink amount)."""
    mask = _indices(img).point(lambda v: 255 if v >= threshold else 0)
    box = mask.getbbox()
    assert box is not None
    return box[0], box[2]


@pytest.mark.parametrize("size", [(1024, 1024), (320, 200)])
def test_very_long_prompt_stays_inside_the_image(size: tuple[int, int]) -> None:
    prompt = ("an extraordinarily detailed and elaborate prompt " * 110)[:5000]
    width, height = size
    data = wireframe.render(prompt, width, height, seed=SEED)
    img = _open(data)
    assert img.size == size
    left, right = _ink_columns(img)
    assert left >= width * 0.05 and right <= width * 0.95


def test_unbreakable_word_is_broken_to_fit() -> None:
    img = _open(wireframe.render("x" * 400 + " https://example.com/" + "a" * 300, 256, 256, seed=SEED))
    left, right = _ink_columns(img)
    assert left >= 256 * 0.05 and right <= 256 * 0.95


def test_tiny_sizes_have_no_text() -> None:
    for size in [(16, 16), (47, 47), (16, 200), (200, 16)]:
        img = _open(wireframe.render(PROMPT, *size, seed=SEED))
        assert img.size == size
        assert _indices(img).getextrema()[1] < 200  # only background and frame, no ink-coloured text


def test_non_latin_and_typographic_text_renders() -> None:
    data = wireframe.render("café “naïve” 東京 — 🚀", 300, 300, seed=SEED, label="placeholder — failed")
    assert imaging.inspect(data) == ImageInfo("png", 300, 300)


def test_empty_prompt_and_label() -> None:
    data = wireframe.render("", 200, 100, seed=SEED, label="")
    assert imaging.inspect(data) == ImageInfo("png", 200, 100)


def test_quality_applies_to_jpeg() -> None:
    low = wireframe.render(PROMPT, 300, 300, "jpeg", seed=SEED, quality=10)
    high = wireframe.render(PROMPT, 300, 300, "jpeg", seed=SEED, quality=95)
    assert len(low) < len(high)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((PROMPT, 0, 10), {}),
        ((PROMPT, 10, 20_000), {}),
        ((PROMPT, 10, 10, "gif"), {}),
        ((PROMPT, 10, 10), {"tone": "angry"}),
    ],
)
def test_rejects_bad_arguments(args: tuple[object, ...], kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        wireframe.render(*args, seed=SEED, **kwargs)  # type: ignore[arg-type]


def test_large_size_works() -> None:
    data = wireframe.render(PROMPT, 4096, 4096, seed=SEED)
    assert imaging.inspect(data) == ImageInfo("png", 4096, 4096)


@pytest.fixture
def bitmap_font_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Simulate a Pillow built without FreeType: only the fixed bitmap font exists."""

    def clear() -> None:
        for cached in (wireframe._face, wireframe._has_glyph, wireframe._fold_char):
            cached.cache_clear()
        wireframe._notdef_mask.cache_clear()

    monkeypatch.setattr(wireframe, "_load_font", lambda size: ImageFont.load_default_imagefont())
    clear()
    yield
    monkeypatch.undo()
    clear()


@pytest.mark.usefixtures("bitmap_font_only")
def test_bitmap_font_fallback() -> None:
    for size in [(1024, 1024), (120, 80), (16, 16)]:
        data = wireframe.render("café — " + PROMPT * 20, *size, seed=SEED, label="placeholder — x")
        assert imaging.inspect(data) == ImageInfo("png", *size)
