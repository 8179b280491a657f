"""Real sites with the plugins real MkDocs sites run (all from PyPI), in both orders where order matters.

Every test builds with `mkdocs build --strict` and checks what a reader meets: every directive is an
`<img>` whose `src` (and lightbox `href`) is a file of the built site, each image was generated
once, no image is shipped that no page uses, and, against a twin build with the plugin switched
off, nothing else on any page changed.
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
from conftest import Build, run_mkdocs

from mkdocs_imagegen.cache import ImageCache

IMAGES = "assets/imagegen"


class _Tags(HTMLParser):
    """Every <img> and <a> with its attributes, however a minifier wrote them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("img", "a"):
            self.tags.append((tag, {k: v or "" for k, v in attrs}))


def tags(html: str) -> list[tuple[str, dict[str, str]]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


def html_pages(site: Path) -> dict[str, str]:
    return {str(p.relative_to(site)): p.read_text(encoding="utf-8") for p in sorted(site.rglob("*.html"))}


def target(site: Path, page: str, url: str) -> Path:
    absolute = urljoin("http://site/" + page, url)
    assert absolute.startswith("http://site/"), (page, url)
    return site / unquote(absolute[len("http://site/") :].split("#")[0])


def check_site(build: Build, *, images: int, generated: int | None = None) -> dict[str, list[dict[str, str]]]:
    """The reader's view: every directive image resolves, every shipped image is used, once each."""
    assert build.returncode == 0, build.output
    assert "Traceback" not in build.output
    used: set[Path] = set()
    found: dict[str, list[dict[str, str]]] = {}
    for page, html in html_pages(build.site).items():
        assert "imagegen-ref:" not in html and "imagegen-token" not in html, page
        for tag, attrs in tags(html):
            url = attrs.get("src" if tag == "img" else "href", "")
            assert not url.startswith("imagegen:"), (page, tag, attrs)
            if IMAGES not in url:
                continue
            file = target(build.site, page, url)
            assert file.is_file(), (page, url)
            used.add(file)
            if tag == "img":
                found.setdefault(page, []).append(attrs)
    # Every folder of images (a multi-language site builds one per language) holds only used files.
    shipped = {p for p in build.site.rglob("*") if p.is_file() and p.parent.match(f"*/{IMAGES}")}
    assert shipped == used, f"shipped but unused: {sorted(shipped - used)}"
    assert len(shipped) == images
    # Each image generated once: the summaries (one per build MkDocs runs) add up.
    summaries = re.findall(r"images? in use: (\d+) from cache, (\d+) generated, (\d+) failed", build.output)
    assert summaries, build.output
    made = images if generated is None else generated
    assert sum(int(g) for _, g, _ in summaries) == made, build.output
    assert all(f == "0" for _, _, f in summaries), build.output
    return found


_NORMALIZE = [
    re.compile(r"<figure class=\"?imagegen\"?>.*?</figure>", re.S),
    # the twin shows each fenced directive as a code block of its YAML
    re.compile(
        r"<div class=\"?(?:language-imagegen )?highlight\"?><pre>(?:(?!</pre>).)*?prompt:.*?</pre></div>",
        re.S,
    ),
    re.compile(r"<pre><code class=\"?language-imagegen\"?>.*?</code></pre>", re.S),
    re.compile(r"<img [^>]*>"),
    re.compile(r"Build Date UTC : [^\n]*"),
]
_HREF = re.compile(r"href=\"?(?:imagegen:[^\">]*|[^\" >]*assets/imagegen/[^\" >]*)\"?")


def normalized(html: str) -> str:
    for pattern in _NORMALIZE:
        html = pattern.sub("<IMG>", html)
    return _HREF.sub("href=IMG", html)


def assert_nothing_else_changed(root: Path, build: Build, config: dict[str, Any]) -> None:
    """Build the same site with the plugin off: pages equal once directive images are set aside."""
    twin = dict(config)
    twin["plugins"] = [
        {"imagegen": {"enabled": False}} if _name(p) == "imagegen" else p for p in config["plugins"]
    ]
    write_config(root, twin)
    plain = run_mkdocs(root, "--strict", "-d", "plain")
    assert plain.returncode == 0, plain.output
    with_plugin, without = html_pages(build.site), html_pages(plain.site)
    assert with_plugin.keys() == without.keys()
    for page in with_plugin:
        assert normalized(with_plugin[page]) == normalized(without[page]), page
    write_config(root, config)


def _name(plugin: Any) -> str:
    return plugin if isinstance(plugin, str) else next(iter(plugin))


def write_config(root: Path, config: dict[str, Any]) -> None:
    (root / "mkdocs.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def write_pages(root: Path, pages: dict[str, str]) -> None:
    for name, text in pages.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def ordered(plugins: list[Any], imagegen_first: bool) -> list[Any]:
    """The site's plugins with imagegen first or last."""
    return ["imagegen", *plugins] if imagegen_first else [*plugins, "imagegen"]


ORDERS = pytest.mark.parametrize("imagegen_first", [True, False], ids=["imagegen-first", "imagegen-last"])


# -- mkdocs-material: blog with excerpts, tags, privacy, search, optimize -----------------------------

POST = """---
date: 2024-01-15
categories:
  - News
tags:
  - boats
---

# First post

![A lighthouse](imagegen:a lighthouse at dusk){ width="300" }

```imagegen
prompt: a ship in a bottle
alt: Ship
size: 640x480
```

<!-- more -->

Below the fold ![kite](imagegen:a red kite)
"""


@ORDERS
def test_material_blog_excerpts_tags_privacy_search(tmp_path: Path, imagegen_first: bool) -> None:
    write_pages(
        tmp_path,
        {
            "docs/index.md": "# Home\n\nWelcome ![home art](imagegen:a harbour at dawn)\n",
            "docs/tags.md": "# Tags\n\n<!-- material/tags -->\n",
            "docs/blog/index.md": "# Blog\n",
            "docs/blog/posts/first.md": POST,
        },
    )
    plugins: list[Any] = [
        "blog",
        {"tags": {}},
        "search",
        {"privacy": {"assets_exclude": ["unpkg.com/*", "cdn.jsdelivr.net/*"]}},
    ]
    config = {
        "site_name": "Blog",
        "theme": {"name": "material", "font": False},
        "markdown_extensions": ["attr_list", "md_in_html", "pymdownx.superfences"],
        "plugins": ordered(plugins, imagegen_first),
    }
    write_config(tmp_path, config)
    build = run_mkdocs(tmp_path, "--strict")
    found = check_site(build, images=4)
    post = "blog/2024/01/15/first-post/index.html"
    assert {i["alt"] for i in found[post]} == {"A lighthouse", "Ship", "kite"}
    # The excerpt (above <!-- more -->) on the index, the category and the archive page.
    for view in ("blog/index.html", "blog/category/news/index.html", "blog/archive/2024/index.html"):
        alts = sorted(i["alt"] for i in found[view])
        assert alts == ["A lighthouse", "Ship"], view
        lighthouse = next(i for i in found[view] if i["alt"] == "A lighthouse")
        assert (lighthouse["width"], lighthouse["height"]) == ("300", "300")
    assert_nothing_else_changed(tmp_path, build, config)


@pytest.mark.skipif(
    not shutil.which("pngquant"), reason="material's optimize needs pngquant (apt install pngquant)"
)
@ORDERS
def test_material_optimize_sees_real_files(tmp_path: Path, imagegen_first: bool) -> None:
    write_pages(tmp_path, {"docs/index.md": "# Home\n\n![a](imagegen:a harbour)\n\n![b](imagegen:a boat)\n"})
    config = {
        "site_name": "Optimized",
        "theme": {"name": "material", "font": False},
        "plugins": ordered([{"optimize": {"cache_dir": ".cache/optimize"}}], imagegen_first),
    }
    write_config(tmp_path, config)
    build = run_mkdocs(tmp_path, "--strict")
    check_site(build, images=2)
    # optimize took each generated image from the cache (a real file) and shipped its smaller copy
    optimized = sorted(p.name for p in (tmp_path / ".cache" / "optimize" / IMAGES).glob("*.png"))
    assert optimized == sorted(p.name for p in (build.site / IMAGES).iterdir())
    for name in optimized:
        assert (build.site / IMAGES / name).read_bytes() == (
            tmp_path / ".cache" / "optimize" / IMAGES / name
        ).read_bytes()


# -- pymdownx.snippets, md_in_html --------------------------------------------------------------------


def test_snippets_include_directives_and_errors_name_the_snippet(tmp_path: Path) -> None:
    write_pages(
        tmp_path,
        {
            "docs/index.md": '# Home\n\nIntro.\n\n--8<-- "parts/boat.md"\n\nAfter.\n',
            "docs/other.md": '# Other\n\n--8<-- "parts/broken.md"\n',
            "parts/boat.md": "A boat: ![boat](imagegen:a boat)\n\n```imagegen\nprompt: a sail\nalt: A sail\n```\n",
            "parts/broken.md": "Text.\n\n```imagegen\nprompt: x\nsizee: 10x10\n```\n",
        },
    )
    config = {
        "site_name": "Snippets",
        "markdown_extensions": [{"pymdownx.snippets": {"base_path": ["."]}}, "pymdownx.superfences"],
        "plugins": ["imagegen"],
    }
    write_config(tmp_path, config)
    build = run_mkdocs(tmp_path)
    assert "parts/broken.md:3 (included in other.md): unknown key 'sizee'" in build.output, build.output
    write_pages(tmp_path, {"parts/broken.md": "Text.\n"})
    build = run_mkdocs(tmp_path, "--strict", "-d", "fixed")
    found = check_site(build, images=2, generated=0)
    assert sorted(i["alt"] for i in found["index.html"]) == ["A sail", "boat"]


def test_md_in_html_renders_directives_raw_html_keeps_them_as_text(tmp_path: Path) -> None:
    write_pages(
        tmp_path,
        {
            "docs/index.md": (
                '# Home\n\n<div class="card" markdown>\n![card](imagegen:a card image)\n</div>\n\n'
                "<div>\n![raw](imagegen:raw html text)\n</div>\n"
            )
        },
    )
    config = {"site_name": "HTML", "markdown_extensions": ["md_in_html"], "plugins": ["imagegen"]}
    write_config(tmp_path, config)
    build = run_mkdocs(tmp_path, "--strict")
    found = check_site(build, images=1)
    assert [i["alt"] for i in found["index.html"]] == ["card"]
    assert "![raw](imagegen:raw html text)" in build.page()  # raw HTML: shown as written, never generated
    assert_nothing_else_changed(tmp_path, build, config)


# -- mkdocs-macros-plugin, mkdocs-gen-files, mkdocs-static-i18n ----------------------------------------


def macros_site(root: Path, imagegen_first: bool) -> dict[str, Any]:
    write_pages(
        root,
        {
            "docs/index.md": (
                "# Home\n\n![light](imagegen:a {{ color }} lighthouse)\n\n{{ picture('a boat') }}\n"
            ),
            "main.py": (
                "def define_env(env):\n"
                "    env.variables['color'] = 'red'\n\n"
                "    @env.macro\n"
                "    def picture(prompt):\n"
                "        return f'![{prompt}](imagegen:{prompt} at sea)'\n"
            ),
        },
    )
    config = {"site_name": "Macros", "plugins": ordered(["macros"], imagegen_first)}
    write_config(root, config)
    return config


@ORDERS
def test_macros_output_is_what_counts(tmp_path: Path, imagegen_first: bool) -> None:
    config = macros_site(tmp_path, imagegen_first)
    build = run_mkdocs(tmp_path, "--strict")
    found = check_site(build, images=2)
    assert sorted(i["alt"] for i in found["index.html"]) == ["a boat", "light"]
    with ImageCache(str(tmp_path / ".cache" / "plugin" / "imagegen")) as cache:
        prompts = sorted(meta["prompt"] for _, _, meta in cache.entries())
    assert prompts == ["a boat at sea", "a red lighthouse"]  # nothing made from the raw {{ color }}
    assert_nothing_else_changed(tmp_path, build, config)


def test_gen_files_pages_count(tmp_path: Path) -> None:
    write_pages(
        tmp_path,
        {
            "docs/index.md": "# Home\n\n![home](imagegen:home image)\n",
            "gen.py": (
                "import mkdocs_gen_files\n\n"
                "with mkdocs_gen_files.open('made/page.md', 'w') as f:\n"
                "    f.write('# Made\\n\\n![made](imagegen:a generated page image)\\n')\n"
            ),
        },
    )
    config = {"site_name": "Gen", "plugins": [{"gen-files": {"scripts": ["gen.py"]}}, "imagegen"]}
    write_config(tmp_path, config)
    build = run_mkdocs(tmp_path, "--strict")
    found = check_site(build, images=2)
    assert [i["alt"] for i in found["made/page/index.html"]] == ["made"]


def test_static_i18n_pages_in_every_language(tmp_path: Path) -> None:
    write_pages(
        tmp_path,
        {
            "docs/index.en.md": "# Home\n\n![harbour](imagegen:a harbour)\n",
            "docs/index.fr.md": "# Accueil\n\n![port](imagegen:un port)\n",
            "docs/guide.en.md": "# Guide\n\n![harbour again](imagegen:a harbour)\n",
        },
    )
    config = {
        "site_name": "I18n",
        "plugins": [
            {
                "i18n": {
                    "docs_structure": "suffix",
                    "languages": [
                        {"locale": "en", "default": True, "name": "English", "build": True},
                        {"locale": "fr", "name": "Français", "build": True},
                    ],
                }
            },
            "imagegen",
        ],
    }
    write_config(tmp_path, config)
    build = run_mkdocs(tmp_path, "--strict")
    found = check_site(build, images=2)
    assert [i["alt"] for i in found["index.html"]] == ["harbour"]
    assert [i["alt"] for i in found["fr/index.html"]] == ["port"]
    assert [i["alt"] for i in found["guide/index.html"]] == ["harbour again"]


# -- mkdocs-glightbox, mkdocs-minify-plugin ------------------------------------------------------------

LIGHTBOX_PAGE = (
    "# Home\n\n![fox](imagegen:a red fox)\n\n"
    "```imagegen\nprompt: a blue whale\nalt: Whale\ncaption: The whale\n```\n\n"
    'Deep: ![owl](imagegen:an owl){ width="200" }\n'
)


@ORDERS
def test_glightbox_links_open_the_real_file(tmp_path: Path, imagegen_first: bool) -> None:
    write_pages(
        tmp_path,
        {"docs/index.md": LIGHTBOX_PAGE, "docs/sub/page.md": "# Sub\n\n![fox](imagegen:a red fox)\n"},
    )
    config = {
        "site_name": "Lightbox",
        "markdown_extensions": ["attr_list", "pymdownx.superfences"],
        "plugins": ordered(["glightbox"], imagegen_first),
    }
    write_config(tmp_path, config)
    build = run_mkdocs(tmp_path, "--strict")
    check_site(build, images=3)
    for page in ("index.html", "sub/page/index.html"):
        links = [a for tag, a in tags(build.page(page)) if tag == "a" and "glightbox" in a.get("class", "")]
        assert links, page
        for link in links:
            assert target(build.site, page, link["href"]).is_file(), (page, link)
    assert "<p><a></a></p>" not in build.page()
    assert "<figcaption>The whale</figcaption>" in build.page()


@ORDERS
def test_minified_pages_point_at_the_real_files(tmp_path: Path, imagegen_first: bool) -> None:
    write_pages(tmp_path, {"docs/index.md": LIGHTBOX_PAGE})
    config = {
        "site_name": "Minify",
        "markdown_extensions": ["attr_list", "pymdownx.superfences"],
        "plugins": ordered([{"minify": {"minify_html": True}}], imagegen_first),
    }
    write_config(tmp_path, config)
    build = run_mkdocs(tmp_path, "--strict")
    found = check_site(build, images=3)
    assert sorted(i["alt"] for i in found["index.html"]) == ["Whale", "fox", "owl"]


# -- the command sees what the build sees ------------------------------------------------------------


def command(root: Path, *args: str) -> Any:
    from click.testing import CliRunner

    from mkdocs_imagegen import cli

    result = CliRunner().invoke(cli.main, [args[0], "-f", str(root / "mkdocs.yml"), *args[1:]])
    assert "Traceback" not in result.output, result.output
    return result


def built_keys(build: Build) -> set[str]:
    return {p.stem for p in (build.site / IMAGES).iterdir()}


@ORDERS
def test_macros_site_generate_prune_then_frozen_build(tmp_path: Path, imagegen_first: bool) -> None:
    import json

    macros_site(tmp_path, imagegen_first)
    generate = command(tmp_path, "generate")
    assert generate.exit_code == 0 and "2 generated" in generate.output, generate.output
    status = json.loads(command(tmp_path, "status", "--json").stdout)
    assert sorted(r["prompt"] for r in status["directives"]) == ["a boat at sea", "a red lighthouse"]
    prune = command(tmp_path, "prune")
    assert prune.exit_code == 0 and "removed 0 unused image(s)" in prune.output, prune.output
    frozen = run_mkdocs(tmp_path, "--strict", env={"IMAGEGEN_FROZEN": "1"})
    check_site(frozen, images=2, generated=0)
    assert built_keys(frozen) == {r["key"] for r in status["directives"]}
    check = command(tmp_path, "check")
    assert check.exit_code == 0, check.output


def test_gen_files_page_keeps_its_image_through_prune(tmp_path: Path) -> None:
    test_gen_files_pages_count(tmp_path)
    (tmp_path / "docs" / "index.md").write_text("# Home\n\nNo image now.\n", encoding="utf-8")
    prune = command(tmp_path, "prune")
    assert prune.exit_code == 0 and "removed 1 unused image(s)" in prune.output, prune.output
    frozen = run_mkdocs(tmp_path, "--strict", "-d", "frozen", env={"IMAGEGEN_FROZEN": "1"})
    found = check_site(frozen, images=1, generated=0)
    assert [i["alt"] for i in found["made/page/index.html"]] == ["made"]


def test_a_broken_directive_made_by_a_macro_names_the_page_and_that_fact(tmp_path: Path) -> None:
    write_pages(
        tmp_path,
        {
            "docs/index.md": "# Home\n\nText.\n\n{{ broken() }}\n",
            "main.py": (
                "def define_env(env):\n"
                "    @env.macro\n"
                "    def broken():\n"
                "        return '```imagegen\\nprompt: made by a macro\\nsizee: 10x10\\n```'\n"
            ),
        },
    )
    write_config(
        tmp_path,
        {
            "site_name": "Macros",
            "markdown_extensions": ["pymdownx.superfences"],
            "plugins": ["macros", "imagegen"],
        },
    )
    build = run_mkdocs(tmp_path)
    assert re.search(
        r"index\.md:5 \(in Markdown made by another plugin, not in the file\): unknown key 'sizee'",
        build.output,
    ), build.output
