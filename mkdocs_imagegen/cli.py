"""The `mkdocs-imagegen` command: see, generate, check, prune and report a site's images without building it.

It learns the site's directives through MkDocs's own build, with every configured plugin and the
imagegen plugin in plan mode (`plan.plan_site`), so the command and a build always agree on a key.
"""

from __future__ import annotations

import base64
import dataclasses
import fnmatch
import json
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from . import __version__, pricing
from .cache import CacheError, ImageCache
from .config import ImagegenConfig
from .lock import ImageLock, LockError, Record
from .runtime import is_paid
from .spec import ImageSpec, Occurrence, where

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar

    from .remote import RemoteStore

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
            from .remote import RemoteConfigError, from_config

            try:
                self._remote = from_config(self.plugin_config)
            except RemoteConfigError as exc:
                raise click.ClickException(str(exc)) from None
        return self._remote


def load_site(config_file: str | None, *, drafts: bool = False) -> Site:
    """The site's directives, found by MkDocs's own build (`drafts`: as `mkdocs serve` renders)."""
    from .plan import PlanError, plan_site

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
    try:
        return ImageCache(site.cache_dir)
    except CacheError as exc:
        raise click.ClickException(str(exc)) from None


def open_lock(site: Site) -> ImageLock | None:
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


config_file_option = click.option(
    "-f",
    "--config-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Provide a specific MkDocs config (default: mkdocs.yml in the current folder).",
)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=(
        "States: 'cached' (a real image for the key is in the cache), 'missing' (nothing cached), "
        "'stale' (only a placeholder made because real generation was impossible: no API key, an "
        "error or the spending cap). Run `mkdocs-imagegen COMMAND --help` for a command's options."
    ),
)
@click.version_option(__version__, "-V", "--version", prog_name="mkdocs-imagegen")
def main() -> None:
    """See, generate, check, prune and report the images of a MkDocs site.

    Every command reads the site's mkdocs.yml and pages like `mkdocs build` does, without building
    the site, and uses the plugin's cache (cache_dir).
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)-7s -  %(message)s")
    logging.getLogger("mkdocs").setLevel(logging.WARNING)


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


@main.command(short_help="List every directive with its page, line, key and state.")
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
    cost = estimate(_to_make(images), site.paid)
    rows = [_row(occurrence, by_key, lock is not None) for occurrence in site.occurrences]
    totals = {state: sum(1 for i in images if i.state == state) for state in site.states}
    totals.update(directives=len(site.occurrences), images=len(images), errors=len(site.errors))
    remote = site.remote() is not None
    if remote:
        totals["remote"] = sum(1 for i in images if i.location == "remote")
    changes = None
    if since is not None:
        from . import review

        changes = review.changes(site, lock, images, since)
    lifecycle_notes, unknown, moved = _model_notes(site, images)
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
            detail = f"{_model_label(row['provider'], row['model'])} {row['size']}  {_clip(row['prompt'])}"
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
    _echo_model_notes(lifecycle_notes, unknown, moved)


def _model_notes(
    site: Site, images: list[Image], *, ask_api: bool = True
) -> tuple[list[Any], list[str], Any]:
    """Shutdown dates of the models in use, models not in the table, and what a model change re-keys."""
    from . import lifecycle

    in_use = [i.spec.model for i in images]
    found = lifecycle.notes(site.plugin_config, site.cache_dir, in_use, ask_api=ask_api)
    unknown = lifecycle.unknown_models(in_use) if site.paid else []
    missing = [i.spec for i in images if i.state != "cached"]
    moved = lifecycle.Rekeyed()
    if missing:
        with open_cache(site) as cache:
            moved = lifecycle.rekeyed(missing, cache.entries())
    return found, unknown, moved


def _echo_model_notes(found: list[Any], unknown: list[str], moved: Any) -> None:
    from . import lifecycle

    for note in found:
        click.echo(f"warning  {note.text}")
    unknown_text = lifecycle.unknown_note(unknown)
    if unknown_text:
        click.echo(f"note     {unknown_text}")
    if moved.summary():
        click.echo(f"warning  {moved.summary()}")


@main.command(short_help="Generate what is missing or stale, without building the site.")
@config_file_option
@click.option(
    "--dry-run",
    is_flag=True,
    help="Generate nothing; print what would be generated and its cost (with provider lumenfall and "
    "a key, also Lumenfall's own free estimate).",
)
@click.option("--force", is_flag=True, help="Regenerate cached images too (only those matching --only).")
@click.option(
    "--only",
    "only",
    metavar="GLOB",
    help="Only images used on a page whose path (relative to docs_dir) matches GLOB, or whose key does.",
)
@click.option(
    "--max-new-images",
    type=click.IntRange(min=0),
    metavar="N",
    help="Generate at most N paid images in this run, leaving the rest for later (default: the "
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
    for occurrence in site.errors:
        click.echo(f"error    {occurrence.where}: {occurrence.error}", err=True)
    images, _lock = site_images(site)
    selected = [i for i in images if _matches(i, only)]
    if only and not selected:
        raise click.ClickException(f"no image of the site matches --only {only!r} (a page path or a key)")
    # An outdated image is pinned on purpose: `update` is how it gets regenerated.
    todo = [i for i in selected if force or i.state not in ("cached", "outdated")]
    _make(site, selected, todo, dry_run=dry_run, force=force, max_new_images=max_new_images, push=push)


def _make(
    site: Site,
    selected: list[Image],
    todo: list[Image],
    *,
    dry_run: bool,
    force: bool,
    max_new_images: int | None,
    pins_kept: set[str] | None = None,
    push: bool = False,
) -> None:
    """Generate `todo` (within the cap), report, and exit: `generate` and `update` alike.

    `pins_kept` (update): the keys every other directive still shows, so that the run replaces
    only the pins of what it regenerates.
    """
    from .runtime import open_engine

    broken = f", {len(site.errors)} broken directive(s)" if site.errors else ""
    held: list[Image] = []
    if max_new_images is None and site.paid:
        max_new_images = site.plugin_config.max_new_images
    make = _to_make(todo, force or pins_kept is not None)
    if max_new_images is not None and len(make) > max_new_images:
        # The cap counts what would be paid for; fetching from the remote store is free.
        held = make[max_new_images:]
        todo = [i for i in todo if i not in held]
    held_back = f", {len(held)} held back by max_new_images ({max_new_images})" if held else ""
    max_cost = site.plugin_config.max_cost if site.paid else None
    _, over = _within_cost(_to_make(todo, force), max_cost)  # fetching from the remote is free
    todo = [i for i in todo if i not in over]
    if over:
        cap = pricing.format_cost(max_cost)
        held_back += f", {len(over)} held back by max_cost ({cap}; an unknown cost counts as over it)"

    # The command reports failures itself (no placeholder is stored), and the cap was applied to
    # the plan above: the engine is given only what the plan allows. keep_going: one refused
    # prompt fails that image only; a rejected key or no credit stops the rest.
    try:
        engine = open_engine(
            site.plugin_config,
            site.cache_dir,
            frozen=False,
            on_error="fail",
            uncapped=True,
            keep_going=True,
            lock_dir=site.lock_dir,
            keep_outdated=pins_kept is None,
        )
    except (CacheError, LockError) as exc:
        raise click.ClickException(str(exc)) from None
    if engine.lock is not None:
        engine.lock.keep, engine.lock.replace_pins = pins_kept or set(), pins_kept is not None
    with engine:
        # Asked for a dry run too, so that it refuses exactly when the real run would.
        make = _to_make(todo, force or pins_kept is not None)
        reason = engine.provider.unavailable_reason() if make else None
        if dry_run or not todo:
            for image in todo:
                verb = "would generate" if image in make else "would fetch   "
                click.echo(f"{verb} {image.key[:12]}  {image.where}  {_clip(image.spec.prompt)}")
            _echo_held(held, max_new_images)
            _echo_over(over, max_cost)
            if dry_run:
                cost = _estimated(estimate(make, site.paid))
                fetch = (
                    f", fetch {len(todo) - len(make)} from the remote cache" if len(make) < len(todo) else ""
                )
                quoted = _gateway_estimate(site, make) if not reason else ""
                click.echo(f"would generate {len(make)} image(s), {cost}{quoted}{fetch}{held_back}{broken}")
                _echo_model_notes(*_model_notes(site, selected, ask_api=False))  # a dry run asks nothing more
                if reason:
                    raise click.ClickException(f"{reason}. The real run would generate nothing")
            else:
                cached = sum(1 for i in selected if i.state == "cached")
                click.echo(f"nothing to generate: {cached} image(s) cached{held_back}{broken}")
                if push:
                    _push(site)
            sys.exit(1 if site.errors else 0)
        if reason:
            raise click.ClickException(f"{reason}. Nothing was generated ({len(todo)} image(s) to do)")
        started = time.monotonic()
        failed: list[str] = []
        untried: list[str] = []
        counts = {"generated": 0, "cached": 0}
        futures = {engine.submit(image.occurrences[0], force=force): image for image in todo}
        for image in todo:
            for occurrence in image.occurrences[1:]:
                engine.submit(occurrence, force=force)
        for outcome, image in _progress(futures):
            if outcome.status in counts:
                counts[outcome.status] += 1
            elif outcome.untried:
                untried.append(outcome.error or f"{image.where}: not tried")
            else:
                failed.append(outcome.error or f"{image.where}: failed")
        spent = engine.stats.cost if engine.stats.cost_known else None
        fetched = engine.stats.remote
    for message in failed:
        click.echo(f"failed   {message}", err=True)
    for message in untried:
        click.echo(f"untried  {message}", err=True)
    _echo_held(held, max_new_images)
    _echo_over(over, max_cost)
    not_tried = f", {len(untried)} not tried" if untried else ""
    fetch = f" ({fetched} from the remote cache)" if fetched else ""
    click.echo(
        f"{counts['generated']} generated, {counts['cached']} already cached{fetch}, {len(failed)} failed"
        f"{not_tried}{held_back}{broken} in {time.monotonic() - started:.1f} s, {_estimated(spent)}"
    )
    if push:
        _push(site)
    sys.exit(1 if failed or untried or site.errors else 0)


def _to_make(images: Iterable[Image], force: bool = False) -> list[Image]:
    """What would be paid for: not cached locally, and (unless forced) not in the remote store."""
    return [i for i in images if force or (i.state not in ("cached", "outdated") and i.location != "remote")]


def _push(site: Site) -> None:
    """Upload every real image the local cache has and the remote store lacks (create-only)."""
    remote = site.remote()
    if remote is None:
        raise click.ClickException(
            "--push needs remote_cache in mkdocs.yml (s3://bucket/prefix or file:///path)"
        )
    if not remote.writable:
        raise click.ClickException(
            "--push needs remote_cache_mode: read-write; this site's store is read-only"
        )
    pushed = present = 0
    with open_cache(site) as cache:
        for image in site.images(cache):
            if image.state != "cached" or image.path is None or image.meta is None:
                continue
            if remote.has(image.key):
                present += 1
                continue
            with open(image.path, "rb") as fh:
                data = fh.read()
            if remote.put(image.key, data, image.meta):
                pushed += 1
    if not remote.available:
        raise click.ClickException(
            f"the remote cache could not be used; {pushed} image(s) pushed before it failed"
        )
    click.echo(f"pushed {pushed} image(s) to {remote.url}; {present} were there already")


@main.command(short_help="Regenerate the outdated images of the lock, on purpose.")
@config_file_option
@click.option("--dry-run", is_flag=True, help="Call nothing; print what would be regenerated and its cost.")
@click.option(
    "--only",
    "only",
    metavar="GLOB",
    help="Only images used on a page whose path (relative to docs_dir) matches GLOB, or whose key does.",
)
@click.option(
    "--max-new-images",
    type=click.IntRange(min=0),
    metavar="N",
    help="Regenerate at most N paid images in this run (default: the plugin's max_new_images).",
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
    todo = [i for i in images if i.state == "outdated" and _matches(i, only)]
    if only and not todo:
        raise click.ClickException(f"no outdated image of the site matches --only {only!r}")
    for image in todo:
        old = image.pinned
        was = f"(was {old.key[:12]}, {old.model or old.provider})" if old else ""
        click.echo(f"outdated {image.key[:12]}  {image.where}  {_clip(image.spec.prompt)}  {was}")
    cost = _estimated(estimate(todo, site.paid))
    click.echo(f"{len(todo)} outdated image(s) to regenerate, {cost}")
    chosen = {i.key for i in todo}
    # Keys the other directives still show, so their pins survive.
    keep = {i.key for i in images if i.key not in chosen} | {
        i.pinned.key for i in images if i.pinned is not None and i.key not in chosen
    }
    _make(site, todo, todo, dry_run=dry_run, force=False, max_new_images=max_new_images, pins_kept=keep)


def _within_cost(todo: list[Image], max_cost: float | None) -> tuple[list[Image], list[Image]]:
    """The images whose estimated costs fit in `max_cost`, in order, and the rest."""
    if max_cost is None:
        return todo, []
    kept: list[Image] = []
    over: list[Image] = []
    total = 0.0
    for image in todo:
        cost = pricing.estimate(image.spec)
        if cost is None or total + cost > max_cost + 1e-9:
            over.append(image)
        else:
            total += cost
            kept.append(image)
    return kept, over


def _echo_over(over: list[Image], max_cost: float | None) -> None:
    for image in over:
        click.echo(
            f"held back {image.key[:12]}  {image.where}  {_clip(image.spec.prompt)}  "
            f"(max_cost {pricing.format_cost(max_cost)}; raise it in mkdocs.yml to go further)"
        )


def _echo_held(held: list[Image], cap: int | None) -> None:
    for image in held:
        click.echo(
            f"held back {image.key[:12]}  {image.where}  {_clip(image.spec.prompt)}  "
            f"(max_new_images {cap}; --max-new-images N to go further)"
        )


def _gateway_estimate(site: Site, todo: list[Image]) -> str:
    """Lumenfall's own estimate (`?dryRun=true`: nothing generated, nothing billed), when a key is set."""
    if site.plugin_config["provider"] != "lumenfall" or not todo:
        return ""
    import asyncio

    from .providers import GenerationRequest
    from .providers.openai import OpenAIProvider

    async def ask() -> float | None:
        provider = OpenAIProvider.from_config(site.plugin_config)
        if provider.unavailable_reason():
            await provider.aclose()
            return None
        total = 0.0
        quotes: dict[tuple[Any, ...], float | None] = {}  # one question per kind of request
        try:
            for image in todo:
                occurrence = image.occurrences[0]
                spec = image.spec
                shape = (
                    spec.model,
                    spec.size,
                    spec.quality,
                    spec.background,
                    spec.format,
                    spec.output_compression,
                )
                if shape not in quotes:
                    request = GenerationRequest(
                        spec=spec, moderation=occurrence.moderation, source_path=occurrence.source_path
                    )
                    quotes[shape] = await provider.dry_run_cost(request)
                cost = quotes[shape]
                if cost is None:
                    return None
                total += cost
        finally:
            await provider.aclose()
        return total

    quoted = asyncio.run(ask())
    return "" if quoted is None else f" (Lumenfall's own estimate: {pricing.format_cost(quoted)})"


