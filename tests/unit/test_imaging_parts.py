"""The pure parts of imaging: size arithmetic and the byte-level cleanliness check."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from mkdocs_imagegen.imaging import clean, geometry


def test_target_size_keeps_the_aspect_of_an_auto_side() -> None:
    assert geometry.target_size((1536, 1024), None, None) == (1536, 1024)
    assert geometry.target_size((1536, 1024), 768, None) == (768, 512)
    assert geometry.target_size((1536, 1024), None, 512) == (768, 512)
    with pytest.raises(ValueError, match="over the size limit"):
        geometry.target_size((10, 10), 20_000, 10)


def test_closest_size_breaks_ties_towards_the_larger() -> None:
    assert geometry.closest_size(1000, 1000, [(512, 512), (1024, 1024)]) == (1024, 1024)
    assert geometry.closest_size(1600, 900, [(1024, 1024), (1536, 1024)]) == (1536, 1024)


def test_bytes_after_the_image_are_not_clean() -> None:
    out = io.BytesIO()
    Image.new("RGB", (4, 4)).save(out, "PNG")
    assert clean.is_clean(out.getvalue(), "png")
    assert not clean.is_clean(out.getvalue() + b"tail", "png")
    assert not clean.is_clean(out.getvalue(), "gif")
