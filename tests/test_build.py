"""End to end through real `mkdocs build` runs: directives become cached images with working links."""

from __future__ import annotations

import hashlib
import html as html_lib
import re
import shutil
from pathlib import Path

import pytest
from conftest import ROOT, generated_images, imgs, resolve_src, run_mkdocs, write_site
from PIL import Image


def test_example_site_builds_offline(tmp_path: Path) -> None:
    site = tmp_path / "example"
    shutil.copytree(ROOT / "example-site", site, ignore=shutil.ignore_patterns("site", ".cache"))
    build = run_mkdocs(site, "--strict")
    assert build.returncode == 0, build.output
    assert "images in use" in build.output
    home = build.page()
    figure = re.search(r"<figure class=\"imagegen\">(.*?)</figure>", home, re.S)
    assert figure and "<figcaption>Our harbour, as imagined</figcaption>" in figure[1]
    hero = imgs(figure[1])[0]
    assert (hero["width"], hero["height"], hero["loading"]) == ("1536", "1024", "lazy")
    assert "height: auto" in hero["style"]  # a theme that narrows the image keeps its ratio
    assert Image.open(resolve_src(build, "index.html", hero["src"])).size == (1536, 1024)
    # The indented code sample on the tour page is shown, not generated.
    tour = build.page("guide/tour/index.html")
    assert "imagegen:this stays as text in an indented code block" in tour
    assert len(imgs(tour)) == 3
    # The syntax page documents directives inside code and generates nothing.
    assert imgs(build.page("syntax/index.html")) == []


def test_both_syntaxes_and_attribute_list(tmp_path: Path) -> None:
    write_site(
        tmp_path,
        {
            "index.md": (
                "# Home\n\n"
                "```imagegen\nprompt: A red kite over a beach\nalt: Kite\nsize: 640x480\n```\n\n"
                'Inline: ![Small kite](imagegen:A red kite (a toy) over a beach){ .center width="320" }\n'
            )
        },
        markdown_extensions=["attr_list"],
    )
    build = run_mkdocs(tmp_path, "--strict")
    assert build.returncode == 0, build.output
    block, inline = imgs(build.page())
    assert block["alt"] == "Kite" and (block["width"], block["height"]) == ("640", "480")
    assert inline["alt"] == "Small kite"
    assert "center" in inline["class"].split()
    assert (inline["width"], inline["height"]) == ("320", "320")  # height follows the 1024x1024 ratio
    assert "{ .center" not in build.page()
    assert "imagegen:" not in build.page()
    assert len(generated_images(build)) == 2


def test_directive_in_a_heading_leaves_titles_toc_and_search_clean(tmp_path: Path) -> None:
    write_site(
        tmp_path,
        {
            "index.md": "# Home ![logo](imagegen:a tiny logo){: .logo }\n\n## Fish &amp; ![Fish &amp; chips \\[1\\]](imagegen:fish)\n"
        },
        markdown_extensions=["attr_list", "toc"],
    )
    first = run_mkdocs(tmp_path, "--strict")
    assert first.returncode == 0, first.output
    for path in first.site.rglob("*"):
        if path.is_file() and path.suffix in (".html", ".json", ".xml"):
            assert "imagegen-token" not in path.read_text(encoding="utf-8"), path
    html = first.page()
    logo, fish = imgs(html)
    assert logo["class"] == "imagegen logo" and ":" not in logo
    assert fish["alt"] == "Fish &amp; chips [1]"  # the Markdown alt text, escaped once
    assert '<h1 id="home">Home <img' in html
    second = run_mkdocs(tmp_path, "--strict", "-d", "again")
    assert _tree(second.site) == _tree(first.site)


def test_output_dir_must_stay_inside_the_site(tmp_path: Path) -> None:
    write_site(tmp_path, {"index.md": "# Home\n"}, plugin={"output_dir": "../escaped"})
    result = run_mkdocs(tmp_path)
    assert result.returncode == 1 and "must be a folder inside the site" in result.output


