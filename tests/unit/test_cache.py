"""The cache on its own: entries, the fallback namespace, damage handling and claims."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mkdocs_imagegen.cache import CacheError, ImageCache

META = {"width": 2, "height": 1, "format": "png"}
PNG = b"\x89PNG\r\n\x1a\n"  # the cache serves only files that start like their format


@pytest.fixture
def cache(tmp_path: Path) -> ImageCache:
    with ImageCache(str(tmp_path / "cache")) as opened:
        yield opened


def test_an_entry_comes_back_with_its_size_and_digest(cache: ImageCache) -> None:
    stored = cache.put("k", PNG + b"pixels", META)
    entry = cache.get("k")
    assert entry is not None and entry.path == stored.path
    assert (entry.width, entry.height, entry.meta["bytes"]) == (2, 1, 8 + 6)
    assert len(entry.meta["sha256"]) == 64 and entry.meta["created"].endswith("Z")
    assert cache.read_bytes(entry) == PNG + b"pixels"


def test_a_placeholder_never_answers_for_a_real_image(cache: ImageCache) -> None:
    cache.put("k", PNG + b"stand-in", META, fallback=True)
    assert cache.get("k") is None
    assert cache.get("k", fallback=True) is not None
    cache.put("k", PNG + b"real", META)  # the real image supersedes the placeholder
    assert cache.get("k", fallback=True) is None
    assert [(key, fb) for key, fb, _ in cache.entries()] == [("k", False)]


@pytest.mark.parametrize("damage", ["same size, other bytes", "shorter", "deleted"])
def test_a_damaged_entry_is_dropped_not_served(cache: ImageCache, damage: str) -> None:
    path = cache.put("k", PNG + b"pixels", META).path
    if damage == "deleted":
        os.remove(path)
    else:
        Path(path).write_bytes(PNG + b"PIXELS" if damage.startswith("same") else PNG + b"pix")
    assert cache.get("k") is None
    assert list(cache.entries()) == []  # dropped, so the next build regenerates it


def test_delete_frees_both_namespaces(cache: ImageCache) -> None:
    cache.put("k", PNG + b"real", META)
    cache.put("k", PNG + b"stand-in", META, fallback=True)
    assert cache.delete("k") == len(PNG + b"real") + len(PNG + b"stand-in")
    assert cache.get("k") is None and cache.delete("k") == 0


def test_a_claim_excludes_a_second_claimant_until_released(cache: ImageCache, tmp_path: Path) -> None:
    claim = cache.try_claim("k")
    assert claim is not None
    with ImageCache(str(tmp_path / "cache")) as other:  # another build sharing the folder
        assert other.try_claim("k") is None
        assert other.try_claim("other key") is not None
        claim.release()
        again = other.try_claim("k")
        assert again is not None
        again.release()


def test_a_folder_that_cannot_be_used_names_itself(tmp_path: Path) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the folder should be")
    with pytest.raises(CacheError, match=r"cannot use the image cache directory .*blocked.*cache_dir"):
        ImageCache(str(blocked / "cache"))
