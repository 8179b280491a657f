"""The engine against a scripted provider: de-duplication, caps, refunds, retries, halts, claims."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from conftest import FakeProvider, Messages

from mkdocs_imagegen.cache import ImageCache
from mkdocs_imagegen.engine import Engine, Outcome
from mkdocs_imagegen.providers import GeneratedImage, ProviderError
from mkdocs_imagegen.spec import Occurrence

MakeEngine = Callable[..., Engine]
Occ = Callable[..., Occurrence]


def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for something the engine's thread does; fails the test only if it never happens."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the engine never got there"
        time.sleep(0.001)


def results(engine: Engine) -> list[Outcome]:
    return sorted(engine.wait().values(), key=lambda o: o.status)


def test_one_key_is_one_request_whatever_the_number_of_directives(make_engine: MakeEngine, occ: Occ) -> None:
    provider = FakeProvider()
    engine = make_engine(provider)
    first = engine.submit(occ("a fox", page="a.md"))
    second = engine.submit(occ("a fox", page="b.md", line=7))
    assert first is second
    outcome = first.result(timeout=10)
    assert outcome.status == "generated" and outcome.entry is not None
    assert provider.calls == ["a fox"]
    assert engine.stats.in_use == 1 and engine.stats.generated == 1
    assert engine.stats.cost == 0.01
    meta = outcome.entry.meta
    assert (meta["provider"], meta["model"], meta["cost"], meta["revised_prompt"]) == ("fake", "m", 0.01, "r")


def test_a_cached_key_asks_nothing(make_engine: MakeEngine, occ: Occ) -> None:
    make_engine(FakeProvider()).submit(occ("a fox")).result(timeout=10)
    again = FakeProvider()
    engine = make_engine(again)
    assert engine.submit(occ("a fox")).result(timeout=10).status == "cached"
    assert again.calls == [] and engine.stats.cached == 1


def test_force_regenerates_a_cached_key(make_engine: MakeEngine, occ: Occ) -> None:
    make_engine(FakeProvider()).submit(occ("a fox")).result(timeout=10)
    again = FakeProvider()
    assert make_engine(again).submit(occ("a fox"), force=True).result(timeout=10).status == "generated"
    assert again.calls == ["a fox"]


def test_the_cap_turns_away_paid_images_with_placeholders(
    make_engine: MakeEngine, occ: Occ, messages: Messages, tmp_path: Path
) -> None:
    provider = FakeProvider()
    engine = make_engine(provider, max_new_images=2)
    for n in range(5):
        engine.submit(occ(f"image {n}"))
    outcomes = results(engine)
    assert [o.status for o in outcomes] == ["fallback"] * 3 + ["generated"] * 2
    assert len(provider.calls) == 2
    assert all("max_new_images reached" in (o.error or "") for o in outcomes[:3])
    assert engine.guard.refused["max_new_images"] == 3
    engine.finish_report()
    (warning,) = messages.at(logging.WARNING)
    assert warning.startswith("3 image(s) were not generated") and "max_new_images (2)" in warning
    with ImageCache(str(tmp_path / "cache")) as cache:  # placeholders never pass for real images
        key = outcomes[0].key
        assert cache.get(key) is None and cache.get(key, fallback=True) is not None


def test_an_api_error_is_refunded_a_failed_download_is_not(make_engine: MakeEngine, occ: Occ) -> None:
    refused = ProviderError("bad request", status=400)
    engine = make_engine(FakeProvider(refused), max_new_images=1, concurrency=1)
    engine.submit(occ("one"))
    engine.submit(occ("two"))
    assert [o.status for o in results(engine)] == ["fallback", "generated"]
    assert engine.guard.refused["max_new_images"] == 0

    billed = ProviderError("downloading the image failed with HTTP 404")  # no status: made and billed
    engine = make_engine(FakeProvider(billed), max_new_images=1, concurrency=1)
    engine.submit(occ("three"))
    engine.submit(occ("four"))
    statuses = results(engine)
    assert [o.status for o in statuses] == ["fallback", "fallback"]
    assert engine.guard.refused["max_new_images"] == 1


def test_retryable_errors_are_retried_then_given_up(
    make_engine: MakeEngine, occ: Occ, messages: Messages
) -> None:
    busy = ProviderError("the API answered HTTP 500", status=500, retryable=True)
    provider = FakeProvider(busy, busy)
    assert make_engine(provider, max_retries=3).submit(occ("fox")).result(timeout=10).status == "generated"
    assert provider.calls == ["fox"] * 3
    assert any("retry 2 of 3" in m for m in messages.at(logging.INFO))

    provider = FakeProvider(busy, busy, busy)
    outcome = make_engine(provider, max_retries=1).submit(occ("owl")).result(timeout=10)
    assert outcome.status == "fallback" and provider.calls == ["owl"] * 2
    assert "gave up after 2 attempts" in (outcome.error or "")


def test_a_retry_after_pauses_every_job(make_engine: MakeEngine, occ: Occ) -> None:
    limited = ProviderError("slow down", status=429, retryable=True, retry_after=30.0)
    provider = FakeProvider(limited)
    engine = make_engine(provider, concurrency=2)
    first = engine.submit(occ("fox"))
    until(lambda: engine.asker.pause.remaining() > 0)
    assert engine.asker.pause.remaining() > 20  # the server's 30 s, not our backoff
    # The pause is shared: a job that comes later waits it out too, with a free request slot.
    second = engine.submit(occ("owl"))
    time.sleep(0.2)
    assert provider.calls == ["fox"] and not first.done() and not second.done()


def test_on_error_fail_stops_spending_after_the_first_failure(make_engine: MakeEngine, occ: Occ) -> None:
    provider = FakeProvider(ProviderError("refused", status=400))
    engine = make_engine(provider, on_error="fail", concurrency=1)
    for n in range(4):
        engine.submit(occ(f"image {n}"))
    outcomes = results(engine)
    assert [o.status for o in outcomes] == ["failed"] * 4
    assert len(provider.calls) == 1
    assert [o.error for o in outcomes if o.error] == ["index.md:1: refused"]
    assert engine.brake.halted


def test_a_rejected_key_asks_nothing_more(make_engine: MakeEngine, occ: Occ, messages: Messages) -> None:
    # The provider decides which answers end the run (the OpenAI one: a 401, an empty balance).
    provider = FakeProvider(ProviderError("the API rejected the key", status=401, stop=True))
    engine = make_engine(provider, concurrency=1)
    for n in range(3):
        engine.submit(occ(f"image {n}"))
    assert [o.status for o in results(engine)] == ["fallback"] * 3
    assert len(provider.calls) == 1
    assert engine.guard.reserved == 0  # the 401 was refunded
    told = [m for m in messages.at(logging.WARNING) if "Images that are not cached get placeholders" in m]
    assert len(told) == 1


def test_an_unavailable_provider_is_told_once(make_engine: MakeEngine, occ: Occ, messages: Messages) -> None:
    provider = FakeProvider(unavailable="no API key: set KEY")
    engine = make_engine(provider)
    for n in range(3):
        engine.submit(occ(f"image {n}"))
    assert [o.status for o in results(engine)] == ["fallback"] * 3
    assert provider.calls == []
    assert messages.at(logging.WARNING) == [
        "no API key: set KEY. Images that are not cached get placeholders in this build"
    ]

    engine = make_engine(FakeProvider(unavailable="no API key"), on_error="fail")
    engine.submit(occ("x"))
    engine.submit(occ("y"))
    errors = [o.error for o in results(engine)]
    assert errors.count(None) == 1 and "index.md:1: no API key" in errors


def test_frozen_mode_fails_a_missing_image_without_asking(make_engine: MakeEngine, occ: Occ) -> None:
    provider = FakeProvider()
    outcome = make_engine(provider, frozen=True).submit(occ("fox", page="p.md", line=3)).result(timeout=10)
    assert outcome.status == "failed" and outcome.fatal
    assert (outcome.error or "").startswith("p.md:3: image not in the cache and frozen mode forbids")
    assert provider.calls == []


def test_an_answer_that_is_not_an_image_gets_a_placeholder(make_engine: MakeEngine, occ: Occ) -> None:
    provider = FakeProvider(GeneratedImage(b"<html>SECRET</html>"))
    outcome = make_engine(provider).submit(occ("fox")).result(timeout=10)
    assert outcome.status == "fallback"
    assert "not an acceptable image" in (outcome.error or "")


def test_messages_are_scrubbed(make_engine: MakeEngine, occ: Occ) -> None:
    provider = FakeProvider(ProviderError("key SECRET refused", status=400))
    outcome = make_engine(provider, on_error="fail").submit(occ("fox")).result(timeout=10)
    assert outcome.error == "index.md:1: key [redacted] refused"


def test_an_internal_error_fails_the_image_not_the_engine(make_engine: MakeEngine, occ: Occ) -> None:
    provider = FakeProvider(KeyError("boom"))
    engine = make_engine(provider)
    outcome = engine.submit(occ("fox")).result(timeout=10)
    assert (
        outcome.status == "failed" and outcome.fatal and "internal error: KeyError" in (outcome.error or "")
    )
    assert engine.submit(occ("owl")).result(timeout=10).status == "generated"


def test_another_build_holding_the_claim_is_waited_for(
    make_engine: MakeEngine, occ: Occ, tmp_path: Path
) -> None:
    """The claim is taken, then the cache is looked at again: what the other build made is used."""
    provider = FakeProvider()
    engine = make_engine(provider)
    fox = occ("fox")
    assert fox.spec is not None
    with ImageCache(str(tmp_path / "cache")) as other:
        claim = other.try_claim(fox.spec.key)
        assert claim is not None
        future = engine.submit(fox)
        assert not future.done()
        other.put(fox.spec.key, b"\x89PNG\r\n\x1a\nmade elsewhere", {"width": 64, "height": 64})
        claim.release()
        outcome = future.result(timeout=10)
    assert outcome.status == "cached" and provider.calls == []


def test_close_cancels_queued_and_running_jobs(make_engine: MakeEngine, occ: Occ) -> None:
    provider = FakeProvider()
    provider.gate = threading.Event()
    engine = make_engine(provider, concurrency=1)
    futures = [engine.submit(occ(f"image {n}")) for n in range(3)]
    until(lambda: bool(provider.calls))
    engine.close()
    provider.gate.set()
    assert [f.result(timeout=10).status for f in futures] == ["failed"] * 3
    assert provider.closed and len(provider.calls) == 1


def test_a_broken_cache_fails_the_image_with_its_place(make_engine: MakeEngine, occ: Occ) -> None:
    engine = make_engine(FakeProvider())

    def broken(key: str) -> None:
        raise OSError("disk on fire")

    engine.tiers.lookup = broken  # type: ignore[method-assign]
    outcome = engine.submit(occ("fox", page="p.md", line=2)).result(timeout=10)
    assert outcome.fatal and outcome.error == "p.md:2: cannot read the image cache: disk on fire"
