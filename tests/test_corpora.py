"""Real documentation nobody wrote for this project, built with and without the plugin.

The three corpora (MkDocs, Material for MkDocs and PyMdown Extensions docs) live in
`../shared/corpora` beside the project; the tests are skipped where that folder is absent.
"""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin

import pytest
import yaml
from conftest import CORPORA, run_mkdocs

NAMES = ["mkdocs-docs", "mkdocs-material-docs", "pymdown-extensions-docs"]
EXTENSIONS = [
    "toc",
    "tables",
    "admonition",
    "attr_list",
    "def_list",
    "footnotes",
    "md_in_html",
    "pymdownx.details",
    "pymdownx.superfences",
    {"pymdownx.tabbed": {"alternate_style": True}},
    "pymdownx.blocks.admonition",
    "pymdownx.blocks.tab",
]
THEME_ONLY = re.compile(r"^(template|icon):.*\n", re.M)
PRE = re.compile(r"<pre[^>]*>.*?</pre>", re.S)


def copy_corpus(name: str, target: Path) -> Path:
    source = CORPORA / name / "docs"
    if not source.is_dir():
        pytest.skip(f"corpus {name} not found in {CORPORA}")
    shutil.copytree(source, target / "docs")
    for page in (target / "docs").rglob("*.md"):
        text = page.read_text(encoding="utf-8")
        if text.startswith("---\n"):
            end = text.find("\n---\n", 4)
            if end > 0:
                text = text[:4] + THEME_ONLY.sub("", text[4 : end + 1]) + text[end + 1 :]
                page.write_text(text, encoding="utf-8")
    return target


def configure(root: Path, plugin: bool, options: dict[str, Any] | None = None) -> None:
    config = {
        "site_name": "Corpus",
        "docs_dir": "docs",
        "markdown_extensions": EXTENSIONS,
        "plugins": ["search", {"imagegen": options or {}}] if plugin else ["search"],
    }
    (root / "mkdocs.yml").write_text(yaml.safe_dump(config), encoding="utf-8")


def pages(site: Path) -> dict[str, str]:
    return {
        str(p.relative_to(site)): re.sub(r"Build Date UTC : [^\n]*", "", p.read_text(encoding="utf-8"))
        for p in sorted(site.rglob("*.html"))
    }


@pytest.mark.parametrize("name", NAMES)
def test_corpus_builds_identically_with_the_plugin(tmp_path: Path, name: str) -> None:
    root = copy_corpus(name, tmp_path)
    configure(root, plugin=False)
    plain = run_mkdocs(root, "-d", "plain")
    configure(root, plugin=True)
    with_plugin = run_mkdocs(root, "-d", "with")
    assert with_plugin.returncode == plain.returncode == 0, with_plugin.output
    assert "0 images in use" in with_plugin.output
    assert pages(with_plugin.site) == pages(plain.site)


TITLE_LINE = re.compile(r"^[ \t]*(?:!!!|\?\?\?\+?|===|/{3,})")
FENCE_ONLY = re.compile(r"^[ \t>]*(?:`{3,}|~{3,})[ \t]*$")
MAX_SPOTS = 350  # per corpus: enough positions of every kind, a bounded build time


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.images: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append({k: v or "" for k, v in attrs})


def images(html: str) -> list[dict[str, str]]:
    parser = _Images()
    parser.feed(html)
    return parser.images


def mark_lines(root: Path) -> int:
    """Append `![dN](imagegen:diff N)` to block title lines, closing fences and every 9th line."""
    n = 0
    for page in sorted((root / "docs").rglob("*.md")):
        lines = page.read_text(encoding="utf-8").split("\n")
        for i, line in enumerate(lines):
            if n >= MAX_SPOTS:
                break
            if TITLE_LINE.match(line) or FENCE_ONLY.match(line) or (i % 9 == 4 and line.strip()):
                lines[i] = f"{line} ![d{n}](imagegen:diff {n})"
                n += 1
        page.write_text("\n".join(lines), encoding="utf-8")
    return n


@pytest.mark.parametrize("name", NAMES)
def test_the_renderer_decides_every_position(tmp_path: Path, name: str) -> None:
    """Differential against the renderer itself: an image where it shows one, the same code where code."""
    root = copy_corpus(name, tmp_path)
    spots = mark_lines(root)
    assert spots > 100
    configure(root, plugin=False)
    plain = run_mkdocs(root, "-d", "plain")
    configure(root, plugin=True, options={"size": "32x32"})
    built = run_mkdocs(root, "-d", "with")
    assert plain.returncode == built.returncode == 0, built.output
    before, after = pages(plain.site), pages(built.site)
    assert before.keys() == after.keys()
    shown = 0
    for path in before:
        expected = {i["alt"] for i in images(before[path]) if i.get("src", "").startswith("imagegen:")}
        got = set()
        for image in images(after[path]):
            assert not image.get("src", "").startswith("imagegen:"), (path, image)
            if "assets/imagegen/" in image.get("src", ""):
                file = built.site / unquote(
                    urljoin("http://site/" + path, image["src"])[len("http://site/") :]
                )
                assert file.is_file(), (path, image)
                got.add(image["alt"])
        assert got == expected, path
        # Wherever the renderer shows code, the plugin's build shows the same code.
        assert PRE.findall(after[path]) == PRE.findall(before[path]), path
        shown += len(expected)
    assert shown > 50, (shown, spots)
