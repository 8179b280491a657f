"""A directive as it was met on a page, and what it became there: the data every part passes along."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .imagespec import ImageSpec


@dataclass(frozen=True)
class RawDirective:
    """One directive as the site's Markdown renderer met it, before its values are checked.

    `line` is the line of the directive in `source` (a snippet's file, say) or else in the page;
    `note` says where the text came from when no file holds it as written.
    """

    kind: Literal["block", "inline"]
    line: int
    body: str
    alt: str | None = None
    attrs: str | None = None
    error: str | None = None
    source: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class PageInfo:
    """What resolution needs to know of a page; built the same way by plugin and CLI."""

    src_uri: str
    abs_path: str | None
    title: str
    meta: dict[str, Any]
    defaults: dict[str, Any]  # validated front matter `imagegen:` mapping
    defaults_error: str | None = None


@dataclass(frozen=True)
class Occurrence:
    """One directive on one page: the spec plus what is per-occurrence (alt, caption, attributes)."""

    page: str
    line: int
    raw: RawDirective
    spec: ImageSpec | None
    alt: str = ""
    caption: str | None = None
    attrs: tuple[tuple[str, str], ...] = ()
    moderation: str | None = None
    source_path: str | None = None
    mask_path: str | None = None
    error: str | None = None
    # What the writer asked for (the directive's own prompt and keys), apart from site defaults,
    # template and model: the image lock pins an image to it across re-keys.
    intent: str | None = None
    # True when the directive gave no alt text of its own, so `alt` is the prompt: a screen reader
    # would read out an instruction to an image model, not a description of the image.
    alt_defaulted: bool = False

    @property
    def where(self) -> str:
        """`page:line`, or the snippet's `file:line` and the page, or the page and what made the text."""
        if self.raw.source and self.raw.source != self.page:
            return f"{self.raw.source}:{self.line} (included in {self.page})"
        if self.raw.note:
            return f"{self.page}:{self.line} ({self.raw.note})"
        return f"{self.page}:{self.line}"

    @property
    def alt_problem(self) -> str | None:
        """Why this image's alt text fails a reader, or None when it does not."""
        if self.spec is None:
            return None
        if self.alt_defaulted:
            how = "inside the [brackets]" if self.raw.kind == "inline" else "as 'alt: ...' in the block"
            return (
                "image has no alt text, so a screen reader would read out its prompt: "
                f"describe the image {how} (or set alt_required: false)"
            )
        if not self.alt.strip():
            return (
                "image has empty alt text: describe the image for readers who cannot see it "
                "(or set alt_required: false)"
            )
        return None


def where(occurrences: Sequence[Occurrence]) -> str:
    """Where a key is used, for messages: its first directive, and how many more use it."""
    more = len(occurrences) - 1
    return occurrences[0].where + (f" (and {more} more)" if more else "")