def test_defaults_from_site_front_matter_and_directive(tmp_path: Path) -> None:
    write_site(
        tmp_path,
        {
            "index.md": "# Home\n\n![a](imagegen:site default)\n",
            "page.md": (
                "---\nimagegen:\n  size: 320x240\n  format: webp\n---\n# Page\n\n"
                "![b](imagegen:page default)\n\n```imagegen\nprompt: directive wins\nalt: c\nsize: 100x50\n```\n"
            ),
        },
        plugin={"size": "200x100"},
    )
    build = run_mkdocs(tmp_path, "--strict")
    assert build.returncode == 0, build.output
    (site_img,) = imgs(build.page())
    assert (site_img["width"], site_img["height"]) == ("200", "100")
    page_img, directive_img = imgs(build.page("page/index.html"))
    assert (page_img["width"], page_img["height"]) == ("320", "240")
    assert page_img["src"].endswith(".webp")
    assert Image.open(resolve_src(build, "page/index.html", page_img["src"])).format == "WEBP"
    assert (directive_img["width"], directive_img["height"]) == ("100", "50")


CONTAINERS = ["admonition", "pymdownx.superfences", {"pymdownx.tabbed": {"alternate_style": True}}]

CODE_CONTEXTS = {
    "fenced": "```markdown\n![x](imagegen:in a fence)\n```\n",
    "long fence": "`````\n```imagegen\nprompt: in a long fence\n```\n`````\n",
    "tilde": "~~~\n![x](imagegen:in a tilde fence)\n~~~\n",
    "inline code": "Write `![x](imagegen:in code span)` to add one.\n",
    "indented": "Text.\n\n    ![x](imagegen:in indented code)\n",
    "comment": "<!--\n![x](imagegen:in a comment)\n-->\n",
    "list fence": "- item\n\n    ```\n    ![x](imagegen:in a list fence)\n    ```\n",
    "admonition fence": "!!! note\n\n    ```\n    ![x](imagegen:in an admonition fence)\n    ```\n",
    "tab fence": '=== "One"\n\n    ```\n    ![x](imagegen:in a tab fence)\n    ```\n',
}


def test_code_contexts_stay_byte_for_byte(tmp_path: Path) -> None:
    pages = {"index.md": "# Home\n\n![real](imagegen:the only real image)\n"}
    for n, text in enumerate(CODE_CONTEXTS.values()):
        pages[f"c{n}.md"] = f"# Case {n}\n\n{text}"
    write_site(
        tmp_path,
        pages,
        markdown_extensions=CONTAINERS,
    )
    build = run_mkdocs(tmp_path, "--strict")
    assert build.returncode == 0, build.output
    assert len(generated_images(build)) == 1
    for n, text in enumerate(CODE_CONTEXTS.values()):
        html = build.page(f"c{n}/index.html")
        assert imgs(html) == [], text
        sample = re.search(r"(imagegen:[^)]*\)|prompt: [^\n]*)", text)[1]
        shown = html_lib.unescape(re.sub(r"<[^>]+>", "", html))  # code may be highlighted in spans
        assert sample in shown or sample in html, text


def test_directives_nested_in_lists_admonitions_and_tabs(tmp_path: Path) -> None:
    text = (
        "# Nested\n\n"
        "- A list item\n\n    ![in list](imagegen:a list image)\n\n"
        '!!! note "Note"\n\n'
        "    ```imagegen\n    prompt: an admonition image\n    alt: an admonition image\n    caption: In a note\n    ```\n\n"
        '=== "Tab"\n\n    ```imagegen\n    prompt: a tab image\n    alt: a tab image\n    ```\n'
    )
    write_site(
        tmp_path,
        {"index.md": text},
        markdown_extensions=CONTAINERS,
    )
    build = run_mkdocs(tmp_path, "--strict")
    assert build.returncode == 0, build.output
    html = build.page()
    assert re.search(r"<li>.*?<img [^>]*alt=\"in list\"", html, re.S)
    note = re.search(r'<div class="admonition note">(.*?)</div>', html, re.S)[1]
    assert '<figure class="imagegen">' in note and "<figcaption>In a note</figcaption>" in note
    tab = re.search(r'<div class="tabbed-block">(.*?)</div>', html, re.S)[1]
    assert 'alt="a tab image"' in tab
    assert not re.search(r"<p>\s*<figure", html)  # a block figure is never wrapped in a paragraph


