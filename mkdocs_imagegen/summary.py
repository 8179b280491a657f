"""What a build tells its user at the end: one summary line, and the failures that stop it.

Every message goes through the plugin logger, so `mkdocs build --strict` sees each warning.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

from mkdocs.exceptions import PluginError

from . import pricing
from .logs import log

if TYPE_CHECKING:
    from .directives import Images
    from .engine import Outcome
    from .lifecycle import BuildNotes
    from .spec import Occurrence

OUTDATED_HINT = (
    "{n} image(s) are outdated: their model, prompt template or a default changed, "
    "so the lock's pinned image is shown and nothing was generated. "
    "Run `mkdocs-imagegen update --dry-run` to see them and their cost, then `update`"
)


def warn_missing_alt(occurrences: Iterable[Occurrence]) -> None:
    """A warning, not an error: every image is still made, but `mkdocs build --strict` fails."""
    for occurrence in occurrences:
        problem = occurrence.alt_problem
        if problem:
            log.warning(f"{occurrence.where}: {problem}")


def summarize(images: Images, *, lasting: bool) -> tuple[str, int]:
    """The summary line, and the number of outdated images; while serving, this rebuild's only."""
    engine = images.engine
    s = engine.stats if engine is not None else None
    cached = len(images.cached) - len(images.outdated) + (s.cached if s else 0)
    outdated = len(images.outdated) + (s.outdated if s else 0)
    generated = s.generated if s else 0
    # Placeholders held back by the spending cap are shown by choice: not failures.
    held = engine.guard.held_back() if engine is not None else 0
    failed = (s.failed + s.fallback if s else 0) - held + images.errors
    held_back = f", {held} held back by max_new_images" if held else ""
    cost = ""
    if engine is not None and s is not None and engine.provider.paid:
        cost = f", estimated cost {pricing.format_cost(s.cost)}" if s.cost_known else ", cost unknown"
    used = len(images.used()) + images.errors
    seconds = s.seconds if s else 0.0
    later = ""
    if lasting:  # this rebuild's images only, not the whole session's
        shown = [k for k in images.used() if k in images.cached]
        pins = sum(1 for k in shown if k in images.outdated)
        cached = len(shown) - pins + (s.cached if s else 0)
        outdated = pins + (s.outdated if s else 0)
        later = images.end_round()  # keys this rebuild did not use are dropped before they cost
    remote = f" ({s.remote} from the remote cache)" if s and s.remote else ""
    pinned = f", {outdated} outdated" if images.lock is not None else ""
    line = (
        f"{used} image{'' if used == 1 else 's'} in use: {cached} from cache{remote}, "
        f"{generated} generated{pinned}, {failed} failed{held_back}{later}, in {seconds:.1f} s{cost}"
    )
    return line, outdated


def report(images: Images, notes: BuildNotes | None, *, lasting: bool) -> None:
    """What the spending guard held back, the model notes, then the summary line."""
    engine = images.engine
    if engine is not None:
        engine.finish_report()
    if notes is not None:
        with contextlib.suppress(Exception):  # a note must never fail a build
            every, fresh = engine.specs_not_from_cache() if engine is not None else ([], [])
            made_with = [e.meta.get("model") for e in images.cached.values()]
            notes.report(every, fresh, images.cache, log, also_in_use=made_with)
    line, outdated = summarize(images, lasting=lasting)
    log.info(line)
    if outdated:
        log.info(OUTDATED_HINT.format(n=outdated))


def raise_for(outcomes: list[Outcome], images: Images | None, on_error: str) -> None:
    """Stop the build when an outcome must (frozen, a broken cache, on_error: fail), naming every failure."""

    def fatal(o: Outcome) -> bool:
        return o.status == "failed" and (o.fatal or on_error == "fail")

    if not any(fatal(o) for o in outcomes):
        return
    engine = images.engine if images is not None else None
    assert engine is not None
    # Name every failure known by now, not only the one that stopped this page.
    failures = [o for o in engine.done_outcomes() if fatal(o) and o.error]
    if not failures:
        failures = [o for o in outcomes if fatal(o) and o.error]
    for outcome in failures:  # through the plugin logger, like every other message
        log.error(outcome.error or "image generation failed")
    if not failures:
        raise PluginError("image generation stopped after an earlier failure")
    raise PluginError("image generation failed; the errors are listed above")
