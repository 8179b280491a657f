"""The commands' model of a site: every key in use, its directives, and where its image is.

It learns the site's directives through MkDocs's own build, with every configured plugin and the
imagegen plugin in plan mode (`plan.plan_site`), so the command and a build always agree on a key.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from .. import pricing
from ..cache import CacheError, ImageCache
from ..config import ImagegenConfig
from ..lock import ImageLock, LockError, Record
from ..runtime import is_paid
from ..spec import ImageSpec, Occurrence, where
from .text import clip

if TYPE_CHECKING:
    from ..remote import RemoteStore

STATES = ("cached", "stale", "missing")
LOCK_STATES = ("cached", "outdated", "stale", "missing")


@dataclass
class Image:
    """One key of the site, with every directive that uses it."""

    spec: ImageSpec
    occurrences: list[Occurrence] = field(default_factory=list)
    state: str = "missing"
    meta: dict[str, Any] | None = None
    path: str | None = None
    # Where the image is: "lock" (the lock folder), "local" (the cache), "remote" (only the
    # remote store), "missing".
    location: str = "missing"
    pinned: Record | None = None  # the lock's image shown for an outdated directive

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def where(self) -> str:
        return where(self.occurrences)

    @property
    def brief(self) -> str:
        """Key, pages and prompt: how every listing names an image."""
        return f"{self.key[:12]}  {self.where}  {clip(self.spec.prompt)}"


@dataclass
class Site:
    config: Any
    plugin_config: ImagegenConfig
    cache_dir: str
    frozen: bool
    occurrences: list[Occurrence]
    _remote: RemoteStore | None = field(default=None, repr=False)
    lock_dir: str | None = None

    @property
    def paid(self) -> bool:
        return is_paid(self.plugin_config)

    @property
    def errors(self) -> list[Occurrence]:
        return [o for o in self.occurrences if o.spec is None]

    @property
    def states(self) -> tuple[str, ...]:
        return LOCK_STATES if self.lock_dir else STATES

    def images(self, cache: ImageCache, lock: ImageLock | None = None) -> list[Image]:
        """Every key in use, in page order, with its state in `cache`.

        A placeholder made by the fallback (no key, an error, the spending cap) lives apart from
        real images: it never makes a key `cached` when the configured provider is a real one.
        """
        by_key: dict[str, Image] = {}
        for occurrence in self.occurrences:
            if occurrence.spec is None:
                continue
            image = by_key.setdefault(occurrence.spec.key, Image(occurrence.spec))
            image.occurrences.append(occurrence)
        real_provider = self.paid
        for image in by_key.values():
            found = lock.get(image.key) if lock is not None else None
            if found is not None:
                image.state, image.meta, image.path = "cached", found.record.meta(), found.path
                image.location = "lock"
                continue
            entry = cache.get(image.key)
            fallback = cache.get(image.key, fallback=True) if entry is None and real_provider else None
            first = image.occurrences[0]
            pin = lock.pinned(first.intent, first.page) if lock is not None and first.intent else None
            if entry is not None:
                image.state, image.meta, image.path = "cached", entry.meta, entry.path
                image.location = "local"
            elif pin is not None:
                image.state, image.meta, image.path = "outdated", pin.record.meta(), pin.path
                image.location = "lock"
                image.pinned = pin.record
            elif fallback is not None:
                image.state, image.meta, image.path = "stale", fallback.meta, fallback.path
        images = list(by_key.values())
        remote = self.remote()
        if remote is not None:
            for image in images:
                if image.location == "missing" and remote.has(image.key):
                    image.location = "remote"
        return images

    def remote(self) -> RemoteStore | None:
        """The remote store of `remote_cache` (built once), or None when none is configured."""
        if self._remote is None and self.plugin_config.get("remote_cache"):
            from ..remote import RemoteConfigError, from_config

            try:
                self._remote = from_config(self.plugin_config)
            except RemoteConfigError as exc:
                raise click.ClickException(str(exc)) from None
        return self._remote


def load_site(config_file: str | None, *, drafts: bool = False) -> Site:
    """The site's directives, found by MkDocs's own build (`drafts`: as `mkdocs serve` renders)."""
    from ..plan import PlanError, plan_site

    try:
        plan = plan_site(config_file, drafts=drafts)
    except PlanError as exc:
        raise click.ClickException(str(exc)) from None
    return Site(
        config=plan.config,
        plugin_config=plan.plugin_config,
        cache_dir=plan.cache_dir,
        frozen=plan.frozen,
        occurrences=plan.occurrences,
        lock_dir=plan.lock_dir,
    )


def open_cache(site: Site) -> ImageCache:
    """The site's cache; a cache that cannot be opened is one line, not a traceback."""
    try:
        return ImageCache(site.cache_dir)
    except CacheError as exc:
        raise click.ClickException(str(exc)) from None


def open_lock(site: Site) -> ImageLock | None:
    """The site's image lock, or None when the plugin's `lock` option is off."""
    if site.lock_dir is None:
        return None
    try:
        return ImageLock(site.lock_dir)
    except LockError as exc:
        raise click.ClickException(str(exc)) from None


def site_images(site: Site) -> tuple[list[Image], ImageLock | None]:
    """Every image of the site with its state: the lock folder first, then the cache."""
    lock = open_lock(site)
    with open_cache(site) as cache:
        return site.images(cache, lock), lock


def estimate(images: Iterable[Image], paid: bool) -> float | None:
    """What generating `images` would cost, or None when a model's price is unknown."""
    if not paid:
        return 0.0
    total = 0.0
    for image in images:
        cost = pricing.estimate(image.spec)
        if cost is None:
            return None
        total += cost
    return total


def to_make(images: Iterable[Image], force: bool = False) -> list[Image]:
    """What would be paid for: not cached locally, and (unless forced) not in the remote store."""
    return [i for i in images if force or (i.state not in ("cached", "outdated") and i.location != "remote")]


def matches(image: Image, pattern: str | None) -> bool:
    """`--only`: a page path or a key."""
    if not pattern:
        return True
    return fnmatch.fnmatch(image.key, pattern) or any(
        fnmatch.fnmatch(o.page, pattern) for o in image.occurrences
    )


def echo_broken(site: Site, *, err: bool = True) -> None:
    """One line per directive that cannot be read, with its page and line."""
    for occurrence in site.errors:
        click.echo(f"error    {occurrence.where}: {occurrence.error}", err=err)
