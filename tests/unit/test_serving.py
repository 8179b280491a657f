"""The serve session's reload bookkeeping: a page that showed an image as pending is reloaded
once that image is ready, however its arrival and the page's writing interleave."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from mkdocs_imagegen.serving import ServeSession

KEY = "k" * 32


class FakeServer:
    observer = None  # no watcher thread to wait for

    def __init__(self) -> None:
        self.watched: list[str] = []

    def watch(self, path: str, recursive: bool = True) -> None:
        self.watched.append(path)


class FakeImages:
    """What `pending_src` reads of a build's images; `outcomes` are answered one call at a time."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.missing: dict[str, Any] = {}
        self.spec = SimpleNamespace(prompt="a lighthouse", dimensions=(64, 32))

    def occurrence(self, key: str) -> Any:
        return SimpleNamespace(spec=self.spec)

    def outcome(self, key: str) -> Any:
        return self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]


READY = SimpleNamespace(entry=object())
FAILED = SimpleNamespace(entry=None)


@pytest.fixture
def session() -> Any:
    made = ServeSession()
    yield made
    made.close()


def test_an_image_ready_later_reloads_the_page_that_showed_it_pending(session: ServeSession) -> None:
    session.watch(FakeServer())
    assert session.trigger is not None
    assert session.pending_src(FakeImages(None), KEY) is not None  # type: ignore[arg-type]
    assert not session.trigger.consume()
    session.image_ready(KEY, wanted=True)
    assert session.trigger.consume()
    session.image_ready(KEY, wanted=True)  # once: the page no longer shows it pending
    assert not session.trigger.consume()


def test_an_image_that_arrives_while_its_page_is_written_still_reloads_it(session: ServeSession) -> None:
    """The engine finished between the page's first look and its mark: no reload would come."""
    session.watch(FakeServer())
    assert session.trigger is not None
    src = session.pending_src(FakeImages(None, READY), KEY)  # type: ignore[arg-type]
    assert src is not None and session.trigger.consume()


def test_an_image_ready_before_the_server_is_up_reloads_once_it_is(session: ServeSession) -> None:
    """MkDocs calls on_serve after the first build: an image finished in between is not lost."""
    assert session.pending_src(FakeImages(None), KEY) is not None  # type: ignore[arg-type]
    session.image_ready(KEY, wanted=True)  # no trigger yet
    server = FakeServer()
    session.watch(server)
    assert session.trigger is not None and server.watched == [session.trigger.folder]
    assert session.trigger.consume()


def test_an_image_no_page_uses_any_more_reloads_nothing(session: ServeSession) -> None:
    session.pending_src(FakeImages(None), KEY)  # type: ignore[arg-type]
    session.image_ready(KEY, wanted=False)
    session.watch(FakeServer())
    assert session.trigger is not None and not session.trigger.consume()


def test_a_failed_image_gets_no_stand_in(session: ServeSession) -> None:
    assert session.pending_src(FakeImages(FAILED), KEY) is None  # type: ignore[arg-type]
