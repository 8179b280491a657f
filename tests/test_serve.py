"""`mkdocs serve` never waits for the network: a real server, a slow loopback API, real HTTP.

Nothing here times the plugin: "did not wait for the API" is shown by the API itself (the page
was served while the API had not answered yet), and every wait has a generous bound.
"""

from __future__ import annotations

import base64
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from conftest import run_mkdocs, write_site

from mkdocs_imagegen.cache import ImageCache
from mkdocs_imagegen.testing import Behaviour, FakeImageAPI, colour_for, encode_image
from mkdocs_imagegen.testing.serve import MkdocsServe, ServeError

KEY = "sk-test-serve-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
ENV = {"OPENAI_API_KEY": KEY}
IMG = re.compile(r"<img [^>]*>")

pytestmark = pytest.mark.timeout(180)


def imgs(html: str) -> list[dict[str, str]]:
    return [dict(re.findall(r'(\w[\w-]*)="([^"]*)"', tag)) for tag in IMG.findall(html)]


def state(img: dict[str, str]) -> str:
    """What the page shows in the image's place: the image, or which placeholder."""
    src = img["src"]
    if not src.startswith("data:image/svg+xml;base64,"):
        return "image"
    svg = base64.b64decode(src.split(",", 1)[1]).decode()
    if "Generating image" in svg:
        return "pending"
    if "Not generated while serving" in svg:
        return "not-generated"
    return "error"


def shows_image(page: str) -> bool:
    return all(state(img) == "image" for img in imgs(page))


def site(root: Path, api: FakeImageAPI, prompt: str = "A slow lighthouse", **plugin: Any) -> Path:
    options = {"provider": "openai", "base_url": api.base_url, "timeout": 60, **plugin}
    return write_site(root, {"index.md": page_text(prompt)}, plugin=options)


def reload_after_config_edit(server: MkdocsServe, page: str, config: Path) -> None:
    """Wait for the reload an edit of mkdocs.yml causes, writing the edit again every few seconds:
    a file watcher that has not taken its first look yet misses a write (seen on loaded machines);
    what the test asserts afterwards is unchanged."""
    text = config.read_text(encoding="utf-8")
    deadline = time.monotonic() + 90
    while True:
        try:
            server.wait_for_reload(page, timeout=8)
            return
        except ServeError:
            if time.monotonic() > deadline:
                raise
            config.write_text(text + "\n", encoding="utf-8")
            config.write_text(text, encoding="utf-8")


def page_text(prompt: str, note: str = "") -> str:
    return f"# Home\n\nSome prose.{note}\n\n```imagegen\nprompt: {prompt}\nalt: The picture\n```\n"


def answered(api: FakeImageAPI) -> int:
    """Image requests the API has finished answering."""
    return len(api.generation_requests()) - api.in_flight


def wait_until(condition: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)


def served_image(server: MkdocsServe, page: str) -> tuple[dict[str, str], bytes]:
    (img,) = imgs(page)
    assert state(img) == "image", img
    return img, server.get(urljoin(server.url, img["src"])[len(server.url) :])


def rebuilt(server: MkdocsServe, page: str, root: Path, text: str) -> str:
    """Save the page with `text`, wait for the reload a browser would get, fetch it again."""
    (root / "docs" / "index.md").write_text(text, encoding="utf-8")
    server.wait_for_reload(page)
    return server.page()


def api_png(prompt: str) -> bytes:
    return encode_image(1024, 1024, "png", colour_for(prompt))


def test_placeholder_at_once_then_the_real_image_without_a_save(tmp_path: Path) -> None:
    with FakeImageAPI(latency=8) as api:
        site(tmp_path, api)
        with MkdocsServe(tmp_path, env=ENV) as server:
            first = server.page()
            # Served while the API still sat on the request: the build did not wait for it.
            assert answered(api) == 0
            (img,) = imgs(first)
            assert state(img) == "pending"
            assert img["alt"] == "The picture" and (img["width"], img["height"]) == ("1024", "1024")

            # Nothing touched: the finished image makes the server rebuild and the browser reload.
            server.wait_for_reload(first, timeout=90)
            second = server.page()
            img, data = served_image(server, second)
            assert img["alt"] == "The picture" and state(img) == "image"
            assert data == api_png("A slow lighthouse")
            assert len(api.generation_requests()) == 1

            # A save that changes no directive asks for nothing and shows the same image.
            mark = server.mark()
            third = rebuilt(server, second, tmp_path, page_text("A slow lighthouse", note=" More prose."))
            assert "More prose." in third
            assert served_image(server, third) == (img, data)
            assert len(api.generation_requests()) == 1
            assert server.count(r"1 image in use: 1 from cache, 0 generated", after=mark) == 1
            code, _ = server.interrupt()
            assert code == 0, server.output
        assert "Traceback" not in server.output


