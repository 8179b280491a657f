"""What a change did to the lock: the manifest at a git revision against the working tree.

`report --since REF` shows it as HTML (old and new images side by side), `status --since REF
--json` as data for a CI comment. Images are matched by intent, so a re-keyed image (a new model,
template or default) is one "changed" image, not an addition and a removal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click

from . import pricing
from .lock import ImageLock, Record, choose, image_at, read_manifest_at

KINDS = ("added", "changed", "outdated", "removed")


@dataclass
class Change:
    kind: str
    new: Record | None = None  # for 'outdated': the pinned image still shown
    old: Record | None = None
    prompt: str | None = None  # for 'outdated': the prompt a regeneration would send
    where: list[str] = field(default_factory=list)
    cost: float | None = None  # for 'outdated': the estimate of regenerating it


@dataclass
class Changes:
    revision: str
    folder: str
    items: list[Change]

    def of(self, kind: str) -> list[Change]:
        return [c for c in self.items if c.kind == kind]

    @property
    def cost(self) -> float | None:
        """What the added and changed images cost (None when one of them has no known cost)."""
        total = 0.0
        for change in self.of("added") + self.of("changed"):
            if change.new is None or change.new.cost is None:
                return None
            total += change.new.cost
        return total


def changes(site: Any, lock: ImageLock | None, images: list[Any], revision: str) -> Changes:
    """Compare the lock at `revision` with the working tree and the site's current directives."""
    if lock is None:
        raise click.ClickException(
            "--since compares the image lock: set the plugin's lock option (for example lock: docs-images)"
        )
    manifest, problem = read_manifest_at(revision, lock.folder)
    if problem:
        raise click.ClickException(problem)
    old = choose(manifest)
    new = {r.key: r for r in lock.records()}
    items: list[Change] = []
    matched: set[str] = set()
    for key in sorted(set(new) - set(old)):
        record = new[key]
        before = [o for o in old.values() if o.intent and o.intent == record.intent and o.key not in new]
        before = before or [o for o in old.values() if o.intent and o.intent == record.intent]
        if before:
            previous = max(before, key=lambda r: r.created)
            matched.add(previous.key)
            items.append(Change("changed", new=record, old=previous))
        else:
            items.append(Change("added", new=record))
    for image in images:
        if image.state == "outdated" and image.pinned is not None:
            items.append(
                Change(
                    "outdated",
                    new=image.pinned,
                    prompt=image.spec.prompt,
                    where=[o.where for o in image.occurrences],
                    cost=pricing.estimate(image.spec) if site.paid else 0.0,
                )
            )
    for key in sorted(set(old) - set(new) - matched):
        items.append(Change("removed", old=old[key]))
    return Changes(revision, lock.folder, items)


def _record(record: Record | None) -> dict[str, Any] | None:
    return None if record is None else record.meta()


def as_data(result: Changes) -> dict[str, Any]:
    data: dict[str, Any] = {"revision": result.revision}
    for kind in KINDS:
        rows = []
        for change in result.of(kind):
            row: dict[str, Any] = {"old": _record(change.old), "new": _record(change.new)}
            if kind == "outdated":
                row.update(prompt=change.prompt, where=change.where, estimated_cost=change.cost)
            rows.append(row)
        data[kind] = rows
    data["cost"] = result.cost
    return data


def summary(result: Changes) -> list[str]:
    lines = [f"since {result.revision}:"]
    for change in result.items:
        record = change.new or change.old
        assert record is not None
        text = (change.prompt if change.kind == "outdated" else None) or record.prompt
        lines.append(f"  {change.kind:8} {record.key[:12]}  {text[:60]}")
    counts = ", ".join(f"{len(result.of(k))} {k}" for k in KINDS)
    lines.append(f"  {counts}; cost of the change {pricing.format_cost(result.cost)}")
    return lines


def as_html(result: Changes, data_uri: Callable[[bytes], str | None]) -> dict[str, Any]:
    """What the report template shows: each change with embedded before and after thumbnails."""

    def side(record: Record | None, *, at_revision: bool, prompt: str | None = None) -> dict[str, Any] | None:
        if record is None:
            return None
        data = image_at(result.revision, result.folder, record) if at_revision else _current(result, record)
        return {
            "thumb": data_uri(data) if data else None,
            "prompt": prompt or record.prompt,
            "model": f"{record.provider} / {record.model or '-'}",
            "key": record.key,
            "created": record.created,
            "cost": pricing.format_cost(record.cost) if record.cost is not None else "-",
        }

    items = []
    for change in result.items:
        items.append(
            {
                "kind": change.kind,
                "old": side(change.old, at_revision=True),
                "new": side(change.new, at_revision=False),
                "prompt": change.prompt,
                "where": change.where,
                "cost": pricing.format_cost(change.cost) if change.kind == "outdated" else None,
            }
        )
    outdated_cost = sum(c.cost or 0.0 for c in result.of("outdated"))
    return {
        "revision": result.revision,
        "items": items,
        "counts": {k: len(result.of(k)) for k in KINDS},
        "cost": pricing.format_cost(result.cost),
        "outdated_cost": pricing.format_cost(outdated_cost),
    }


def _current(result: Changes, record: Record) -> bytes | None:
    import hashlib
    import os

    try:
        with open(os.path.join(result.folder, record.file), "rb") as fh:
            data = fh.read(record.bytes + 1)
    except OSError:
        return None
    return data if hashlib.sha256(data).hexdigest() == record.sha256 else None
