"""The documentation site (docs/): every option and every directive key is on it, live, and it builds.

Adding an option to `ImagegenConfig` without a section on the options page fails here, as does an
example on that page that the real config schema rejects.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, run_mkdocs

from mkdocs_imagegen import options
from mkdocs_imagegen.config import ImagegenConfig

DOCS = ROOT / "docs"
OPTIONS_PAGE = (DOCS / "src" / "options.md").read_text(encoding="utf-8")
DIRECTIVES_PAGE = (DOCS / "src" / "directives.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")
OPTION_NAMES = [name for name, _ in ImagegenConfig._schema]


def option_sections() -> dict[str, str]:
    parts = re.split(r"^## `(\w+)`\n", OPTIONS_PAGE, flags=re.M)
    return {
        name: re.split(r"^## ", body, flags=re.M)[0]
        for name, body in zip(parts[1::2], parts[2::2], strict=True)
    }


def test_every_option_has_a_section_on_the_options_page() -> None:
    sections = option_sections()
    missing = [name for name in OPTION_NAMES if name not in sections]
    assert not missing, f"options missing from docs/src/options.md (add a '## `name`' section): {missing}"
    unknown = [name for name in sections if name not in OPTION_NAMES]
    assert not unknown, f"docs/src/options.md documents options that do not exist: {unknown}"
    readme_rows = re.findall(
        r"^\| `(\w+)` \| [^|]+ \|", README.split("## Options", 1)[1].split("\n## ")[0], re.M
    )
    assert sorted(readme_rows) == sorted(OPTION_NAMES), "the README's options table and the config disagree"


@pytest.mark.parametrize("name", OPTION_NAMES)
def test_each_option_example_passes_the_real_schema(name: str) -> None:
    section = option_sections()[name]
    default = ImagegenConfig._schema[OPTION_NAMES.index(name)][1].default
    stated = re.search(r"\*\*Default:\*\* (.+?)\.(?:\s|$)", section, re.S)
    assert stated, f"the {name} section does not say its default ('**Default:** ...')"
    if isinstance(default, bool):
        assert f"`{str(default).lower()}`" in stated[1], (name, stated[1])
    elif isinstance(default, (int, float, str)) and default != "":
        shown = int(default) if isinstance(default, float) and default.is_integer() else default
        assert f"`{shown}`" in stated[1], (name, stated[1])
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    assert blocks, f"the {name} section has no yaml example"
    data = yaml.safe_load(blocks[0])
    plugin = next(p["imagegen"] for p in data["plugins"] if isinstance(p, dict) and "imagegen" in p)
    assert name in plugin, f"the {name} example does not set {name}"
    config = ImagegenConfig()
    config.load_dict(plugin)
    errors, _ = config.validate()
    assert not errors, (name, errors)


def live_examples() -> list[tuple[str, str, str]]:
    """(title, shown Markdown, live Markdown) for each tabbed example of the directives page."""
    out = []
    for section in re.split(r"^## ", DIRECTIVES_PAGE, flags=re.M)[1:]:
        title = section.split("\n", 1)[0]
        match = re.search(r'=== "Markdown"\n\n(.*?)\n=== "Result"\n\n(.*)', section, re.S)
        if match:
            shown = textwrap.dedent(match[1]).strip()
            fence = shown.split("\n", 1)[0]
            shown = shown[len(fence) + 1 : shown.rindex(fence.rstrip("markdown"))].strip()
            out.append((title, shown, textwrap.dedent(match[2]).strip()))
    return out


def test_directive_examples_show_exactly_what_is_rendered_live() -> None:
    examples = live_examples()
    assert len(examples) >= 12
    for title, shown, live in examples:
        assert shown == live, f"directives.md, '{title}': the Markdown tab differs from the live Result tab"


def test_every_directive_key_appears_in_a_live_example() -> None:
    live = "\n".join(example[2] for example in live_examples())
    inline_keys = {"prompt", "alt"}  # an inline image gives both: ![alt](imagegen:prompt)
    missing = [
        k for k in options.DIRECTIVE_KEYS if k not in inline_keys and not re.search(rf"^\s*{k}:", live, re.M)
    ]
    assert not missing, f"directive keys without a live example in docs/src/directives.md: {missing}"
    assert "](imagegen:" in live and "```imagegen" in live and "~~~imagegen" in live


def test_the_docs_site_builds_strict_and_offline(tmp_path: Path) -> None:
    shutil.copytree(DOCS, tmp_path / "docs", ignore=shutil.ignore_patterns("site", ".cache"))
    for name in ("README.md", "CHANGELOG.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    build = run_mkdocs(tmp_path / "docs", "--strict", env={"NO_MKDOCS_2_WARNING": "1"})
    assert build.returncode == 0, build.output
    site = build.site
    html = {p: p.read_text(encoding="utf-8") for p in site.rglob("*.html")}
    # The changelog page is the repository's CHANGELOG.md, included at build time.
    changelog = (site / "changelog" / "index.html").read_text(encoding="utf-8")
    assert "Unreleased" in changelog and "alt_required" in changelog
    # Every option has its anchor on the built options page.
    options_page = (site / "options" / "index.html").read_text(encoding="utf-8")
    for name in OPTION_NAMES:
        assert f'id="{name}"' in options_page, name
    # Offline: no page loads anything from another host (links to other sites are fine).
    for path, text in html.items():
        remote = re.findall(r'<(?:script|link|img)\b[^>]*(?:src|href)="(https?://[^"]+)"', text)
        assert not remote, (path, remote)
    generated = sum(t.count('class="imagegen"') for t in html.values())
    assert generated >= 30
    assert not any("imagegen-ref:" in t for t in html.values())  # every reference became a URL