def test_same_directive_on_two_pages_is_one_image(tmp_path: Path) -> None:
    directive = "![same](imagegen:one shared image)\n"
    write_site(
        tmp_path,
        {"index.md": "# A\n\n" + directive, "b.md": "# B\n\n" + directive, "sub/c.md": "# C\n\n" + directive},
    )
    build = run_mkdocs(tmp_path, "--strict")
    assert build.returncode == 0, build.output
    (only,) = generated_images(build)
    for page in ("index.html", "b/index.html", "sub/c/index.html"):
        (img,) = imgs(build.page(page))
        assert resolve_src(build, page, img["src"]) == only
    assert "1 image in use" in build.output


@pytest.mark.parametrize("directory_urls", [True, False])
def test_links_resolve_in_subfolders(tmp_path: Path, directory_urls: bool) -> None:
    write_site(
        tmp_path,
        {
            "index.md": "# Home\n\n![a](imagegen:home image)\n",
            "guide/deep/page.md": "# Deep\n\n![b](imagegen:deep image)\n",
            "guide/index.md": "# Guide\n\n![c](imagegen:guide image)\n",
        },
        use_directory_urls=directory_urls,
    )
    build = run_mkdocs(tmp_path, "--strict")
    assert build.returncode == 0, build.output
    pages = ["index.html", "guide/index.html"]
    pages.append("guide/deep/page/index.html" if directory_urls else "guide/deep/page.html")
    for page in pages:
        (img,) = imgs(build.page(page))
        target = resolve_src(build, page, img["src"])
        assert target.is_file(), (page, img["src"])
        assert target.parent == build.site / "assets" / "imagegen"


def _tree(site: Path) -> dict[str, str]:
    """Digest of every built file; MkDocs's own build-date comment is the one thing left out."""
    out = {}
    for p in sorted(site.rglob("*")):
        if p.is_file() and p.name != "sitemap.xml.gz":
            data = re.sub(rb"Build Date UTC : [^\n]*", b"", p.read_bytes())
            out[str(p.relative_to(site))] = hashlib.sha256(data).hexdigest()
    return out


def test_second_build_generates_nothing_and_is_identical(tmp_path: Path) -> None:
    write_site(
        tmp_path,
        {
            "index.md": "# Home\n\n![a](imagegen:first)\n\n```imagegen\nprompt: second\nalt: second\nformat: jpeg\n```\n",
            "other.md": "# Other\n\n![b](imagegen:third)\n",
        },
    )
    first = run_mkdocs(tmp_path, "--strict")
    assert first.returncode == 0, first.output
    assert "3 generated" in first.output
    before = _tree(first.site)
    cache_files = {p: p.stat().st_mtime_ns for p in (tmp_path / ".cache").rglob("*.img")}
    assert len(cache_files) >= 3

    second = run_mkdocs(tmp_path, "--strict")
    assert second.returncode == 0, second.output
    assert "3 from cache, 0 generated" in second.output
    assert _tree(second.site) == before
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / ".cache").rglob("*.img")} == cache_files


