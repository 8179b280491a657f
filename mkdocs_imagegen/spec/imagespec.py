"""The canonical form of an image and its key: the one thing a cache, a lock or a store is keyed by.

The key hashes everything that decides the pixels and nothing that does not (page paths, alt
text and captions are not in it), so the same directive on two pages is one image.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from .. import options

# Bump when the canonical form or the meaning of a field changes: old entries then stop matching.
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ImageSpec:
    """Everything that decides the pixels of one image."""

    provider: str
    model: str | None
    prompt: str
    size: str
    format: str
    quality: str | None = None
    background: str | None = None
    output_compression: int | None = None
    variant: str | None = None
    extra: str = ""  # canonical JSON of provider-specific body fields (a seed, say)
    # (role, sha256) of input bytes: an edit's source and mask today; another image's digest later.
    inputs: tuple[tuple[str, str], ...] = ()
    input_fidelity: str | None = None  # edits: "high" or "low"

    def canonical(self) -> dict[str, Any]:
        form = {
            "schema": SCHEMA_VERSION,
            "provider": self.provider,
            "model": self.model,
            "prompt": self.prompt,
            "size": self.size,
            "format": self.format,
            "quality": self.quality,
            "background": self.background,
            "output_compression": self.output_compression,
            "variant": self.variant,
            "extra": self.extra,
            "inputs": [list(pair) for pair in self.inputs],
        }
        # Newer fields are keyed only when set, so every key made before them stays as it was.
        if self.input_fidelity is not None:
            form["input_fidelity"] = self.input_fidelity
        return form

    @cached_property
    def key(self) -> str:
        blob = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    @property
    def dimensions(self) -> tuple[int, int] | None:
        return options.parse_size(self.size)

    @property
    def filename(self) -> str:
        return f"{self.key}.{'jpg' if self.format == 'jpeg' else self.format}"
