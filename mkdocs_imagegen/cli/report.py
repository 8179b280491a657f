"""`report`: one self-contained HTML page of every image, to mail or keep as a CI artifact."""

from __future__ import annotations

import base64
import os
import time
from typing import Any

import click

from .. import pricing
from .options import config_file_option
from .site import Image, estimate, load_site, site_images


@click.command(short_help="Write a self-contained HTML page showing every image.")
@config_file_option
@click.option(
    "-o",
    "--output",
    default="imagegen-report.html",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The HTML file to write.",
)
@click.option(
    "--since",
    metavar="REF",
    help="Show first what changed in the lock since git revision REF: added, changed (old and new "
    "side by side), outdated and removed images, with the cost of the change.",
)
def report(config_file: str | None, output: str, since: str | None) -> None:
    """Write one self-contained HTML page showing every image of the site.

    Each image (an embedded thumbnail) comes with its prompt, pages and lines, model, size, state,
    creation date and cost. The page loads nothing from elsewhere: mail it, or keep it as a CI artifact.
    """
    from .. import render

    site = load_site(config_file)
    spent = 0.0
    images, lock = site_images(site)
    changes = None
    if since is not None:
        from .. import review

        changes = review.as_html(review.changes(site, lock, images, since), _data_uri)
    rows = []
    for image in images:
        meta = image.meta or {}
        cost = meta.get("cost") if image.state in ("cached", "outdated") else None
        if isinstance(cost, (int, float)):
            spent += cost
        rows.append(_row(image, meta, cost))
    html = (
        render.environment()
        .get_template("report.html")
        .render(
            site_name=site.config.site_name,
            rows=rows,
            errors=[{"where": o.where, "error": o.error} for o in site.errors],
            generated=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            totals={s: sum(1 for r in rows if r["state"] == s) for s in site.states},
            spent=pricing.format_cost(spent),
            to_do=pricing.format_cost(
                estimate((i for i in images if i.state not in ("cached", "outdated")), site.paid)
            ),
            changes=changes,
        )
    )
    try:
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(html)
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from None
    click.echo(f"wrote {output}: {len(rows)} image(s), {len(site.errors)} broken directive(s)")


def _row(image: Image, meta: dict[str, Any], cost: Any) -> dict[str, Any]:
    """One image as the report's template shows it."""
    return {
        "key": image.key,
        "thumb": _thumbnail(image.path) if image.path else None,
        "prompt": image.spec.prompt,
        "pages": [o.where for o in image.occurrences],
        "provider": image.spec.provider,
        "model": image.spec.model or "-",
        "size": image.spec.size,
        "state": image.state,
        "created": meta.get("created", ""),
        "cost": pricing.format_cost(cost) if isinstance(cost, (int, float)) else "-",
        "revised_prompt": meta.get("revised_prompt") if image.state == "cached" else None,
    }


def _thumbnail(path: str) -> str | None:
    """A data: URI of a small preview, or None when the cached file cannot be read."""
    try:
        with open(path, "rb") as fh:
            return _data_uri(fh.read())
    except OSError:
        return None


def _data_uri(data: bytes) -> str | None:
    """An image small enough to embed, so that the page loads nothing from elsewhere."""
    from .. import imaging

    try:
        thumb, mime = imaging.thumbnail(data)
    except imaging.ImageError:
        return None
    return f"data:{mime};base64,{base64.b64encode(thumb).decode()}"
