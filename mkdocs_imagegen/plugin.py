"""The MkDocs front end: hooks a Markdown extension into the site's renderer and resolves its references.

The flow of one build:

1. `on_config` adds `ImagegenExtension` to `markdown_extensions` (and the `imagegen` custom fence
   to pymdownx.superfences), so the site's own renderer finds directives wherever it renders
   content: pages, snippets, macros' output, blog excerpts, md_in_html blocks.
2. When the renderer meets a directive, its image is looked up in the cache or submitted to the
   engine at once (site-wide concurrency); the HTML gets a site-unique reference, not a URL.
3. `on_env` (before any other plugin's, so material's optimize sees them) waits for the images
   and adds each as a real `File.generated` to the site's files.
4. `on_post_page` turns every reference in a written page (blog views too) into a URL relative
   to that page.

With `plan` set (the `mkdocs-imagegen` command), the same build generates nothing and only
records the site's directives.

Under `mkdocs serve` (serve_mode `background`, the default) nothing waits: one engine serves
every rebuild, an image still on its way is shown as a placeholder, and when it is ready the
plugin's reload trigger (see `serving`) makes the server rebuild and the browser reload.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
from typing import TYPE_CHECKING, Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, event_priority
from mkdocs.structure.files import File, Files, InclusionLevel
from mkdocs.structure.pages import Page

from . import pricing, render
from .cache import CacheError, ImageCache
from .config import ImagegenConfig
from .directives import REF_RE, Directives, Images
from .extension import FENCE_NAME, Conversion, Found, ImagegenExtension, Rendered, superfences_format
from .lifecycle import BuildNotes
from .lock import EXTENSIONS, LockError
from .logs import log
from .runtime import cache_dir_for, frozen_from_env, lock_dir_for, open_lock, settings_for
from .serving import ServeSession
from .spec import Occurrence

if TYPE_CHECKING:
    from .engine import Engine, Outcome


def config_dir(config: MkDocsConfig) -> str:
    path = config.config_file_path
    return os.path.dirname(os.path.abspath(path)) if path else os.getcwd()


class ImagegenPlugin(BasePlugin[ImagegenConfig]):
    supports_multiple_instances = False

    def __init__(self) -> None:
        # Set by the command before a build: record the site's directives, generate nothing.
        self.plan: list[Occurrence] | None = None
        self.directives: Directives | None = None
        self.images: Images | None = None
        self._files: dict[str, File] = {}  # key -> the image's file in the site
        self._site_files: Files | None = None
        self.page_in_progress: str | None = None  # names the page a read error is about
        self._model_notes: BuildNotes | None = None
        self._serving = False
        self._dirty = False
        self._session = ServeSession()

    # -- lifecycle -------------------------------------------------------------------------------
    def on_startup(self, *, command: str, dirty: bool) -> None:
        self._serving = command == "serve"
        self._dirty = dirty

    @property
    def mode(self) -> str:
        """`build` (wait for every image), or the serve_mode of a `mkdocs serve` session."""
        if not self._serving or self.plan is not None:
            return "build"
        # `serve --dirty` rebuilds only the pages that changed: a page showing a placeholder would
        # never be rebuilt to show its image, so it waits for the image instead.
        if self._dirty and self.config.serve_mode == "background":
            return "blocking"
        return self.config.serve_mode

    @property
    def lasting(self) -> bool:
        """Whether one engine serves every rebuild of the session, and nothing waits for it."""
        return self.mode in ("background", "placeholder")

    def on_config(self, config: MkDocsConfig) -> MkDocsConfig | None:
        if not self.config.enabled:
            return None
        self.settings = settings_for(self.config, config.docs_dir)
        self.cache_dir = cache_dir_for(config, self.config)
        self.frozen = frozen_from_env(self.config.frozen)
        try:
            self.lock_dir = lock_dir_for(config.config_file_path, config.site_dir, self.config)
        except LockError as exc:
            raise PluginError(str(exc)) from None
        extensions = config.markdown_extensions
        extensions[:] = [e for e in extensions if not isinstance(e, ImagegenExtension)]
        extensions.append(ImagegenExtension(self))  # type: ignore[arg-type]  # MkDocs takes instances too
        if "pymdownx.superfences" in extensions:
            mdx = config.mdx_configs.setdefault("pymdownx.superfences", {})
            fences = [f for f in mdx.get("custom_fences") or [] if f.get("name") != FENCE_NAME]
            fences.append({"name": FENCE_NAME, "class": FENCE_NAME, "format": superfences_format})
            mdx["custom_fences"] = fences
        return config

    def on_files(self, files: Files, *, config: MkDocsConfig) -> Files:
        if not self.config.enabled:
            return files
        self._files = {}
        self._site_files = files
        # mkdocs.yml edited while serving (another provider, model, cache...): a new engine, so
        # no image is ever made by the old options under the new options' key.
        options = json.dumps([self.cache_dir, self.frozen, dict(self.config)], sort_keys=True, default=str)
        if self.lasting and self.images is not None and options == self._session.opened_with:
            # A save retries failed images; the rebuild that shows a finished image does not.
            self.images.begin_round(retry_failed=self._session.after_save())
        elif self.plan is None:
            self._close()
            self._session.opened_with = options
            try:
                # Pinned: what MkDocs copies is the very file that was verified, whatever
                # another process (generate --force, a second build) replaces meanwhile.
                cache = ImageCache(self.cache_dir, pin=True)
                lock = open_lock(self.config, self.lock_dir) if self.lock_dir else None
            except (CacheError, LockError) as exc:
                raise PluginError(str(exc)) from None
            self.images = Images(
                cache,
                self._open_engine,
                lock=lock,
                frozen=self.frozen,
                blocking=not self.lasting,
                generate=self.mode != "placeholder",
            )
            if self._model_notes is None:  # once per process, also across serve's rebuilds
                self._model_notes = BuildNotes(self.config, self.cache_dir)
        else:
            self._close()
        self.directives = Directives(self.settings, images=self.images, config_dir=config_dir(config))
        return files

    def on_pre_page(self, page: Page, *, config: MkDocsConfig, files: Files) -> Page | None:
        self.page_in_progress = page.file.src_uri
        return None

    @event_priority(-100)  # after every plugin that rewrites the Markdown (macros, blog)
    def on_page_markdown(
        self, markdown: str, *, page: Page, config: MkDocsConfig, files: Files
    ) -> str | None:
        if self.directives is not None:
            self.directives.add_page(page.file, dict(page.meta), markdown)
        return None

    @event_priority(100)  # before material's optimize and others take the media files
    def on_env(self, env: Any, *, config: MkDocsConfig, files: Files) -> Any:
        if self.images is None:
            return env
        outcomes = self.images.wait()  # while serving: only those known by now
        self._raise_for(list(outcomes.values()))
        for key in self.images.used():
            self._add_file(key, files, config)
        return env

    @event_priority(-100)  # the final HTML, after minify and every other rewriter
    def on_post_page(self, output: str, *, page: Page, config: MkDocsConfig) -> str | None:
        if self.images is None or "imagegen-ref:" not in output:
            return None

        def url(match: Any) -> str:
            key = match.group(1)
            file = self._files.get(key) or self._late_file(key, config)
            if file is None:
                return self._pending_src(key) or self._error_src(key)
            return file.url_relative_to(page.file)

        return REF_RE.sub(url, output)

    # Last: other plugins' on_post_build (material's optimize) still read the published image
    # files, which this one releases when it closes the build's images.
    @event_priority(-100)
    def on_post_build(self, *, config: MkDocsConfig) -> None:
        self._warn_missing_alt()
        images = self.images
        if images is None:
            return
        engine = images.engine
        if engine is not None:
            engine.finish_report()
        if self._model_notes is not None:
            with contextlib.suppress(Exception):  # a note must never fail a build
                every, fresh = engine.specs_not_from_cache() if engine is not None else ([], [])
                made_with = [e.meta.get("model") for e in images.cached.values()]
                self._model_notes.report(every, fresh, images.cache, log, also_in_use=made_with)
        s = engine.stats if engine is not None else None
        cached = len(images.cached) - len(images.outdated) + (s.cached if s else 0)
        outdated = len(images.outdated) + (s.outdated if s else 0)
        generated = s.generated if s else 0
        # Placeholders held back by the spending cap are shown by choice: not failures.
        held = engine.guard.held_back() if engine is not None else 0
        failed = (s.failed + s.fallback if s else 0) - held + images.errors
        held_back = f", {held} held back by max_new_images" if held else ""
        cost = ""
        if engine is not None and s is not None and engine.provider.paid:
            cost = f", estimated cost {pricing.format_cost(s.cost)}" if s.cost_known else ", cost unknown"
        used = len(images.used()) + images.errors
        seconds = s.seconds if s else 0.0
        later = ""
        if self.lasting:  # this rebuild's images only, not the whole session's
            shown = [k for k in images.used() if k in images.cached]
            pins = sum(1 for k in shown if k in images.outdated)
            cached = len(shown) - pins + (s.cached if s else 0)
            outdated = pins + (s.outdated if s else 0)
            later = images.end_round()  # keys this rebuild did not use are dropped before they cost
        remote = f" ({s.remote} from the remote cache)" if s and s.remote else ""
        pinned = f", {outdated} outdated" if images.lock is not None else ""
        log.info(
            f"{used} image{'' if used == 1 else 's'} in use: {cached} from cache{remote}, "
            f"{generated} generated{pinned}, {failed} failed{held_back}{later}, in {seconds:.1f} s{cost}"
        )
        if outdated:
            log.info(
                f"{outdated} image(s) are outdated: their model, prompt template or a default changed, "
                "so the lock's pinned image is shown and nothing was generated. "
                "Run `mkdocs-imagegen update --dry-run` to see them and their cost, then `update`"
            )
        if not self.lasting:
            self._close()

    def on_serve(self, server: Any, *, config: MkDocsConfig, builder: Any) -> Any:
        if self.config.enabled and self.mode == "background":
            self._session.watch(server)
        return server

    def on_build_error(self, *, error: Exception) -> None:
        if not self.lasting:  # while serving, the next save rebuilds with the same engine
            self._close()

    def on_shutdown(self) -> None:
        self._session.close()
        self._close()

    def _close(self) -> None:
        images, self.images = self.images, None
        if images is not None:
            images.close()

    def render(self, md: Any, conversion: Conversion, found: list[Found]) -> list[Rendered]:
        """The extension's handler: this build's directives (Markdown rendered outside a build has none)."""
        if self.directives is None:
            self.directives = Directives(self.settings, images=None, config_dir=os.getcwd())
        return self.directives.render(md, conversion, found)

    # -- helpers -----------------------------------------------------------------------------------
    def _warn_missing_alt(self) -> None:
        """A warning, not an error: every image is still made, but `mkdocs build --strict` fails."""
        if not self.config.alt_required or self.directives is None or self.plan is not None:
            return
        for occurrence in self.directives.occurrences:
            problem = occurrence.alt_problem
            if problem:
                log.warning(f"{occurrence.where}: {problem}")

    def _open_engine(self) -> Engine:
        from .runtime import open_engine

        lock = self.images.lock if self.images is not None else None
        try:
            engine = open_engine(self.config, self.cache_dir, frozen=self.frozen, lock=lock)
        except CacheError as exc:
            raise PluginError(str(exc)) from None
        if self.lasting:
            engine.on_done = lambda o: self._session.image_ready(o.key, wanted=engine.wanted(o.key))
            engine.begin_round(retry_failed=False)
        return engine

    def _pending_src(self, key: str) -> str | None:
        """While serving: the stand-in for an image on its way (or, with serve_mode placeholder, not made)."""
        if not self.lasting or self.images is None:
            return None
        occurrence = self.images.occurrence(key)
        if occurrence is None or occurrence.spec is None or self.images.outcome(key) is not None:
            return None
        waiting = key not in self.images.missing
        if waiting:
            self._session.showed_pending(key)
        width, height = occurrence.spec.dimensions or (1024, 1024)
        return render.pending_src(prompt=occurrence.spec.prompt, width=width, height=height, waiting=waiting)

    def _add_file(self, key: str, files: Files, config: MkDocsConfig) -> File | None:
        assert self.images is not None
        entry = self.images.entry(key)
        if entry is None:
            return None
        name = self.images.filenames[key]
        ext = EXTENSIONS.get(str(entry.meta.get("format")))
        if ext is not None and not name.endswith(f".{ext}"):  # a pinned image of another format
            name = f"{key}.{ext}"
        uri = posixpath.join(self.config.output_dir, name)
        file = File.generated(config, uri, abs_src_path=entry.path, inclusion=InclusionLevel.INCLUDED)
        existing = files.get_file_from_path(uri)
        if existing is not None:
            files.remove(existing)
        files.append(file)
        self._files[key] = file
        return file

    def _late_file(self, key: str, config: MkDocsConfig) -> File | None:
        """An image first met after on_env (a view rendered late): copy it into the site now."""
        if self.images is None or self._site_files is None:
            return None
        outcome = self.images.outcome(key)
        if outcome is not None:
            self._raise_for([outcome])
        file = self._add_file(key, self._site_files, config)
        if file is not None:
            file.copy_file()
        return file

    def _error_src(self, key: str) -> str:
        assert self.images is not None
        outcome = self.images.outcome(key)
        message = (outcome.error if outcome else None) or "no image"
        return render.error_attributes(message, key[:12])[0][1]

    def _raise_for(self, outcomes: list[Outcome]) -> None:
        def fatal(o: Outcome) -> bool:
            return o.status == "failed" and (o.fatal or self.config.on_error == "fail")

        if not any(fatal(o) for o in outcomes):
            return
        engine = self.images.engine if self.images is not None else None
        assert engine is not None
        # Name every failure known by now, not only the one that stopped this page.
        failures = [o for o in engine.done_outcomes() if fatal(o) and o.error]
        if not failures:
            failures = [o for o in outcomes if fatal(o) and o.error]
        for outcome in failures:  # through the plugin logger, like every other message
            log.error(outcome.error or "image generation failed")
        if not failures:
            raise PluginError("image generation stopped after an earlier failure")
        raise PluginError("image generation failed; the errors are listed above")
