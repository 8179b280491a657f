"""Finishing an image: the one step every stored image passes, real or placeholder."""

from __future__ import annotations

from typing import Any

from .. import imaging
from ..providers import GeneratedImage
from ..spec import ImageSpec


def finish(
    spec: ImageSpec,
    image: GeneratedImage,
    *,
    provider: str | None = None,
    model: str | None = None,
    **extra: Any,
) -> tuple[bytes, dict[str, Any]]:
    """Verify, crop and encode `image` as `spec` asks; return the bytes and their metadata.

    `provider` and `model` say who drew it (the spec's, unless a placeholder stands in); `extra`
    is kept with it (the cost, or why a placeholder was drawn).
    """
    if image.exact:  # a trusted local renderer drew exactly what the spec asks
        width, height = spec.dimensions or (1024, 1024)
        data, fmt = image.data, spec.format
    else:
        dims = spec.dimensions
        data, info = imaging.finalize(
            image.data,
            width=dims[0] if dims else None,
            height=dims[1] if dims else None,
            fmt=spec.format,
            quality=spec.output_compression,
        )
        width, height, fmt = info.width, info.height, info.format
    meta = {
        "provider": provider or spec.provider,
        "model": model if provider else spec.model,
        "prompt": spec.prompt,
        "size": spec.size,
        "format": fmt,
        "width": width,
        "height": height,
        **image.info,
        **extra,
    }
    return data, meta
