"""What the plugin does with each directive the renderer meets: resolve, submit, and answer HTML.

The HTML carries a site-unique reference (`imagegen-ref:<key>.<ext>`) instead of a URL; the
plugin turns it into a URL relative to each written page in `on_post_page`, so a blog excerpt on
an index page, a lightbox link or a minified page all end up pointing at the real file.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from typing import Any

from markdown import Markdown
from mkdocs.structure.files import File
from mkdocs.utils import meta as mkdocs_meta

from . import render
from .extension import Conversion, Found, Rendered
from .images import PROGRESS_EVERY as PROGRESS_EVERY
from .images import Images as Images
from .images import progress_line as progress_line
from .locate import Locator, Snippets
from .logs import log
from .spec import Occurrence, PageInfo, RawDirective, Settings, page_defaults, resolve

_FRONT_KEY = re.compile(r"^imagegen\s*:")
REF_SCHEME = "imagegen-ref:"
REF_RE = re.compile(REF_SCHEME + r"([0-9a-f]{32})\.(?:png|webp|jpg)")


@dataclass
class PageContext:
    """A page as the writer wrote it: its file's text (front matter included) and its meta."""

    file: File
    meta: dict[str, Any]
    source: str
    body_offset: int
    defaults: dict[str, Any] = field(default_factory=dict)
    defaults_error: str | None = None

    @classmethod
    def of(cls, file: File, meta: dict[str, Any] | None, markdown: str | None = None) -> PageContext:
        try:
            source = file.content_string
        except (OSError, UnicodeDecodeError, TypeError):
            source = markdown or ""
        if meta is None:
            body, meta = mkdocs_meta.get_data(source)
        elif markdown is not None and source.endswith(markdown):
            body = markdown
        else:
            body, _ = mkdocs_meta.get_data(source)
        offset = source[: len(source) - len(body)].count("\n") if source.endswith(body) else 0
        defaults, error = page_defaults(meta or {})
        return cls(file, meta or {}, source, offset, defaults, error)

    def info(self, title: str | None) -> PageInfo:
        return PageInfo(
            src_uri=self.file.src_uri,
            abs_path=self.file.abs_src_path,
            title=title or _title_from_name(self.file.src_uri, self.meta),
            meta=self.meta,
            defaults=self.defaults,
            defaults_error=self.defaults_error,
        )


def _title_from_name(src_uri: str, meta: dict[str, Any]) -> str:
    stem = os.path.splitext(os.path.basename(src_uri))[0]
    if stem in ("index", "README"):
        stem = os.path.basename(os.path.dirname(src_uri)) or "Home"
    return stem.replace("-", " ").replace("_", " ").strip().capitalize() or "Home"


