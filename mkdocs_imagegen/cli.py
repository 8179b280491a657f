"""The `mkdocs-imagegen` command: see, generate, check, prune and report a site's images without building it.

It loads the same mkdocs.yml, walks the same pages and resolves keys through the same code as the
plugin (`site.collect` and `spec.resolve`), so the command and a build always agree on a key.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import logging
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import click

from . import __version__, pricing
from .cache import CacheError, ImageCache
from .spec import ImageSpec, Occurrence

STATES = ("cached", "stale", "missing")


@dataclass
class Image:
    """One key of the site, with every directive that uses it."""

    spec: ImageSpec
    occurrences: list[Occurrence] = field(default_factory=list)
    state: str = "missing"
    meta: dict[str, Any] | None = None
    path: str | None = None

    @property
    def key(self) -> str:
        return self.spec.key


@dataclass
class Site:
    config: Any
    plugin_config: Any
    cache_dir: str
    frozen: bool
    occurrences: list[Occurrence]

    @property
    def errors(self) -> list[Occurrence]:
        return [o for o in self.occurrences if o.spec is None]

    def images(self, cache: ImageCache) -> list[Image]:
        by_key: dict[str, Image] = {}
        for occurrence in self.occurrences:
            if occurrence.spec is None:
                continue
            image = by_key.setdefault(occurrence.spec.key, Image(occurrence.spec))
            image.occurrences.append(occurrence)
        real_provider = self.plugin_config["provider"] != "placeholder"
        for image in by_key.values():
            entry = cache.get(image.key)
            fallback = cache.get(image.key, fallback=True) if entry is None and real_provider else None
            if entry is not None:
                image.state, image.meta, image.path = "cached", entry.meta, entry.path
            elif fallback is not None:
                image.state, image.meta, image.path = "stale", fallback.meta, fallback.path
        return list(by_key.values())


def load_site(config_file: str | None) -> Site:
    from mkdocs.config import load_config
    from mkdocs.exceptions import ConfigurationError
    from mkdocs.structure.files import get_files

    from .plugin import cache_dir_for, frozen_from_env
    from .site import collect, documentation_files
    from .spec import Settings

    try:
        config = load_config(config_file)
    except ConfigurationError as exc:
        raise click.ClickException(f"cannot load the MkDocs config: {exc}") from None
    plugin = config.plugins.get("imagegen")
    if plugin is None:
        raise click.ClickException(
            f"the imagegen plugin is not enabled in {config.config_file_path}: add '- imagegen' under plugins"
        )
    settings = Settings.from_config(plugin.config, config.docs_dir)
    files = get_files(config)
    pages = collect(documentation_files(files), settings)
    occurrences = [o for _, occ in pages for o in occ]
    return Site(
        config=config,
        plugin_config=plugin.config,
        cache_dir=cache_dir_for(config, plugin.config),
        frozen=frozen_from_env(plugin.config.frozen),
        occurrences=occurrences,
    )


def open_cache(site: Site) -> ImageCache:
    try:
        return ImageCache(site.cache_dir)
    except CacheError as exc:
        raise click.ClickException(str(exc)) from None


def estimate(images: Iterable[Image]) -> float | None:
    total = 0.0
    for image in images:
        if image.spec.provider == "placeholder":
            continue
        cost = pricing.estimate(image.spec)
        if cost is None:
            return None
        total += cost
    return total


config_file_option = click.option(
    "-f",
    "--config-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Provide a specific MkDocs config (default: mkdocs.yml in the current folder).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version")
def main() -> None:
    """See, generate, check, prune and report the images of a MkDocs site."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)-7s -  %(message)s")
    logging.getLogger("mkdocs").setLevel(logging.WARNING)


def _where(image: Image) -> str:
    first = image.occurrences[0].where
    more = len(image.occurrences) - 1
    return first + (f" (+{more})" if more else "")


