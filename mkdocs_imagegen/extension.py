"""The Markdown extension: the site's own renderer decides what is a directive.

The plugin adds one `ImagegenExtension` to the site's `markdown_extensions`, so every Markdown
instance built from the site's config (each page's, a blog excerpt's, any plugin's) meets
directives exactly where it renders content, and never where it makes code, raw HTML or a
comment. Three hooks find them:

- an inline processor for `![alt](imagegen:prompt){ attrs }`, just before Python-Markdown's own
  image pattern (code spans and escapes are already dealt with at that point);
- a pymdownx.superfences custom fence (the plugin registers it in `mdx_configs`), or, without
  superfences, a preprocessor in front of Python-Markdown's `fenced_code`;
- an inline pattern that notices an `imagegen` fence the renderer did not close.

Each hook only records a `Found` item and leaves a placeholder. One tree processor, right after
inline processing, hands the conversion's items to the `Handler` (the plugin), which resolves and
submits them, and fills the placeholders with the HTML it returns. New directive shapes (attribute
lists after the info string, more than one image per directive) plug in at `Found` and the handler.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as etree
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from markdown import Markdown
from markdown.extensions import Extension
from markdown.inlinepatterns import InlineProcessor, LinkInlineProcessor
from markdown.postprocessors import Postprocessor
from markdown.preprocessors import Preprocessor
from markdown.treeprocessors import Treeprocessor

FENCE_NAME = "imagegen"
_MARK = "(imagegen:"
# Python-Markdown's escape placeholder (STX, the character's code point, ETX).
_ESCAPED = re.compile("\x02(\\d+)\x03")
_INLINE_STASHED = re.compile("\x02klzzwxh:(\\d+)\x03")
_STASHED_ANY = re.compile("\x02[^\x02\x03]*\x03")
_ATTRS = re.compile(r"\{([^}\n]*)\}")
_PLAIN_RUN = re.compile(r"[^\x02\x03\\`\n]*")  # text the source holds exactly as the renderer sees it
_PLAIN_TAIL = re.compile(r"[^\x02\x03\\`\n]*$")
_HEADING_ATTRS = re.compile(r"\s*\{:?[^}\n]*\}\s*$")
_BLOCK_MARK = "<!--imagegen-block:{}-->"
_BLOCK_MARK_RE = re.compile(r"<!--imagegen-block:(\d+)-->")


@dataclass
class Found:
    """One directive as the renderer met it; `needle` is text to find its line by."""

    kind: Literal["block", "inline"]
    body: str
    needle: str
    alt: str | None = None
    attrs: str | None = None
    error: str | None = None
    element: etree.Element | None = None  # inline: the <img> to fill
    needles: tuple[str, ...] = ()  # more precise needles, tried before `needle`
    options: dict[str, Any] = field(default_factory=dict)  # block: superfences' attributes


@dataclass
class Rendered:
    """What the handler answers for one directive: the <img> attributes, or a whole HTML block."""

    attributes: list[tuple[str, str]] = field(default_factory=list)
    html: str = ""


class Handler(Protocol):
    def render(self, md: Markdown, conversion: Conversion, found: list[Found]) -> list[Rendered]: ...


@dataclass
class Conversion:
    """The state of one `Markdown.convert()` call: its text and the directives met so far."""

    text: str = ""  # what convert() was given (before snippets and other preprocessors)
    expanded: str | None = None  # the text after pymdownx.snippets, when that extension is on
    found: list[Found] = field(default_factory=list)
    title: str | None = None  # the first top-level heading, once the tree exists


def conversion_of(md: Markdown) -> Conversion | None:
    return getattr(md, "_imagegen_conversion", None)


class ImagegenExtension(Extension):
    """Registered once by the plugin; `extendMarkdown` runs for every Markdown instance built."""

    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self.handler = handler

    def extendMarkdown(self, md: Markdown) -> None:
        conversion = Conversion()
        md._imagegen_conversion = conversion  # type: ignore[attr-defined]
        md.preprocessors.register(_Start(md, conversion), "imagegen_start", 1000)
        if "snippet" in md.preprocessors:  # pymdownx.snippets runs at 32
            md.preprocessors.register(_Expanded(md, conversion), "imagegen_expanded", 31.5)
        fenced = md.preprocessors["fenced_code_block"] if "fenced_code_block" in md.preprocessors else None  # noqa: SIM401
        if fenced is not None and type(fenced).__module__ == "markdown.extensions.fenced_code":
            md.preprocessors.register(_FencedCode(md, conversion), "imagegen_fenced_code", 25.5)
        md.preprocessors.register(_Switch(md, conversion), "imagegen_switch", 29)
        md.treeprocessors.register(_Finish(md, conversion, self.handler), "imagegen", 19)
        md.postprocessors.register(_Blocks(md, conversion, self.handler), "imagegen", 25)


class _Start(Preprocessor):
    def __init__(self, md: Markdown, conversion: Conversion) -> None:
        super().__init__(md)
        self.conversion = conversion

    def run(self, lines: list[str]) -> list[str]:
        c = self.conversion
        c.text, c.expanded, c.found, c.title = "\n".join(lines), None, [], None
        return lines


class _Expanded(_Start):
    def run(self, lines: list[str]) -> list[str]:
        self.conversion.expanded = "\n".join(lines)
        return lines


class _Switch(Preprocessor):
    """The inline patterns only for text that can hold a directive: other pages pay nothing.

    Runs after pymdownx.snippets and whitespace normalization, so included text counts; a
    Markdown instance converting many texts (an API-docs renderer, say) switches per text.
    """

    def __init__(self, md: Markdown, conversion: Conversion) -> None:
        super().__init__(md)
        self.patterns = (
            (_Inline(r"!\[", md, conversion), "imagegen_inline", 155),
            (_Unclosed(_UNCLOSED, md, conversion), "imagegen_unclosed", 185),
        )

    def run(self, lines: list[str]) -> list[str]:
        wanted = FENCE_NAME in "\n".join(lines)
        registered = "imagegen_inline" in self.md.inlinePatterns
        if wanted and not registered:
            for pattern, name, priority in self.patterns:
                self.md.inlinePatterns.register(pattern, name, priority)
        elif registered and not wanted:
            for _, name, _ in self.patterns:
                self.md.inlinePatterns.deregister(name)
        return lines


def block_placeholder(conversion: Conversion, found: Found) -> str:
    """A marker that survives stashing; the tree processor swaps it for the directive's HTML."""
    conversion.found.append(found)
    return _BLOCK_MARK.format(len(conversion.found) - 1)


