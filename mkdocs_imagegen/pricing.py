"""Estimated prices of the known models, in US dollars per image, for the build summary and `status`.

Figures are OpenAI's published per-image prices for n=1 (input tokens not counted). They are an
estimate: gateways price differently, and an unknown model is reported as "cost unknown".
"""

from __future__ import annotations

from .spec import ImageSpec

# model -> quality -> (1024x1024, 1024x1536 or 1536x1024)
PRICES: dict[str, dict[str, tuple[float, float]]] = {
    "gpt-image-1-mini": {"low": (0.005, 0.006), "medium": (0.011, 0.015), "high": (0.036, 0.052)},
    "gpt-image-1": {"low": (0.011, 0.016), "medium": (0.042, 0.063), "high": (0.167, 0.25)},
}
# What "auto" (or no quality) is estimated as: the dearest tier, so an estimate never undershoots.
_DEFAULT_QUALITY = "high"


def estimate(spec: ImageSpec) -> float | None:
    table = PRICES.get(spec.model or "")
    if table is None:
        return None
    quality = spec.quality if spec.quality in table else _DEFAULT_QUALITY
    square, other = table[quality]
    dims = spec.dimensions
    if dims is None:
        return other  # 'auto' may pick a non-square size
    width, height = dims
    return square if abs(width / height - 1) < 0.25 else other


def format_cost(dollars: float | None) -> str:
    if dollars is None:
        return "cost unknown"
    return f"${dollars:.3f}" if dollars < 1 else f"${dollars:.2f}"
