"""The default provider: offline, free, deterministic placeholder images drawn with Pillow."""

from __future__ import annotations

import os
from typing import Any

from ..spec import MAX_SOURCE_BYTES, ImageSpec
from . import GeneratedImage, GenerationRequest, Provider


def render_spec(
    spec: ImageSpec, *, label: str = "placeholder", tone: str = "neutral", source_path: str | None = None
) -> bytes:
    """`source_path`: an edit's image (already checked to be in docs_dir), shown under the text."""
    from .. import imaging, wireframe  # Pillow: loaded only when an image is drawn, never by a warm build

    width, height = spec.dimensions or (1024, 1024)
    common: dict[str, Any] = {
        "seed": spec.key,
        "background": spec.background,
        "quality": spec.output_compression,
        "tone": tone,
    }
    if source_path is not None:
        name = os.path.basename(source_path)
        try:
            with open(source_path, "rb") as fh:
                source = fh.read(MAX_SOURCE_BYTES + 1)
            if len(source) > MAX_SOURCE_BYTES:
                raise imaging.ImageError(f"over {MAX_SOURCE_BYTES} bytes")
            edit_label = label if tone == "error" else f"{label} — edit of {name}"
            return wireframe.render(
                spec.prompt, width, height, spec.format, label=edit_label, source=source, **common
            )
        except (OSError, imaging.ImageError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            label = f"{label} — cannot show {name}: {reason}"
    return wireframe.render(spec.prompt, width, height, spec.format, label=label, **common)


def render_fallback(spec: ImageSpec, label: str, source_path: str | None = None) -> bytes:
    """The stand-in the engine stores when a real image cannot be had: same drawing, error tone."""
    return render_spec(spec, label=label, tone="error", source_path=source_path)


class PlaceholderProvider(Provider):
    name = "placeholder"
    paid = False
    takes_model = False

    def estimate_cost(self, spec: ImageSpec) -> float | None:
        return 0.0

    async def generate(self, request: GenerationRequest) -> GeneratedImage:
        import asyncio

        data = await asyncio.to_thread(render_spec, request.spec, source_path=request.source_path)
        return GeneratedImage(data=data, exact=True)