@main.command()
@config_file_option
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def status(config_file: str | None, as_json: bool) -> None:
    """Every directive with its page, line, key and state: cached, stale or missing."""
    site = load_site(config_file)
    with open_cache(site) as cache:
        images = site.images(cache)
    by_key = {image.key: image for image in images}
    todo = [i for i in images if i.state != "cached"]
    cost = estimate(todo)
    rows = []
    for occurrence in site.occurrences:
        row: dict[str, Any] = {"page": occurrence.page, "line": occurrence.line}
        if occurrence.spec is None:
            row.update(state="error", error=occurrence.error, key=None)
        else:
            spec = occurrence.spec
            row.update(
                key=spec.key,
                state=by_key[spec.key].state,
                provider=spec.provider,
                model=spec.model,
                size=spec.size,
                format=spec.format,
                prompt=spec.prompt,
            )
        rows.append(row)
    totals = {state: sum(1 for i in images if i.state == state) for state in STATES}
    totals.update(directives=len(site.occurrences), images=len(images), errors=len(site.errors))
    if as_json:
        click.echo(json.dumps({"directives": rows, "totals": totals, "estimated_cost": cost}, indent=2))
        return
    for row in rows:
        label = row["state"]
        detail = (
            row.get("error")
            or f"{row['provider']}/{row['model'] or '-'} {row['size']}  {_clip(row['prompt'])}"
        )
        key = (row["key"] or "-")[:12]
        click.echo(f"{label:8} {key:12}  {row['page']}:{row['line']}  {detail}")
    click.echo(
        f"{totals['directives']} directives, {totals['images']} images: {totals['cached']} cached, "
        f"{totals['stale']} stale, {totals['missing']} missing, {totals['errors']} errors; "
        f"generating the rest: {pricing.format_cost(cost)}"
    )


@main.command()
@config_file_option
@click.option("--dry-run", is_flag=True, help="Call nothing; print what would be generated and its cost.")
@click.option("--force", is_flag=True, help="Regenerate even cached images (those matching --only).")
@click.option("--only", "only", metavar="GLOB", help="Only directives whose page path or key matches GLOB.")
@click.option("--max-new-images", type=click.IntRange(min=0), help="Override the spending cap for this run.")
def generate(
    config_file: str | None, dry_run: bool, force: bool, only: str | None, max_new_images: int | None
) -> None:
    """Produce what is missing or stale, without building the site."""
    from .engine import open_engine

    site = load_site(config_file)
    for occurrence in site.errors:
        click.echo(f"error    {occurrence.where}: {occurrence.error}", err=True)
    with open_cache(site) as cache:
        images = site.images(cache)
    selected = [i for i in images if _matches(i, only)]
    todo = [i for i in selected if force or i.state != "cached"]
    cost = estimate(todo)
    if dry_run or not todo:
        for image in todo:
            click.echo(f"would generate {image.key[:12]}  {_where(image)}  {_clip(image.spec.prompt)}")
        verb = "would generate" if dry_run else "nothing to generate;"
        click.echo(f"{verb} {len(todo)} image(s), estimated cost {pricing.format_cost(cost)}")
        sys.exit(1 if site.errors else 0)

    config = dict(site.plugin_config)
    if max_new_images is not None:
        config["max_new_images"] = max_new_images
    started = time.monotonic()
    try:
        engine = open_engine(config, site.cache_dir, frozen=False)
    except CacheError as exc:
        raise click.ClickException(str(exc)) from None
    failed: list[str] = []
    counts = {"generated": 0, "cached": 0}
    with engine:
        futures = {engine.submit(image.occurrences[0], force=force): image for image in todo}
        for image in todo:
            for occurrence in image.occurrences[1:]:
                engine.submit(occurrence, force=force)
        for outcome, image in _progress(futures):
            if outcome.status in counts:
                counts[outcome.status] += 1
            else:
                failed.append(outcome.error or f"{_where(image)}: failed")
        engine.finish_report()
        spent = engine.stats.cost if engine.stats.cost_known else None
    for message in failed:
        click.echo(f"failed   {message}", err=True)
    click.echo(
        f"{counts['generated']} generated, {counts['cached']} already cached, {len(failed)} failed "
        f"in {time.monotonic() - started:.1f} s, estimated cost {pricing.format_cost(spent)}"
    )
    sys.exit(1 if failed or site.errors else 0)


