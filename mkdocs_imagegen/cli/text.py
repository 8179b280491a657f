"""Short renderings every command shares, so that a size, a cost or a prompt reads alike in each."""

from __future__ import annotations

from .. import pricing


def estimated(cost: float | None) -> str:
    """'estimated cost $0.088', or 'cost unknown' when a model has no known price."""
    return "cost unknown" if cost is None else f"estimated cost {pricing.format_cost(cost)}"


def model_label(provider: str | None, model: str | None) -> str:
    """`openai/gpt-image-2`; a gateway name that already says its vendor is not prefixed twice."""
    if model and provider and model.lower().startswith(f"{provider.lower()}/"):
        return model
    return f"{provider}/{model or '-'}"


def clip(text: str, width: int = 60) -> str:
    """One line of a listing stays one line on a terminal, however long the prompt."""
    return text if len(text) <= width else text[: width - 1] + "…"


def human(size: int) -> str:
    """Bytes in decimal units, as a person reads a cache's size."""
    if size < 1000:
        return f"{size} bytes"
    amount = size / 1000
    for unit in ("kB", "MB"):
        if amount < 1000:
            return f"{amount:.1f} {unit}"
        amount /= 1000
    return f"{amount:.1f} GB"


def duration(seconds: float) -> str:
    """A time left, no more precise than an estimate from the images done so far can be."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
