"""The engine with the lock folder as its first tier: lock before cache, pins, one save on close."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

from conftest import PNG, FakeProvider

from mkdocs_imagegen.engine import Engine
from mkdocs_imagegen.lock import ImageLock
from mkdocs_imagegen.locktier import LockTier
from mkdocs_imagegen.spec import Occurrence

MakeEngine = Callable[..., Engine]
Occ = Callable[..., Occurrence]
INTENT = "1" * 32


def pinned(occ: Occ, prompt: str, model: str = "m", page: str = "index.md") -> Occurrence:
    return dataclasses.replace(occ(prompt, page=page, model=model), intent=INTENT)


def lines(folder: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in (folder / "imagegen.lock").read_text().splitlines()]


def test_a_generated_image_is_locked_with_its_intent_and_pages(
    make_engine: MakeEngine, occ: Occ, tmp_path: Path
) -> None:
    folder = tmp_path / "lock"
    engine = make_engine(FakeProvider(), lock=LockTier(ImageLock(str(folder)), paid=True))
    engine.submit(pinned(occ, "a fox", page="b.md"))
    engine.submit(pinned(occ, "a fox", page="a.md"))
    assert engine.wait()
    engine.close()
    (line,) = lines(folder)
    assert line["intent"] == INTENT and line["pages"] == ["a.md", "b.md"] and line["prompt"] == "a fox"
    assert (folder / str(line["file"])).read_bytes() == PNG + b"image of a fox"


def test_the_lock_serves_before_the_cache_and_a_new_key_shows_the_pin(
    make_engine: MakeEngine, occ: Occ, tmp_path: Path
) -> None:
    folder = str(tmp_path / "lock")
    first = make_engine(FakeProvider(), lock=LockTier(ImageLock(folder), paid=True))
    old = first.submit(pinned(occ, "a fox")).result(timeout=10)
    first.close()
    provider = FakeProvider()
    engine = make_engine(provider, lock=LockTier(ImageLock(folder), paid=True))
    again = engine.submit(pinned(occ, "a fox")).result(timeout=10)
    assert again.status == "cached" and again.entry is not None and again.entry.path.startswith(folder)
    moved = engine.submit(pinned(occ, "a fox", model="m2")).result(timeout=10)
    assert moved.status == "outdated" and moved.entry is not None and old.entry is not None
    assert moved.entry.key == old.entry.key and provider.calls == []
    assert engine.stats.outdated == 1


def test_regenerate_replaces_the_pin_and_frozen_shows_it(
    make_engine: MakeEngine, occ: Occ, tmp_path: Path
) -> None:
    folder = tmp_path / "lock"
    first = make_engine(FakeProvider(), lock=LockTier(ImageLock(str(folder)), paid=True))
    first.submit(pinned(occ, "a fox")).result(timeout=10)
    first.close()
    frozen = make_engine(
        FakeProvider(), frozen=True, lock=LockTier(ImageLock(str(folder)), paid=True, keep_outdated=False)
    )
    assert frozen.submit(pinned(occ, "a fox", model="m2")).result(timeout=10).status == "outdated"
    frozen.close()
    provider = FakeProvider()
    engine = make_engine(provider, lock=LockTier(ImageLock(str(folder)), paid=True, keep_outdated=False))
    assert engine.submit(pinned(occ, "a fox", model="m2")).result(timeout=10).status == "generated"
    engine.close()
    assert provider.calls == ["a fox"]
    assert [line["model"] for line in lines(folder)] == ["m2"]  # the old pin is gone with its file
    assert len(list(folder.glob("*.png"))) == 1


def test_placeholders_are_never_locked(make_engine: MakeEngine, occ: Occ, tmp_path: Path) -> None:
    folder = tmp_path / "lock"
    engine = make_engine(FakeProvider(unavailable="no key"), lock=LockTier(ImageLock(str(folder)), paid=True))
    assert engine.submit(pinned(occ, "a fox")).result(timeout=10).status == "fallback"
    engine.close()
    assert not (folder / "imagegen.lock").exists()
