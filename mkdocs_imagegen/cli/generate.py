"""`generate` and `update`: choose what to make, then hand it to the shared run in `make`."""

from __future__ import annotations

import click

from .make import make
from .options import making_options
from .site import echo_broken, estimate, load_site, matches, site_images
from .text import estimated


@click.command(short_help="Generate what is missing or stale, without building the site.")
@making_options(
    dry_run="Generate nothing; print what would be generated and its cost (with provider lumenfall and "
    "a key, also Lumenfall's own free estimate).",
    force=True,
    max_new_images="Generate at most N paid images in this run, leaving the rest for later (default: the "
    "plugin's max_new_images, so an unattended CI run never spends more than a build would).",
)
@click.option(
    "--push",
    is_flag=True,
    help="Then upload every real image the local cache has and the remote store (remote_cache) lacks.",
)
def generate(
    config_file: str | None,
    dry_run: bool,
    force: bool,
    only: str | None,
    max_new_images: int | None,
    push: bool = False,
) -> None:
    """Generate every image that is missing or stale, without building the site.

    Shows a progress bar on a terminal and one line per image otherwise, then a summary. Exits 1
    when any image failed or any directive is broken. Frozen mode does not apply: this command is
    how a frozen site's cache gets filled.
    """
    site = load_site(config_file)
    echo_broken(site)
    images, _lock = site_images(site)
    selected = [i for i in images if matches(i, only)]
    if only and not selected:
        raise click.ClickException(f"no image of the site matches --only {only!r} (a page path or a key)")
    # An outdated image is pinned on purpose: `update` is how it gets regenerated.
    todo = [i for i in selected if force or i.state not in ("cached", "outdated")]
    make(site, selected, todo, dry_run=dry_run, force=force, max_new_images=max_new_images, push=push)


@click.command(short_help="Regenerate the outdated images of the lock, on purpose.")
@making_options(
    dry_run="Call nothing; print what would be regenerated and its cost.",
    max_new_images="Regenerate at most N paid images in this run (default: the plugin's max_new_images).",
)
def update(config_file: str | None, dry_run: bool, only: str | None, max_new_images: int | None) -> None:
    """Regenerate the images shown from the lock's pins because their model, template or a default changed.

    Prints what will be regenerated and its estimated cost first, and applies the spending cap like
    `generate`. Each new image replaces its pin in the lock folder and the manifest; a pin that
    another directive still shows stays.
    """
    site = load_site(config_file)
    if site.lock_dir is None:
        raise click.ClickException(
            "update works on the image lock: set the plugin's lock option (for example lock: docs-images)"
        )
    images, _lock = site_images(site)
    todo = [i for i in images if i.state == "outdated" and matches(i, only)]
    if only and not todo:
        raise click.ClickException(f"no outdated image of the site matches --only {only!r}")
    for image in todo:
        old = image.pinned
        was = f"(was {old.key[:12]}, {old.model or old.provider})" if old else ""
        click.echo(f"outdated {image.brief}  {was}")
    cost = estimated(estimate(todo, site.paid))
    click.echo(f"{len(todo)} outdated image(s) to regenerate, {cost}")
    chosen = {i.key for i in todo}
    # Keys the other directives still show, so their pins survive.
    keep = {i.key for i in images if i.key not in chosen} | {
        i.pinned.key for i in images if i.pinned is not None and i.key not in chosen
    }
    make(site, todo, todo, dry_run=dry_run, force=False, max_new_images=max_new_images, pins_kept=keep)
