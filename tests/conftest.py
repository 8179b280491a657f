"""Shared helpers: small real sites built with the real `mkdocs` command; and, for the unit layer
(tests/unit, marked `unit`), a scripted provider and an engine over a real cache in tmp_path."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin

import pytest
import yaml

from mkdocs_imagegen.cache import ImageCache
from mkdocs_imagegen.engine import Engine
from mkdocs_imagegen.providers import GeneratedImage, GenerationRequest, Provider, ProviderError
from mkdocs_imagegen.spec import ImageSpec, Occurrence, RawDirective
from mkdocs_imagegen.testing import FakeImageAPI

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
CORPORA = ROOT.parent / "shared" / "corpora"


@dataclass
class Build:
    returncode: int
    output: str
    site: Path

    def page(self, path: str = "index.html") -> str:
        return (self.site / path).read_text(encoding="utf-8")


def write_site(
    root: Path,
    pages: dict[str, str],
    plugin: dict[str, Any] | None = None,
    **config: Any,
) -> Path:
    """A site in `root`: mkdocs.yml with the imagegen plugin, and `pages` under docs/."""
    docs = root / "docs"
    for name, text in pages.items():
        target = docs / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(text, encoding="utf-8")
    settings: dict[str, Any] = {
        "site_name": "Test site",
        "docs_dir": "docs",
        "site_dir": "site",
        "plugins": [{"imagegen": plugin or {}}],
    }
    settings.update(config)
    (root / "mkdocs.yml").write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return root


def mkdocs_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a test's `mkdocs`: no key or frozen flag from outside, plus `env`."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "IMAGEGEN_FROZEN")}
    full_env.update(env or {})
    return full_env


def start_mkdocs(root: Path, *, env: dict[str, str] | None = None, **popen: Any) -> subprocess.Popen[str]:
    """The real `mkdocs build` in the background, for the tests that race or kill it."""
    command = [sys.executable, "-m", "mkdocs", "build", "-f", str(root / "mkdocs.yml")]
    return subprocess.Popen(command, cwd=root, env=mkdocs_env(env), text=True, **popen)


def run_mkdocs(root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Build:
    """Run the real `mkdocs build` in a subprocess, as a user would."""
    full_env = mkdocs_env(env)
    site = root / "site"
    for i, arg in enumerate(args):
        if arg in ("-d", "--site-dir"):
            site = root / args[i + 1]
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "-f", str(root / "mkdocs.yml"), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=root,
    )
    return Build(proc.returncode, proc.stdout + proc.stderr, site)


IMG = re.compile(r"<img [^>]*>")


def imgs(html: str) -> list[dict[str, str]]:
    return [dict(re.findall(r'(\w[\w-]*)="([^"]*)"', tag)) for tag in IMG.findall(html)]


def generated_images(build: Build) -> list[Path]:
    folder = build.site / "assets" / "imagegen"
    return sorted(folder.iterdir()) if folder.exists() else []


def resolve_src(build: Build, page_html: str, src: str) -> Path:
    """Where a browser would fetch `src` from, for the page written at `page_html`."""
    page_url = "http://site/" + page_html
    target = urljoin(page_url, src)
    assert target.startswith("http://site/"), target
    path = unquote(target[len("http://site/") :])
    return build.site / path


KEY = "sk-test-5f1d9a0c7e3b44aa9d2b6e8c1f0a7b3d"
PNG = b"\x89PNG\r\n\x1a\n"  # how a (fake) PNG starts
ENV = {"OPENAI_API_KEY": KEY}


def openai_site(root: Path, api: FakeImageAPI, pages: dict[str, str], **plugin: Any) -> Path:
    # A gateway at a loopback base_url serving gpt-image-1-mini (as Lumenfall does): OpenAI's own
    # default is gpt-image-2 now, which the tests of that default set up themselves.
    options = {
        "provider": "openai",
        "base_url": api.base_url,
        "timeout": 10,
        "model": "gpt-image-1-mini",
        **plugin,
    }
    return write_site(root, pages, plugin=options)


def openai_build(root: Path, *args: str, env: dict[str, str] | None = ENV) -> Build:
    return run_mkdocs(root, *args, env=env)


@pytest.fixture
def fake_api() -> Iterator[FakeImageAPI]:
    with FakeImageAPI() as api:
        yield api


# -- the unit layer ------------------------------------------------------------------------------
UNIT = Path(__file__).resolve().parent / "unit"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/unit is the unit layer: `pytest -m unit` selects the same tests."""
    for item in items:
        if UNIT in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.unit)


# -- the engine's world in miniature: a scripted provider, a real cache in tmp_path -----------------


Answer = GeneratedImage | ProviderError | Exception | str


class FakeProvider(Provider):
    """Answers from a script, one per request (then successes); records every request."""

    name = "fake"
    paid = True

    def __init__(self, *answers: Answer, unavailable: str | None = None, cost: float | None = 0.01) -> None:
        self.answers = list(answers)
        self.unavailable = unavailable
        self.cost = cost
        self.calls: list[str] = []  # prompts, in the order they were asked
        self.gate: threading.Event | None = None  # set: requests wait for it
        self.closed = False

    def unavailable_reason(self) -> str | None:
        return self.unavailable

    def estimate_cost(self, spec: ImageSpec) -> float | None:
        return self.cost

    def scrub(self, text: str) -> str:
        return text.replace("SECRET", "[redacted]")

    async def generate(self, request: GenerationRequest) -> GeneratedImage:
        self.calls.append(request.spec.prompt)
        # Waits on the loop, as a real (async HTTP) request does, so cancelling it ends it at once.
        deadline = time.monotonic() + 10
        while self.gate is not None and not self.gate.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        answer = self.answers.pop(0) if self.answers else "ok"
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, GeneratedImage):
            return answer
        # A PNG signature first: the cache serves only files that start like their format.
        return GeneratedImage(
            PNG + f"image of {request.spec.prompt}".encode(), exact=True, info={"revised_prompt": "r"}
        )

    async def aclose(self) -> None:
        self.closed = True


def draw_placeholder(spec: ImageSpec, label: str, source_path: str | None = None) -> bytes:
    return PNG + f"placeholder of {spec.prompt}: {label}".encode()


class Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def at(self, level: int) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno == level]


@pytest.fixture
def messages() -> Iterator[Messages]:
    handler = Messages()
    logger = logging.getLogger("test.engine")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield handler
    logger.removeHandler(handler)


@pytest.fixture
def make_engine(tmp_path: Path, messages: Messages) -> Iterator[Callable[..., Engine]]:
    engines: list[Engine] = []

    def make(provider: Provider, **options: Any) -> Engine:
        options.setdefault("backoff", 0.001)
        engine = Engine(
            ImageCache(str(tmp_path / "cache")),
            provider,
            placeholder=draw_placeholder,
            logger=logging.getLogger("test.engine"),
            **options,
        )
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


def occurrence(prompt: str, page: str = "index.md", line: int = 1, **spec: Any) -> Occurrence:
    fields: dict[str, Any] = {"provider": "fake", "model": "m", "size": "64x64", "format": "png", **spec}
    raw = RawDirective(kind="inline", line=line, body=prompt)
    return Occurrence(page=page, line=line, raw=raw, spec=ImageSpec(prompt=prompt, **fields))


@pytest.fixture
def occ() -> Callable[..., Occurrence]:
    return occurrence
