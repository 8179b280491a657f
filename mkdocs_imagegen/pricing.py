"""Estimated prices, in US dollars per image, for the build summary, `status` and `generate`.

The prices are the model table's (`models.py`): the price of the size actually asked of the API
(a 800x1000 image is asked as 1024x1536 and priced so), an unset or `auto` quality at the dearest
tier. Gateway names (`openai/gpt-image-1-mini`) are priced as their model; a model not in the
table is "cost unknown".
"""

from __future__ import annotations

from . import models
from .spec import ImageSpec


def estimate(spec: ImageSpec) -> float | None:
    model = models.find(spec.model)
    if model is None:
        return None
    return model.price(spec.quality, model.api_size(spec.size))


def format_cost(dollars: float | None) -> str:
    if dollars is None:
        return "cost unknown"
    return f"${dollars:.3f}" if dollars < 1 else f"${dollars:.2f}"
