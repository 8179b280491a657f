"""What the plugin does with each directive the renderer meets: resolve, submit, and answer HTML.

The HTML carries a site-unique reference (`imagegen-ref:<key>.<ext>`) instead of a URL; the
plugin turns it into a URL relative to each written page in `on_post_page`, so a blog excerpt on
an index page, a lightbox link or a minified page all end up pointing at the real file.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from markdown import Markdown
from mkdocs.structure.files import File
from mkdocs.utils import meta as mkdocs_meta

from . import pricing, render
from .extension import Conversion, Found, Rendered
from .locate import Locator, Snippets
from .lock import LockError
from .logs import log
from .spec import Occurrence, PageInfo, RawDirective, Settings, page_defaults, resolve

if TYPE_CHECKING:
    from .cache import Entry, ImageCache
    from .engine import Engine, Outcome
    from .locktier import LockTier

PROGRESS_EVERY = 4.0  # seconds between "waiting for images" lines of a build
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


class Images:
    """The images of one build: cache hits answered at once, the rest through the engine.

    A warm build never opens the engine (no event loop, no HTTP client, no Pillow); the first key
    missing from the cache opens it. With a lock folder, it is looked at first, a real image found
    only in the cache is copied into it, and a key with neither but with its intent pinned in the
    lock shows the pinned image (`outdated`); the lock's manifest is saved on close.

    While serving (`blocking` False) one `Images` serves every rebuild: nothing waits for the
    engine, a rebuild is a round (`begin_round`, `end_round`, which also saves the lock's
    manifest), and keys already known cost neither a lookup nor a request. With `generate`
    False (serve_mode: placeholder) a key missing from the cache is only noted as missing.
    """

    def __init__(
        self,
        cache: ImageCache,
        open_engine: Callable[[], Engine],
        *,
        lock: LockTier | None = None,
        frozen: bool = False,
        blocking: bool = True,
        generate: bool = True,
    ) -> None:
        self.cache = cache
        self.lock = lock
        self.frozen = frozen
        self._open_engine = open_engine
        self.blocking = blocking
        self.generate = generate
        self.engine: Engine | None = None
        self.cached: dict[str, Entry] = {}
        self.outdated: dict[str, Entry] = {}  # keys shown from the lock's pin (also in `cached`)
        self.pending: dict[str, Occurrence] = {}  # keys the engine has
        self.missing: dict[str, Occurrence] = {}  # not cached, and not to be generated
        self.filenames: dict[str, str] = {}
        self._used: dict[str, None] = {}  # keys this build uses, in order
        self.errors = 0
        self._next_progress = 0.0  # when a build still waiting on images says so next
        self._uses: dict[str, list[Occurrence]] = {}  # with a lock: the pages that use each key

    def submit(self, occurrence: Occurrence) -> None:
        spec = occurrence.spec
        assert spec is not None
        key = spec.key
        if self.lock is not None:
            self._uses.setdefault(key, []).append(occurrence)
        self._used[key] = None
        if key in self.cached:
            return
        self.filenames[key] = spec.filename
        if key not in self.pending:
            if key not in self.missing:
                try:
                    entry = self._lookup(key, occurrence)
                except Exception:  # the engine reports an unreadable cache with page and line
                    entry = None
                if entry is not None:
                    self.cached[key] = entry
                    return
            if not self.generate:
                self.missing.setdefault(key, occurrence)
                return
            self.pending[key] = occurrence
        if self.engine is None:
            self.engine = self._open_engine()
            self._next_progress = time.monotonic() + PROGRESS_EVERY
        self.engine.submit(occurrence)

    def _lookup(self, key: str, occurrence: Occurrence) -> Entry | None:
        if self.lock is None:
            return self.cache.get(key)
        entry = self.lock.get(key)
        if entry is not None:
            return entry
        entry = self.cache.get(key)
        if entry is not None:
            self.lock.fill(entry)
            return entry
        if self.lock.keep_outdated:
            entry = self.lock.pin(key, occurrence)
            if entry is not None:
                self.outdated[key] = entry
        return entry

    def used(self) -> list[str]:
        return list(self._used)

    def entry(self, key: str) -> Entry | None:
        if key in self.cached:
            return self.cached[key]
        outcome = self.outcome(key)
        return outcome.entry if outcome is not None else None

    def outcome(self, key: str) -> Outcome | None:
        """The key's outcome; while serving, None as long as it is being made (never a wait)."""
        if key not in self.pending or self.engine is None:
            return None
        return self._await(self.engine, key) if self.blocking else self.engine.peek(key)

    def occurrence(self, key: str) -> Occurrence | None:
        """A directive that uses a key with no image yet (for its placeholder)."""
        return self.pending.get(key) or self.missing.get(key)

    def wait(self) -> dict[str, Outcome]:
        if self.engine is None:
            return {}
        if not self.blocking:  # while serving: what is known by now
            return {k: o for k in self._used if (o := self.outcome(k)) is not None}
        for key in list(self.pending):  # one by one, so that a long wait says how it goes
            self._await(self.engine, key)
        return self.engine.wait()

    def _await(self, engine: Engine, key: str) -> Outcome:
        """A build waiting on generation logs a progress line every few seconds, not silence."""
        while True:
            try:
                return engine.outcome(key, timeout=max(0.0, self._next_progress - time.monotonic()))
            except TimeoutError:
                if time.monotonic() >= self._next_progress:
                    log.info(progress_line(engine))
                    self._next_progress = time.monotonic() + PROGRESS_EVERY

    # -- rounds (mkdocs serve) -------------------------------------------------------------
    def begin_round(self, *, retry_failed: bool) -> None:
        """A rebuild starts; with `retry_failed` (a save), failed images are asked for again."""
        self._used = {}
        self._uses = {}
        self.errors = 0
        self.missing = {}  # `mkdocs-imagegen generate` may have made them meanwhile
        for key, entry in list(self.cached.items()):
            if not os.path.exists(entry.path):  # pruned behind our back: look again
                del self.cached[key]
        if self.engine is not None:
            self.engine.begin_round(retry_failed=retry_failed)
            for key in list(self.pending):
                outcome = self.engine.peek(key)
                if outcome is not None and (
                    outcome.status == "dropped" or (retry_failed and outcome.status in ("failed", "fallback"))
                ):
                    del self.pending[key]

    def end_round(self) -> str:
        """A rebuild has rendered every page; what its summary line adds, while serving."""
        if self.engine is not None:
            self.engine.end_round()
        self._save_lock(self._made(), last=False)  # images finished by now, the rest next time
        note = ""
        if waiting := sum(1 for k in self._used if k in self.pending and self.outcome(k) is None):
            note = f", {waiting} being generated in the background"
        if self.missing:
            note += f", {len(self.missing)} not generated (serve_mode: placeholder)"
        return note

    def close(self) -> None:
        made = self._made()
        engine, self.engine = self.engine, None
        if engine is not None:
            engine.close()
        self._save_lock(made)
        self.cache.close()

    def _made(self) -> dict[str, Entry | None]:
        return {o.key: o.entry for o in self.engine.done_outcomes()} if self.engine is not None else {}

    def _save_lock(self, made: dict[str, Entry | None], *, last: bool = True) -> None:
        """Record which pages use each locked image, and write the manifest once per build."""
        lock = self.lock
        if last:
            self.lock = None
        if lock is None:
            return
        used = [(self.cached.get(key) or made.get(key), uses) for key, uses in self._uses.items()]
        try:
            lock.finish(used, record_pages=not self.frozen)
        except (OSError, LockError) as exc:
            log.error(f"cannot save the image lock: {exc}")


def progress_line(engine: Engine) -> str:
    done, total = len(engine.done_outcomes()), engine.stats.in_use
    s = engine.stats
    failed = s.failed + s.fallback - engine.guard.held_back()
    cost = ""
    if engine.provider.paid:
        cost = f", {pricing.format_cost(s.cost)} so far" if s.cost_known else ", cost unknown"
    return f"waiting for images: {done} of {total} done, {failed} failed{cost}"