def _first_line(body: str) -> str:
    return next((line.strip() for line in body.splitlines() if line.strip()), "")


def superfences_format(
    source: str, language: str, class_name: str, options: dict[str, Any], md: Markdown, **kwargs: Any
) -> str:
    """pymdownx.superfences custom fence `imagegen`: the fence's body is the directive's YAML."""
    conversion = conversion_of(md)
    if conversion is None:  # a Markdown instance built without the extension: show the code
        from pymdownx.superfences import fence_code_format

        return str(fence_code_format(source, language, class_name, options, md, **kwargs))
    attrs = _attr_list(kwargs.get("classes") or [], kwargs.get("id_value") or "", kwargs.get("attrs") or {})
    found = Found("block", source, _first_line(source), attrs=attrs, options=dict(kwargs.get("attrs") or {}))
    return block_placeholder(conversion, found)


def _attr_list(classes: list[str], id_value: str, attrs: dict[str, str]) -> str | None:
    """The fence's attribute list (`imagegen { .center #lamp width="300" }`) written back as one."""
    parts = [f".{c}" for c in classes if c and c != FENCE_NAME]
    if id_value:
        parts.append(f"#{id_value}")
    for name, value in attrs.items():
        quote = "'" if '"' in value else '"'
        parts.append(f"{name}={quote}{value}{quote}")
    return " ".join(parts) or None


_FENCE_WITH_ATTRS = re.compile(
    rf"(?P<fence>^(?:~{{3,}}|`{{3,}}))[ ]*\.?{FENCE_NAME}[ ]*\{{(?P<attrs>[^\n}}]*)\}}[ ]*\n"
    r"(?P<code>.*?)(?<=\n)(?P=fence)[ ]*$",
    re.MULTILINE | re.DOTALL,
)


