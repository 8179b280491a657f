"""Image providers behind one small interface.

A provider turns a `GenerationRequest` into image bytes. It does not cache, retry, limit
concurrency or spend-check: the engine does that once for every provider. A provider only says
whether an error is worth retrying (`ProviderError.retryable`, `retry_after`), and what it is:
whether it costs money (`paid`), which model it asks when none is set (`default_model`).
"""

from __future__ import annotations

import abc
import importlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ..spec import ImageSpec

if TYPE_CHECKING:
    from ..config import ImagegenConfig

# provider name in mkdocs.yml -> (module, class); imported only when used (httpx is not cheap).
PROVIDERS = {
    "placeholder": ("mkdocs_imagegen.providers.placeholder", "PlaceholderProvider"),
    "openai": ("mkdocs_imagegen.providers.openai", "OpenAIProvider"),
    "lumenfall": ("mkdocs_imagegen.providers.openai", "LumenfallProvider"),
}

# Per OpenAI-compatible provider: the API and the key's variable, when mkdocs.yml names neither.
ENDPOINTS: dict[str, tuple[str, str]] = {
    "openai": ("https://api.openai.com/v1", "OPENAI_API_KEY"),
    "lumenfall": ("https://api.lumenfall.ai/openai/v1", "LUMENFALL_API_KEY"),
}
PAID = frozenset(ENDPOINTS)


def endpoint(plugin_config: Any) -> tuple[str, str]:
    """(base_url, api_key_env) of the configured provider; mkdocs.yml's own values win."""
    base_url, key_env = ENDPOINTS.get(plugin_config["provider"], ENDPOINTS["openai"])
    return plugin_config.get("base_url") or base_url, plugin_config.get("api_key_env") or key_env


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
        stop: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.stop = stop  # no other request would fare better (a rejected key, an empty balance)


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
    cost: float | None = None  # what the provider says it charged, when it says so


class Provider(abc.ABC):
    name: ClassVar[str]
    paid: ClassVar[bool] = False  # the one test of whether an image costs money
    default_model: ClassVar[str | None] = None
    # Comes with the default model only (quality: low), so that setting `model:` changes no key.
    default_quality: ClassVar[str | None] = None
    takes_model: ClassVar[bool] = True  # False: model and extra_body change nothing, so are not keyed

    @classmethod
    def from_config(cls, config: ImagegenConfig) -> Provider:
        return cls()

    def unavailable_reason(self) -> str | None:
        """Why this provider cannot generate at all (a missing key, say), or None."""
        return None

    def estimate_cost(self, spec: ImageSpec) -> float | None:
        return None

    def scrub(self, text: str) -> str:
        """Make text bound for a log, the cache or an image safe: no secrets, no control characters."""
        return clean_text(text)

    @abc.abstractmethod
    async def generate(self, request: GenerationRequest) -> GeneratedImage: ...

    async def aclose(self) -> None:
        return None


def provider_class(name: str) -> type[Provider]:
    module, cls = PROVIDERS[name]
    found: type[Provider] = getattr(importlib.import_module(module), cls)
    return found


# Terminal escape sequences (CSI, OSC such as the OSC 52 clipboard write, DCS/PM/APC, two-byte ESC),
# then any control character left (C0 with CR/LF/TAB, DEL, C1) and bidirectional overrides.
_ESCAPES = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]?|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[PX^_][^\x1b]*(?:\x1b\\)?|[ -~]?)"
)
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean_text(text: str) -> str:
    """One line of plain text: what an API says can never forge a log line or reach the terminal."""
    return _CONTROLS.sub(" ", _ESCAPES.sub("", text))


def make_provider(plugin_config: ImagegenConfig) -> Provider:
    return provider_class(plugin_config.provider).from_config(plugin_config)
