"""The parts resolution is made of, each on its own: attributes, YAML, templates, an edit's files."""

from __future__ import annotations

from pathlib import Path

import pytest

from mkdocs_imagegen.options import OptionError
from mkdocs_imagegen.spec import PageInfo, RawDirective, inputs, parse, template

PAGE = PageInfo(src_uri="guide/page.md", abs_path=None, title="Guide", meta={}, defaults={})


def test_block_attributes_merge_fence_then_keys() -> None:
    values = {"class": "wide", "id": "fig", "attrs": {"class": "x", "loading": "eager"}}
    assert parse.block_attrs('.a width="10"', values) == (
        ("class", "a x wide"),
        ("width", "10"),
        ("loading", "eager"),
        ("id", "fig"),
    )
    with pytest.raises(OptionError, match="whole number of pixels"):
        parse.parse_attrs('width="²"')


def test_yaml_aliases_are_refused_and_results_are_fresh() -> None:
    with pytest.raises(OptionError, match="aliases are not allowed"):
        parse.directive_values(RawDirective("block", 1, "a: &x 1\nprompt: *x\n"))
    first = parse.load_yaml("prompt: a\n")
    first["prompt"] = "changed"
    assert parse.load_yaml("prompt: a\n") == {"prompt": "a"}


def test_a_template_wraps_the_prompt_and_is_bounded() -> None:
    assert template.apply_template("{{ prompt }}, on {{ title }}", "a fox", PAGE) == "a fox, on Guide"
    assert template.apply_template(None, "a fox", PAGE) == "a fox"
    with pytest.raises(OptionError, match="too long"):
        template.apply_template("{{ prompt * 10000000 }}", "a fox", PAGE)


def test_an_edit_file_must_be_inside_docs_dir(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "guide").mkdir(parents=True)
    (tmp_path / "outside.png").write_bytes(b"x")
    with pytest.raises(OptionError, match="leads outside docs_dir"):
        inputs.input_file("../../outside.png", "source", str(docs), "guide/page.md")
    with pytest.raises(OptionError, match="not found next to the page"):
        inputs.input_file("missing.png", "source", str(docs), "guide/page.md")
    (docs / "guide" / "bad.png").write_bytes(b"not an image")
    with pytest.raises(OptionError, match="is not a PNG, JPEG or WebP image"):
        inputs.input_file("bad.png", "mask", str(docs), "guide/page.md")