def test_warm_build_does_no_image_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build with everything cached must not draw or encode a single image."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    write_site(tmp_path, {"index.md": "# Home\n\n![a](imagegen:cached once)\n"})
    assert run_mkdocs(tmp_path).returncode == 0

    from mkdocs_imagegen import imaging, wireframe

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("image work in a warm build")

    monkeypatch.setattr(wireframe, "render", forbidden)
    monkeypatch.setattr(imaging, "finalize", forbidden)
    monkeypatch.setattr(imaging, "encode", forbidden)
    monkeypatch.chdir(tmp_path)
    build(load_config(str(tmp_path / "mkdocs.yml"), site_dir=str(tmp_path / "warm")))
    assert len(list((tmp_path / "warm" / "assets" / "imagegen").iterdir())) == 1


BAD = {
    "bad yaml": ("```imagegen\nprompt: [unclosed\n```\n", "not valid YAML"),
    "empty prompt": ('```imagegen\nprompt: ""\n```\n', "prompt is empty"),
    "bad size": ("```imagegen\nprompt: x\nsize: big\n```\n", "size must look like"),
    "unknown key": ("```imagegen\nprompt: x\nsizee: 10x10\n```\n", "did you mean 'size'"),
    "no prompt": ("```imagegen\nalt: only alt\n```\n", "no 'prompt'"),
    "unterminated": ("```imagegen\nprompt: never closed\n", "unterminated"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_directive_warns_with_file_and_line(tmp_path: Path, case: str) -> None:
    text, message = BAD[case]
    write_site(tmp_path, {"guide/page.md": "# Page\n\nSome text.\n\n" + text})
    plain = run_mkdocs(tmp_path)
    assert plain.returncode == 0, plain.output
    assert re.search(
        r"WARNING\s+-\s+mkdocs_imagegen: guide/page\.md:5: .*" + re.escape(message), plain.output
    ), plain.output
    assert "Traceback" not in plain.output
    html = plain.page("guide/page/index.html")
    (img,) = imgs(html)
    assert img["class"] == "imagegen-error" and img["src"].startswith("data:image/svg+xml;base64,")
    strict = run_mkdocs(tmp_path, "--strict")
    assert strict.returncode == 1
    assert "Traceback" not in strict.output


def test_front_matter_error_names_the_page(tmp_path: Path) -> None:
    write_site(tmp_path, {"index.md": "---\nimagegen:\n  colour: red\n---\n# Home\n\n![a](imagegen:x)\n"})
    build = run_mkdocs(tmp_path)
    # At the front matter's `imagegen:` line, where the mistake is, not at each directive.
    assert "index.md:2: front matter 'imagegen': unknown key 'colour'" in build.output


def test_prompt_template_sees_page_title_and_meta(tmp_path: Path) -> None:
    write_site(
        tmp_path,
        {
            "index.md": "---\nmood: calm\n---\n# Harbour\n\n![a](imagegen:boats)\n",
            "other.md": "# Other\n\n![a](imagegen:boats)\n",
        },
        plugin={
            "prompt_template": (
                "{{ prompt }} for {{ page.title }}{% if page.meta.mood %}, {{ page.meta.mood }}{% endif %}"
            )
        },
    )
    build = run_mkdocs(tmp_path, "--strict")
    assert build.returncode == 0, build.output
    # Different final prompts are different keys: two images.
    assert len(generated_images(build)) == 2


def test_bad_option_is_a_config_error(tmp_path: Path) -> None:
    write_site(tmp_path, {"index.md": "# Home\n"}, plugin={"size": "huge", "on_error": "ignore"})
    build = run_mkdocs(tmp_path)
    assert build.returncode == 1
    assert "size must look like" in build.output
    assert "Traceback" not in build.output


def test_disabled_plugin_leaves_pages_alone(tmp_path: Path) -> None:
    write_site(tmp_path, {"index.md": "# Home\n\n![a](imagegen:x)\n"}, plugin={"enabled": False})
    build = run_mkdocs(tmp_path)
    assert build.returncode == 0, build.output
    assert 'src="imagegen:x"' in build.page()
