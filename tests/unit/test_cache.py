"""The cache on its own: entries, the fallback namespace, damage handling and claims."""

from __future__ import annotations

import os
import time
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


def _old(path: Path, data: bytes = b"x" * 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (time.time() - 7200, time.time() - 7200))
    return path


STRAY = "images/img/ab/" + "ab" * 16 + "-0123456789abcdef.img"


def test_strays_are_only_the_cache_own_unrecorded_files(cache: ImageCache, tmp_path: Path) -> None:
    kept = cache.put("cd" * 16, b"\x89PNG\r\n\x1a\nimage", {"width": 1, "height": 1})
    os.utime(kept.path, (time.time() - 7200, time.time() - 7200))
    stray = _old(tmp_path / "cache" / STRAY)
    temp = _old(tmp_path / "cache" / "images/fb/ef/.tmp-abc")
    logo = _old(tmp_path / "cache" / "images/logo.png")  # a cache_dir shared with other files
    other = _old(tmp_path / "cache" / "images/img/ab/notes.txt")
    wrong_folder = _old(tmp_path / "cache" / ("images/img/zz/" + "ab" * 16 + "-0123456789abcdef.img"))
    assert [p for p, _ in cache.strays()] == sorted([str(stray), str(temp)])
    assert cache.remove_stray(str(stray)) == 100 and not stray.exists()
    assert cache.remove_stray(str(stray)) == 0  # gone: nothing counted twice
    assert logo.exists() and other.exists() and wrong_folder.exists() and Path(kept.path).exists()
    assert cache.get("cd" * 16) is not None


def test_strays_never_follow_a_symlink(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    victim = _old(elsewhere / "img/ab" / ("ab" * 16 + "-0123456789abcdef.img"))
    root = tmp_path / "linked"
    root.mkdir()
    (root / "images").symlink_to(elsewhere, target_is_directory=True)
    with ImageCache(str(root)) as cache:
        assert cache.strays() == []
        assert cache.remove_stray(str(root / STRAY)) == 0
    assert victim.exists()
    inner = tmp_path / "inner"
    with ImageCache(str(inner)) as cache:
        target = _old(inner / "locks" / "x.lock")
        (inner / "images" / "img").mkdir(parents=True)
        (inner / "images" / "img" / "ab").symlink_to(target.parent, target_is_directory=True)
        assert cache.strays() == []
    assert target.exists()