def _interactive() -> bool:
    return sys.stdout.isatty()


def _progress(futures: dict[Any, Image]) -> Iterator[tuple[Any, Image]]:
    """Outcomes as they finish: a live line on a terminal, one plain line per image otherwise.

    Both tell done of total, failures so far, the cost so far and the time left, so a long run in
    a CI log says as much as one on a terminal.
    """
    import concurrent.futures

    pending = concurrent.futures.as_completed(futures)
    total = len(futures)
    started = time.monotonic()
    failures = 0
    cost: float | None = 0.0  # of the images reported so far, so every line adds up

    def count(outcome: Any) -> None:
        nonlocal failures, cost
        failures += outcome.status == "failed"
        if outcome.status == "generated" and cost is not None:
            spent = outcome.entry.meta.get("cost") if outcome.entry is not None else None
            cost = cost + spent if isinstance(spent, (int, float)) else None

    def tally(done: int) -> str:
        spent = "cost unknown" if cost is None else f"{pricing.format_cost(cost)} so far"
        left = ""
        if 0 < done < total:
            left = f", about {_duration((time.monotonic() - started) / done * (total - done))} left"
        return f"{failures} failed, {spent}{left}"

    if _interactive():

        def show(done: int | None) -> str | None:
            return tally(done) if done is not None else None

        bar: ProgressBar[int | None]
        with click.progressbar(
            length=total, label="Generating images", show_pos=True, show_eta=False, item_show_func=show
        ) as bar:
            for n, future in enumerate(pending, 1):
                outcome = future.result()
                count(outcome)
                bar.update(1, n)
                yield outcome, futures[future]
        return
    for n, future in enumerate(pending, 1):
        outcome, image = future.result(), futures[future]
        count(outcome)
        status = "untried" if outcome.untried else outcome.status
        click.echo(f"[{n}/{total}] {status:9} {image.key[:12]}  {image.where}  ({tally(n)})")
        yield outcome, image


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@main.command(short_help="Exit 1 when any directive is missing, stale or broken (the CI gate).")
@config_file_option
def check(config_file: str | None) -> None:
    """Exit 1 when any directive is missing, stale or broken, listing each with its page and line.

    Exit 0 when every image is cached: the gate to run in CI before a frozen build.
    """
    site = load_site(config_file)
    images, _lock = site_images(site)
    problems = 0
    for occurrence in site.errors:
        problems += 1
        click.echo(f"error    {occurrence.where}: {occurrence.error}")
    todo = 0
    outdated = [i for i in images if i.state == "outdated"]
    for image in outdated:  # a notice, not a failure: the pinned image is real and committed
        for occurrence in image.occurrences:
            click.echo(f"outdated {occurrence.where}  {_clip(image.spec.prompt)}")
    fetched = 0
    for image in images:
        if image.state == "outdated":
            continue
        if image.state != "cached" and image.location == "remote":
            fetched += 1  # a build takes it from the remote store: nothing to generate
        elif image.state != "cached":
            for occurrence in image.occurrences:
                todo += 1
                click.echo(f"{image.state:8} {occurrence.where}  {_clip(image.spec.prompt)}")
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