def test_a_burst_of_edits_asks_for_the_first_and_the_last_prompt(tmp_path: Path) -> None:
    with FakeImageAPI(latency=6) as api:
        site(tmp_path, api, prompt="boat version 0", concurrency=1)
        with MkdocsServe(tmp_path, env=ENV) as server:
            page = server.page()
            wait_until(lambda: len(api.generation_requests()) == 1, "the first request")
            for n in range(1, 11):  # ten saves, each a new prompt, while the first is in flight
                mark = server.mark()
                (tmp_path / "docs" / "index.md").write_text(page_text(f"boat version {n}"), encoding="utf-8")
                server.wait_for_log(r"images? in use", after=mark, timeout=60)
            # The last prompt's image arrives and is shown, with no further save.
            deadline = time.monotonic() + 90
            while (
                not shows_image(page) or "boat version 10" not in api.generation_requests()[-1].json["prompt"]
            ):
                assert time.monotonic() < deadline, server.output
                server.wait_for_reload(page, timeout=90)
                page = server.page()
            _, data = served_image(server, page)
            assert data == api_png("boat version 10")
            prompts = [r.json["prompt"] for r in api.generation_requests()]
            # At most `concurrency` in flight; the stale prompts were dropped before costing anything.
            assert api.max_in_flight == 1
            assert prompts[0] == "boat version 0" and prompts[-1] == "boat version 10"
            assert len(prompts) <= 3, prompts
            server.interrupt()


def test_ctrl_c_cancels_the_queue_and_leaves_the_cache_consistent(tmp_path: Path) -> None:
    text = "# Home\n\n![one](imagegen:first slow image)\n\n![two](imagegen:second slow image)\n"
    with FakeImageAPI(latency=60) as api:
        write_site(
            tmp_path,
            {"index.md": text},
            plugin={"provider": "openai", "base_url": api.base_url, "timeout": 120, "concurrency": 1},
        )
        with MkdocsServe(tmp_path, env=ENV) as server:
            assert [state(i) for i in imgs(server.page())] == ["pending", "pending"]
            wait_until(lambda: api.in_flight == 1, "a request in flight")
            code, seconds = server.interrupt(timeout=20)
        assert code == 0, server.output
        assert seconds < 15, server.output  # the API would have answered only after 60 s
        assert "Traceback" not in server.output
        assert len(api.generation_requests()) == 1  # the queued one was never asked for

    # Nothing half-made, no claim left behind: a build (the API answering now) makes both.
    cache_dir = tmp_path / ".cache" / "plugin" / "imagegen"
    with ImageCache(str(cache_dir)) as cache:
        assert list(cache.entries()) == []
    with FakeImageAPI() as api:
        write_site(
            tmp_path,
            {"index.md": text},
            plugin={"provider": "openai", "base_url": api.base_url, "timeout": 10},
        )
        build = run_mkdocs(tmp_path, "--strict", env=ENV, timeout=60)
        assert build.returncode == 0, build.output
        assert "2 generated" in build.output
    with ImageCache(str(cache_dir)) as cache:
        entries = list(cache.entries())
        assert len(entries) == 2
        assert all(cache.get(key) is not None for key, _, _ in entries)


def test_a_failed_background_image_is_reported_once_and_retried_by_the_next_save(tmp_path: Path) -> None:
    with FakeImageAPI(latency=2) as api:
        api.enqueue(Behaviour("error", message="The gateway is having a bad day."))
        site(tmp_path, api, prompt="An unlucky kite")
        with MkdocsServe(tmp_path, env=ENV) as server:
            first = server.page()
            assert state(imgs(first)[0]) == "pending"
            server.wait_for_reload(first, timeout=60)
            second = server.page()
            img, data = served_image(server, second)  # the error placeholder, at the image's size
            assert data != api_png("An unlucky kite")
            assert (img["width"], img["height"]) == ("1024", "1024")
            assert server.count(r"The gateway is having a bad day") == 1
            assert len(api.generation_requests()) == 1

            # The next save (no directive change) retries; the answer now is the image.
            third = rebuilt(server, second, tmp_path, page_text("An unlucky kite", note=" Again."))
            page = third
            deadline = time.monotonic() + 60
            while not shows_image(page) or served_image(server, page)[1] != api_png("An unlucky kite"):
                assert time.monotonic() < deadline, server.output
                server.wait_for_reload(page, timeout=60)
                page = server.page()
            assert len(api.generation_requests()) == 2
            assert server.count(r"The gateway is having a bad day") == 1
            server.interrupt()