class _FencedCode(Preprocessor):
    """Python-Markdown's `fenced_code`, for `imagegen` fences only (runs just before it)."""

    def __init__(self, md: Markdown, conversion: Conversion) -> None:
        super().__init__(md)
        self.conversion = conversion
        from markdown.extensions.fenced_code import FencedBlockPreprocessor

        self.pattern = FencedBlockPreprocessor.FENCED_BLOCK_RE

    def run(self, lines: list[str]) -> list[str]:
        text = "\n".join(lines)
        if FENCE_NAME not in text:
            return lines
        # `imagegen { .center }`: fenced_code reads no attribute list after a language, so these
        # are taken first (superfences reads them itself).
        text, n = _FENCE_WITH_ATTRS.subn(self._with_attrs, text)
        pieces, pos = [], 0
        for m in self.pattern.finditer(text):
            lang = m.group("lang") or ""
            attrs = m.group("attrs") or ""
            if lang != FENCE_NAME and not re.match(rf"\s*\.?{FENCE_NAME}(\s|$)", attrs):
                continue
            # `{ .imagegen .center #lamp }`: the rest of the attribute list is the image's.
            rest = re.sub(rf"^\s*\.?{FENCE_NAME}(\s|$)", " ", attrs).strip() or None
            found = Found("block", m.group("code"), _first_line(m.group("code")), attrs=rest)
            marker = self.md.htmlStash.store(block_placeholder(self.conversion, found))
            pieces += [text[pos : m.start()], f"\n{marker}\n"]
            pos = m.end()
        if not pieces:
            return text.split("\n") if n else lines
        pieces.append(text[pos:])
        return "".join(pieces).split("\n")

    def _with_attrs(self, m: re.Match[str]) -> str:
        found = Found("block", m.group("code"), _first_line(m.group("code")), attrs=m.group("attrs").strip())
        return f"\n{self.md.htmlStash.store(block_placeholder(self.conversion, found))}\n"


def _unescape(text: str) -> str:
    """Markdown source as written: escapes back to backslash pairs (the key sees what was typed)."""
    return _ESCAPED.sub(lambda m: "\\" + chr(int(m.group(1))), text)


