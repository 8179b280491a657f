"""`prune`: remove what no directive of the site uses any more, from the cache, the lock or the store."""

from __future__ import annotations

import os
from typing import Any

import click

from ..lock import LockError
from .options import config_file_option
from .site import Site, echo_broken, load_site, open_cache, site_images
from .text import clip, human


@click.command(short_help="Remove cache entries that no directive uses any more.")
@config_file_option
@click.option("--dry-run", is_flag=True, help="Only print what would be removed.")
@click.option(
    "--remote",
    "in_remote",
    is_flag=True,
    help="Prune the remote store (remote_cache) instead of the local cache: only under this site's prefix.",
)
def prune(config_file: str | None, dry_run: bool, in_remote: bool = False) -> None:
    """Remove cache entries, and lock images and lines, that no directive of the site uses any more.

    Refuses while any directive is broken: its image cannot be told from an unused one. Careful
    with a cache_dir shared by several sites: what only the other sites use is removed too.
    """
    site = load_site(config_file, drafts=True)
    echo_broken(site)
    if site.errors:
        # The image a broken directive used has no key now; fixing the directive would need it again.
        would = "prune would refuse: " if dry_run else ""
        raise click.ClickException(
            f"{would}{len(site.errors)} broken directive(s): "
            "fix them first, so that the images they use are kept"
        )
    used = {o.spec.key for o in site.occurrences if o.spec is not None}
    if in_remote:
        _prune_remote(site, used, dry_run)
        return
    verb = "would remove" if dry_run else "removed"
    images, lock = site_images(site)
    with open_cache(site) as cache:
        orphans: dict[str, int] = {}
        lines: list[str] = []
        for key, fallback, meta in sorted(cache.entries(), key=lambda e: (_text(e[2].get("created")), e[0])):
            if key in used:
                continue
            size = _int(meta.get("bytes"))
            orphans[key] = orphans.get(key, 0) + size
            lines.append(_orphan_line(verb, key, fallback, meta, size))
        freed = sum(orphans.values()) if dry_run else sum(cache.delete(key) for key in orphans)
        strays = cache.strays()
        if not dry_run:  # what is gone, not what was listed: one may have been rewritten meanwhile
            strays = [(path, cache.remove_stray(path)) for path, _ in strays]
            strays = [(path, size) for path, size in strays if size]
    for line in lines:
        click.echo(line)
    click.echo(f"{verb} {len(orphans)} unused image(s), {freed} bytes ({human(freed)})")
    for path, size in strays:
        click.echo(
            f"{verb:12} {os.path.relpath(path, site.cache_dir)}  {human(size)}  (left by an interrupted run)"
        )
    if strays:
        size = sum(s for _, s in strays)
        click.echo(f"{verb} {len(strays)} stray file(s) an interrupted run left in the cache, {human(size)}")
    if lock is not None:
        # A pinned image is in use: the outdated directive shows it.
        pinned = {i.pinned.key for i in images if i.pinned is not None}
        unused = [r for r in lock.records() if r.key not in used and r.key not in pinned]
        size = sum(r.bytes for r in unused)
        for record in unused:
            meta = {**record.meta(), "created": record.created}
            click.echo(_orphan_line(verb, record.key, False, meta, record.bytes) + "  (lock)")
        if not dry_run:
            for record in unused:
                lock.remove(record.key)
            try:
                lock.save()
            except (LockError, OSError) as exc:
                raise click.ClickException(f"cannot write the lock: {exc}") from None
        click.echo(f"{verb} {len(unused)} unused image(s) from the lock, {size} bytes ({human(size)})")


def _prune_remote(site: Site, used: set[str], dry_run: bool) -> None:
    """Remove the store's entries (record, image, lease) that no directive of this site uses."""
    remote = site.remote()
    if remote is None:
        raise click.ClickException("--remote needs remote_cache in mkdocs.yml")
    if not remote.writable and not dry_run:
        raise click.ClickException("the remote cache is read-only (remote_cache_mode): nothing is removed")
    try:
        orphans = {key: size for key, size in remote.entries() if key not in used}
        for key, size in sorted(orphans.items()):
            click.echo(f"{'would remove' if dry_run else 'removing'} {key}  {human(size)}")
            if not dry_run:
                remote.delete(key)
    except Exception as exc:  # the store's own errors: one line, never a traceback
        raise click.ClickException(
            f"the remote cache {remote.url} cannot be pruned: {type(exc).__name__}"
        ) from None
    freed = sum(orphans.values())
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb} {len(orphans)} unused image(s) from {remote.url}, {freed} bytes ({human(freed)})")


def _orphan_line(verb: str, key: str, fallback: bool, meta: dict[str, Any], size: int) -> str:
    """One cache entry as prune lists it; the metadata is read back from disk, so never trusted."""
    width, height = _int(meta.get("width")), _int(meta.get("height"))
    dims = f"{width}x{height}" if width and height else "?x?"
    created = _text(meta.get("created"))[:20] or "date unknown"
    kind = "placeholder " if fallback else ""
    words = "".join(ch for ch in _text(meta.get("prompt")) if ch.isprintable() or ch.isspace()).split()
    prompt = clip(" ".join(words) or "(no prompt recorded)")
    return f"{verb:12} {key}  {kind}{dims}  {human(size)}  {created}  {prompt}"


def _int(value: Any) -> int:
    """A size or a dimension from untrusted metadata: a count, or 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _text(value: Any) -> str:
    """A string from untrusted metadata, or ''."""
    return value if isinstance(value, str) else ""
