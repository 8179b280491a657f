"""The run `generate` and `update` share: the spending caps, the engine, the summary, the exit code."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from .. import pricing
from ..cache import CacheError
from ..lock import LockError
from .notes import echo_model_notes, model_notes
from .progress import progress
from .site import Image, Site, estimate, open_cache, to_make
from .text import estimated

if TYPE_CHECKING:
    from ..engine import Engine


@dataclass
class Capped:
    """What a run may make under max_new_images and max_cost, and what each cap held back."""

    todo: list[Image]
    max_new_images: int | None
    max_cost: float | None
    held: list[Image] = field(default_factory=list)  # by max_new_images
    over: list[Image] = field(default_factory=list)  # by max_cost

    @property
    def held_back(self) -> str:
        """The summary's words for the held back images ('' when none)."""
        text = f", {len(self.held)} held back by max_new_images ({self.max_new_images})" if self.held else ""
        if self.over:
            cap = pricing.format_cost(self.max_cost)
            text += f", {len(self.over)} held back by max_cost ({cap}; an unknown cost counts as over it)"
        return text

    def echo(self) -> None:
        """One line per held back image, saying which cap to raise."""
        for image in self.held:
            click.echo(
                f"held back {image.brief}  "
                f"(max_new_images {self.max_new_images}; --max-new-images N to go further)"
            )
        for image in self.over:
            click.echo(
                f"held back {image.brief}  "
                f"(max_cost {pricing.format_cost(self.max_cost)}; raise it in mkdocs.yml to go further)"
            )


def cap(
    site: Site, todo: list[Image], *, force: bool, max_new_images: int | None, regenerate: bool
) -> Capped:
    """Apply max_new_images (to what would be paid for) and then max_cost to `todo`, in order."""
    if max_new_images is None and site.paid:
        max_new_images = site.plugin_config.max_new_images
    capped = Capped(todo, max_new_images, site.plugin_config.max_cost if site.paid else None)
    make = to_make(todo, force or regenerate)
    if max_new_images is not None and len(make) > max_new_images:
        # The cap counts what would be paid for; fetching from the remote store is free.
        capped.held = make[max_new_images:]
        capped.todo = [i for i in capped.todo if i not in capped.held]
    _, capped.over = within_cost(to_make(capped.todo, force), capped.max_cost)  # fetching is free
    capped.todo = [i for i in capped.todo if i not in capped.over]
    return capped


def within_cost(todo: list[Image], max_cost: float | None) -> tuple[list[Image], list[Image]]:
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


def make(
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
    broken = f", {len(site.errors)} broken directive(s)" if site.errors else ""
    regenerate = pins_kept is not None
    capped = cap(site, todo, force=force, max_new_images=max_new_images, regenerate=regenerate)
    todo = capped.todo
    with _engine(site, pins_kept) as engine:
        # Asked for a dry run too, so that it refuses exactly when the real run would.
        paid = to_make(todo, force or regenerate)
        reason = engine.provider.unavailable_reason() if paid else None
        if dry_run or not todo:
            _preview(site, selected, capped, paid, reason, dry_run=dry_run, push=push, broken=broken)
        if reason:
            raise click.ClickException(f"{reason}. Nothing was generated ({len(todo)} image(s) to do)")
        started = time.monotonic()
        counts, failed, untried = _run(engine, todo, force)
        spent = engine.stats.cost if engine.stats.cost_known else None
        fetched = engine.stats.remote
    for message in failed:
        click.echo(f"failed   {message}", err=True)
    for message in untried:
        click.echo(f"untried  {message}", err=True)
    capped.echo()
    not_tried = f", {len(untried)} not tried" if untried else ""
    fetch = f" ({fetched} from the remote cache)" if fetched else ""
    click.echo(
        f"{counts['generated']} generated, {counts['cached']} already cached{fetch}, {len(failed)} failed"
        f"{not_tried}{capped.held_back}{broken} in {time.monotonic() - started:.1f} s, {estimated(spent)}"
    )
    if push:
        push_images(site)
    sys.exit(1 if failed or untried or site.errors else 0)


def _engine(site: Site, pins_kept: set[str] | None) -> Engine:
    """The engine of a command run: it fails an image rather than storing a placeholder.

    The command reports failures itself (no placeholder is stored), and the cap was applied to
    the plan: the engine is given only what the plan allows. keep_going: one refused prompt fails
    that image only; a rejected key or no credit stops the rest.
    """
    from ..runtime import open_engine

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
    return engine


def _preview(
    site: Site,
    selected: list[Image],
    capped: Capped,
    paid: list[Image],
    reason: str | None,
    *,
    dry_run: bool,
    push: bool,
    broken: str,
) -> None:
    """A dry run's listing and cost, or the summary of a run with nothing to do; then exit."""
    todo = capped.todo
    for image in todo:
        verb = "would generate" if image in paid else "would fetch   "
        click.echo(f"{verb} {image.brief}")
    capped.echo()
    if dry_run:
        cost = estimated(estimate(paid, site.paid))
        fetch = f", fetch {len(todo) - len(paid)} from the remote cache" if len(paid) < len(todo) else ""
        quoted = gateway_estimate(site, paid) if not reason else ""
        click.echo(f"would generate {len(paid)} image(s), {cost}{quoted}{fetch}{capped.held_back}{broken}")
        echo_model_notes(*model_notes(site, selected, ask_api=False))  # a dry run asks nothing more
        if reason:
            raise click.ClickException(f"{reason}. The real run would generate nothing")
    else:
        cached = sum(1 for i in selected if i.state == "cached")
        click.echo(f"nothing to generate: {cached} image(s) cached{capped.held_back}{broken}")
        if push:
            push_images(site)
    sys.exit(1 if site.errors else 0)


def _run(engine: Engine, todo: list[Image], force: bool) -> tuple[dict[str, int], list[str], list[str]]:
    """Submit every directive of `todo` and sort the outcomes as they finish."""
    failed: list[str] = []
    untried: list[str] = []
    counts = {"generated": 0, "cached": 0}
    futures = {engine.submit(image.occurrences[0], force=force): image for image in todo}
    for image in todo:
        for occurrence in image.occurrences[1:]:
            engine.submit(occurrence, force=force)
    for outcome, image in progress(futures):
        if outcome.status in counts:
            counts[outcome.status] += 1
        elif outcome.untried:
            untried.append(outcome.error or f"{image.where}: not tried")
        else:
            failed.append(outcome.error or f"{image.where}: failed")
    return counts, failed, untried


def push_images(site: Site) -> None:
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


def gateway_estimate(site: Site, todo: list[Image]) -> str:
    """Lumenfall's own estimate (`?dryRun=true`: nothing generated, nothing billed), when a key is set."""
    if site.plugin_config["provider"] != "lumenfall" or not todo:
        return ""
    import asyncio

    from ..providers import GenerationRequest
    from ..providers.openai import OpenAIProvider

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
