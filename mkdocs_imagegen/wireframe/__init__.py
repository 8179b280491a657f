"""Renderer for the default, offline image provider: wireframe-style placeholder images.

A cold build renders hundreds of these, so the drawing is done on a single 8-bit
"L" canvas whose values mean "how much ink" (0 = background, 255 = text colour) and
then a 256-entry palette that blends background -> ink is attached. That keeps
antialiased text correct, makes the PNG a small palette image that zlib compresses in
a millisecond or two, and needs one byte per pixel while drawing.
"""

from __future__ import annotations

import colorsys
import hashlib
import unicodedata
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from ..imaging import MAX_PIXELS, MAX_SIDE, cover, encode, normalize_format
from .layout import Face, Font, fit_stack

__all__ = ["render"]

# Canvas values ("ink amount"); the palette maps them to colours.
_BG = 0
_LINE = 70  # diagonal cross and dashed border: a faint tint of the ink
_SOFT = 175  # label and size lines: lighter than the prompt
_INK = 255  # the prompt

_MIN_TEXT_SIDE = 48  # below this (either side) only colour, border and cross are drawn
_MIN_FONT = 10  # smallest font size we consider readable
_PNG_LEVEL = 1  # placeholders are flat colour: level 1 is fastest and barely larger
_WEBP_METHOD = 0  # fastest WebP effort; the images are simple


# --------------------------------------------------------------------------- fonts


def _load_font(size: int) -> Font:
    """Pillow's bundled scalable font, or the bitmap font when Pillow lacks FreeType."""
    try:
        return ImageFont.load_default(size=size)
    except Exception:  # no FreeType: ImportError/OSError depending on build
        loader = getattr(ImageFont, "load_default_imagefont", None)
        return loader() if loader is not None else ImageFont.load_default()


@lru_cache(maxsize=128)
def _face(size: int) -> Face:
    """Cached per size: loading parses the embedded TTF each time."""
    return Face(_load_font(size), size)


# The bundled font has a reduced character set; fold common typography onto ASCII so a
# label like "placeholder — generation failed" does not show boxes.
_FOLD = str.maketrans(
    {
        "\u2014": "-", "\u2013": "-", "\u2212": "-", "\u2010": "-", "\u2011": "-",
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u2032": "'",
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
        "\u00d7": "x", "\u00a0": " ", "\u2009": " ", "\u202f": " ",
        "\u00ab": '"', "\u00bb": '"', "\u2022": "\u00b7",
    }
)  # fmt: skip


@lru_cache(maxsize=1)
def _notdef_mask() -> bytes:
    return bytes(_face(20).font.getmask("\uffff"))


@lru_cache(maxsize=4096)
def _has_glyph(ch: str) -> bool:
    """Whether the bundled font draws ``ch`` as itself rather than its "missing" box."""
    face = _face(20)
    if not face.scalable:
        return ch.isascii()
    return ch.isspace() or bytes(face.font.getmask(ch)) != _notdef_mask()


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    """A drawable stand-in for ``ch``: itself, its unaccented form, or (last resort) the box."""
    if unicodedata.category(ch).startswith("C"):  # control, format, surrogate: nothing to draw
        return ""
    if _has_glyph(ch):
        return ch
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    if base and all(_has_glyph(c) for c in base):
        return base
    return ch if _face(20).scalable else "?"


def _clean(text: str) -> str:
    """Collapse whitespace and map characters onto what the font can draw."""
    text = " ".join(text.translate(_FOLD).split())
    return "".join(_fold_char(c) for c in text)


# --------------------------------------------------------------------------- drawing


