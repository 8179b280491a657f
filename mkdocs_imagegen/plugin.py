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

import json
import os
from typing import TYPE_CHECKING, Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, event_priority
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

from .cache import CacheError
from .config import ImagegenConfig
from .directives import Directives, Images
from .extension import FENCE_NAME, Conversion, Found, ImagegenExtension, Rendered, superfences_format
from .lifecycle import BuildNotes
from .lock import LockError
from .published import Published
from .runtime import cache_dir_for, frozen_from_env, lock_dir_for, open_images, settings_for
from .serving import ServeSession
from .spec import Occurrence
from .summary import raise_for, report, warn_missing_alt

if TYPE_CHECKING:
    from .engine import Engine


def config_dir(config: MkDocsConfig) -> str:
    path = config.config_file_path
    return os.path.dirname(os.path.abspath(path)) if path else os.getcwd()


def register(config: MkDocsConfig, extension: ImagegenExtension) -> None:
    """Into the site's own Markdown pipeline (once, also when mkdocs.yml is reloaded while serving)."""
    extensions = config.markdown_extensions
    extensions[:] = [e for e in extensions if not isinstance(e, ImagegenExtension)]
    extensions.append(extension)  # type: ignore[arg-type]  # MkDocs takes instances too
    if "pymdownx.superfences" in extensions:
        mdx = config.mdx_configs.setdefault("pymdownx.superfences", {})
        fences = [f for f in mdx.get("custom_fences") or [] if f.get("name") != FENCE_NAME]
        fences.append({"name": FENCE_NAME, "class": FENCE_NAME, "format": superfences_format})
        mdx["custom_fences"] = fences


class ImagegenPlugin(BasePlugin[ImagegenConfig]):
    supports_multiple_instances = False

    def __init__(self) -> None:
        # Set by the command before a build: record the site's directives, generate nothing.
        self.plan: list[Occurrence] | None = None
        self.directives: Directives | None = None
        self.images: Images | None = None
        self._published: Published | None = None  # this build's image files
        self.page_in_progress: str | None = None  # names the page a read error is about
        self._model_notes: BuildNotes | None = None
        self._session = ServeSession()

    # -- lifecycle -------------------------------------------------------------------------------
    def on_startup(self, *, command: str, dirty: bool) -> None:
        self._session.serving, self._session.dirty = command == "serve", dirty

    @property
    def mode(self) -> str:
        return self._session.mode(self.config.serve_mode, planning=self.plan is not None)

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
            self.lock_dir = lock_dir_for(
                config.config_file_path, config.site_dir, self.config, config.docs_dir
            )
        except LockError as exc:
            raise PluginError(str(exc)) from None
        register(config, ImagegenExtension(self))
        return config

    def on_files(self, files: Files, *, config: MkDocsConfig) -> Files:
        if not self.config.enabled:
            return files
        # mkdocs.yml edited while serving (another provider, model, cache...): a new engine, so
        # no image is ever made by the old options under the new options' key.
        options = json.dumps([self.cache_dir, self.frozen, dict(self.config)], sort_keys=True, default=str)
        if self.lasting and self.images is not None and options == self._session.opened_with:
            # A save retries failed images; the rebuild that shows a finished image does not.
            self.images.begin_round(retry_failed=self._session.after_save())
        elif self.plan is None:
            self._close()
            self._session.opened_with = options
            self.images = open_images(
                self.config,
                self.cache_dir,
                self.lock_dir,
                self._open_engine,
                frozen=self.frozen,
                blocking=not self.lasting,
                generate=self.mode != "placeholder",
            )
            if self._model_notes is None:  # once per process, also across serve's rebuilds
                self._model_notes = BuildNotes(self.config, self.cache_dir)
        else:
            self._close()
        self.directives = Directives(self.settings, images=self.images, config_dir=config_dir(config))
        self._published = (
            None
            if self.images is None
            else Published(self.images, files, self.config.output_dir, self.config.on_error)
        )
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
        if self.images is None or self._published is None:
            return env
        outcomes = self.images.wait()  # while serving: only those known by now
        raise_for(list(outcomes.values()), self.images, self.config.on_error)
        for key in self.images.used():
            self._published.add(key, files, config)
        return env

    @event_priority(-100)  # the final HTML, after minify and every other rewriter
    def on_post_page(self, output: str, *, page: Page, config: MkDocsConfig) -> str | None:
        if self._published is None or "imagegen-ref:" not in output:
            return None
        return self._published.resolve(output, page, config, self._pending_src)

    # After material's optimize (priority 0), which still reads the published image files that
    # this hook releases when it closes the build's images; before static-i18n (-100), whose own
    # on_post_build builds the other languages, each with its own images and summary.
    @event_priority(-50)
    def on_post_build(self, *, config: MkDocsConfig) -> None:
        if self.config.alt_required and self.directives is not None and self.plan is None:
            warn_missing_alt(self.directives.occurrences)
        images = self.images
        if images is None:
            return
        report(images, self._model_notes, lasting=self.lasting)
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
        if not self.lasting or self.images is None:
            return None
        return self._session.pending_src(self.images, key)
