"""Image providers behind one small interface.

A provider turns a `GenerationRequest` into image bytes. It does not cache, retry, limit
concurrency or spend-check: the engine does that once for every provider. A provider only says
whether an error is worth retrying (`ProviderError.retryable`, `retry_after`).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..spec import ImageSpec


class ProviderError(Exception):
    """A failed generation, with what the engine needs to decide on a retry."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(frozen=True)
class GenerationRequest:
    spec: ImageSpec
    moderation: str | None = None
    source_path: str | None = None
    mask_path: str | None = None


@dataclass
class GeneratedImage:
    data: bytes
    exact: bool = False  # True when the bytes are already exactly what the spec asks (trusted renderer)
    info: dict[str, Any] = field(default_factory=dict)  # revised_prompt, usage: kept with the image


class Provider(abc.ABC):
    name: ClassVar[str]
    paid: ClassVar[bool] = False

    def unavailable_reason(self) -> str | None:
        """Why this provider cannot generate at all (a missing key, say), or None."""
        return None

    def estimate_cost(self, spec: ImageSpec) -> float | None:
        return None

    def scrub(self, text: str) -> str:
        """Remove secrets from text bound for a log, the cache or an image."""
        return text

    @abc.abstractmethod
    async def generate(self, request: GenerationRequest) -> GeneratedImage: ...

    async def aclose(self) -> None:
        return None


def default_model(provider: str) -> str | None:
    return "gpt-image-1-mini" if provider == "openai" else None


def make_provider(plugin_config: Any) -> Provider:
    name = plugin_config["provider"]
    if name == "openai":
        from .openai import OpenAIProvider

        return OpenAIProvider.from_config(plugin_config)
    from .placeholder import PlaceholderProvider

    return PlaceholderProvider()
