"""Real documentation nobody wrote for this project, built with and without the plugin.

The three corpora (MkDocs, Material for MkDocs and PyMdown Extensions docs) live in
`../shared/corpora` beside the project; the tests are skipped where that folder is absent.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

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
DIRECTIVE_IMG = re.compile(r'<img [^>]*src="[^"]*assets/imagegen/[0-9a-f]{32}\.png"')
HEADING = re.compile(r"^#{1,2} ", re.M)


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


def configure(root: Path, plugin: bool) -> None:
    config = {
        "site_name": "Corpus",
        "docs_dir": "docs",
        "markdown_extensions": EXTENSIONS,
        "plugins": ["search", "imagegen"] if plugin else ["search"],
    }
    (root / "mkdocs.yml").write_text(yaml.safe_dump(config), encoding="utf-8")


def pages(site: Path) -> dict[str, str]:
    return {
        str(p.relative_to(site)): re.sub(r"Build Date UTC : [^\n]*", "", p.read_text(encoding="utf-8"))
        for p in sorted(site.rglob("*.html"))
    }


def outside_code(text: str) -> list[int]:
    """Offsets of top-level headings that are not inside a fence (a simple, independent tracker)."""
    offsets, fence, pos = [], None, 0
    for line in text.splitlines(keepends=True):
        stripped = line.lstrip()
        m = re.match(r"(`{3,}|~{3,})", stripped)
        if fence is None and m and len(line) - len(stripped) < 4:
            fence = m[1]
        elif (
            fence is not None and stripped.rstrip().startswith(fence) and set(stripped.strip()) == {fence[0]}
        ):
            fence = None
        elif fence is None and HEADING.match(line):
            offsets.append(pos)
        pos += len(line)
    return offsets


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


@pytest.mark.parametrize("name", NAMES)
def test_directives_between_blocks_are_found_and_code_is_untouched(tmp_path: Path, name: str) -> None:
    root = copy_corpus(name, tmp_path)
    configure(root, plugin=False)
    plain = run_mkdocs(root, "-d", "plain")
    inserted = 0
    for page in sorted((root / "docs").rglob("*.md")):
        text = page.read_text(encoding="utf-8")
        spots = outside_code(text)[1:4]  # after the title: between real blocks of the page
        for n, offset in enumerate(reversed(spots)):
            directive = f"![corpus image](imagegen:{page.stem} {n})\n\n"
            text = text[:offset] + directive + text[offset:]
            inserted += 1
        page.write_text(text, encoding="utf-8")
    assert inserted > 20
    configure(root, plugin=True)
    built = run_mkdocs(root, "-d", "with")
    assert built.returncode == 0, built.output
    found = sum(len(DIRECTIVE_IMG.findall(html)) for html in pages(built.site).values())
    assert found == inserted
    # Every code sample of every page is byte for byte what it was without directives and plugin.
    before, after = pages(plain.site), pages(built.site)
    assert before.keys() == after.keys()
    for path in before:
        assert PRE.findall(after[path]) == PRE.findall(before[path]), path
