"""The MkDocs front end: a thin layer of hooks over the shared scanning, keys, cache and engine.

Build order matters: every directive of the site is found and submitted in `on_files` (before
any page is rendered), so images are made concurrently while MkDocs reads pages. Directives are
swapped for token images `![](imagegen-token:N)` in `on_page_markdown` (safe inside lists,
admonitions, tabs and headings: an image adds no text to a title or a table of contents), and
those for the final HTML in `on_page_content`; `on_env` waits for the rest, before MkDocs copies
static files.
"""

from __future__ import annotations

import os
import posixpath
import re
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin
from mkdocs.structure.files import File, Files, InclusionLevel
from mkdocs.structure.pages import Page

from . import pricing, render
from .cache import CacheError
from .config import ImagegenConfig
from .engine import Engine, Outcome
from .logs import log
from .runtime import cache_dir_for, frozen_from_env, open_engine, settings_for
from .site import PageSource, documentation_files, page_from_markdown, page_occurrences, read_page
from .spec import Occurrence

# A URL scheme, so MkDocs's link validation leaves the token images alone.
TOKEN_SCHEME = "imagegen-token:"
# Starts with a literal '<' so the regex engine can skip ahead quickly on long pages.
TOKEN_RE = re.compile(rf'<(?P<open>p>\s*<)?img [^>]*?src="{TOKEN_SCHEME}(?P<n>\d+)"[^>]*>(?P<close>\s*</p>)?')


