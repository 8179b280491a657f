"""Sizes and crops: which supported size an image is asked at, and the centred "cover" crop to it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

from PIL import Image

from .base import MAX_PIXELS, MAX_SIDE


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


def target_size(src: tuple[int, int], width: int | None, height: int | None) -> tuple[int, int]:
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


def cover_resize(work: Image.Image, target: tuple[int, int]) -> Image.Image:
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