@pytest.mark.parametrize(
    ("options", "args"),
    [({"serve_mode": "blocking"}, ()), ({}, ("--dirty",))],
    ids=["serve_mode-blocking", "dirty-rebuilds"],
)
def test_serve_mode_blocking_waits_for_the_image_as_a_build_does(
    tmp_path: Path, options: dict[str, str], args: tuple[str, ...]
) -> None:
    # `serve --dirty` rebuilds only changed pages, which could never show the image: it waits too.
    with FakeImageAPI(latency=3) as api:
        site(tmp_path, api, prompt="A patient heron", **options)
        with MkdocsServe(tmp_path, env=ENV, args=args) as server:
            assert answered(api) == 1  # the server started serving only after the answer
            _, data = served_image(server, server.page())
            assert data == api_png("A patient heron")
            server.interrupt()


def test_serve_mode_placeholder_never_generates(tmp_path: Path) -> None:
    with FakeImageAPI() as api:
        cached = "# Home\n\n![old](imagegen:an image made by a build)\n"
        write_site(tmp_path, {"index.md": cached}, plugin={"provider": "openai", "base_url": api.base_url})
        assert run_mkdocs(tmp_path, env=ENV).returncode == 0
        assert len(api.generation_requests()) == 1
        write_site(
            tmp_path,
            {"index.md": cached + "\n![new](imagegen:an image nobody made yet)\n"},
            plugin={"provider": "openai", "base_url": api.base_url, "serve_mode": "placeholder"},
        )
        with MkdocsServe(tmp_path, env=ENV) as server:
            page = server.page()
            old, new = imgs(page)
            assert state(old) == "image" and old["alt"] == "old"
            assert state(new) == "not-generated" and new["alt"] == "new"
            page = rebuilt(
                server, page, tmp_path, cached + "\n![new](imagegen:an image nobody made yet)\n\nSaved.\n"
            )
            assert state(imgs(page)[1]) == "not-generated"
            assert server.count(r"1 not generated \(serve_mode: placeholder\)") >= 2
            server.interrupt()
        assert len(api.generation_requests()) == 1


def test_options_edited_while_serving_take_a_new_engine(tmp_path: Path) -> None:
    write_site(tmp_path, {"index.md": page_text("A lighthouse, drawn offline")})
    with FakeImageAPI(latency=1) as api, MkdocsServe(tmp_path, env=ENV) as server:
        page = server.page()
        deadline = time.monotonic() + 60
        while not shows_image(page):  # the offline placeholder provider, in the background
            assert time.monotonic() < deadline, server.output
            server.wait_for_reload(page)
            page = server.page()
        assert api.requests == []
        # Switch to the API while serving: its key's image must come from the API, not from
        # the engine that was opened for the placeholder provider.
        site(tmp_path, api, prompt="A lighthouse, drawn offline")
        reload_after_config_edit(server, page, tmp_path / "mkdocs.yml")
        page = server.page()
        while not shows_image(page):
            assert time.monotonic() < deadline + 60, server.output
            server.wait_for_reload(page)
            page = server.page()
        assert served_image(server, page)[1] == api_png("A lighthouse, drawn offline")
        assert len(api.generation_requests()) == 1
        server.interrupt()


def test_an_image_made_while_serving_joins_the_lock(tmp_path: Path) -> None:
    with FakeImageAPI(latency=2) as api:
        site(tmp_path, api, prompt="A locked lighthouse", lock="docs-images")
        with MkdocsServe(tmp_path, env=ENV) as server:
            first = server.page()
            assert state(imgs(first)[0]) == "pending"
            server.wait_for_reload(first, timeout=60)
            img, data = served_image(server, server.page())
            server.interrupt()
        key = img["src"].rsplit("/", 1)[-1].split(".")[0]
        lock = tmp_path / "docs-images"
        assert (lock / f"{key}.png").read_bytes() == data == api_png("A locked lighthouse")
        manifest = (lock / "imagegen.lock").read_text(encoding="utf-8")
        assert key in manifest and "index.md" in manifest
        assert len(api.generation_requests()) == 1
