"""The example site, the documentation site and the report, opened in a real browser.

Each is built with the real commands, served over a loopback HTTP server (never file://) and
opened in headless Chromium: every image loads and decodes at the size its attributes promise, the
console stays free of errors, nothing is fetched from outside 127.0.0.1, and the report's filters
work. The screenshots it takes are the ones in the README and the docs; to refresh them, run
`IMAGEGEN_SCREENSHOTS=docs/src/assets/screenshots python -m pytest tests/test_browser.py`.

Skipped (with the reason) where Chromium or Playwright is missing; `.ci/run` installs both.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import ROOT, run_mkdocs

CHROMIUM = os.environ.get("IMAGEGEN_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed (the dev extra has it)"
)

# Make every image load now (the plugin marks them lazy), wait for each to decode, and report sizes.
IMAGES_JS = """async () => {
  const images = [...document.images];
  for (const img of images) { img.loading = "eager"; }
  return Promise.all(images.map(async (img) => {
    let decoded = true;
    try { await img.decode(); } catch (e) { decoded = false; }
    return {
      src: img.getAttribute("src"), alt: img.getAttribute("alt"), cls: img.className,
      width: img.getAttribute("width"), height: img.getAttribute("height"),
      naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight, decoded,
    };
  }));
}"""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Served:
    root: Path
    url: str


@dataclass
class Visit:
    images: list[dict[str, Any]]
    errors: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def serve() -> Iterator[Any]:
    servers: list[ThreadingHTTPServer] = []

    def start(root: Path) -> Served:
        server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return Served(root, f"http://127.0.0.1:{server.server_address[1]}/")

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield chromium
        chromium.close()


def visit(browser: Any, url: str, *, screenshot: str | None = None, act: Any = None) -> Visit:
    """Open `url` in a fresh page, load every image, and record console errors and outside requests."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    result = Visit(images=[])
    page.on("console", lambda m: result.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: result.errors.append(str(e)))

    def route(request: Any) -> None:
        host = urlsplit(request.request.url).hostname
        if request.request.url.startswith("data:") or host == "127.0.0.1":
            request.continue_()
        else:
            result.outside.append(request.request.url)
            request.abort()

    page.route("**/*", route)
    try:
        page.goto(url, wait_until="load", timeout=30_000)
        result.images = page.evaluate(IMAGES_JS)
        if act is not None:
            act(page)
        page.wait_for_load_state("networkidle", timeout=30_000)
        if screenshot:
            _screenshot(page, screenshot)
    finally:
        context.close()
    return result


def _screenshot(page: Any, name: str) -> None:
    page.evaluate("window.scrollTo(0, 0)")
    target = os.environ.get("IMAGEGEN_SCREENSHOTS")
    folder = Path(target) if target else Path(os.environ.get("PYTEST_TMP", "/tmp")) / "imagegen-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / name))
    assert (folder / name).stat().st_size > 10_000


def assert_images_load(visit: Visit, where: str) -> int:
    """Every image decoded; a generated one at exactly the size its attributes say (or, where the
    writer set a display width, at the same aspect ratio). Returns the number of generated images."""
    assert not visit.errors, (where, visit.errors)
    assert not visit.outside, (where, visit.outside)
    generated = 0
    for img in visit.images:
        assert img["decoded"] and img["naturalWidth"] > 0 and img["naturalHeight"] > 0, (where, img)
        if img["width"] and img["height"]:
            w, h = int(img["width"]), int(img["height"])
            nw, nh = img["naturalWidth"], img["naturalHeight"]
            if nw == w:
                assert nh == h, (where, img)
            else:  # a display size given in the page: the other side follows the aspect ratio
                assert abs(nh * w / nw - h) <= 1, (where, img)
        if "imagegen" in (img["cls"] or "").split():
            generated += 1
            assert img["alt"], (where, img)
    return generated


def pages_of(site: Path) -> list[str]:
    return sorted(
        str(p.relative_to(site).parent) + "/" if p.name == "index.html" else str(p.relative_to(site))
        for p in site.rglob("*.html")
        if p.name != "404.html"
    )


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("browser-example") / "example-site"
    shutil.copytree(ROOT / "example-site", root, ignore=shutil.ignore_patterns("site", ".cache"))
    build = run_mkdocs(root, "--strict")
    assert build.returncode == 0, build.output
    return root


@pytest.fixture(scope="module")
def docs_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    top = tmp_path_factory.mktemp("browser-docs")
    shutil.copytree(ROOT / "docs", top / "docs", ignore=shutil.ignore_patterns("site", ".cache"))
    for name in ("README.md", "CHANGELOG.md"):
        shutil.copy(ROOT / name, top / name)
    build = run_mkdocs(top / "docs", "--strict")
    assert build.returncode == 0, build.output
    return top / "docs" / "site"


def test_the_example_site_in_chromium(example: Path, browser: Any, serve: Any) -> None:
    served = serve(example / "site")
    pages = pages_of(served.root)
    assert {"./", "guide/tour/", "syntax/"} <= set(pages)
    generated = 0
    for path in pages:
        shot = "example-site.png" if path == "./" else None
        generated += assert_images_load(visit(browser, served.url + path, screenshot=shot), path)
    assert generated >= 7  # every directive of the example site, each seen as a loaded image


def test_the_documentation_site_in_chromium(docs_site: Path, browser: Any, serve: Any) -> None:
    served = serve(docs_site)
    pages = pages_of(served.root)
    assert {"./", "directives/", "options/", "changelog/"} <= set(pages)
    generated = 0
    for path in pages:
        shot = "docs-site.png" if path == "./" else None
        generated += assert_images_load(visit(browser, served.url + path, screenshot=shot), path)
    assert generated >= 30


def test_the_report_in_chromium_with_its_filters(example: Path, browser: Any, serve: Any) -> None:
    # One directive more than the cache holds, so the report has two states to filter.
    page = example / "docs" / "syntax.md"
    page.write_text(
        page.read_text(encoding="utf-8") + "\n![A new chart](imagegen:a tide chart, not generated yet)\n",
        encoding="utf-8",
    )
    out = example / "report" / "index.html"
    out.parent.mkdir()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs_imagegen.cli",
            "report",
            "-f",
            str(example / "mkdocs.yml"),
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=example,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    served = serve(out.parent)
    seen: dict[str, Any] = {}

    def use_filters(p: Any) -> None:
        cards = p.locator(".card")
        seen["total"] = cards.count()
        p.get_by_role("button", name="missing", exact=True).click()
        seen["missing"] = p.locator(".card:not([hidden])").count()
        seen["missing_text"] = p.locator(".card:not([hidden]) .prompt").all_inner_texts()
        p.get_by_role("button", name="cached", exact=True).click()
        seen["cached"] = p.locator(".card:not([hidden])").count()
        p.get_by_role("button", name="all", exact=True).click()
        p.get_by_role("searchbox").fill("logbook")
        seen["search"] = p.locator(".card:not([hidden]) .prompt").all_inner_texts()
        seen["status"] = p.locator(".filters output").inner_text()
        p.get_by_role("searchbox").fill("")

    result = visit(browser, served.url, screenshot="report.png", act=use_filters)
    assert_images_load(result, "report")
    assert len([i for i in result.images if i["src"].startswith("data:image/")]) == 6
    assert seen["total"] == 7
    assert seen["missing"] == 1 and seen["missing_text"][0].startswith("a tide chart, not generated yet")
    assert seen["cached"] == 6
    assert len(seen["search"]) == 1 and "logbook" in seen["search"][0]
    assert seen["status"] == "1 of 7 shown"
