"""The OpenAI-compatible provider: OpenAI, Lumenfall and any gateway that speaks the Images API.

Built on one shared `httpx.AsyncClient` per build (connection reuse); no vendor SDK. The API key
is read from the environment variable named by `api_key_env`, sent only to `base_url`, and never
put in a message, the cache or the site.

The work is in layers, each its own module, read top to bottom: the request body
(`openai_request`), the HTTP exchange (`openai_http`), its failures as ProviderErrors
(`openai_errors`), the answer (`openai_answer`) and an answered image URL (`image_url`). This
class only wires them into the provider interface.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httpx

from .. import pricing
from ..spec import ImageSpec
from . import GeneratedImage, GenerationRequest, Provider, ProviderError, endpoint
from .image_url import DOWNLOAD_ATTEMPTS as DOWNLOAD_ATTEMPTS
from .image_url import MAX_DOWNLOAD_BYTES as MAX_DOWNLOAD_BYTES
from .image_url import MAX_REDIRECTS as MAX_REDIRECTS
from .image_url import ImageFetcher
from .openai_answer import MAX_DECLARED_FACTOR as MAX_DECLARED_FACTOR
from .openai_answer import MAX_STORED_TEXT as MAX_STORED_TEXT
from .openai_answer import MAX_USAGE_CHARS as MAX_USAGE_CHARS
from .openai_answer import read_image, shutdown_dates
from .openai_answer import reported_cost as reported_cost
from .openai_errors import GONE_CODES as GONE_CODES
from .openai_errors import MAX_ERROR_CHARS as MAX_ERROR_CHARS
from .openai_errors import RETRY_CODES as RETRY_CODES
from .openai_errors import STOP_CODES as STOP_CODES
from .openai_errors import api_error
from .openai_errors import error_detail as error_detail
from .openai_errors import retry_after as retry_after
from .openai_http import MAX_ANSWER_BYTES as MAX_ANSWER_BYTES
from .openai_http import MAX_ERROR_BYTES as MAX_ERROR_BYTES
from .openai_http import USER_AGENT as USER_AGENT
from .openai_http import ImagesAPI
from .openai_request import api_size as api_size
from .openai_request import edit_files, request_body


class OpenAIProvider(Provider):
    name = "openai"
    paid = True
    # OpenAI shut gpt-image-1-mini down on 2026-12-01; gpt-image-2 at low quality is its cheapest
    # live model with a published price (about $0.006 at 1024x1024).
    default_model = "gpt-image-2"
    default_quality = "low"

    def __init__(
        self,
        *,
        base_url: str,
        api_key_env: str,
        timeout: float,
        concurrency: int,
        extra_body: dict[str, Any] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,  # tests: httpx.MockTransport
        provider: str = "openai",
    ) -> None:
        self.provider = provider
        self._gone: dict[str, str] = {}  # model -> why it is gone: asked once, not once per image
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.api_key = os.environ.get(api_key_env, "").strip()
        self.timeout = timeout
        self.extra_body = dict(extra_body or {})
        self._api = ImagesAPI(
            base_url=self.base_url,
            api_key=self.api_key,
            timeout=timeout,
            concurrency=concurrency,
            transport=transport,
        )
        # A transport of the caller's own (a test's MockTransport) reaches no network: image URLs
        # are then not resolved, since no address is ever connected to.
        self._fetcher = ImageFetcher(
            self._api.client,
            base_url=self.base_url,
            network=transport is None,
            timeout=timeout,
            scrub=self.scrub,
        )

    @classmethod
    def from_config(cls, config: Any) -> OpenAIProvider:
        base_url, api_key_env = endpoint(config)
        return cls(
            base_url=base_url,
            api_key_env=api_key_env,
            timeout=config["timeout"],
            concurrency=config["concurrency"],
            extra_body=config.get("extra_body"),
            provider=config["provider"],
        )

    def unavailable_reason(self) -> str | None:
        if not self.api_key:
            return (
                f"no API key: the environment variable {self.api_key_env} is not set. "
                f"Set {self.api_key_env} (or change api_key_env) to generate images "
                f"with provider '{self.provider}'"
            )
        return None

    def estimate_cost(self, spec: ImageSpec) -> float | None:
        return pricing.estimate(spec)

    def scrub(self, text: str) -> str:
        """Make any text bound for a log, an exception, the cache or a placeholder safe: no key
        (whole occurrences; a too-short key only where it stands alone), no control characters."""
        return self._api.scrub(text)

    async def generate(self, request: GenerationRequest) -> GeneratedImage:
        # httpx's timeout bounds each read; a server dripping bytes would never trip it. This is
        # the deadline of the whole request, download included.
        try:
            return await asyncio.wait_for(self._generate(request), self.timeout)
        except asyncio.TimeoutError:
            raise ProviderError(
                f"the API at {self.base_url} did not answer within {self.timeout:g} s (timeout)",
                code="timeout",
                retryable=True,
            ) from None

    async def _generate(self, request: GenerationRequest) -> GeneratedImage:
        spec = request.spec
        if not self.api_key:
            raise ProviderError(self.unavailable_reason() or "no API key", code="missing_api_key")
        gone = self._gone.get(spec.model or "")
        if gone:  # an earlier answer said so: ask nothing more of this model
            raise ProviderError(gone, code="model_not_found", status=404)
        body = self._body(request)
        if request.source_path:
            response = await self._api.post("/images/edits", body, edit_files(request))
        else:
            response = await self._api.post("/images/generations", body)
        if response.status_code >= 400:
            error = api_error(
                response,
                spec.model,
                base_url=self.base_url,
                api_key_env=self.api_key_env,
                provider=self.provider,
                scrub=self.scrub,
            )
            if error.code in GONE_CODES:
                self._gone[spec.model or ""] = error.message
            raise error
        return await read_image(response, spec, scrub=self.scrub, fetch=self._fetcher.fetch)

    def _body(self, request: GenerationRequest) -> dict[str, Any]:
        return request_body(request, extra_body=self.extra_body, provider=self.provider)

    # -- estimates and lifecycle ---------------------------------------------------------------
    async def dry_run_cost(self, request: GenerationRequest) -> float | None:
        """Lumenfall's own estimate (`?dryRun=true`, nothing generated or billed), or None."""
        if self.provider != "lumenfall" or not self.api_key or request.source_path:
            return None
        try:
            body = self._body(request)
        except ValueError:  # no estimate, as for any other failure
            return None
        return reported_cost(await self._api.quote(body))

    async def shutdown_dates(self) -> dict[str, str] | None:
        """`GET /models`: model id -> shutdown_date where the API lists one; None on any failure."""
        if not self.api_key:
            return None
        payload = await self._api.model_list()
        return None if payload is None else shutdown_dates(payload.get("data"))

    async def aclose(self) -> None:
        await self._api.aclose()


class LumenfallProvider(OpenAIProvider):
    """Lumenfall's OpenAI-compatible API: its own URL, key variable, codes and reported costs."""

    name = "lumenfall"
    # Lumenfall still serves gpt-image-1-mini: at low quality the cheapest image here ($0.005).
    default_model = "gpt-image-1-mini"
    default_quality = "low"
