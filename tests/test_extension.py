"""The Markdown extension on its own: what the site's renderer counts as a directive, and where.

Each case converts Markdown with a real Python-Markdown instance (the extensions a site would list
plus ours) and a recording handler, so the renderer itself decides what is code. Fast: no build.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from markdown import Markdown

from mkdocs_imagegen.extension import Conversion, Found, ImagegenExtension, Rendered, superfences_format
from mkdocs_imagegen.locate import Locator
from mkdocs_imagegen.spec import parse_attrs

SUPER = [
    "attr_list",
    "admonition",
    "pymdownx.superfences",
    "pymdownx.tabbed",
    "md_in_html",
    "pymdownx.details",
]
PLAIN = ["attr_list", "admonition", "fenced_code", "md_in_html"]
REAL = "![real](imagegen:the real one)"


class Recorder:
    """A handler that answers every directive with a recognisable image and notes its line."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.found: list[tuple[Found, int]] = []
        self.titles: list[str | None] = []

    def render(self, md: Markdown, conversion: Conversion, items: list[Found]) -> list[Rendered]:
        self.titles.append(conversion.title)
        locator = Locator(self.source, 0)
        answers = []
        for found in items:
            place = locator.place(
                found.needle, found.kind, conversion.text, conversion.expanded, found.needles
            )
            self.found.append((found, place.line))
            src = f"found:{found.body}"
            if found.element is not None:
                answers.append(Rendered(attributes=[("src", src), ("alt", found.alt or "")]))
            else:
                answers.append(Rendered(html=f'<img src="{src}">'))
        return answers


def convert(text: str, extensions: list[str] | None = None) -> tuple[list[tuple[Found, int]], str]:
    """Directives in document order (blocks are resolved after inline ones), and the HTML."""
    recorder = Recorder(text)
    names = SUPER if extensions is None else extensions
    configs: dict[str, Any] = {}
    if "pymdownx.superfences" in names:
        fence = {"name": "imagegen", "class": "imagegen", "format": superfences_format}
        configs["pymdownx.superfences"] = {"custom_fences": [fence]}
    md = Markdown(extensions=[*names, ImagegenExtension(recorder)], extension_configs=configs)
    html = md.convert(text)
    return sorted(recorder.found, key=lambda item: item[1]), html


def bodies(text: str, extensions: list[str] | None = None) -> list[str]:
    return [found.body for found, _ in convert(text, extensions)[0]]


def only(text: str, extensions: list[str] | None = None) -> tuple[Found, int]:
    found, html = convert(text, extensions)
    assert len(found) == 1, (found, html)
    return found[0]


# -- inline ------------------------------------------------------------------


def test_text_without_directives_is_rendered_as_without_the_extension() -> None:
    text = "# Title\n\n![x](image.png)\n\n```python\nprint(1)\n```\n"
    found, html = convert(text)
    assert found == []
    assert html == Markdown(extensions=SUPER).convert(text)


def test_inline_directive_keeps_alt_and_line() -> None:
    found, line = only("# Page\n\nSome text ![A fox](imagegen:a red fox) here.\n")
    assert (found.kind, found.body, found.alt, found.attrs, line) == ("inline", "a red fox", "A fox", None, 3)


def test_inline_balanced_parentheses_and_quoted_last_word() -> None:
    assert bodies("![x](imagegen:a cat (tabby) on a mat)\n") == ["a cat (tabby) on a mat"]
    # A quoted last word is part of the prompt, never a link title.
    assert bodies('![x](imagegen:a sign saying "open")\n') == ['a sign saying "open"']


def test_inline_unbalanced_parentheses_is_an_error_not_text() -> None:
    ((found, _),), html = convert("![x](imagegen:a cat (tabby on a mat)\n")
    assert found.body == "" and "never closes" in (found.error or "")
    assert "tabby" not in html  # the directive's image took its place, not its text


def test_inline_attr_list_is_read_with_attr_lists_own_parser() -> None:
    found, _ = only("![x](imagegen:a kite){ .center #hero width=\"320\" data-x='y z' hidden }\n")
    assert found.attrs == ".center #hero width=\"320\" data-x='y z' hidden"
    assert parse_attrs(found.attrs) == (
        ("class", "center"),
        ("id", "hero"),
        ("width", "320"),
        ("data-x", "y z"),
        ("hidden", "hidden"),
    )
    assert parse_attrs(": .logo") == (("class", "logo"),)


def test_inline_attr_list_must_follow_directly() -> None:
    ((found, _),), html = convert("![x](imagegen:a kite) { .center }\n")
    assert found.attrs is None and "{ .center }" in html


