"""The command's view of a site: MkDocs's own build, every configured plugin, nothing generated.

The command loads mkdocs.yml and runs `mkdocs build` into a temporary folder with the plugin in
plan mode: the site's Markdown pipeline (snippets, macros, gen-files, blog excerpts, any plugin
order) meets the directives exactly as a real build does, and the plugin records them instead of
generating. So the command's keys are the build's keys; the price is about one build's time.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from typing import Any

from .spec import Occurrence

DRAFTS_URL = "http://127.0.0.1:8000/"  # any URL: MkDocs then renders drafts, as `mkdocs serve` does


class PlanError(Exception):
    """The site could not be planned; the message says why."""


@dataclass
class Plan:
    config: Any
    plugin_config: Any
    cache_dir: str
    frozen: bool
    occurrences: list[Occurrence]
    lock_dir: str | None = None


def plan_site(config_file: str | None, *, drafts: bool = False) -> Plan:
    """Every directive of the site, as a build (`drafts`: as `mkdocs serve`) renders them."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import Abort, ConfigurationError, MkDocsException

    from .lock import LockError
    from .plugin import ImagegenPlugin
    from .runtime import cache_dir_for, frozen_from_env, lock_dir_for

    try:
        config = load_config(config_file)
    except ConfigurationError as exc:
        raise PlanError(f"cannot load the MkDocs config: {exc.format_message()}") from None
    except Abort as exc:  # validation errors, already logged one by one above
        where = config_file or "mkdocs.yml"
        raise PlanError(f"cannot load the MkDocs config {where}: {exc.format_message()}") from None
    plugin = config.plugins.get("imagegen")
    if not isinstance(plugin, ImagegenPlugin):
        raise PlanError(
            f"the imagegen plugin is not enabled in {config.config_file_path}: add '- imagegen' under plugins"
        )
    try:  # checked against the site's own site_dir, before the plan builds into a temporary one
        cache_dir = cache_dir_for(config, plugin.config)
    except MkDocsException as exc:
        raise PlanError(exc.format_message()) from None
    try:
        lock_dir = lock_dir_for(config.config_file_path, config.site_dir, plugin.config, config.docs_dir)
    except LockError as exc:
        raise PlanError(str(exc)) from None
    plugin.plan = []
    config.strict = False  # the plan reports broken directives itself; other warnings stay warnings
    quiet = logging.getLogger("mkdocs.commands.build")
    level = quiet.level
    with tempfile.TemporaryDirectory(prefix="imagegen-plan-") as site_dir:
        config.site_dir = os.path.join(site_dir, "site")
        config.plugins.on_startup(command="build", dirty=False)
        quiet.setLevel(logging.WARNING)
        try:
            build(config, serve_url=DRAFTS_URL if drafts else None)
        except (Abort, MkDocsException) as exc:
            raise PlanError(f"the site does not build: {exc.format_message()}") from None
        except (OSError, UnicodeDecodeError) as exc:
            page = plugin.page_in_progress
            if page is not None:
                raise PlanError(f"cannot read the page {page}: {exc}") from None
            raise PlanError(f"the site does not build: {exc}") from None
        finally:
            quiet.setLevel(level)
            config.plugins.on_shutdown()
            plugin.plan = None  # MkDocs keeps plugin instances for the process's next config load
    directives = plugin.directives
    found = directives.occurrences if directives is not None else []
    pages: dict[str, int] = {}
    for occurrence in found:  # pages in the order MkDocs renders them, lines in order within each
        pages.setdefault(occurrence.page, len(pages))
    occurrences = sorted(found, key=lambda o: (pages[o.page], o.line))
    return Plan(
        config=config,
        plugin_config=plugin.config,
        cache_dir=cache_dir,
        frozen=frozen_from_env(plugin.config.frozen),
        occurrences=occurrences,
        lock_dir=lock_dir,
    )
