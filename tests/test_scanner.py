"""Tests for the directive scanner: what a writer sees found, and what stays untouched as code."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from mkdocs_imagegen.scanner import FENCE_LANG, INLINE_SCHEME, RawDirective, first_heading, scan

CORPORA = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora"
CORPUS_NAMES = ("mkdocs-docs", "mkdocs-material-docs", "pymdown-extensions-docs")

REAL = "![real](imagegen:the real one)"


def spans(text: str) -> list[str]:
    return [text[d.start : d.end] for d in scan(text)]


def only(text: str, **kwargs: int) -> RawDirective:
    found = scan(text, **kwargs)
    assert len(found) == 1, found
    return found[0]


# -- constants ---------------------------------------------------------------


def test_constants() -> None:
    assert INLINE_SCHEME == "imagegen:"
    assert FENCE_LANG == "imagegen"


def test_text_without_the_word_has_no_directives() -> None:
    assert scan("# Title\n\n![x](image.png)\n\n```python\nprint(1)\n```\n") == []
    assert scan("") == []


# -- fenced blocks -----------------------------------------------------------


def test_block_directive() -> None:
    text = (
        "# Page\n\nIntro.\n\n"
        "```imagegen\nprompt: A watercolor lighthouse at dusk\nalt: Lighthouse\n```\n\n"
        "After.\n"
    )
    d = only(text)
    assert d.kind == "block"
    assert d.body == "prompt: A watercolor lighthouse at dusk\nalt: Lighthouse"
    assert d.line == 5
    assert d.indent == ""
    assert d.error is None and d.alt is None and d.attrs is None
    assert text[d.start : d.end] == (
        "```imagegen\nprompt: A watercolor lighthouse at dusk\nalt: Lighthouse\n```"
    )


@pytest.mark.parametrize(
    ("opening", "closing"),
    [
        ("~~~imagegen", "~~~"),
        ("````imagegen", "````"),
        ("`````imagegen", "``````"),  # a longer closing fence closes too
        ("``` imagegen", "```"),
        ("```imagegen title=x", "```   "),
        ("~~~~ imagegen more words", "~~~~~"),
    ],
)
def test_fence_variants(opening: str, closing: str) -> None:
    text = f"{opening}\nprompt: p\n{closing}\n"
    d = only(text)
    assert d.body == "prompt: p"
    assert text[d.start : d.end] == text.rstrip("\n")


def test_shorter_or_other_fences_inside_body_do_not_close_it() -> None:
    text = "````imagegen\nprompt: |\n  ```\n  ~~~~\n````\n"
    assert only(text).body == "prompt: |\n  ```\n  ~~~~"


@pytest.mark.parametrize("info", ["Imagegen", "imagegenx", "{.imagegen}", "python imagegen", ""])
def test_other_info_strings_are_not_directives(info: str) -> None:
    assert scan(f"```{info}\nprompt: imagegen\n```\n") == []


def test_empty_block() -> None:
    d = only("```imagegen\n```\n")
    assert d.body == "" and d.error is None


@pytest.mark.parametrize(
    ("text", "indent"),
    [
        ("- item\n\n    ```imagegen\n    prompt: p\n      more: 1\n    ```\n", "    "),
        ("1. item\n    ```imagegen\n    prompt: p\n      more: 1\n    ```\n", "    "),
        ("!!! note\n\n    ```imagegen\n    prompt: p\n      more: 1\n    ```\n", "    "),
        ('!!! note "Title"\n    ~~~imagegen\n    prompt: p\n      more: 1\n    ~~~\n', "    "),
        ("??? tip\n\n    ```imagegen\n    prompt: p\n      more: 1\n    ```\n", "    "),
        ("???+ tip\n\n    ```imagegen\n    prompt: p\n      more: 1\n    ```\n", "    "),
        ('=== "Tab"\n\n    ```imagegen\n    prompt: p\n      more: 1\n    ```\n', "    "),
        (
            '- item\n\n    === "A"\n\n'
            "        ```imagegen\n        prompt: p\n          more: 1\n        ```\n",
            "        ",
        ),
        ("/// note\n```imagegen\nprompt: p\n  more: 1\n```\n///\n", ""),
        ("/// tab | A\n    ```imagegen\n    prompt: p\n      more: 1\n    ```\n///\n", "    "),
        ("> ```imagegen\n> prompt: p\n>   more: 1\n> ```\n", "> "),
        ("- item\n\n    > ```imagegen\n    > prompt: p\n    >   more: 1\n    > ```\n", "    > "),
        ("- item\n\n\t```imagegen\n\tprompt: p\n\t  more: 1\n\t```\n", "\t"),
    ],
    ids=[
        "list",
        "ordered-list",
        "admonition",
        "admonition-title",
        "details",
        "details-open",
        "tab",
        "tab-in-list",
        "blocks-extension",
        "blocks-indented",
        "blockquote",
        "blockquote-in-list",
        "tab-indent",
    ],
)
def test_nested_block(text: str, indent: str) -> None:
    d = only(text)
    assert d.indent == indent
    assert d.body == "prompt: p\n  more: 1"
    source = text[d.start : d.end]
    assert source.startswith(indent + "```imagegen") or source.startswith(indent + "~~~imagegen")
    assert source.endswith(("```", "~~~"))
    assert d.start == 0 or text[d.start - 1] == "\n"
    assert text[d.end] == "\n"


def test_unterminated_block_at_end_of_text() -> None:
    text = "Intro.\n\n````imagegen\nprompt: p\nalt: a\n\n"
    d = only(text, line_offset=10)
    assert d.error is not None
    assert "unterminated imagegen block" in d.error
    assert "````" in d.error
    assert d.body == "prompt: p\nalt: a"
    assert d.line == 13
    assert text[d.start : d.end] == "````imagegen\nprompt: p\nalt: a"


def test_unterminated_block_ends_with_its_container() -> None:
    text = "- item\n\n    ```imagegen\n    prompt: p\n\nBack at the top ![x](imagegen:inline after)\n"
    block, inline = scan(text)
    assert block.error is not None and "```" in block.error
    assert text[block.start : block.end] == "    ```imagegen\n    prompt: p"
    assert block.body == "prompt: p"
    assert inline.kind == "inline" and inline.body == "inline after"


def test_unterminated_block_in_blockquote() -> None:
    text = "> ```imagegen\n> prompt: p\n\nafter\n"
    d = only(text)
    assert d.error is not None
    assert text[d.start : d.end] == "> ```imagegen\n> prompt: p"


def test_several_blocks_in_order_with_line_numbers() -> None:
    text = "```imagegen\na\n```\n\ntext\n\n~~~imagegen\nb\n~~~\n"
    first, second = scan(text, line_offset=3)
    assert (first.body, first.line) == ("a", 4)
    assert (second.body, second.line) == ("b", 10)


def test_crlf_line_endings_are_tolerated() -> None:
    text = "```imagegen\r\nprompt: p\r\n```\r\n\r\n![a](imagegen:b)\r\n"
    block, inline = scan(text)
    assert block.body == "prompt: p"
    assert text[block.start : block.end] == "```imagegen\r\nprompt: p\r\n```"
    assert (inline.body, inline.line) == ("b", 5)


# -- inline ------------------------------------------------------------------


def test_inline_directive() -> None:
    text = "Some text ![Lighthouse at dusk](imagegen:A watercolor lighthouse at dusk) and more.\n"
    d = only(text)
    assert d.kind == "inline"
    assert d.alt == "Lighthouse at dusk"
    assert d.body == "A watercolor lighthouse at dusk"
    assert d.indent == "" and d.attrs is None and d.error is None
    assert d.line == 1
    assert text[d.start : d.end] == "![Lighthouse at dusk](imagegen:A watercolor lighthouse at dusk)"


def test_inline_balanced_parentheses() -> None:
    d = only("![x](imagegen:a cat (tabby) on a mat) (not this)")
    assert d.body == "a cat (tabby) on a mat"
    d = only("![x](imagegen:a ((deeply) nested) one)")
    assert d.body == "a ((deeply) nested) one"


def test_inline_unbalanced_parentheses_is_not_a_directive() -> None:
    assert scan("![x](imagegen:a cat (tabby on a mat\n") == []


def test_inline_attr_list() -> None:
    text = 'A ![x](imagegen:a cat){ .center width="300" } b'
    d = only(text)
    assert d.attrs == '.center width="300"'
    assert text[d.start : d.end] == '![x](imagegen:a cat){ .center width="300" }'


def test_inline_attr_list_needs_to_follow_directly() -> None:
    text = "![x](imagegen:a cat) { .center }"
    d = only(text)
    assert d.attrs is None
    assert text[d.start : d.end] == "![x](imagegen:a cat)"


def test_inline_spans_lines_within_a_paragraph() -> None:
    text = "Intro ![a long\nalt](imagegen:a prompt that\ncontinues) end\n"
    d = only(text)
    assert d.alt == "a long\nalt"
    assert d.body == "a prompt that\ncontinues"
    assert d.line == 1


def test_inline_never_spans_a_blank_line() -> None:
    assert scan("![a](imagegen:broken\n\nprompt)\n") == []
    assert scan("![a\n\nb](imagegen:p)\n") == []


def test_escaped_bang_is_not_a_directive() -> None:
    assert scan("\\![x](imagegen:y)") == []
    # An escaped backslash leaves the "!" active.
    assert only("\\\\![x](imagegen:y)").body == "y"


def test_links_and_escaped_brackets_are_not_directives() -> None:
    assert scan("[x](imagegen:y)") == []
    assert scan("!\\[x](imagegen:y)") == []
    assert scan("![x\\](imagegen:y)") == []


def test_inline_alt_with_brackets_and_code() -> None:
    d = only("![a [b] `c]` d](imagegen:p)")
    assert d.alt == "a [b] `c]` d"


def test_inline_line_numbers_and_offset() -> None:
    text = "# T\n\nfirst ![a](imagegen:one)\n\n- item ![b](imagegen:two)\n\n> quoted ![c](imagegen:three)\n"
    found = scan(text, line_offset=5)
    assert [(d.body, d.line) for d in found] == [("one", 8), ("two", 10), ("three", 12)]


def test_inline_in_containers_and_headings() -> None:
    text = (
        "## A ![h](imagegen:heading)\n\n"
        "!!! note\n\n    ![a](imagegen:admonition)\n\n"
        '=== "Tab"\n\n    ![t](imagegen:tab)\n\n'
        "| col |\n| --- |\n| ![c](imagegen:cell) |\n\n"
        "[![linked](imagegen:in link)](https://example.com)\n"
    )
    assert [d.body for d in scan(text)] == ["heading", "admonition", "tab", "cell", "in link"]


def test_adjacent_inline_directives() -> None:
    text = "![a](imagegen:1)![b](imagegen:2){.x} ![c](imagegen:3)"
    assert spans(text) == ["![a](imagegen:1)", "![b](imagegen:2){.x}", "![c](imagegen:3)"]


def test_mixed_document_in_order_and_spans_splice_back() -> None:
    text = (
        "# Title\n\n"
        "Para ![a](imagegen:one){ .left }\n\n"
        "- item\n\n"
        "    ```imagegen\n    prompt: two\n    ```\n\n"
        "```python\n![no](imagegen:code)\n```\n\n"
        "> ~~~imagegen\n> prompt: three\n> ~~~\n\n"
        "End ![b](imagegen:four (x))\n"
    )
    found = scan(text)
    assert [d.kind for d in found] == ["inline", "block", "block", "inline"]
    assert [d.body for d in found] == ["one", "prompt: two", "prompt: three", "four (x)"]
    assert [d.line for d in found] == [3, 7, 15, 19]
    # Splicing replacements in by span touches nothing else on the page.
    pieces, last = [], 0
    for d in found:
        pieces += [text[last : d.start], f"<{d.kind}>"]
        last = d.end
    pieces.append(text[last:])
    assert "".join(pieces) == (
        "# Title\n\nPara <inline>\n\n- item\n\n<block>\n\n"
        "```python\n![no](imagegen:code)\n```\n\n<block>\n\nEnd <inline>\n"
    )


# -- code contexts -----------------------------------------------------------

INSIDE = "![inside](imagegen:inside code)"
FENCE_INSIDE = "```imagegen\nprompt: inside code\n```"

CODE_CONTEXTS = {
    "fence-backticks": f"```\n{INSIDE}\n```",
    "fence-bare-long": f"````\n{INSIDE}\n{FENCE_INSIDE}\n````",
    "fence-python": f"```python\n{INSIDE}\n```",
    "fence-tilde": f"~~~\n{INSIDE}\n```imagegen\nprompt: x\n```\n~~~",
    "fence-long": f"`````text\n{INSIDE}\n````\n{FENCE_INSIDE}\n`````",
    "fence-closed-by-longer": f"```\n{INSIDE}\n``````",
    "syntax-documentation": f"````markdown\n{FENCE_INSIDE}\n\n{INSIDE}\n````",
    "syntax-documentation-tilde": f"~~~markdown\n{FENCE_INSIDE}\n~~~",
    "fence-in-list": f"- item\n\n    ```yaml\n    {INSIDE}\n    ```",
    "fence-in-admonition": "!!! note\n\n    ````markdown\n    ```imagegen\n    prompt: x\n    ```\n    ````",
    "fence-in-tab": f'=== "Tab"\n\n    ```md\n    {INSIDE}\n    ```',
    "fence-in-blockquote": f"> ```\n> {INSIDE}\n> ```imagegen\n> ```",
    "fence-in-nested-blockquote": f"> > ~~~\n> > {INSIDE}\n> > ~~~",
    "code-span": f"Use `{INSIDE}` like this.",
    "double-backtick-span": f"Use ``a ` {INSIDE}`` like this.",
    "triple-backtick-span": f"Use ```a `` {INSIDE}``` here.",
    "multiline-code-span": f"Use `the\n{INSIDE}\nspan` here.",
    "code-span-in-list": f"- Use `{INSIDE}`",
    "indented-code": f"Paragraph.\n\n    {INSIDE}\n\n    {FENCE_INSIDE.replace(chr(10), chr(10) + '    ')}",
    "indented-code-after-heading": f"## Heading\n    {INSIDE}",
    "indented-code-in-list": f"- item\n\n        {INSIDE}",
    "indented-code-in-admonition": f"!!! note\n\n    text\n\n        {INSIDE}",
    "indented-code-in-blockquote": f">     {INSIDE}",
    "html-comment": f"<!-- {INSIDE} -->",
    "html-comment-inline": f"Text <!-- {INSIDE} --> more.",
    "html-comment-multiline": f"<!--\n{INSIDE}\n\n{FENCE_INSIDE}\n\n-->",
    "pre": f"<pre>\n{INSIDE}\n\n</pre>",
    "code-tag": f"Text <code>{INSIDE}</code> more.",
    "unterminated-other-fence": f"```python\n{INSIDE}\n",
}


@pytest.mark.parametrize("context", CODE_CONTEXTS.values(), ids=CODE_CONTEXTS.keys())
def test_directive_text_in_code_is_not_found(context: str) -> None:
    text = f"Intro.\n\n{context}\n\nAfter {REAL}.\n"
    found = scan(text)
    if context.startswith("```python\n") and not context.rstrip().endswith("```"):
        assert found == []  # an unclosed fence makes the rest of the page code
        return
    assert [d.body for d in found] == ["the real one"]
    assert text[found[0].start : found[0].end] == REAL


def test_fence_at_four_spaces_continuing_a_paragraph_is_not_code() -> None:
    text = "Paragraph\n    ![x](imagegen:lazy line)\n"
    assert only(text).body == "lazy line"


def test_lazy_continuation_lines_keep_their_container() -> None:
    # The unindented line continues the list item, so the next indented block is in the item, not code.
    assert only("- item\nlazy line\n\n    ![x](imagegen:in item)\n").body == "in item"
    # A code span continues over a lazy line.
    assert scan("- use `code\n![x](imagegen:y)` here\n") == []
    assert scan("> quote `code\n![x](imagegen:y)` lazy\n") == []


def test_indented_code_at_the_start_of_the_page() -> None:
    assert scan(f"    {INSIDE}\n\n{REAL}\n")[0].body == "the real one"
    assert len(scan(f"    {INSIDE}\n")) == 0


def test_indented_fence_inside_indented_code_is_code() -> None:
    assert scan(f"Paragraph.\n\n    ```imagegen\n    prompt: x\n    ```\n\n{REAL}\n")[0].kind == "inline"


# -- first_heading -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("# Title\n\nText", "Title"),
        ("Intro\n\n#  Spaced title  ##\n", "Spaced title"),
        ("# Learn C#\n", "Learn C#"),
        ("# Title { #custom-id }\n", "Title"),
        ("```\n# comment in code\n```\n\n# Real\n", "Real"),
        ("    # indented code\n\n# Real\n", "Real"),
        ("<!--\n# hidden\n-->\n# Real\n", "Real"),
        ("## Second level\n\n### Third\n", None),
        ("> # quoted\n\n- # in list\n", None),
        ("No heading at all\n", None),
        ("", None),
        ("## Sub\n\n# Later Title\n# Other\n", "Later Title"),
    ],
)
def test_first_heading(text: str, title: str | None) -> None:
    assert first_heading(text) == title


# -- performance -------------------------------------------------------------

MB = 1_000_000
HOSTILE = {
    "backtick-pairs": "` " * (MB // 2) + REAL,
    "backtick-lengths": "".join("`" * k + " x " for k in range(1, 1300)) + REAL,
    "open-brackets": "[" * MB + REAL,
    "close-brackets": "]" * MB + REAL,
    "bangs": "![" * (MB // 2) + "](imagegen:x)",
    "mixed-paragraph": "`x` ![a](b) [c] (d) " * (MB // 20) + REAL,
    "unclosed-prompts": "![a](imagegen:(" * (MB // 15),
    "open-parens": "![a](imagegen:" + "(" * MB,
    "many-directives": "![a](imagegen:b) " * (MB // 17),
    "comments": "x <!-- ![a](imagegen:b)\n" * (MB // 25),
    "fences": "```imagegen\nprompt: x\n```\n\n" * (MB // 28),
    "deep-nesting": ("- " * 200 + "> " * 200 + "imagegen\n") * (MB // 800),
    "short-lines": "a\n" * (MB // 2) + "imagegen",
}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_megabyte_pages_scan_fast(text: str) -> None:
    started = time.perf_counter()
    scan(text)
    assert time.perf_counter() - started < 1.0


# -- real documentation corpora ---------------------------------------------

FENCE_LINE = re.compile(r"^[ \t]*(?:>[ \t]?)*[ \t]*(`{3,}|~{3,})(.*)$")


def _code_lines(lines: list[str]) -> list[bool]:
    """Independent, deliberately simple tracker: which lines are inside fences or comments."""
    inside = []
    fence: str | None = None
    comment = False
    for line in lines:
        if comment:
            inside.append(True)
            comment = "-->" not in line
            continue
        m = FENCE_LINE.match(line)
        if fence is not None:
            inside.append(True)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not m.group(2).strip():
                fence = None
            continue
        if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
            fence = m.group(1)
            inside.append(True)
            continue
        if line.startswith("<!--") and "-->" not in line:
            comment = True
        inside.append(comment)
    inside.append(fence is not None or comment)  # state after the last line
    return inside


def _corpus_files() -> list[Path]:
    if not CORPORA.is_dir():
        pytest.skip(f"documentation corpora not found at {CORPORA}")
    files = sorted(p for name in CORPUS_NAMES for p in (CORPORA / name / "docs").rglob("*.md"))
    if not files:
        pytest.skip(f"no Markdown files under {CORPORA}")
    return files


def _page(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    # MkDocs strips YAML front matter before plugins see the page.
    return re.sub(r"\A---[ \t]*\n.*?\n(?:---|\.\.\.)[ \t]*\n", "", text, count=1, flags=re.S)


def test_corpora_contain_no_directives() -> None:
    for path in _corpus_files():
        text = _page(path)
        assert scan(text) == [], path
        # Defeat the fast path so the full parser runs over the page too.
        assert scan(text + "\n\n<!-- imagegen -->\n") == [], path


def _with_inserted_directives(original: str) -> tuple[str, list[tuple[str, int]], bool]:
    """The page with directives inserted between top-level blocks, what should be found, and
    whether one was appended at the end."""
    lines = original.split("\n")
    inside = _code_lines(lines)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    points = [0] + [
        offsets[i]
        for i in range(1, len(lines))
        if lines[i].startswith("#") and not lines[i - 1].strip() and not inside[i]
    ]
    pieces: list[str] = []
    expected: list[tuple[str, int]] = []  # (source, start offset in the new text)
    length = 0
    last = 0
    for k, point in enumerate(points):
        pieces.append(original[last:point])
        length += point - last
        last = point
        for directive in (
            f"```imagegen\nprompt: corpus {k}\n```",
            f"![alt {k}](imagegen:corpus (inline) {k}){{ .center }}",
        ):
            expected.append((directive, length))
            pieces.append(directive + "\n\n")
            length += len(directive) + 2
    pieces.append(original[last:])
    length += len(original) - last
    at_end = not inside[-1]
    if at_end:
        gap = "\n" if original.endswith("\n") else "\n\n"
        directive = "~~~~imagegen\nprompt: at the end\n~~~~"
        expected.append((directive, length + len(gap)))
        pieces += [gap, directive]
    return "".join(pieces), expected, at_end


def test_corpora_inserted_directives_are_found_exactly() -> None:
    total = 0
    for path in _corpus_files():
        original = _page(path)
        text, expected, at_end = _with_inserted_directives(original)

        found = scan(text, line_offset=7)
        assert [(text[d.start : d.end], d.start) for d in found] == expected, path
        for d in found:
            assert d.line == text.count("\n", 0, d.start) + 8, path
            assert d.error is None, path
        assert (found[1].alt, found[1].body, found[1].attrs) == ("alt 0", "corpus (inline) 0", ".center")

        # Cutting the inserted text back out gives the original byte for byte.
        restored, cut = [], 0
        for d in found:
            restored.append(text[cut : d.start])
            cut = d.end + (2 if text[d.end : d.end + 2] == "\n\n" else 0)
        restored.append(text[cut:])
        joined = "".join(restored)
        if at_end:
            joined = joined[: len(original)]
        assert joined == original, path
        total += len(found)
    assert total > 500


def test_corpora_links_turned_into_directives_are_never_found_inside_fences() -> None:
    """Every `](` made into `](imagegen:`: images in prose are found, those shown in code are not."""
    found_total = 0
    for path in _corpus_files():
        text = _page(path).replace("](", "](" + INLINE_SCHEME)
        inside = _code_lines(text.split("\n"))
        for d in scan(text):
            assert d.kind == "inline", path
            assert not inside[d.line - 1], (path, d.line)
            assert text[d.start : d.end].startswith("![")
            found_total += 1
    assert found_total > 20