def test_inline_spans_lines_within_a_paragraph_but_never_a_blank_line() -> None:
    assert bodies("Text ![x](imagegen:a long\nprompt) after.\n") == ["a long\nprompt"]
    # Cut by a blank line, the first paragraph's directive never closes: an error, not a prompt.
    ((found, _),), _ = convert("Text ![x](imagegen:a long\n\nprompt) after.\n")
    assert found.body == "" and "never closes" in (found.error or "")


def test_escaped_bang_links_and_escaped_brackets_are_not_directives() -> None:
    assert bodies("\\![x](imagegen:escaped)\n") == []
    assert bodies("[x](imagegen:a link)\n") == []
    assert bodies("!\\[x](imagegen:escaped bracket)\n") == []


def test_escapes_in_the_prompt_are_kept_as_written() -> None:
    # The key hashes what the writer typed, as before the renderer found directives.
    assert bodies("![x](imagegen:a \\(literal\\) paren)\n") == ["a \\(literal\\) paren"]


def test_alt_with_brackets_code_and_escapes() -> None:
    found, _ = only("![a [nested] `code` \\[1\\]](imagegen:x)\n")
    assert found.alt == "a [nested] code [1]"


def test_adjacent_directives_and_directive_in_a_link() -> None:
    assert bodies("![a](imagegen:one)![b](imagegen:two)\n") == ["one", "two"]
    found, html = convert("[![a](imagegen:linked)](https://example.org)\n")
    assert [f.body for f, _ in found] == ["linked"]
    assert '<a href="https://example.org"><img' in html


def test_inline_in_containers_and_headings() -> None:
    text = (
        "# Title ![logo](imagegen:in heading)\n\n"
        "- item ![a](imagegen:in list)\n\n"
        '!!! note "Note"\n\n    ![b](imagegen:in admonition)\n\n'
        '=== "Tab"\n\n    ![c](imagegen:in tab)\n\n'
        "> ![d](imagegen:in quote)\n\n"
        '<div markdown="1">\n![e](imagegen:in md_in_html)\n</div>\n\n'
        "| a | b |\n|---|---|\n| ![f](imagegen:in table) | x |\n"
    )
    found, _ = convert(text, [*SUPER, "tables"])
    assert sorted((line, f.body) for f, line in found) == [
        (1, "in heading"),
        (3, "in list"),
        (7, "in admonition"),
        (11, "in tab"),
        (13, "in quote"),
        (16, "in md_in_html"),
        (21, "in table"),
    ]


# -- fenced blocks -----------------------------------------------------------


@pytest.mark.parametrize("extensions", [SUPER, PLAIN], ids=["superfences", "fenced_code"])
@pytest.mark.parametrize(("opening", "closing"), [("```", "```"), ("~~~", "~~~"), ("````", "````")])
def test_fenced_block(extensions: list[str], opening: str, closing: str) -> None:
    text = f"# Page\n\nIntro.\n\n{opening}imagegen\nprompt: A lighthouse\nalt: Light\n{closing}\n\nAfter.\n"
    found, line = only(text, extensions)
    assert (found.kind, found.body.strip(), line) == ("block", "prompt: A lighthouse\nalt: Light", 5)


@pytest.mark.parametrize("extensions", [SUPER, PLAIN], ids=["superfences", "fenced_code"])
def test_other_info_strings_are_code(extensions: list[str]) -> None:
    for info in ("python", "imagegen-not", "text imagegen"):
        found, html = convert(f"```{info}\nprompt: x\n```\n", extensions)
        assert found == [] and "<code" in html, info


def test_fences_nested_in_lists_admonitions_and_tabs_with_superfences() -> None:
    text = (
        "- item\n\n    ```imagegen\n    prompt: in a list\n    ```\n\n"
        "!!! note\n\n    ```imagegen\n    prompt: in a note\n    ```\n\n"
        '=== "Tab"\n\n    ```imagegen\n    prompt: in a tab\n    ```\n'
    )
    found, _ = convert(text)
    assert [(f.body.strip(), line) for f, line in found] == [
        ("prompt: in a list", 3),
        ("prompt: in a note", 9),
        ("prompt: in a tab", 15),
    ]


def test_unclosed_fence_is_reported_where_the_renderer_shows_text() -> None:
    found, line = only("# Page\n\n```imagegen\nprompt: never closed\n", PLAIN)
    assert found.error and "unterminated" in found.error and line == 3


def test_windows_line_endings() -> None:
    found, line = only("# P\r\n\r\n```imagegen\r\nprompt: crlf\r\n```\r\n", SUPER)
    assert found.body.strip() == "prompt: crlf" and line == 3


