"""How a long `generate` run shows itself: a live line on a terminal, plain lines in a CI log."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

from .. import pricing
from .site import Image
from .text import duration

if TYPE_CHECKING:
    import concurrent.futures

    from click._termui_impl import ProgressBar

    from ..engine import Outcome


def interactive() -> bool:
    """Whether a person watches: a progress bar then, one line per image otherwise."""
    return sys.stdout.isatty()


def progress(futures: dict[concurrent.futures.Future[Outcome], Image]) -> Iterator[tuple[Outcome, Image]]:
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

    def count(outcome: Outcome) -> None:
        nonlocal failures, cost
        failures += outcome.status == "failed"
        if outcome.status == "generated" and cost is not None:
            spent = outcome.entry.meta.get("cost") if outcome.entry is not None else None
            cost = cost + spent if isinstance(spent, (int, float)) else None

    def tally(done: int) -> str:
        spent = "cost unknown" if cost is None else f"{pricing.format_cost(cost)} so far"
        left = ""
        if 0 < done < total:
            left = f", about {duration((time.monotonic() - started) / done * (total - done))} left"
        return f"{failures} failed, {spent}{left}"

    if interactive():

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
