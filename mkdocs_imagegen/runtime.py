"""What one build or one command run is made of, wired the same way for the plugin and the CLI:
the key settings, the cache folder, the frozen flag and the engine with its provider and renderer.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from mkdocs.config.defaults import MkDocsConfig

from . import options
from .cache import CacheError, ImageCache
from .config import ImagegenConfig
from .providers import make_provider, provider_class
from .spec import Settings

if TYPE_CHECKING:  # a warm build imports neither the engine (asyncio) nor the renderer (Pillow)
    from .engine import Engine
    from .remote import RemoteTier


def settings_for(plugin_config: ImagegenConfig, docs_dir: str) -> Settings:
    """The site-wide part of key resolution; the provider says which model it asks by default."""
    provider = provider_class(plugin_config.provider)
    defaults = {k: plugin_config[k] for k in options.DEFAULTABLE if plugin_config.get(k) is not None}
    if provider.default_model is not None:
        defaults.setdefault("model", provider.default_model)
    return Settings(
        docs_dir=os.path.abspath(docs_dir),
        provider=plugin_config.provider,
        defaults=defaults,
        extra_body=dict(plugin_config.extra_body or {}),
        takes_model=provider.takes_model,
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
    return os.path.normpath(os.path.join(base, plugin_config.cache_dir))


def open_engine(
    plugin_config: ImagegenConfig,
    cache_dir: str,
    *,
    frozen: bool,
    on_error: str | None = None,
    uncapped: bool = False,
    keep_going: bool = False,
) -> Engine:
    """The cache, provider and engine of one build or one CLI run, from the plugin's options.

    `on_error` overrides the option; `uncapped` lifts max_new_images, for a caller that already
    applied it to the plan it submits (the cap is applied in one place only).
    """
    from .engine import Engine
    from .providers.placeholder import render_fallback

    return Engine(
        ImageCache(cache_dir),
        make_provider(plugin_config),
        remote=remote_tier(plugin_config),
        placeholder=render_fallback,
        concurrency=plugin_config.concurrency,
        on_error=on_error or plugin_config.on_error,
        max_new_images=None if uncapped else plugin_config.max_new_images,
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
