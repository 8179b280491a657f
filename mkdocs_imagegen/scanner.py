"""Locate image-prompt directives in a page's Markdown source.

The scanner only finds directives and hands back their raw pieces; parsing
the YAML body and validating fields happens elsewhere.  It has to understand
enough of Markdown's block structure (containers, fences, indented code, raw
HTML) and inline code spans that directive-like text shown *as code* is never
touched, while staying linear-time because every page is scanned on every
build.

Block structure follows Python-Markdown as used by MkDocs: list items,
admonitions, details and content tabs indent their content by four columns,
and fences (pymdownx.superfences) may appear at any depth, including inside
blockquotes.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "FENCE_LANG",
    "INLINE_SCHEME",
    "RawDirective",
    "first_heading",
    "scan",
]

INLINE_SCHEME = "imagegen:"
FENCE_LANG = "imagegen"

# The literal that joins alt text and prompt; nothing can be an inline
# directive without it, so segments lacking it are skipped cheaply.
_INLINE_MARK = "](" + INLINE_SCHEME

# Deeper nesting than this is not real documentation; capping it keeps the
# per-line container walk bounded on hostile input.
_MAX_DEPTH = 64

_WS = re.compile(r"[ \t]*")
_FENCE_OPEN = re.compile(r"(`{3,}|~{3,})([^\n]*)")
_FENCE_CLOSE = re.compile(r"(`{3,}|~{3,})[ \t\r]*$")
_HEADING = re.compile(r"#{1,6}(?:[ \t\r]|$)")
_HRULE = re.compile(r"(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})\r?$")
_BULLET = re.compile(r"[-*+](?:[ \t]+|\r?$)")
_ORDERED = re.compile(r"\d{1,9}[.)](?:[ \t]+|\r?$)")
# Admonitions (`!!!`), details (`???`, `???+`) and content tabs (`===`):
# the line is a title, the body is indented below it.
_TITLED = re.compile(r"(?:!!!|\?\?\?\+?)[ \t]*[\w\"-]|===[!+]{0,2}[ \t]*\"")
# Footnote definitions and definition-list bodies: text starts on the line.
_INLINE_CONTAINER = re.compile(r"\[\^[^\]\n]+\]:[ \t]*|:[ \t]+(?=\S)")
_SLASH_BLOCK = re.compile(r"/{3,}")
_HTML_OPEN = re.compile(r"<!--|<(?i:pre|code)(?=[\s>/])")
_HTML_CLOSE = {
    "<!--": re.compile(r"-->"),
    "pre": re.compile(r"</(?i:pre)\s*>"),
    "code": re.compile(r"</(?i:code)\s*>"),
}
_INLINE_TOKEN = re.compile(r"`+|<!--|<(?i:pre|code)(?=[\s>/])|" + re.escape(_INLINE_MARK))
_BACKTICK_RUN = re.compile(r"`+")
_PAREN_TOKEN = re.compile(r"\\.|[()]")
_ATTRS = re.compile(r"\{([^}\n]*)\}")
_CLOSING_HASHES = re.compile(r"(?:^|[ \t]+)#+[ \t]*$")
_HEADING_ATTRS = re.compile(r"[ \t]+\{:?[^}\n]*\}[ \t]*$")

_NESTING = frozenset({"quote", "list", "titled", "inline"})

# First characters that may start something other than paragraph text.
_SPECIAL_START = frozenset(" \t\r>`~#!?=[:/-*_+<")

# Backtick runs a closer search may step over before it indexes the segment.
_SKIP_BUDGET = 64

_QUOTE = 0
_INDENT = 1
_LIST = 2

_NONE = 0
_PARA = 1
_FENCE = 2
_ICODE = 3


@dataclass(frozen=True)
class RawDirective:
    """One directive as written; offsets let callers splice replacements."""

    kind: Literal["block", "inline"]
    start: int
    end: int
    line: int
    indent: str
    body: str
    alt: str | None = None
    attrs: str | None = None
    error: str | None = None


def scan(text: str, *, line_offset: int = 0) -> list[RawDirective]:
    """All directives of a page, in document order."""
    if FENCE_LANG not in text:
        return []
    parser = _BlockParser(text, line_offset)
    parser.run()
    found = parser.blocks
    if _INLINE_MARK in text:
        inline: list[tuple[int, int, str, str, str | None]] = []
        for a, b in parser.segments:
            if text.find(_INLINE_MARK, a, b) != -1:
                _scan_inline(text, a, b, inline)
        if inline:
            found.extend(_with_lines(text, inline, line_offset))
            found.sort(key=lambda d: d.start)
    return found


def first_heading(text: str) -> str | None:
    """Text of the first level-1 ATX heading (`# Title`) outside code, stripped of closing #s.

    None if the page has none; callers use it as the page title for prompt templates.
    """
    if "#" not in text:
        return None
    parser = _BlockParser(text, 0, want_title=True)
    parser.run()
    return parser.title


def _with_lines(
    text: str, items: list[tuple[int, int, str, str, str | None]], line_offset: int
) -> list[RawDirective]:
    """Attach line numbers by counting newlines once across the page."""
    items.sort(key=lambda item: item[0])
    out = []
    pos = 0
    line = 1 + line_offset
    for start, end, alt, body, attrs in items:
        line += text.count("\n", pos, start)
        pos = start
        out.append(RawDirective("inline", start, end, line, "", body, alt, attrs))
    return out


def _skip_ws(text: str, p: int, col: int, end: int) -> tuple[int, int]:
    """Skip spaces and tabs, tracking the visual column (tab stops of 4)."""
    q = _WS.match(text, p, end).end()  # type: ignore[union-attr]
    if q == p:
        return q, col
    if "\t" not in text[p:q]:
        return q, col + q - p
    for ch in text[p:q]:
        col = col + 4 - col % 4 if ch == "\t" else col + 1
    return q, col


def _is_blank(text: str, q: int, end: int) -> bool:
    """True when only an optional carriage return remains on the line."""
    return q >= end or (text[q] == "\r" and q + 1 == end)


def _escaped(text: str, i: int, lo: int) -> bool:
    """Whether the character at ``i`` is preceded by an odd run of backslashes."""
    j = i
    while j > lo and text[j - 1] == "\\":
        j -= 1
    return (i - j) % 2 == 1


class _Seeker:
    """Memoised regex search: repeated look-ups for a closer stay linear overall."""

    __slots__ = ("end", "hit", "origin", "pattern")

    def __init__(self, pattern: re.Pattern[str], end: int) -> None:
        self.pattern = pattern
        self.end = end
        self.origin = -1
        self.hit: re.Match[str] | None = None

    def find(self, text: str, pos: int) -> re.Match[str] | None:
        if self.origin != -1 and pos >= self.origin and (self.hit is None or pos <= self.hit.start()):
            return self.hit
        self.origin = pos
        self.hit = self.pattern.search(text, pos, self.end)
        return self.hit


class _BlockParser:
    """Line-based walk over the block structure that a Markdown renderer would see.

    Collects imagegen fences as directives, the text ranges where inline
    Markdown applies (paragraphs and headings), and optionally the page title.
    """

    def __init__(self, text: str, line_offset: int, *, want_title: bool = False) -> None:
        self.text = text
        self.line_offset = line_offset
        self.want_title = want_title
        self.title: str | None = None
        self.blocks: list[RawDirective] = []
        self.segments: list[tuple[int, int]] = []
        # Container stack entries: (kind, base column, content column).
        self.stack: list[tuple[int, int, int]] = []
        self.state = _NONE
        self.para_start = 0
        self.para_end = 0
        self.para_in_list = False
        self.html_seekers: dict[str, _Seeker] = {}
        # Open fence details.
        self.f_char = ""
        self.f_len = 0
        self.f_col = 0
        self.f_base = 0
        self.f_depth = 0
        self.f_gen = False
        self.f_start = 0
        self.f_line = 0
        self.f_indent = ""
        self.f_fence = ""
        self.f_body: list[str] = []
        self.f_keep = 0
        self.f_last_end = 0
        # Indented code details.
        self.c_depth = 0
        self.c_col = 0

    # -- driving ---------------------------------------------------------

    def run(self) -> None:
        text = self.text
        n = len(text)
        pos = 0
        lineno = 1
        while pos <= n:
            nl = text.find("\n", pos)
            end = n if nl == -1 else nl
            if self.state == _PARA and pos < end:
                ch = text[pos]
                if ch not in _SPECIAL_START and not ch.isdigit():
                    # Hot path: a plain line at column 0 always continues the paragraph.
                    self.para_end = end
                    if nl == -1:
                        break
                    pos = nl + 1
                    lineno += 1
                    continue
            jump = self._line(pos, end, lineno)
            if self.want_title and self.title is not None:
                return
            if jump is not None:
                # A raw HTML region swallowed lines; resume on the line after it.
                if jump < 0:
                    break
                lineno += text.count("\n", pos, jump)
                nl = jump
            if nl == -1:
                break
            pos = nl + 1
            lineno += 1
        self._end_para()
        if self.state == _FENCE:
            self._close_fence(None)

    # -- per line --------------------------------------------------------

    def _line(self, start: int, end: int, lineno: int) -> int | None:
        """Process one line; return the offset of a later newline to skip to, or -1 for end of text."""
        text = self.text
        stack = self.stack
        depth = len(stack)
        p, col = start, 0
        matched = 0
        blank = False
        for kind, base, content in stack:
            q, qcol = _skip_ws(text, p, col, end)
            if _is_blank(text, q, end):
                blank = True
                matched = depth
                break
            if kind == _QUOTE:
                if text[q] != ">" or qcol >= base + 4:
                    break
                p, col = q + 1, qcol + 1
                if p < end and text[p] in " \t":
                    col = col + 4 - col % 4 if text[p] == "\t" else col + 1
                    p += 1
            elif qcol < content:
                break
            matched += 1
        q, qcol = _skip_ws(text, p, col, end)
        if not blank:
            blank = _is_blank(text, q, end)

        state = self.state
        if state == _FENCE:
            if matched >= self.f_depth:
                self._fence_line(end, p, col, q, qcol, blank)
                return None
            self._close_fence(None)
            state = self.state
        elif state == _ICODE:
            if matched >= self.c_depth and (blank or qcol >= self.c_col):
                return None
            self.state = state = _NONE

        if blank:
            self._end_para()
            self.state = _NONE
            return None

        base = stack[matched - 1][2] if matched else 0
        if state == _NONE and qcol - base >= 4:
            del stack[matched:]
            self.state = _ICODE
            self.c_depth = matched
            self.c_col = base + 4
            return None
        return self._content(start, end, lineno, matched, base, q, qcol)

    def _content(
        self, start: int, end: int, lineno: int, matched: int, base: int, q: int, qcol: int
    ) -> int | None:
        """Classify the rest of a non-blank line that is not indented code."""
        text = self.text
        stack = self.stack
        rel = qcol - base
        blk = self._classify(q, end, rel)
        if self.state == _PARA and (blk is None or (blk == "list" and not self.para_in_list)):
            # Paragraph continuation, lazy or not (Python-Markdown lists do not interrupt).
            self.para_end = end
            return None
        # Python-Markdown keeps a heading on a lazy line inside its list item.
        lazy = self.state == _PARA and matched < len(stack)
        del stack[matched:]
        self._end_para()
        while True:
            if blk is None or (blk in _NESTING and len(stack) >= _MAX_DEPTH):
                self._start_para(q, end)
                return None
            if blk == "fence":
                self._open_fence(start, end, lineno, q, qcol, base)
                return None
            if blk == "heading":
                self.segments.append((q, end))
                if self.want_title and not stack and qcol == 0 and not lazy:
                    self._take_title(q, end)
                return None
            if blk == "rule":
                if text[q] == "/" and text[q:end].strip("/ \t\r"):
                    # A pymdownx.blocks header: lines right below it are its
                    # options, never indented code, so carry on as in a paragraph.
                    self._start_para(end, end)
                return None
            if blk == "html":
                return self._html(q, end)
            if blk == "titled":
                stack.append((_INDENT, base, base + 4))
                return None
            if blk == "quote":
                p, col = q + 1, qcol + 1
                if p < end and text[p] in " \t":
                    col = col + 4 - col % 4 if text[p] == "\t" else col + 1
                    p += 1
                stack.append((_QUOTE, base, col))
                base = col
            else:  # "list" or "inline": the item's text starts on this line
                if blk == "inline":
                    m = _INLINE_CONTAINER.match(text, q, end)
                elif text[q] in "-*+":
                    m = _BULLET.match(text, q, end)
                else:
                    m = _ORDERED.match(text, q, end)
                assert m is not None
                p = m.end()
                while p > q and text[p - 1] in " \t":
                    p -= 1
                col = qcol + p - q
                stack.append((_LIST if blk == "list" else _INDENT, base, base + 4))
                base += 4
            q, qcol = _skip_ws(text, p, col, end)
            if _is_blank(text, q, end):
                return None
            rel = qcol - base
            if blk == "quote" and rel >= 4:
                # Indented code inside a blockquote.
                self.state = _ICODE
                self.c_depth = len(stack)
                self.c_col = base + 4
                return None
            after_marker = blk != "quote"
            blk = self._classify(q, end, rel)
            if after_marker and blk == "fence":
                # superfences: a fence never shares a line with a list marker.
                blk = None

    def _classify(self, q: int, end: int, rel: int) -> str | None:
        """Name the block construct starting at ``q`` (None for paragraph text)."""
        text = self.text
        ch = text[q]
        if ch in "`~":
            m = _FENCE_OPEN.match(text, q, end)
            if m and not (ch == "`" and "`" in m.group(2)) and (rel < 4 or self.state == _PARA):
                return "fence"
            return None
        if rel >= 4:
            return None
        if ch == ">":
            return "quote"
        if ch == "#":
            if rel == 0 or _HEADING.match(text, q, end):
                return "heading"
            return None
        if ch in "!?=":
            return "titled" if _TITLED.match(text, q, end) else None
        if ch in "[:":
            return "inline" if _INLINE_CONTAINER.match(text, q, end) else None
        if ch == "/":
            return "rule" if _SLASH_BLOCK.match(text, q, end) else None
        # Checking the line's tail first keeps long "- - - x" lines linear.
        tail = text[end - 2] if text[end - 1] == "\r" else text[end - 1]
        if ch in "-*_" and tail in "-*_ \t" and _HRULE.match(text, q, end):
            return "rule"
        if ch in "-*+":
            return "list" if _BULLET.match(text, q, end) else None
        if ch.isdigit():
            return "list" if _ORDERED.match(text, q, end) else None
        if ch == "<":
            m = _HTML_OPEN.match(text, q, end)
            # Python-Markdown only lifts comments and <pre> out of a top-level
            # paragraph; elsewhere a tag at line start is inline text.
            if m and (self.state != _PARA or (not self.stack and m.group() != "<code")):
                return "html"
        return None

    # -- paragraphs ------------------------------------------------------

    def _start_para(self, q: int, end: int) -> None:
        self.state = _PARA
        self.para_start = q
        self.para_end = end
        self.para_in_list = bool(self.stack) and self.stack[-1][0] == _LIST

    def _end_para(self) -> None:
        if self.state == _PARA:
            self.segments.append((self.para_start, self.para_end))
            self.state = _NONE

    # -- raw HTML --------------------------------------------------------

    def _html(self, q: int, end: int) -> int | None:
        """Skip a raw comment / <pre> / <code> region that may span blank lines."""
        text = self.text
        opener = _HTML_OPEN.match(text, q, end).group()  # type: ignore[union-attr]
        key = "<!--" if opener == "<!--" else opener[1:].lower()
        seeker = self.html_seekers.get(key)
        if seeker is None:
            seeker = self.html_seekers[key] = _Seeker(_HTML_CLOSE[key], len(text))
        hit = seeker.find(text, q + len(opener))
        if hit is None:
            if key == "<!--":
                return -1  # An unclosed comment hides the rest of the page.
            self._start_para(q, end)
            return None
        close = hit.end()
        nl = text.find("\n", close)
        line_end = len(text) if nl == -1 else nl
        rest, _ = _skip_ws(text, close, 0, line_end)
        if self.stack or not _is_blank(text, rest, line_end):
            # Inside containers Python-Markdown keeps HTML in the paragraph, so
            # the next line may still continue it lazily.
            self._start_para(close, line_end)
        return nl if nl != -1 else -1

    # -- fences ----------------------------------------------------------

    def _open_fence(self, start: int, end: int, lineno: int, q: int, qcol: int, base: int) -> None:
        text = self.text
        m = _FENCE_OPEN.match(text, q, end)
        assert m is not None
        fence, info = m.group(1), m.group(2).split()
        self.state = _FENCE
        self.f_char = fence[0]
        self.f_len = len(fence)
        self.f_col = qcol
        self.f_base = base
        self.f_depth = len(self.stack)
        self.f_gen = bool(info) and info[0] == FENCE_LANG
        if self.f_gen:
            self.f_start = start
            self.f_line = lineno + self.line_offset
            self.f_indent = text[start:q]
            self.f_body = []
            self.f_keep = 0
            self.f_last_end = end
            self.f_fence = fence

    def _fence_line(self, end: int, p: int, col: int, q: int, qcol: int, blank: bool) -> bool:
        """Handle a line inside an open fence; True when it closed the fence."""
        text = self.text
        if not blank and text[q] == self.f_char and (qcol - self.f_base < 4 or qcol <= self.f_col):
            m = _FENCE_CLOSE.match(text, q, end)
            if m and m.group(1)[0] == self.f_char and len(m.group(1)) >= self.f_len:
                self._close_fence(end)
                return True
        if self.f_gen:
            i = p
            while col < self.f_col and i < end and text[i] in " \t":
                col = col + 4 - col % 4 if text[i] == "\t" else col + 1
                i += 1
            line = text[i:end]
            if line.endswith("\r"):
                line = line[:-1]
            self.f_body.append(line)
            if not blank:
                self.f_keep = len(self.f_body)
                self.f_last_end = end
        return False

    def _close_fence(self, end: int | None) -> None:
        """Finish the open fence; ``end`` is None when it was never closed."""
        self.state = _NONE
        if not self.f_gen:
            return
        if end is None:
            body = self.f_body[: self.f_keep]
            stop = self.f_last_end
            error = f"unterminated imagegen block: add a closing {self.f_fence} fence"
        else:
            body = self.f_body
            stop = end
            error = None
        if self.text[stop - 1] == "\r":
            stop -= 1  # Keep CRLF line endings whole for whoever splices the span.
        self.blocks.append(
            RawDirective(
                "block",
                self.f_start,
                stop,
                self.f_line,
                self.f_indent,
                "\n".join(body),
                error=error,
            )
        )

    # -- title -----------------------------------------------------------

    def _take_title(self, q: int, end: int) -> None:
        line = self.text[q:end].rstrip("\r")
        if line.startswith("##"):
            return
        title = _CLOSING_HASHES.sub("", line[1:])
        title = _HEADING_ATTRS.sub("", title).strip()
        if title:
            self.title = title


class _Backticks:
    """Finds code-span closers (the next run of exactly the same length) for one segment.

    Plain ``str.find`` is fastest for real pages; if it has to step over too many
    longer runs the segment's runs are indexed by length instead, so hostile
    input stays linear.  Sizes that found no closer are remembered.
    """

    __slots__ = ("budget", "end", "failed", "index", "text")

    def __init__(self, text: str, end: int) -> None:
        self.text = text
        self.end = end
        self.failed: dict[int, int] = {}
        self.index: dict[int, list[int]] | None = None
        self.budget = _SKIP_BUDGET

    def closer(self, pos: int, size: int) -> int:
        """Start of the closing run for an opener of ``size`` ending at ``pos``, or -1."""
        if self.failed.get(size, self.end + 1) <= pos:
            return -1
        found = self._search(pos, size) if self.index is None else -2
        if found == -2:
            assert self.index is not None
            runs = self.index.get(size, ())
            i = bisect_left(runs, pos)
            found = runs[i] if i < len(runs) else -1
        if found == -1:
            self.failed[size] = pos
        return found

    def _search(self, pos: int, size: int) -> int:
        """Linear search; -2 when the skip budget ran out and the index took over."""
        text, end = self.text, self.end
        needle = "`" * size
        i = pos
        while True:
            j = text.find(needle, i, end)
            if j == -1:
                return -1
            k = _BACKTICK_RUN.match(text, j, end).end()  # type: ignore[union-attr]
            if k - j == size:
                return j
            i = k
            self.budget -= 1
            if self.budget < 0:
                index: dict[int, list[int]] = {}
                for m in _BACKTICK_RUN.finditer(text, pos, end):
                    index.setdefault(m.end() - m.start(), []).append(m.start())
                self.index = index
                return -2


class _Parens:
    """Lazy, single-pass parenthesis matcher for one segment."""

    __slots__ = ("done", "pairs", "stack", "tokens")

    def __init__(self, text: str, start: int, end: int) -> None:
        self.tokens = _PAREN_TOKEN.finditer(text, start, end)
        self.stack: list[int] = []
        self.pairs: dict[int, int] = {}
        self.done = False

    def close_of(self, opening: int) -> int:
        pairs = self.pairs
        while opening not in pairs:
            if self.done:
                return -1
            tok = next(self.tokens, None)
            if tok is None:
                self.done = True
                return -1
            ch = tok.group()
            if ch == "(":
                self.stack.append(tok.start())
            elif ch == ")" and self.stack:
                pairs[self.stack.pop()] = tok.start()
        return pairs[opening]


def _alt_opener(text: str, close: int, floor: int, regions: list[tuple[int, int]]) -> int:
    """Index of the ``[`` matching the ``]`` at ``close``, or -1.

    Walks backwards bracket by bracket (never below ``floor``), skipping code
    spans and comments recorded in ``regions`` and escaped brackets.
    """
    j = close
    depth = 0
    lb = rb = close
    ri = len(regions) - 1
    while True:
        if lb >= j:
            lb = text.rfind("[", floor, j)
        if rb >= j:
            rb = text.rfind("]", floor, j)
        k = lb if lb > rb else rb
        if k < 0:
            return -1
        while ri >= 0 and regions[ri][0] > k:
            ri -= 1
        if ri >= 0 and k < regions[ri][1]:
            j = regions[ri][0]
            continue
        j = k
        if _escaped(text, k, floor):
            continue
        if text[k] == "]":
            depth += 1
        elif depth:
            depth -= 1
        else:
            return k


def _scan_inline(text: str, a: int, b: int, out: list[tuple[int, int, str, str, str | None]]) -> None:
    """Find inline directives in one paragraph or heading ``text[a:b]``."""
    pos = floor = a
    regions: list[tuple[int, int]] = []
    backticks: _Backticks | None = None
    seekers: dict[str, _Seeker] = {}
    parens: _Parens | None = None
    paren_memo = (b + 1, -1)  # (searched from, first ")" found there)
    mark_len = len(_INLINE_MARK)
    while True:
        m = _INLINE_TOKEN.search(text, pos, b)
        if m is None:
            return
        s, e = m.span()
        ch = text[s]
        if ch == "`":
            size = e - s
            if _escaped(text, s, a):
                s += 1
                size -= 1
                if not size:
                    pos = e
                    continue
            if backticks is None:
                backticks = _Backticks(text, b)
            close = backticks.closer(e, size)
            if close == -1:
                pos = e
                continue
            pos = close + size
            regions.append((s, pos))
            continue
        if ch == "<":
            if _escaped(text, s, a):
                pos = s + 1
                continue
            key = "<!--" if e - s == 4 and text[s + 1] == "!" else text[s + 1 : e].lower()
            seeker = seekers.get(key)
            if seeker is None:
                seeker = seekers[key] = _Seeker(_HTML_CLOSE[key], b)
            hit = seeker.find(text, e)
            if hit is None:
                pos = e
                continue
            pos = hit.end()
            regions.append((s, pos))
            continue
        # "](imagegen:" at s
        pos = floor_next = s + 1
        if _escaped(text, s, a):
            continue
        opener = _alt_opener(text, s, floor, regions)
        bang = opener - 1
        if opener < 0 or bang < floor or text[bang] != "!" or _escaped(text, bang, floor):
            floor = floor_next
            regions.clear()
            continue
        prompt = s + mark_len
        if not (paren_memo[0] <= prompt and (paren_memo[1] == -1 or prompt <= paren_memo[1])):
            paren_memo = (prompt, text.find(")", prompt, b))
        close = paren_memo[1]
        if close != -1 and (text.find("(", prompt, close) != -1 or text.find("\\", prompt, close) != -1):
            # Nested or escaped parentheses: fall back to full matching.
            if parens is None:
                parens = _Parens(text, s + 1, b)
            close = parens.close_of(s + 1)
        if close == -1:
            floor = floor_next
            regions.clear()
            continue
        stop = close + 1
        attrs = None
        am = _ATTRS.match(text, stop, b)
        if am is not None:
            attrs = am.group(1).strip()
            stop = am.end()
        out.append((bang, stop, text[opener + 1 : s], text[prompt:close], attrs))
        pos = floor = stop
        regions.clear()