def _progress(futures: dict[Any, Image]) -> Iterable[tuple[Any, Image]]:
    """Outcomes as they finish: a progress bar on a terminal, plain lines otherwise (CI logs)."""
    import concurrent.futures

    pending = concurrent.futures.as_completed(futures)
    total = len(futures)
    if sys.stdout.isatty():
        with click.progressbar(length=total, label="Generating images") as bar:
            for future in pending:
                bar.update(1)
                yield future.result(), futures[future]
        return
    for n, future in enumerate(pending, 1):
        outcome, image = future.result(), futures[future]
        click.echo(f"[{n}/{total}] {outcome.status:9} {image.key[:12]}  {_where(image)}")
        yield outcome, image


@main.command()
@config_file_option
def check(config_file: str | None) -> None:
    """Exit 1 when any directive is missing, stale or broken: the CI gate."""
    site = load_site(config_file)
    with open_cache(site) as cache:
        images = site.images(cache)
    problems = 0
    for occurrence in site.errors:
        problems += 1
        click.echo(f"error    {occurrence.where}: {occurrence.error}")
    for image in images:
        if image.state != "cached":
            for occurrence in image.occurrences:
                problems += 1
                click.echo(f"{image.state:8} {occurrence.where}  {_clip(image.spec.prompt)}")
    if problems:
        click.echo(f"{problems} directive(s) need attention: run `mkdocs-imagegen generate` with the API key")
        sys.exit(1)
    click.echo(f"all {len(images)} images are cached")


@main.command()
@config_file_option
@click.option("--dry-run", is_flag=True, help="Only print what would be removed.")
def prune(config_file: str | None, dry_run: bool) -> None:
    """Remove cache entries that no directive of the site uses any more."""
    site = load_site(config_file)
    used = {o.spec.key for o in site.occurrences if o.spec is not None}
    with open_cache(site) as cache:
        orphans: dict[str, int] = {}
        for key, _fallback, meta in cache.entries():
            if key not in used:
                orphans[key] = orphans.get(key, 0) + int(meta.get("bytes", 0))
        freed = sum(orphans.values()) if dry_run else sum(cache.delete(key) for key in orphans)
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb} {len(orphans)} unused image(s), {freed} bytes")


@main.command()
@config_file_option
@click.option(
    "-o", "--output", default="imagegen-report.html", show_default=True, type=click.Path(dir_okay=False)
)
def report(config_file: str | None, output: str) -> None:
    """Write one self-contained HTML page showing every image with its prompt, page, model and state."""
    from . import imaging, render

    site = load_site(config_file)
    rows = []
    with open_cache(site) as cache:
        images = site.images(cache)
        for image in images:
            thumb = None
            if image.path:
                with open(image.path, "rb") as fh:
                    data, mime = imaging.thumbnail(fh.read())
                thumb = f"data:{mime};base64,{base64.b64encode(data).decode()}"
            meta = image.meta or {}
            rows.append(
                {
                    "key": image.key,
                    "thumb": thumb,
                    "prompt": image.spec.prompt,
                    "pages": [o.where for o in image.occurrences],
                    "provider": image.spec.provider,
                    "model": image.spec.model or "-",
                    "size": image.spec.size,
                    "state": image.state,
                    "created": meta.get("created", ""),
                    "cost": pricing.format_cost(meta.get("cost")) if meta.get("cost") is not None else "-",
                    "revised_prompt": meta.get("revised_prompt"),
                }
            )
    html = (
        render.environment()
        .get_template("report.html")
        .render(
            site_name=site.config.site_name,
            rows=rows,
            errors=[{"where": o.where, "error": o.error} for o in site.errors],
            generated=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            totals={s: sum(1 for r in rows if r["state"] == s) for s in STATES},
        )
    )
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w", encoding="utf-8") as fh:
        fh.write(html)
    click.echo(f"wrote {output}: {len(rows)} images")


def _matches(image: Image, pattern: str | None) -> bool:
    if not pattern:
        return True
    return fnmatch.fnmatch(image.key, pattern) or any(
        fnmatch.fnmatch(o.page, pattern) for o in image.occurrences
    )


def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