class Directives:
    """The extension's handler: one per build (or per planning run of the command)."""

    def __init__(self, settings: Settings, *, images: Images | None, config_dir: str) -> None:
        self.settings = settings
        self.images = images  # None: plan only (the command), nothing is generated
        self.config_dir = config_dir
        self.pages: dict[str, PageContext] = {}
        self._read: dict[str, tuple[File, dict[str, Any], str]] = {}
        self.current: str | None = None
        self.occurrences: list[Occurrence] = []
        self._seen: set[tuple[str, int, str, str]] = set()

    def add_page(self, file: File, meta: dict[str, Any], markdown: str) -> None:
        """A page about to be rendered; its context is read only if a directive turns up."""
        self._read[file.src_uri] = (file, meta, markdown)
        self.pages.pop(file.src_uri, None)
        self.current = file.src_uri

    def _context(self, src_uri: str, file: File | None = None) -> PageContext | None:
        page = self.pages.get(src_uri)
        if page is None:
            if src_uri in self._read:
                page = PageContext.of(*self._read[src_uri])
            elif file is not None:
                page = PageContext.of(file, None)
            else:
                return None
            self.pages[src_uri] = page
        return page

    def _page_of(self, md: Markdown) -> PageContext | None:
        # MkDocs (and material's blog excerpts) register the page's file with this processor.
        relpath = md.treeprocessors["relpath"] if "relpath" in md.treeprocessors else None  # noqa: SIM401
        file = getattr(relpath, "file", None)
        if isinstance(file, File):
            return self._context(file.src_uri, file)
        return self._context(self.current) if self.current else None

    # -- the Handler protocol ----------------------------------------------------------------
    def render(self, md: Markdown, conversion: Conversion, items: list[Found]) -> list[Rendered]:
        page = self._page_of(md)
        if page is None:  # Markdown rendered outside any page: leave directives visibly unresolved
            return [_unresolved(found) for found in items]
        title = conversion.title
        front = page.meta.get("title")  # front matter wins over the first heading
        title = front.strip() if isinstance(front, str) and front.strip() else title
        info = page.info(title)
        pointer = None
        if page.defaults_error:
            # One message at the front matter, listing its problems; the page's directives only
            # point at it (a default such as `size` may be wrong: nothing is generated).
            pointer = f"not generated until the page's front matter is fixed ({self._front_matter(page)})"
            info = dataclasses.replace(info, defaults_error=pointer)
        locator = Locator(page.source, page.body_offset, self._snippets(md))
        answers = []
        for found in items:
            place = locator.place(
                found.needle, found.kind, conversion.text, conversion.expanded, found.needles
            )
            raw = RawDirective(
                kind=found.kind,
                line=place.line,
                body=found.body,
                alt=found.alt,
                attrs=found.attrs,
                error=found.error,
                source=place.source,
                note=place.note,
            )
            occurrence = resolve(raw, info, self.settings)
            self._record(occurrence, quiet=pointer is not None and occurrence.error == pointer)
            answers.append(self._answer(md, found, occurrence))
        return answers

    def _snippets(self, md: Markdown) -> Snippets | None:
        if "snippet" not in md.preprocessors:
            return None
        return Snippets(md.preprocessors["snippet"], self.config_dir)

    def _front_matter(self, page: PageContext) -> str:
        """Report the page's front matter problem once, at its `imagegen:` line; say where it is."""
        head = page.source.split("\n")[: page.body_offset]
        line = next((n for n, text in enumerate(head, 1) if _FRONT_KEY.match(text)), 1)
        raw = RawDirective(kind="block", line=line, body="", error=page.defaults_error)
        occurrence = Occurrence(
            page=page.file.src_uri, line=line, raw=raw, spec=None, error=page.defaults_error
        )
        self._record(occurrence)
        return occurrence.where

    def _record(self, occurrence: Occurrence, *, quiet: bool = False) -> None:
        mark = (occurrence.page, occurrence.line, occurrence.raw.kind, occurrence.raw.body)
        if mark in self._seen:  # the same directive again: a blog excerpt, say
            return
        self._seen.add(mark)
        self.occurrences.append(occurrence)
        if occurrence.spec is None:
            if self.images is not None and not quiet:
                self.images.errors += 1
                log.warning(f"{occurrence.where}: {occurrence.error}")
        elif self.images is not None:
            self.images.submit(occurrence)

    def _answer(self, md: Markdown, found: Found, occurrence: Occurrence) -> Rendered:
        spec = occurrence.spec
        if spec is None:
            return _error(found, occurrence.error or "invalid directive", occurrence.where)
        dims = spec.dimensions
        if self.images is not None and spec.key in self.images.outdated:
            dims = None  # a pinned image keeps its own size until `update` replaces it
        if dims is None and self.images is not None:  # size: auto, the image decides
            entry = self.images.entry(spec.key)
            dims = (entry.width, entry.height) if entry is not None else None
        width, height = dims if dims else (None, None)
        src = REF_SCHEME + spec.filename
        if found.kind == "inline":
            rest = render.image_attributes(width=width, height=height, attrs=occurrence.attrs)
            return Rendered(attributes=[("src", src), ("alt", occurrence.alt), *rest])
        html = render.image_html(
            src=src,
            alt=occurrence.alt,
            width=width,
            height=height,
            caption=render.caption_html(occurrence.caption, _relpath(md)) if occurrence.caption else None,
            attrs=occurrence.attrs,
        )
        return Rendered(html=html)


def _relpath(md: Markdown) -> Any:
    """MkDocs's link rewriter of the page being rendered, if any."""
    return md.treeprocessors["relpath"] if "relpath" in md.treeprocessors else None  # noqa: SIM401


def _error(found: Found, message: str, where: str) -> Rendered:
    if found.kind == "inline":
        return Rendered(attributes=render.error_attributes(message, where))
    return Rendered(html=render.error_html(message, where))


def _unresolved(found: Found) -> Rendered:
    message = "imagegen directive outside a page: nothing generated"
    return _error(found, message, "?")
