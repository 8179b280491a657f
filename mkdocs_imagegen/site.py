"""Reading a site's pages into occurrences: the one walk that the plugin and the CLI share."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mkdocs.structure.files import File, Files, InclusionLevel
from mkdocs.utils import meta as mkdocs_meta

from . import scanner
from .spec import Occurrence, PageInfo, Settings, page_defaults, resolve


@dataclass(frozen=True)
class PageSource:
    """A page as MkDocs will see it: the body after front matter, and where that body starts."""

    info: PageInfo
    body: str
    line_offset: int


def read_page(file: File) -> PageSource:
    # File.content_string decodes as utf-8-sig with universal newlines, exactly like MkDocs does,
    # so a byte-order mark or Windows line endings change nothing here.
    source = file.content_string
    if "imagegen" not in source:
        return PageSource(_info(file, {}, ""), source, 0)
    body, meta = mkdocs_meta.get_data(source)
    offset = source[: len(source) - len(body)].count("\n") if source.endswith(body) else 0
    return PageSource(_info(file, meta, body), body, offset)


def _info(file: File, meta: dict[str, Any], body: str) -> PageInfo:
    defaults, error = page_defaults(meta)
    return PageInfo(
        src_uri=file.src_uri,
        abs_path=file.abs_src_path,
        title=page_title(file, meta, body),
        meta=meta,
        defaults=defaults,
        defaults_error=error,
    )


def page_title(file: File, meta: dict[str, Any], body: str) -> str:
    """The title a prompt template sees: front matter, else the first `# heading`, else the file name.

    Nav titles are deliberately ignored: the CLI reads no nav, and the key must not depend on it.
    """
    title = meta.get("title")
    if isinstance(title, str) and title.strip():
        return title.strip()
    heading = scanner.first_heading(body) if body else None
    if heading:
        return heading
    stem = os.path.splitext(os.path.basename(file.src_uri))[0]
    if stem in ("index", "README"):
        stem = os.path.basename(os.path.dirname(file.src_uri)) or "Home"
    return stem.replace("-", " ").replace("_", " ").strip().capitalize() or "Home"


def page_occurrences(page: PageSource, settings: Settings, text: str | None = None) -> list[Occurrence]:
    """Scan a page's body (or `text`, when another plugin changed it) and resolve each directive."""
    body = page.body if text is None else text
    if "imagegen" not in body:
        return []
    return [resolve(raw, page.info, settings) for raw in scanner.scan(body, line_offset=page.line_offset)]


def documentation_files(files: Files, *, serving: bool = False) -> Iterable[File]:
    inclusion = InclusionLevel.is_in_serve if serving else InclusionLevel.is_included
    return files.documentation_pages(inclusion=inclusion)


def page_from_markdown(file: File, meta: dict[str, Any], markdown: str) -> PageSource:
    """A page that exists only in memory (made or rewritten by another plugin)."""
    return PageSource(_info(file, meta or {}, markdown), markdown, 0)
