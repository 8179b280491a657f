"""What one build or one command run is made of, wired the same way for the plugin and the CLI:
the key settings, the cache folder, the frozen flag and the engine with its provider and renderer.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError

from . import options
from .cache import CacheError, ImageCache
from .config import ImagegenConfig, check_cache_dir, mkdocs_folder_holding
from .lock import ImageLock, LockError
from .locktier import LockTier
from .providers import make_provider, provider_class
from .spec import Settings

if TYPE_CHECKING:  # a warm build imports neither the engine (asyncio) nor the renderer (Pillow)
    from collections.abc import Callable

    from .directives import Images
    from .engine import Engine
    from .remote import RemoteTier


def settings_for(plugin_config: ImagegenConfig, docs_dir: str) -> Settings:
    """The site-wide part of key resolution; the provider says which model it asks by default."""
    provider = provider_class(plugin_config.provider)
    defaults = {k: plugin_config[k] for k in options.DEFAULTABLE if plugin_config.get(k) is not None}
    # The default model, and the quality that comes with it, apply only where no model is set.
    implied = {"model": provider.default_model, "quality": provider.default_quality}
    return Settings(
        docs_dir=os.path.abspath(docs_dir),
        provider=plugin_config.provider,
        defaults=defaults,
        extra_body=dict(plugin_config.extra_body or {}),
        takes_model=provider.takes_model,
        implied={k: v for k, v in implied.items() if v is not None},
        template=plugin_config.prompt_template or None,
    )


def is_paid(plugin_config: ImagegenConfig) -> bool:
    return provider_class(plugin_config.provider).paid


def frozen_from_env(configured: bool) -> bool:
    return configured or os.environ.get("IMAGEGEN_FROZEN", "").strip().lower() in ("1", "true", "yes", "on")


def cache_dir_for(config: MkDocsConfig, plugin_config: ImagegenConfig) -> str:
    """`cache_dir` is relative to mkdocs.yml, like mkdocs-material's plugins."""
    base = (
        os.path.dirname(os.path.abspath(config.config_file_path)) if config.config_file_path else os.getcwd()
    )
    path = os.path.normpath(os.path.join(base, plugin_config.cache_dir))
    problem = check_cache_dir(path, config.docs_dir, config.site_dir)
    if problem:
        raise PluginError(problem)
    return path


def lock_dir_for(
    config_file: str | None, site_dir: str | None, plugin_config: ImagegenConfig, docs_dir: str | None = None
) -> str | None:
    """The lock folder, relative to mkdocs.yml like `cache_dir`; None when the site has no lock."""
    if not plugin_config.lock:
        return None
    base = os.path.dirname(os.path.abspath(config_file)) if config_file else os.getcwd()
    folder = os.path.normpath(os.path.join(base, plugin_config.lock))
    name = mkdocs_folder_holding(folder, site_dir=site_dir, docs_dir=docs_dir)
    if name is not None:
        why = {
            "site_dir": "which MkDocs empties on every build",
            # Published twice, and under `mkdocs serve` each save of the lock would rebuild the site.
            "docs_dir": "so MkDocs would publish its images and manifest, "
            "and serve would rebuild on each save",
        }
        raise LockError(
            f"the lock folder {folder} is inside {name}, {why[name]}; "
            "set lock to a folder beside the docs, such as docs-images"
        )
    return folder


def open_lock(plugin_config: ImagegenConfig, lock_dir: str, *, keep_outdated: bool | None = None) -> LockTier:
    """The lock folder as a tier; `keep_outdated` overrides the `outdated` option."""
    if keep_outdated is None:
        keep_outdated = plugin_config.outdated == "keep"
    return LockTier(ImageLock(lock_dir), paid=is_paid(plugin_config), keep_outdated=keep_outdated)


def open_images(
    plugin_config: ImagegenConfig,
    cache_dir: str,
    lock_dir: str | None,
    open_engine: Callable[[], Engine],
    *,
    frozen: bool,
    blocking: bool,
    generate: bool,
) -> Images:
    """A build's images: the cache and the lock opened, the engine left to open on first need."""
    from .directives import Images

    try:
        # Pinned: what MkDocs copies is the very file that was verified, whatever
        # another process (generate --force, a second build) replaces meanwhile.
        cache = ImageCache(cache_dir, pin=True)
        lock = open_lock(plugin_config, lock_dir) if lock_dir else None
    except (CacheError, LockError) as exc:
        raise PluginError(str(exc)) from None
    return Images(cache, open_engine, lock=lock, frozen=frozen, blocking=blocking, generate=generate)


def open_engine(
    plugin_config: ImagegenConfig,
    cache_dir: str,
    *,
    frozen: bool,
    on_error: str | None = None,
    uncapped: bool = False,
    keep_going: bool = False,
    lock_dir: str | None = None,
    keep_outdated: bool | None = None,
    lock: LockTier | None = None,
) -> Engine:
    """The cache, provider and engine of one build or one CLI run, from the plugin's options.

    `on_error` overrides the option; `uncapped` lifts max_new_images, for a caller that already
    applied it to the plan it submits (the cap is applied in one place only). With `lock_dir`
    the lock folder is the first tier, saved when the engine closes; a `lock` already open (the
    plugin's) is used but saved by its owner. `keep_outdated` overrides the `outdated` option.
    """
    from .engine import Engine
    from .providers.placeholder import render_fallback

    # Pinned: what MkDocs copies is the very file that was verified, whatever replaces it meanwhile.
    cache = ImageCache(cache_dir, pin=True)
    owns_lock = lock is None and lock_dir is not None
    if lock is None and lock_dir is not None:
        try:
            lock = open_lock(plugin_config, lock_dir, keep_outdated=keep_outdated)
        except LockError:
            cache.close()
            raise
    return Engine(
        cache,
        make_provider(plugin_config),
        remote=remote_tier(plugin_config),
        lock=lock,
        owns_lock=owns_lock,
        placeholder=render_fallback,
        concurrency=plugin_config.concurrency,
        on_error=on_error or plugin_config.on_error,
        max_new_images=None if uncapped else plugin_config.max_new_images,
        max_cost=None if uncapped else plugin_config.max_cost,
        max_retries=plugin_config.max_retries,
        frozen=frozen,
        keep_going=keep_going,
    )


def remote_tier(plugin_config: ImagegenConfig) -> RemoteTier | None:
    """The remote store of `remote_cache`, or None; a signing secret that is named but unset is
    a clear error (refusing every entry instead would regenerate, and pay for, the whole site)."""
    from .remote import RemoteConfigError, RemoteTier, from_config

    try:
        store = from_config(plugin_config)
    except RemoteConfigError as exc:
        raise CacheError(str(exc)) from None
    return None if store is None else RemoteTier(store)
