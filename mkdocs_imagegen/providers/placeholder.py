"""The default provider: offline, free, deterministic placeholder images drawn with Pillow."""

from __future__ import annotations

import asyncio

from .. import wireframe
from ..spec import ImageSpec
from . import GeneratedImage, GenerationRequest, Provider


def render_spec(spec: ImageSpec, *, label: str = "placeholder", tone: str = "neutral") -> bytes:
    width, height = spec.dimensions or (1024, 1024)
    return wireframe.render(
        spec.prompt,
        width,
        height,
        spec.format,
        seed=spec.key,
        label=label,
        background=spec.background,
        quality=spec.output_compression,
        tone=tone,
    )


def render_fallback(spec: ImageSpec, label: str) -> bytes:
    """The stand-in the engine stores when a real image cannot be had: same drawing, error tone."""
    return render_spec(spec, label=label, tone="error")


class PlaceholderProvider(Provider):
    name = "placeholder"
    paid = False
    takes_model = False

    def estimate_cost(self, spec: ImageSpec) -> float | None:
        return 0.0

    async def generate(self, request: GenerationRequest) -> GeneratedImage:
        data = await asyncio.to_thread(render_spec, request.spec)
        return GeneratedImage(data=data, exact=True)
