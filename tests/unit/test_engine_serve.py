"""The engine's background mode (one engine for every rebuild of `mkdocs serve`), in milliseconds.

A fake provider whose answers the test releases one at a time stands in for a slow API.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import FakeProvider, draw_placeholder, occurrence

from mkdocs_imagegen.cache import ImageCache
from mkdocs_imagegen.engine import Engine, Outcome
from mkdocs_imagegen.providers import GeneratedImage, GenerationRequest, ProviderError

MakeEngine = Callable[..., Engine]


class GatedProvider(FakeProvider):
    """A slow API: each answer waits until the test gives it a turn (`turns.release()`)."""

    def __init__(self) -> None:
        super().__init__()
        self.turns = threading.Semaphore(0)

    async def generate(self, request: GenerationRequest) -> GeneratedImage:
        self.calls.append(request.spec.prompt)
        while not self.turns.acquire(blocking=False):
            await asyncio.sleep(0.002)
        answer = self.answers.pop(0) if self.answers else "ok"
        if isinstance(answer, Exception):
            raise answer
        return GeneratedImage(f"image of {request.spec.prompt}".encode(), exact=True)


@pytest.fixture
def engine(make_engine: MakeEngine) -> Engine:
    return make_engine(GatedProvider(), concurrency=1)


def provider(engine: Engine) -> GatedProvider:
    assert isinstance(engine.provider, GatedProvider)
    return engine.provider


def wait_for(condition: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline
        time.sleep(0.005)


def rebuild(engine: Engine, *prompts: str, retry_failed: bool = True) -> list[Outcome | None]:
    """One serve rebuild whose pages use `prompts`; what each page could show at once."""
    engine.begin_round(retry_failed=retry_failed)
    futures = [engine.submit(occurrence(p)) for p in prompts]
    engine.end_round()
    return [f.result() if f.done() else None for f in futures]


def test_a_key_no_page_uses_any_more_is_dropped_before_its_request(engine: Engine) -> None:
    fake = provider(engine)
    engine.begin_round(retry_failed=False)
    first = engine.submit(occurrence("v0"))
    engine.end_round()
    wait_for(lambda: fake.calls == ["v0"])
    for n in range(1, 10):  # nine saves while v0 is in flight, each a new prompt
        assert rebuild(engine, f"v{n}") == [None]
    fake.turns.release()
    assert first.result(5).status == "generated"  # already asked for: answered and kept
    fake.turns.release()
    wait_for(lambda: engine.peek(occurrence("v9").spec.key) is not None)  # type: ignore[union-attr]
    assert fake.calls == ["v0", "v9"]
    assert engine.stats.generated == 1  # v9, counted in the rebuild that asked for it


def test_a_key_still_in_use_is_never_asked_for_twice(engine: Engine) -> None:
    fake = provider(engine)
    assert rebuild(engine, "same", "other") == [None, None]
    wait_for(lambda: len(fake.calls) == 1)  # concurrency 1: one in flight, the other waits
    assert rebuild(engine, "same", "other") == [None, None]
    fake.turns.release()
    fake.turns.release()
    wait_for(lambda: engine.under_way() == 0)
    assert sorted(fake.calls) == ["other", "same"]
    # A save that changes nothing: every image at once, no request, no cache read.
    reads = []
    engine.tiers.lookup = lambda key: reads.append(key)  # type: ignore[method-assign,assignment,return-value]
    outcomes = rebuild(engine, "same", "other")
    assert [o.status for o in outcomes if o] == ["generated", "generated"]
    assert reads == [] and len(fake.calls) == 2
    assert (engine.stats.cached, engine.stats.generated) == (2, 0)


def test_a_failure_is_kept_until_a_save_retries_it(engine: Engine) -> None:
    fake = provider(engine)
    fake.answers.append(ProviderError("The gateway is having a bad day.", status=400))
    done: list[Outcome] = []
    engine.on_done = done.append
    rebuild(engine, "kite")
    fake.turns.release()
    wait_for(lambda: len(done) == 1)
    assert done[0].status == "fallback" and "bad day" in (done[0].error or "")
    # The rebuild that shows the error placeholder does not ask again...
    (shown,) = rebuild(engine, "kite", retry_failed=False)
    assert shown is not None and shown.status == "fallback" and fake.calls == ["kite"]
    # ...the next save does.
    assert rebuild(engine, "kite", retry_failed=True) == [None]
    fake.turns.release()
    wait_for(lambda: len(done) == 2)
    assert done[1].status == "generated" and fake.calls == ["kite", "kite"]


def test_close_ends_queued_and_running_jobs_at_once(tmp_path: Path) -> None:
    fake = GatedProvider()
    engine = Engine(ImageCache(str(tmp_path / "c")), fake, placeholder=draw_placeholder, concurrency=1)
    futures = [engine.submit(occurrence(f"p{n}")) for n in range(5)]
    wait_for(lambda: len(fake.calls) == 1)
    engine.close()  # the gate never opens: only cancelling ends the running request
    assert all(f.done() and f.result().status == "failed" for f in futures)
    assert len(fake.calls) == 1
    with ImageCache(str(tmp_path / "c")) as cache:
        assert list(cache.entries()) == []
        for future in futures:  # no claim left behind
            claim = cache.try_claim(future.result().key)
            assert claim is not None
            claim.release()
