"""`status` and `check`: what the site's directives need, listed for a person or gated for CI."""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any

import click

from .. import pricing
from ..spec import Occurrence
from .notes import echo_model_notes, model_notes
from .options import config_file_option
from .site import Image, echo_broken, estimate, load_site, site_images, to_make
from .text import clip, model_label


def _row(occurrence: Occurrence, by_key: dict[str, Image], locked: bool = False) -> dict[str, Any]:
    """One directive for `status`: the same keys for every row, broken or not."""
    spec = occurrence.spec
    extra: dict[str, Any] = {}
    if locked:  # a site with a lock also says where each image comes from, and what is pinned
        image = by_key[spec.key] if spec else None
        extra = {
            "intent": occurrence.intent,
            "pinned": image.pinned.key if image and image.pinned else None,
        }
    return {
        **extra,
        "page": occurrence.page,
        "line": occurrence.line,
        "key": spec.key if spec else None,
        "state": by_key[spec.key].state if spec else "error",
        "location": by_key[spec.key].location if spec else None,
        "provider": spec.provider if spec else None,
        "model": spec.model if spec else None,
        "size": spec.size if spec else None,
        "quality": spec.quality if spec else None,
        "format": spec.format if spec else None,
        "prompt": spec.prompt if spec else None,
        "error": occurrence.error,
    }


@click.command(short_help="List every directive with its page, line, key and state.")
@config_file_option
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")
@click.option(
    "--since",
    metavar="REF",
    help="Also compare the lock's manifest at git revision REF with the working tree: added, "
    "changed, outdated and removed images and the cost of the change.",
)
def status(config_file: str | None, as_json: bool, since: str | None) -> None:
    """List every directive with its page, line, key, provider, model and state.

    The state is 'cached', 'missing' or 'stale' ('error' for a directive that cannot be read);
    with a lock also 'outdated' (the lock's pinned image is shown: the model, the template or a
    default changed; `update` regenerates it). Ends with the totals and the estimated cost of
    generating what is missing or stale.
    """
    site = load_site(config_file)
    images, lock = site_images(site)
    by_key = {image.key: image for image in images}
    cost = estimate(to_make(images), site.paid)
    rows = [_row(occurrence, by_key, lock is not None) for occurrence in site.occurrences]
    totals = {state: sum(1 for i in images if i.state == state) for state in site.states}
    totals.update(directives=len(site.occurrences), images=len(images), errors=len(site.errors))
    remote = site.remote() is not None
    if remote:
        totals["remote"] = sum(1 for i in images if i.location == "remote")
    changes = None
    if since is not None:
        from .. import review

        changes = review.changes(site, lock, images, since)
    lifecycle_notes, unknown, moved = model_notes(site, images)
    if as_json:
        data: dict[str, Any] = {
            "directives": rows,
            "totals": totals,
            "estimated_cost": cost,
            "lifecycle": [dataclasses.asdict(n) for n in lifecycle_notes],
            "unknown_models": unknown,
            "rekeyed": {"images": moved.count, "cost": moved.cost, "cached_for": sorted(moved.was)},
        }
        if changes is not None:
            data["since"] = review.as_data(changes)
        click.echo(json.dumps(data, indent=2))
        return
    for row in rows:
        if row["error"]:
            detail = row["error"]
        else:
            detail = f"{model_label(row['provider'], row['model'])} {row['size']}  {clip(row['prompt'])}"
        key = (row["key"] or "-")[:12]
        place = f"{row['location'] or '-':8}" if remote or lock is not None else ""
        click.echo(f"{row['state']:8} {place}{key:12}  {row['page']}:{row['line']}  {detail}")
    fetch = f", {totals['remote']} in the remote cache" if remote else ""
    outdated = f"{totals['outdated']} outdated, " if lock is not None else ""
    click.echo(
        f"{totals['directives']} directive(s), {totals['images']} image(s): {totals['cached']} cached, "
        f"{outdated}{totals['stale']} stale, {totals['missing']} missing{fetch}, {totals['errors']} broken; "
        f"generating the rest: {pricing.format_cost(cost)}"
    )
    if changes is not None:
        for line in review.summary(changes):
            click.echo(line)
    echo_model_notes(lifecycle_notes, unknown, moved)


@click.command(short_help="Exit 1 when any directive is missing, stale or broken (the CI gate).")
@config_file_option
def check(config_file: str | None) -> None:
    """Exit 1 when any directive is missing, stale or broken, listing each with its page and line.

    Exit 0 when every image is cached: the gate to run in CI before a frozen build.
    """
    site = load_site(config_file)
    images, _lock = site_images(site)
    problems = len(site.errors)
    echo_broken(site, err=False)
    todo = 0
    outdated = [i for i in images if i.state == "outdated"]
    for image in outdated:  # a notice, not a failure: the pinned image is real and committed
        for occurrence in image.occurrences:
            click.echo(f"outdated {occurrence.where}  {clip(image.spec.prompt)}")
    fetched = 0
    for image in images:
        if image.state == "outdated":
            continue
        if image.state != "cached" and image.location == "remote":
            fetched += 1  # a build takes it from the remote store: nothing to generate
        elif image.state != "cached":
            for occurrence in image.occurrences:
                todo += 1
                click.echo(f"{image.state:8} {occurrence.where}  {clip(image.spec.prompt)}")
    if problems or todo:
        hints = []
        if todo:
            hints.append("run `mkdocs-imagegen generate` to make the missing and stale images")
        if problems:
            hints.append("fix the broken directives")
        click.echo(f"{problems + todo} directive(s) need attention: {' and '.join(hints)}")
        sys.exit(1)
    fetch = f" ({fetched} in the remote cache, fetched by the build)" if fetched else ""
    click.echo(f"all {len(images)} image(s) of {len(site.occurrences)} directive(s) are cached{fetch}")
    if outdated:
        click.echo(
            f"notice: {len(outdated)} of them are outdated (their model, template or a default changed) "
            "and shown from the lock's pins; `mkdocs-imagegen update --dry-run` lists them with their cost"
        )
