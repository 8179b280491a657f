"""Where a directive the renderer met is written: the page's line, a snippet's file and line, or neither.

Python-Markdown keeps no line numbers, so each directive is found again in the text a writer
edits, by a short needle (`(imagegen:` and the prompt's start, or a fence body's first line),
searching forward from the previous directive of the same kind.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

_SNIPPET_LINE = re.compile(r"^[ \t]*-{1,}8<-{1,}[ \t]+(['\"]?)([^'\"\n]+?)\1[ \t]*$", re.M)
_SNIPPET_BLOCK = re.compile(r"^[ \t]*-{1,}8<-{1,}[ \t]*\n(.*?)\n[ \t]*-{1,}8<-{1,}[ \t]*$", re.M | re.S)


@dataclass(frozen=True)
class Place:
    line: int
    source: str | None = None  # a snippet's file, when the text lives there
    note: str | None = None  # how the text came to be, when no file holds it as written


_OPENER = re.compile(r"^[ \t>]*(?:`{3,}|~{3,})[ \t]*\{?[ \t]*\.?imagegen\b.*$", re.M)


@dataclass
class _Cursor:
    text: str
    pos: dict[str, int] = field(default_factory=dict)
    _fences: list[tuple[int, int]] | None = None

    def find(self, needle: str, kind: str) -> int | None:
        """The line of `needle` at or after the last find of this kind, else anywhere, else None.

        For a fenced block the needle is its body's first line, and the line named is the fence's.
        """
        start = self.pos.get(kind, 0)
        at = self._find(needle, kind, start)
        if at is None and start:
            at = self._find(needle, kind, 0)
        if at is None:
            return None
        self.pos[kind] = at + 1
        return self.text.count("\n", 0, at) + 1

    def _find(self, needle: str, kind: str, start: int) -> int | None:
        if kind != "block":
            at = self.text.find(needle, start) if needle else -1
            if at != -1 and self.text.find(needle, at + 1) != -1:
                # The same text twice: prefer the one that is not shown inside a fence.
                while at != -1 and self._in_fence(at):
                    at = self.text.find(needle, at + 1)
                if at == -1:
                    at = self.text.find(needle, start)
            return None if at == -1 else at
        if not needle:
            m = _OPENER.search(self.text, start)
            return m.start() if m else None
        at = self.text.find(needle, start)
        while at != -1:
            openers = list(_OPENER.finditer(self.text, start, at))
            if openers:
                return openers[-1].start()
            at = self.text.find(needle, at + 1)
        return None

    def _in_fence(self, at: int) -> bool:
        if self._fences is None:
            self._fences = _fenced_regions(self.text)
        return any(a <= at < b for a, b in self._fences)


_FENCE_LINE = re.compile(r"^[ \t>]*(`{3,}|~{3,})(.*)$", re.M)


def _fenced_regions(text: str) -> list[tuple[int, int]]:
    """Spans of fenced code, by a plain fence tracker: enough to tell a sample from the real thing."""
    regions, opener = [], None
    for m in _FENCE_LINE.finditer(text):
        fence = m.group(1)
        if opener is None:
            opener = (m.start(), fence)
        elif fence[0] == opener[1][0] and len(fence) >= len(opener[1]) and not m.group(2).strip():
            regions.append((opener[0], m.end()))
            opener = None
    if opener is not None:
        regions.append((opener[0], len(text)))
    return regions


class Locator:
    """Finds directives of one page (or excerpt) conversion in the page's own source."""

    def __init__(self, source: str, body_offset: int, snippets: Snippets | None = None) -> None:
        self.page = _Cursor(source)
        self.body_offset = body_offset  # lines of front matter before the Markdown body
        self.snippets = snippets

    def place(
        self, needle: str, kind: str, rendered: str, expanded: str | None, needles: tuple[str, ...] = ()
    ) -> Place:
        for exact in needles:
            line = self.page.find(exact, kind)
            if line is not None:
                return Place(line)
        line = self.page.find(needle, kind)
        if line is not None:
            return Place(line)
        if expanded is not None and self.snippets is not None:
            found = self.snippets.find((*needles, needle), kind, rendered)
            if found is not None:
                return found
        line = _Cursor(expanded or rendered).find(needle, kind) or 1
        return Place(line + self.body_offset, note="in Markdown made by another plugin, not in the file")


class Snippets:
    """Text included by pymdownx.snippets: which file, which line."""

    def __init__(self, preprocessor: Any, base: str) -> None:
        self.preprocessor = preprocessor
        self.base = base
        self._texts: dict[str, str | None] = {}

    def find(self, needles: tuple[str, ...], kind: str, page_text: str) -> Place | None:
        names = [m.group(2).strip() for m in _SNIPPET_LINE.finditer(page_text)]
        for block in _SNIPPET_BLOCK.finditer(page_text):
            names += [n.strip() for n in block.group(1).splitlines() if n.strip()]
        for name in names:
            path = self._path(name.split(":")[0] if not os.path.exists(name) else name)
            text = self._read(path) if path else None
            if path is None or text is None:
                continue
            for needle in needles:
                line = _Cursor(text).find(needle, kind)
                if line is not None:
                    return Place(line, source=os.path.relpath(path, self.base))
        return None

    def _path(self, name: str) -> str | None:
        try:
            path = self.preprocessor.get_snippet_path(name)
        except Exception:  # a snippet the extension itself could not resolve: nothing to name
            return None
        return path if isinstance(path, str) else None

    def _read(self, path: str) -> str | None:
        if path not in self._texts:
            try:
                with open(path, encoding="utf-8-sig") as fh:
                    self._texts[path] = fh.read()
            except (OSError, UnicodeDecodeError):
                self._texts[path] = None
        return self._texts[path]