@main.command(short_help="Remove cache entries that no directive uses any more.")
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
    for occurrence in site.errors:
        click.echo(f"error    {occurrence.where}: {occurrence.error}", err=True)
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
    for line in lines:
        click.echo(line)
    click.echo(f"{verb} {len(orphans)} unused image(s), {freed} bytes ({_human(freed)})")
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
        click.echo(f"{verb} {len(unused)} unused image(s) from the lock, {size} bytes ({_human(size)})")


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
            click.echo(f"{'would remove' if dry_run else 'removing'} {key}  {_human(size)}")
            if not dry_run:
                remote.delete(key)
    except Exception as exc:  # the store's own errors: one line, never a traceback
        raise click.ClickException(
            f"the remote cache {remote.url} cannot be pruned: {type(exc).__name__}"
        ) from None
    freed = sum(orphans.values())
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb} {len(orphans)} unused image(s) from {remote.url}, {freed} bytes ({_human(freed)})")


def _orphan_line(verb: str, key: str, fallback: bool, meta: dict[str, Any], size: int) -> str:
    """One cache entry as prune lists it; the metadata is read back from disk, so never trusted."""
    width, height = _int(meta.get("width")), _int(meta.get("height"))
    dims = f"{width}x{height}" if width and height else "?x?"
    created = _text(meta.get("created"))[:20] or "date unknown"
    kind = "placeholder " if fallback else ""
    words = "".join(ch for ch in _text(meta.get("prompt")) if ch.isprintable() or ch.isspace()).split()
    prompt = _clip(" ".join(words) or "(no prompt recorded)")
    return f"{verb:12} {key}  {kind}{dims}  {_human(size)}  {created}  {prompt}"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


