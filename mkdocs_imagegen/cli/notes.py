"""What `status` and a dry run add about the models in use: shutdowns, unknown names, re-keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .site import Image, Site, open_cache

if TYPE_CHECKING:
    from ..lifecycle import Note, Rekeyed


def model_notes(
    site: Site, images: list[Image], *, ask_api: bool = True
) -> tuple[list[Note], list[str], Rekeyed]:
    """Shutdown dates of the models in use, models not in the table, and what a model change re-keys."""
    from .. import lifecycle

    in_use = [i.spec.model for i in images]
    found = lifecycle.notes(site.plugin_config, site.cache_dir, in_use, ask_api=ask_api)
    unknown = lifecycle.unknown_models(in_use) if site.paid else []
    missing = [i.spec for i in images if i.state != "cached"]
    moved = lifecycle.Rekeyed()
    if missing:
        with open_cache(site) as cache:
            moved = lifecycle.rekeyed(missing, cache.entries())
    return found, unknown, moved


def echo_model_notes(found: list[Note], unknown: list[str], moved: Rekeyed) -> None:
    """The notes as lines after a listing: a warning for what will break, a note for the rest."""
    from .. import lifecycle

    for note in found:
        click.echo(f"warning  {note.text}")
    unknown_text = lifecycle.unknown_note(unknown)
    if unknown_text:
        click.echo(f"note     {unknown_text}")
    if moved.summary():
        click.echo(f"warning  {moved.summary()}")
