"""The engine's small parts on their own: spending guard, retry policy, pause, job board, finish,
tiers, the tally and the producer."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import FakeProvider
from PIL import Image

from mkdocs_imagegen.cache import Entry, ImageCache
from mkdocs_imagegen.engine import RetryPolicy, SpendingGuard
from mkdocs_imagegen.engine.finish import finish
from mkdocs_imagegen.engine.jobs import Job, JobBoard, Stats, Tally
from mkdocs_imagegen.engine.retry import MAX_RETRY_AFTER, Pause
from mkdocs_imagegen.engine.tiers import Tiers
from mkdocs_imagegen.providers import GeneratedImage, ProviderError
from mkdocs_imagegen.spec import ImageSpec, Occurrence

Occ = Callable[..., Occurrence]


def test_the_guard_reserves_up_to_the_cap_and_counts_what_it_refuses() -> None:
    guard = SpendingGuard(2)
    assert [guard.reserve() for _ in range(4)] == [None, None, "max_new_images", "max_new_images"]
    assert guard.refused["max_new_images"] == 2
    guard.refund()
    assert guard.reserve() is None and guard.reserved == 2
    assert "2 image(s) were not generated" in (guard.report() or "")


def test_no_cap_reserves_everything_and_reports_nothing() -> None:
    guard = SpendingGuard(None)
    assert all(guard.reserve() is None for _ in range(1000))
    assert guard.report() is None


def test_the_retry_policy() -> None:
    policy = RetryPolicy(max_retries=5, backoff=0.5, jitter=lambda: 1.0)
    busy = ProviderError("busy", status=503, retryable=True)
    assert [policy.delay(busy, n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, None]
    assert policy.delay(ProviderError("bad", status=400), 0) is None
    assert policy.delay(ProviderError("later", retryable=True, retry_after=3.0), 0) == 3.0
    assert policy.delay(ProviderError("much later", retryable=True, retry_after=3600), 0) == MAX_RETRY_AFTER
    assert RetryPolicy.shared(ProviderError("later", retryable=True, retry_after=0))
    assert not RetryPolicy.shared(busy)


def test_jitter_only_shortens_the_backoff() -> None:
    policy = RetryPolicy(max_retries=3, backoff=1.0)
    busy = ProviderError("busy", retryable=True)
    delays = [policy.delay(busy, 2) or 0 for _ in range(50)]
    assert all(3.0 <= d <= 4.0 for d in delays)


def test_the_pause_only_grows() -> None:
    now = [100.0]
    pause = Pause(clock=lambda: now[0])
    assert pause.remaining() == 0
    pause.extend(5)
    pause.extend(1)  # a shorter Retry-After never shortens what another job was told
    now[0] = 103.0
    assert pause.remaining() == 2.0
    now[0] = 110.0
    assert pause.remaining() == 0


def test_the_board_makes_one_job_per_key(occ: Occ) -> None:
    board = JobBoard()
    job, new = board.add(occ("fox", page="a.md", line=2))
    again, second = board.add(occ("fox", page="b.md", line=9))
    other, third = board.add(occ("owl"))
    assert (new, second, third) == (True, False, True)
    assert again is job and len(board) == 2
    assert job.where == "a.md:2 (and 1 more)" and other.where == "index.md:1"
    assert job.request().spec is job.spec


def test_stats_count_each_status_and_know_when_cost_is_unknown() -> None:
    stats = Stats()
    for status in ("cached", "generated", "generated", "fallback", "failed"):
        stats.count(status)  # type: ignore[arg-type]
    assert (stats.cached, stats.generated, stats.fallback, stats.failed) == (1, 2, 1, 1)
    stats.spent(0.25)
    assert stats.cost == 0.25 and stats.cost_known
    stats.spent(None)
    assert not stats.cost_known


def spec(**fields: Any) -> ImageSpec:
    base: dict[str, Any] = {"provider": "fake", "model": "m", "prompt": "p", "size": "64x32", "format": "png"}
    return ImageSpec(**{**base, **fields})


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 10, 10)).save(out, "PNG")
    return out.getvalue()


def test_finish_crops_an_answer_to_the_asked_size_and_records_who_drew_it() -> None:
    data, meta = finish(spec(), GeneratedImage(png(128, 128), info={"usage": {"t": 1}}), cost=0.5)
    assert Image.open(io.BytesIO(data)).size == (64, 32)
    assert meta == {
        "provider": "fake",
        "model": "m",
        "prompt": "p",
        "size": "64x32",
        "format": "png",
        "width": 64,
        "height": 32,
        "usage": {"t": 1},
        "cost": 0.5,
    }


def test_finish_trusts_exact_bytes_and_names_a_stand_in() -> None:
    data, meta = finish(spec(), GeneratedImage(b"drawn", exact=True), provider="placeholder", model=None)
    assert data == b"drawn"
    assert (meta["provider"], meta["model"], meta["width"], meta["height"]) == ("placeholder", None, 64, 32)


def test_finish_refuses_what_is_not_an_image() -> None:
    from mkdocs_imagegen.imaging import ImageError

    with pytest.raises(ImageError):
        finish(spec(), GeneratedImage(b"not an image"))


class MemoryTier:
    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}

    def get(self, key: str) -> Entry | None:
        return self.entries.get(key)

    def put(self, key: str, data: bytes, meta: dict[str, Any]) -> Entry:
        self.entries[key] = Entry(key, "/remote/" + key, meta)
        return self.entries[key]


def test_tiers_are_looked_up_in_order_and_all_get_real_images(tmp_path: Path) -> None:
    remote = MemoryTier()
    remote.put("k1", b"", {"width": 1, "height": 1})
    with ImageCache(str(tmp_path)) as cache:
        tiers = Tiers(cache, [remote])
        hit = tiers.lookup("k1")
        assert hit is not None and hit.path == "/remote/k1"
        assert tiers.lookup("k2") is None
        stored = tiers.store("k2", b"\x89PNG\r\n\x1a\npixels", {"width": 1, "height": 1})
        assert stored.path.startswith(str(tmp_path)) and "k2" in remote.entries
        tiers.store_fallback("k3", b"\x89PNG\r\n\x1a\nstand-in", {"width": 1, "height": 1})
        assert "k3" not in remote.entries and tiers.lookup("k3") is None and tiers.fallback("k3") is not None


# -- the tally and the producer ------------------------------------------------------------------
def test_the_tally_counts_every_update_from_many_threads_and_resets_whole() -> None:
    tally = Tally()
    workers = [
        threading.Thread(target=lambda: [tally.update(lambda s: s.count("generated")) for _ in range(500)])
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert tally.stats.generated == 2000
    tally.reset()
    assert tally.stats.generated == 0 and tally.stats.cost_known


def test_the_producers_first_look_finds_a_cached_key_and_schedules_a_missing_one(
    make_engine: Callable[..., Any], occ: Occ
) -> None:
    engine = make_engine(FakeProvider())
    engine.submit(occ("a fox")).result(timeout=10)
    producer = engine.producer
    cached = producer.first_look(Job(occ("a fox").spec, [occ("a fox")]))
    assert cached is not None and cached.status == "cached" and cached.entry is not None
    assert producer.first_look(Job(occ("a hare").spec, [occ("a hare")])) is None  # to be scheduled
    forced = Job(occ("a fox").spec, [occ("a fox")], force=True)
    assert producer.first_look(forced) is None  # --force: not even a look


def test_the_producer_turns_any_failure_into_an_outcome_that_names_the_place(
    make_engine: Callable[..., Any], occ: Occ
) -> None:
    producer = make_engine(FakeProvider()).producer

    def broken(key: str) -> None:
        raise OSError("disk on fire")

    producer.tiers.lookup = broken
    job = Job(occ("a fox", page="p.md", line=3).spec, [occ("a fox", page="p.md", line=3)])
    looked = producer.first_look(job)
    assert looked is not None and looked.fatal
    assert looked.error == "p.md:3: cannot read the image cache: disk on fire"

    async def boom(job: Job) -> Any:
        raise KeyError("surprise")

    producer.produce = boom
    outcome = asyncio.run(producer.run(job))
    assert outcome.status == "failed" and outcome.fatal
    assert outcome.error == "p.md:3: internal error: KeyError: 'surprise'"