@main.command(short_help="Write a self-contained HTML page showing every image.")
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
    from . import render

    site = load_site(config_file)
    rows = []
    spent = 0.0
    images, lock = site_images(site)
    changes = None
    if since is not None:
        from . import review

        changes = review.as_html(review.changes(site, lock, images, since), _data_uri)
    for image in images:
        meta = image.meta or {}
        cost = meta.get("cost") if image.state in ("cached", "outdated") else None
        if isinstance(cost, (int, float)):
            spent += cost
        rows.append(
            {
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
        )
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


def _thumbnail(path: str) -> str | None:
    """A data: URI of a small preview, or None when the cached file cannot be read."""
    try:
        with open(path, "rb") as fh:
            return _data_uri(fh.read())
    except OSError:
        return None


def _data_uri(data: bytes) -> str | None:
    from . import imaging

    try:
        thumb, mime = imaging.thumbnail(data)
    except imaging.ImageError:
        return None
    return f"data:{mime};base64,{base64.b64encode(thumb).decode()}"


def _matches(image: Image, pattern: str | None) -> bool:
    if not pattern:
        return True
    return fnmatch.fnmatch(image.key, pattern) or any(
        fnmatch.fnmatch(o.page, pattern) for o in image.occurrences
    )


def _estimated(cost: float | None) -> str:
    """'estimated cost $0.088', or 'cost unknown' when a model has no known price."""
    return "cost unknown" if cost is None else f"estimated cost {pricing.format_cost(cost)}"


def _model_label(provider: str | None, model: str | None) -> str:
    """`openai/gpt-image-2`; a gateway name that already says its vendor is not prefixed twice."""
    if model and provider and model.lower().startswith(f"{provider.lower()}/"):
        return model
    return f"{provider}/{model or '-'}"


def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _human(size: int) -> str:
    if size < 1000:
        return f"{size} bytes"
    amount = size / 1000
    for unit in ("kB", "MB"):
        if amount < 1000:
            return f"{amount:.1f} {unit}"
        amount /= 1000
    return f"{amount:.1f} GB"


if __name__ == "__main__":
    main(prog_name="mkdocs-imagegen")