def _close_paren(data: str, start: int) -> int:
    """Index of the `)` that balances the `(` before `start`, or -1."""
    depth = 1
    for i in range(start, len(data)):
        ch = data[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if not depth:
                return i
    return -1


class _Inline(LinkInlineProcessor):
    """`![alt](imagegen:prompt){ attrs }`: balanced parentheses, a quoted last word is prompt."""

    def __init__(self, pattern: str, md: Markdown, conversion: Conversion) -> None:
        super().__init__(pattern, md)
        self.conversion = conversion

    def handleMatch(  # type: ignore[override]
        self, m: re.Match[str], data: str
    ) -> tuple[etree.Element | None, int | None, int | None]:
        if data.find("](imagegen:", m.end(0)) == -1:
            return None, None, None
        text, index, handled = self.getText(data, m.end(0))
        if not handled or not data.startswith(_MARK, index):
            return None, None, None
        start = index + len(_MARK)
        close = _close_paren(data, start)
        if close == -1:
            return self._unbalanced(m, data, start)
        end = close + 1
        attrs = None
        am = _ATTRS.match(data, end)
        if am is not None:
            attrs, end = am.group(1).strip(), am.end()
        prompt = self._plain(data[start:close])
        needle = _MARK + _PLAIN_RUN.match(data, start).group()[:40]  # type: ignore[union-attr]
        # The text just before, on the same line, tells this directive from the same one in code.
        before = _PLAIN_TAIL.search(data, 0, m.start(0)).group()[-30:]  # type: ignore[union-attr]
        needles = [f"{before}![{text}]{needle}"] if before and _PLAIN_RUN.fullmatch(text) else []
        element = etree.Element("img")
        self.conversion.found.append(
            Found(
                "inline",
                prompt,
                needle,
                alt=_ESCAPED.sub(_char, self.unescape(text)),
                attrs=attrs,
                element=element,
                needles=tuple(needles),
            )
        )
        return element, m.start(0), end

    def _unbalanced(self, m: re.Match[str], data: str, start: int) -> tuple[etree.Element, int, int]:
        """`![x](imagegen:a cat (tabby on a mat)`: a warning with page and line, not text."""
        line_end = data.find("\n", start)
        end = len(data) if line_end == -1 else line_end
        element = etree.Element("img")
        needle = _MARK + _PLAIN_RUN.match(data, start).group()[:40]  # type: ignore[union-attr]
        self.conversion.found.append(
            Found(
                "inline",
                "",
                needle,
                error="the inline imagegen directive never closes: its '(' has no matching ')'; "
                "balance the parentheses in the prompt, or escape one as \\(",
                element=element,
            )
        )
        return element, m.start(0), end

    def _plain(self, text: str) -> str:
        """The prompt as typed: escapes and code spans the renderer already took apart, put back."""
        stash = self.md.treeprocessors["inline"].stashed_nodes  # type: ignore[attr-defined]

        def restore(m: re.Match[str]) -> str:
            node = stash.get(m.group(1))
            if isinstance(node, str):
                return node
            if isinstance(node, etree.Element) and node.tag == "code":
                return f"`{node.text or ''}`"
            return m.group(0)

        return _unescape(_INLINE_STASHED.sub(restore, text))


def _char(m: re.Match[str]) -> str:
    return chr(int(m.group(1)))


# An imagegen fence the renderer left in paragraph text: it was never closed.
_UNCLOSED = r"(?m)^[ \t]*(`{3,}|~{3,})[ \t]*\{?[ \t]*\.?imagegen\b[^`\n]*$"


class _Unclosed(InlineProcessor):
    def __init__(self, pattern: str, md: Markdown, conversion: Conversion) -> None:
        super().__init__(pattern, md)
        self.conversion = conversion

    def handleMatch(  # type: ignore[override]
        self, m: re.Match[str], data: str
    ) -> tuple[etree.Element, int, int]:
        fence = m.group(1)
        element = etree.Element("img")
        self.conversion.found.append(
            Found(
                "inline",
                "",
                m.group(0).strip(),
                error=f"unterminated imagegen block: add a closing {fence} fence",
                element=element,
            )
        )
        return element, m.start(0), m.end(0)


class _Finish(Treeprocessor):
    """After inline processing: the handler resolves this conversion's inline directives."""

    def __init__(self, md: Markdown, conversion: Conversion, handler: Handler) -> None:
        super().__init__(md)
        self.conversion = conversion
        self.handler = handler

    def run(self, root: etree.Element) -> None:
        conversion = self.conversion
        conversion.title = _title(root, self.md) if conversion.found else None
        inline = [f for f in conversion.found if f.element is not None]
        if not inline:
            return
        for item, answer in zip(inline, self.handler.render(self.md, conversion, inline), strict=True):
            assert item.element is not None
            item.element.attrib.clear()
            for name, value in answer.attributes:
                item.element.set(name, value)


class _Blocks(Postprocessor):
    """After raw HTML is back in place: the fenced directives that reached the page, resolved.

    Only a marker in the final HTML counts: superfences formats a fence inside indented code and
    then shows the code after all, and that fence is no directive.
    """

    def __init__(self, md: Markdown, conversion: Conversion, handler: Handler) -> None:
        super().__init__(md)
        self.conversion = conversion
        self.handler = handler

    def run(self, text: str) -> str:
        found = self.conversion.found
        if not found or "<!--imagegen-block:" not in text:
            return text
        numbers = sorted({int(m.group(1)) for m in _BLOCK_MARK_RE.finditer(text)})
        numbers = [n for n in numbers if n < len(found) and found[n].element is None]
        items = [found[n] for n in numbers]
        answers = self.handler.render(self.md, self.conversion, items) if items else []
        html = {n: answer.html for n, answer in zip(numbers, answers, strict=True)}
        return _BLOCK_MARK_RE.sub(lambda m: html.get(int(m.group(1)), ""), text)


def _title(root: etree.Element, md: Markdown) -> str | None:
    """The page's first top-level `<h1>` as text: what a prompt template sees as the title."""
    for el in root:
        if el.tag == "h1":
            text = _STASHED_ANY.sub("", _ESCAPED.sub(_char, "".join(el.itertext())))
            if "attr_list" in md.treeprocessors:  # runs after us: its `{ #id }` is still in the text
                text = _HEADING_ATTRS.sub("", text)
            return text.strip() or None
    return None