def _rgb(hue: float, lightness: float, saturation: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hls_to_rgb(hue, lightness, saturation)
    return round(r * 255), round(g * 255), round(b * 255)


def _colours(seed: str, tone: str) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(background, ink): a soft tint picked by the seed, or a fixed red for failures."""
    if tone == "error":
        return (252, 226, 222), (150, 24, 24)
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    hue = int.from_bytes(digest[:2], "big") / 65536
    return _rgb(hue, 0.90, 0.55), _rgb(hue, 0.22, 0.45)


@lru_cache(maxsize=256)
def _palette(
    bg: tuple[int, int, int], ink: tuple[int, int, int], transparent: bool
) -> tuple[tuple[int, ...], bytes | None]:
    """A 256-step ramp; opaque: blend bg -> ink, transparent: ink with alpha = value."""
    if transparent:
        return ink * 256, bytes(range(256))
    palette: list[int] = []
    for v in range(256):
        palette.extend(round(b + (i - b) * v / 255) for b, i in zip(bg, ink, strict=True))
    return tuple(palette), None


def _draw_frame(draw: ImageDraw.ImageDraw, width: int, height: int, error: bool, cross: bool = True) -> None:
    """Diagonal cross plus dashed border: the universal "image goes here" wireframe."""
    short = min(width, height)
    line = max(1, round(short / 512))
    if cross:
        draw.line([(0, 0), (width - 1, height - 1)], fill=_LINE, width=line)
        draw.line([(0, height - 1), (width - 1, 0)], fill=_LINE, width=line)

    thick = max(1, round(short / (96 if error else 170)))
    value = _SOFT if error else _LINE + 40
    if short < 32:
        draw.rectangle([0, 0, width - 1, height - 1], outline=value, width=thick)
        return
    inset = round(short / 40)
    dash = max(4, round(short / 40))
    gap = max(3, round(dash * 0.6))
    x0, y0, x1, y1 = inset, inset, width - 1 - inset, height - 1 - inset
    for pos in range(x0, x1 + 1, dash + gap):
        end = min(pos + dash - 1, x1)
        draw.rectangle([pos, y0, end, y0 + thick - 1], fill=value)
        draw.rectangle([pos, y1 - thick + 1, end, y1], fill=value)
    for pos in range(y0, y1 + 1, dash + gap):
        end = min(pos + dash - 1, y1)
        draw.rectangle([x0, pos, x0 + thick - 1, end], fill=value)
        draw.rectangle([x1 - thick + 1, pos, x1, end], fill=value)


def _size_width(face: Face, width: int, height: int) -> float:
    """Width of the size line exactly as _draw_size lays it out, for centring and fitting."""
    if not face.scalable:
        return face.length(f"{width} x {height}")
    return face.length(f"{width}{height}") + face.size * 1.1


def _draw_size(draw: ImageDraw.ImageDraw, face: Face, x: float, y: float, width: int, height: int) -> None:
    """Draw "W × H"; the bundled font has no "×" glyph, so the cross is drawn as two strokes."""
    if not face.scalable:
        draw.text((x, y), f"{width} x {height}", fill=_SOFT, font=face.font)
        return
    left, right = str(width), str(height)
    draw.text((x, y), left, fill=_SOFT, font=face.font)
    x += face.length(left)
    _, top, _, bottom = face.font.getbbox("x")  # centre the cross on the x-height
    arm = face.size * 0.18
    cx, cy = x + face.size * 0.55, y + (top + bottom) / 2
    stroke = max(1, round(face.size / 14))
    draw.line([(cx - arm, cy - arm), (cx + arm, cy + arm)], fill=_SOFT, width=stroke)
    draw.line([(cx - arm, cy + arm), (cx + arm, cy - arm)], fill=_SOFT, width=stroke)
    draw.text((x + face.size * 1.1, y), right, fill=_SOFT, font=face.font)


def _draw_text(
    draw: ImageDraw.ImageDraw, width: int, height: int, prompt: str, label: str, plate_value: int = _BG
) -> None:
    """Lay out label / prompt / size as a centred stack on a plain plate over the frame."""
    short = min(width, height)
    margin_x = max(6, round(width * 0.09))
    margin_y = max(6, round(height * 0.09))
    avail_w = width - 2 * margin_x
    avail_h = height - 2 * margin_y
    small = _face(max(_MIN_FONT, min(28, round(short / 36))))
    gap = max(2, small.step // 2)

    size_w = _size_width(small, width, height)
    show_size = size_w <= avail_w and small.step <= avail_h
    start = max(_MIN_FONT, min(64, round(short / 15)))
    smallest = max(_MIN_FONT, min(18, round(short / 56)))
    label_block, body = fit_stack(
        prompt,
        label,
        small,
        _face,
        (avail_w, avail_h),
        gap=gap,
        size_line=show_size,
        prompt_sizes=(start, smallest),
    )
    blocks = [(b, value) for b, value in ((label_block, _SOFT), (body, _INK)) if b is not None and b.lines]
    total = sum(b.height for b, _ in blocks) + gap * (len(blocks) - 1)
    if show_size:
        total += small.step + (gap if blocks else 0)
    if total <= 0:
        return

    widths = [b.face.length(line) for b, _ in blocks for line in b.lines]
    if show_size:
        widths.append(size_w)
    pad = max(4, round(short / 60))
    plate_w = max(widths)
    top = (height - total) / 2
    plate = (
        round((width - plate_w) / 2 - pad),
        round(top - pad),
        round((width + plate_w) / 2 + pad),
        round(top + total + pad),
    )
    draw.rectangle(plate, fill=plate_value)
    y = top
    for block, value in blocks:
        for line in block.lines:
            x = (width - block.face.length(line)) / 2
            draw.text((round(x), round(y)), line, fill=value, font=block.face.font)
            y += block.face.step
        y += gap
    if show_size:
        _draw_size(draw, small, round((width - size_w) / 2), round(y), width, height)


def render(
    prompt: str,
    width: int,
    height: int,
    fmt: str = "png",
    *,
    seed: str,
    label: str = "placeholder",
    background: str | None = None,
    quality: int | None = None,
    tone: str = "neutral",
    source: bytes | None = None,
) -> bytes:
    """A deterministic placeholder image of exactly ``width`` x ``height`` in ``fmt``.

    It shows the prompt (wrapped, shrunk, ellipsized), the size and ``label`` on a soft
    colour derived from ``seed`` with a wireframe cross and dashed border, so nobody
    mistakes it for a real picture. ``background="transparent"`` gives a transparent
    canvas (not for jpeg); ``tone="error"`` a reddish warning look. ``quality`` applies
    to jpeg; webp placeholders are always lossless (flat graphics: smaller, crisper and
    faster that way).

    ``source`` (the image an edit changes) is shown dimmed under the border and the text,
    without the cross, so an offline build of an edit already looks like its page will.
    """
    fmt = normalize_format(fmt)
    if width <= 0 or height <= 0 or width > MAX_SIDE or height > MAX_SIDE:
        raise ValueError(f"placeholder size must be 1-{MAX_SIDE} per side, got {width}x{height}")
    if width * height > MAX_PIXELS:
        raise ValueError(f"placeholder size {width}x{height} is over the {MAX_PIXELS}-pixel limit")
    if tone not in ("neutral", "error"):
        raise ValueError(f"unknown tone {tone!r} (use 'neutral' or 'error')")
    transparent = background == "transparent" and fmt != "jpeg"

    if source is not None:
        return _render_over(source, prompt, width, height, fmt, seed, label, quality, tone)
    canvas = Image.new("L", (width, height), _BG)
    draw = ImageDraw.Draw(canvas)
    _draw_frame(draw, width, height, tone == "error")
    if min(width, height) >= _MIN_TEXT_SIDE:
        _draw_text(draw, width, height, _clean(prompt), _clean(label))

    palette, alpha = _palette(*_colours(seed, tone), transparent)
    canvas.putpalette(palette)  # "L" -> "P" in place, no pixel copy
    if alpha is not None:
        canvas.info["transparency"] = alpha
    if fmt == "webp":
        return encode(canvas, fmt, lossless=True, quality=0, webp_method=0)
    return encode(canvas, fmt, quality=quality, compress_level=_PNG_LEVEL)


_DIM = 0.6  # how far an edit's source image fades towards the placeholder's tint


def _render_over(
    source: bytes,
    prompt: str,
    width: int,
    height: int,
    fmt: str,
    seed: str,
    label: str,
    quality: int | None,
    tone: str,
) -> bytes:
    """The placeholder of an edit: its source, dimmed, with the border and the instruction on top."""
    bg, ink = _colours(seed, tone)
    base = Image.blend(cover(source, width, height), Image.new("RGB", (width, height), bg), _DIM)
    # Draw as usual on a greyscale canvas; the plate is drawn at 1, not 0, so that every pixel
    # drawn (plate, text, border) is > 0 and masks the source, while 0 lets the source show.
    canvas = Image.new("L", (width, height), _BG)
    draw = ImageDraw.Draw(canvas)
    _draw_frame(draw, width, height, tone == "error", cross=False)
    if min(width, height) >= _MIN_TEXT_SIDE:
        _draw_text(draw, width, height, _clean(prompt), _clean(label), plate_value=1)
    mask = canvas.point(lambda v: 255 if v else 0)
    palette, _ = _palette(bg, ink, False)
    canvas.putpalette(palette)
    base.paste(canvas.convert("RGB"), mask=mask)
    return encode(base, fmt, quality=quality, compress_level=_PNG_LEVEL)