class ImagegenPlugin(BasePlugin[ImagegenConfig]):
    supports_multiple_instances = False

    def __init__(self) -> None:
        self._serving = False
        self._engine: Engine | None = None
        self._reset()

    def _reset(self) -> None:
        self._pages: dict[str, tuple[PageSource, list[Occurrence]]] = {}
        self._files: dict[str, File] = {}
        self._tokens: dict[str, list[Occurrence]] = {}
        self._warned: set[tuple[str, int, str]] = set()
        self._errors = 0

    # -- lifecycle -------------------------------------------------------------------------------
    def on_startup(self, *, command: str, dirty: bool) -> None:
        self._serving = command == "serve"

    def on_config(self, config: MkDocsConfig) -> MkDocsConfig | None:
        if not self.config.enabled:
            return None
        self.settings = settings_for(self.config, config.docs_dir)
        self.cache_dir = cache_dir_for(config, self.config)
        self.frozen = frozen_from_env(self.config.frozen)
        return None

    def on_files(self, files: Files, *, config: MkDocsConfig) -> Files:
        if not self.config.enabled:
            return files
        self._close()
        self._reset()
        try:
            self._engine = open_engine(self.config, self.cache_dir, frozen=self.frozen)
        except CacheError as exc:
            raise PluginError(str(exc)) from None
        for file in documentation_files(files, serving=self._serving):
            try:
                page = read_page(file)
            except (OSError, UnicodeDecodeError):
                continue  # MkDocs reports unreadable pages itself
            occurrences = page_occurrences(page, self.settings)
            self._pages[file.src_uri] = (page, occurrences)
            for occurrence in occurrences:
                self._submit(occurrence, files, config)
        return files

    def on_page_markdown(
        self, markdown: str, *, page: Page, config: MkDocsConfig, files: Files
    ) -> str | None:
        if not self.config.enabled or self._engine is None:
            return None
        known = self._pages.get(page.file.src_uri)
        if known is not None and known[0].body == markdown:
            occurrences = known[1]
        else:  # another plugin changed the text, or made the page: scan what MkDocs will render
            source = known[0] if known else page_from_markdown(page.file, page.meta, markdown)
            occurrences = page_occurrences(source, self.settings, text=markdown)
            for occurrence in occurrences:
                self._submit(occurrence, files, config)
        if not occurrences:
            return None
        pieces, last = [], 0
        for n, occurrence in enumerate(occurrences):
            raw = occurrence.raw
            token = f"![]({TOKEN_SCHEME}{n})"
            pieces.append(markdown[last : raw.start])
            pieces.append(token if raw.kind == "inline" else f"\n{raw.indent}{token}\n")
            last = raw.end
        pieces.append(markdown[last:])
        self._tokens[page.file.src_uri] = occurrences
        return "".join(pieces)

    def on_page_content(self, html: str, *, page: Page, config: MkDocsConfig, files: Files) -> str | None:
        tokens = self._tokens.pop(page.file.src_uri, None)
        if not tokens:
            return None

        def swap(match: re.Match[str]) -> str:
            occurrence = tokens[int(match["n"])]
            image = self._html(occurrence, page)
            if occurrence.raw.kind == "block":
                return image  # a figure stands alone, never inside a paragraph
            return ("<p>" if match["open"] else "") + image + (match["close"] or "")

        return TOKEN_RE.sub(swap, html)

    def on_env(self, env: Any, *, config: MkDocsConfig, files: Files) -> Any:
        if self._engine is None:
            return env
        outcomes = self._engine.wait()
        self._raise_for(list(outcomes.values()))
        for key, outcome in outcomes.items():
            if outcome.entry is not None and key in self._files:
                self._files[key].abs_src_path = outcome.entry.path
        return env

    def on_post_build(self, *, config: MkDocsConfig) -> None:
        if self._engine is None:
            return
        engine = self._engine
        engine.finish_report()
        s = engine.stats
        failed = s.failed + s.fallback + self._errors
        cost = ""
        if engine.provider.paid:
            cost = f", estimated cost {pricing.format_cost(s.cost)}" if s.cost_known else ", cost unknown"
        used = s.in_use + self._errors
        log.info(
            f"{used} image{'' if used == 1 else 's'} in use: {s.cached} from cache, {s.generated} generated, "
            f"{failed} failed, in {s.seconds:.1f} s{cost}"
        )
        self._close()

    def on_build_error(self, *, error: Exception) -> None:
        self._close()

    def on_shutdown(self) -> None:
        self._close()

    def _close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()

    # -- helpers -----------------------------------------------------------------------------------
    def _submit(self, occurrence: Occurrence, files: Files, config: MkDocsConfig) -> None:
        if occurrence.spec is None:
            self._warn_once(occurrence)
            return
        assert self._engine is not None
        self._engine.submit(occurrence)
        key = occurrence.spec.key
        if key in self._files:
            return
        uri = posixpath.join(self.config.output_dir, occurrence.spec.filename)
        # The cached file's path is set in on_env, once the image exists; MkDocs reads it only later.
        pending = os.path.join(self.cache_dir, "pending", uri)
        file = File.generated(config, uri, abs_src_path=pending, inclusion=InclusionLevel.INCLUDED)
        existing = files.get_file_from_path(uri)
        if existing is not None:
            files.remove(existing)
        files.append(file)
        self._files[key] = file

    def _warn_once(self, occurrence: Occurrence) -> None:
        mark = (occurrence.page, occurrence.line, occurrence.error or "")
        if mark not in self._warned:
            self._warned.add(mark)
            self._errors += 1
            log.warning(f"{occurrence.where}: {occurrence.error}")

    def _html(self, occurrence: Occurrence, page: Page) -> str:
        if occurrence.spec is None:
            return render.error_html(occurrence.error or "invalid directive", occurrence.where)
        assert self._engine is not None
        outcome = self._engine.outcome(occurrence.spec.key)
        self._raise_for([outcome])
        if outcome.entry is None:
            return render.error_html(outcome.error or "no image", occurrence.where)
        file = self._files[occurrence.spec.key]
        return render.image_html(
            src=file.url_relative_to(page.file),
            alt=occurrence.alt,
            width=outcome.entry.width,
            height=outcome.entry.height,
            caption=occurrence.caption,
            attrs=occurrence.attrs,
        )

    def _raise_for(self, outcomes: list[Outcome]) -> None:
        def fatal(o: Outcome) -> bool:
            return o.status == "failed" and (o.fatal or self.config.on_error == "fail")

        if not any(fatal(o) for o in outcomes):
            return
        assert self._engine is not None
        # Name every failure known by now, not only the one that stopped this page.
        failures = [o for o in self._engine.done_outcomes() if fatal(o) and o.error] or [
            Outcome("", "failed", error="image generation stopped after an earlier failure")
        ]
        for outcome in failures:  # through the plugin logger, like every other message
            log.error(outcome.error or "image generation failed")
        raise PluginError("image generation failed; the errors are listed above")