# -- code contexts: the renderer shows code, the extension finds nothing ---------------------------

INSIDE = "![inside](imagegen:inside code)"
FENCE_INSIDE = "```imagegen\nprompt: inside code\n```"
CODE_CONTEXTS = {
    "fence-backticks": f"```\n{INSIDE}\n```",
    "fence-bare-long": f"````\n{INSIDE}\n{FENCE_INSIDE}\n````",
    "fence-tilde": f"~~~\n{INSIDE}\n```imagegen\nprompt: x\n```\n~~~",
    "syntax-documentation": f"````markdown\n{FENCE_INSIDE}\n\n{INSIDE}\n````",
    "fence-in-list": f"- item\n\n    ```yaml\n    {INSIDE}\n    ```",
    "fence-in-admonition": "!!! note\n\n    ````markdown\n    ```imagegen\n    prompt: x\n    ```\n    ````",
    "fence-in-tab": f'=== "Tab"\n\n    ```md\n    {INSIDE}\n    ```',
    "code-span": f"Use `{INSIDE}` like this.",
    "double-backtick-span": f"Use ``a ` {INSIDE}`` like this.",
    "multiline-code-span": f"Use `the\n{INSIDE}\nspan` here.",
    "indented-code": f"Paragraph.\n\n    {INSIDE}\n\n    {FENCE_INSIDE.replace(chr(10), chr(10) + '    ')}",
    "indented-code-in-list": f"- item\n\n        {INSIDE}",
    "html-comment": f"<!-- {INSIDE} -->",
    "html-comment-multiline": f"<!--\n{INSIDE}\n\n-->",
    "raw-html-block": f"<div>\n{INSIDE}\n</div>",
    "pre": f"<pre>\n{INSIDE}\n\n</pre>",
}


@pytest.mark.parametrize("context", CODE_CONTEXTS.values(), ids=CODE_CONTEXTS.keys())
def test_directive_text_in_code_is_left_to_the_renderer(context: str) -> None:
    text = f"Intro.\n\n{context}\n\nAfter {REAL}.\n"
    found, html = convert(text)
    assert [f.body for f, _ in found] == ["the real one"]
    # The code is rendered exactly as without the extension.
    plain = Markdown(extensions=SUPER).convert(f"Intro.\n\n{context}\n")
    assert html.startswith(plain.rsplit("</", 1)[0][:-20])


def test_prompt_text_also_shown_in_code_above_still_gets_the_right_line() -> None:
    text = "```markdown\n![x](imagegen:a cat)\n```\n\nReal: ![x](imagegen:a cat)\n"
    ((_, line),) = convert(text)[0]
    assert line == 5


# -- the page title a template sees ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("# Title\n\nText", "Title"),
        ("Intro\n\n#  Spaced title  ##\n", "Spaced title"),
        ("# Learn C#\n", "Learn C"),  # Python-Markdown drops closing hashes: the renderer's title
        ("# Title { #custom-id }\n", "Title"),
        ("```\n# comment in code\n```\n\n# Real\n", "Real"),
        ("    # indented code\n\n# Real\n", "Real"),
        ("<!--\n# hidden\n-->\n# Real\n", "Real"),
        ("## Second level\n\n### Third\n", None),
        ("> # quoted\n\n- # in list\n", None),
        ("## Sub\n\n# Later Title\n# Other\n", "Later Title"),
    ],
)
def test_title(text: str, title: str | None) -> None:
    recorder = Recorder(text)
    md = Markdown(extensions=[*SUPER, "toc", ImagegenExtension(recorder)])
    md.convert(text + f"\n\n{REAL}\n")
    assert recorder.titles == [title]


def test_locator_names_text_another_plugin_made() -> None:
    place = Locator("# Page\n\nA {{ colour }} lighthouse\n", 0).place(
        "(imagegen:a red lighthouse", "inline", "# Page\n\n![x](imagegen:a red lighthouse)\n", None
    )
    assert place.line == 3 and place.note and "another plugin" in place.note
    assert re.search("not in the file", place.note)


def test_one_markdown_instance_converting_many_texts_finds_each_texts_directives() -> None:
    recorder = Recorder("")
    md = Markdown(extensions=[*SUPER, ImagegenExtension(recorder)])
    assert "<img" not in md.convert("# Plain\n\nNo directive here.\n")
    recorder.source = "# Doc\n\n![x](imagegen:second text)\n"
    assert 'src="found:second text"' in md.convert(recorder.source)
    assert "imagegen" not in md.convert("# Plain again\n")
