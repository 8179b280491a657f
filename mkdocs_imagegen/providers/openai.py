"""The OpenAI-compatible provider: OpenAI, Lumenfall and any gateway that speaks the Images API.

Built on one shared `httpx.AsyncClient` per build (connection reuse); no vendor SDK. The API key
is read from the environment variable named by `api_key_env`, sent only to `base_url`, and never
put in a message, the cache or the site.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import email.utils
import json
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx

from .. import __version__, imaging, pricing
from ..spec import ImageSpec
from . import GeneratedImage, GenerationRequest, Provider, ProviderError

if TYPE_CHECKING:
    from ..config import ImagegenConfig

MAX_DOWNLOAD_BYTES = 32 * 1024 * 1024
RETRY_STATUSES = frozenset({408, 409, 429})
USER_AGENT = f"mkdocs-imagegen/{__version__} (+https://pypi.org/project/mkdocs-imagegen/)"

# Sizes each model family accepts; other models (behind gateways) are sent the asked size as is.
_GPT_IMAGE_SIZES = ((1024, 1024), (1536, 1024), (1024, 1536))
_SUPPORTED_SIZES: dict[str, tuple[tuple[int, int], ...]] = {
    "gpt-image": _GPT_IMAGE_SIZES,
    "dall-e-3": ((1024, 1024), (1792, 1024), (1024, 1792)),
    "dall-e-2": ((256, 256), (512, 512), (1024, 1024)),
}


def supported_sizes(model: str | None) -> tuple[tuple[int, int], ...] | None:
    name = (model or "").lower().rsplit("/", 1)[-1]
    for prefix, sizes in _SUPPORTED_SIZES.items():
        if name.startswith(prefix):
            return sizes
    return None


def api_size(spec: ImageSpec) -> str:
    """The size to ask the API for: the asked one if accepted, else the closest in aspect ratio."""
    dims = spec.dimensions
    sizes = supported_sizes(spec.model)
    if dims is None or sizes is None or dims in sizes:
        return spec.size
    width, height = imaging.closest_size(dims[0], dims[1], sizes)
    return f"{width}x{height}"


class OpenAIProvider(Provider):
    name = "openai"
    paid = True
    default_model = "gpt-image-1-mini"

    def __init__(
        self,
        *,
        base_url: str,
        api_key_env: str,
        timeout: float,
        concurrency: int,
        extra_body: dict[str, Any] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,  # tests: httpx.MockTransport
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.api_key = os.environ.get(api_key_env, "").strip()
        self.timeout = timeout
        self.extra_body = dict(extra_body or {})
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 30.0)),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
            transport=transport,
        )

    @classmethod
    def from_config(cls, config: ImagegenConfig) -> OpenAIProvider:
        return cls(
            base_url=config.base_url,
            api_key_env=config.api_key_env,
            timeout=config.timeout,
            concurrency=config.concurrency,
            extra_body=config.extra_body,
        )

    def unavailable_reason(self) -> str | None:
        if not self.api_key:
            return (
                f"no API key: the environment variable {self.api_key_env} is not set. "
                f"Set {self.api_key_env} (or change api_key_env) to generate images with provider 'openai'"
            )
        return None

    def estimate_cost(self, spec: ImageSpec) -> float | None:
        return pricing.estimate(spec)

    def scrub(self, text: str) -> str:
        """Remove the key from any text that might end up in a log or an exception."""
        return text.replace(self.api_key, "[redacted]") if self.api_key else text

    # -- the request -----------------------------------------------------------------------------
    def _fields(self, request: GenerationRequest) -> dict[str, Any]:
        spec = request.spec
        body: dict[str, Any] = {**self.extra_body, "model": spec.model, "prompt": spec.prompt, "n": 1}
        optional = {
            "size": api_size(spec),
            "quality": spec.quality,
            "background": spec.background,
            "output_format": spec.format,
            "output_compression": spec.output_compression,
            "moderation": request.moderation,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        return body

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
        if not self.api_key:
            raise ProviderError(self.unavailable_reason() or "no API key", code="missing_api_key")
        headers = {"Authorization": f"Bearer {self.api_key}"}
        fields = self._fields(request)
        with self._transport_errors(f"the API at {self.base_url}"):
            if request.source_path:
                response = await self._client.post(
                    f"{self.base_url}/images/edits",
                    data={k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()},
                    files=self._files(request),
                    headers=headers,
                )
            else:
                response = await self._client.post(
                    f"{self.base_url}/images/generations", json=fields, headers=headers
                )
        if response.status_code >= 400:
            raise self._error(response, request.spec)
        return await self._image(response)

    def _files(self, request: GenerationRequest) -> dict[str, tuple[str, bytes, str]]:
        files = {}
        for field_name, path in (("image", request.source_path), ("mask", request.mask_path)):
            if path:
                with open(path, "rb") as fh:
                    data = fh.read()
                files[field_name] = (os.path.basename(path), data, _mime(path))
        return files

    # -- the answer ------------------------------------------------------------------------------
    async def _image(self, response: httpx.Response) -> GeneratedImage:
        try:
            payload = response.json()
            item = payload["data"][0]
        except (ValueError, KeyError, IndexError, TypeError):
            snippet = self.scrub(response.text[:80].strip().replace("\n", " "))
            raise ProviderError(
                f"the API answered {response.status_code} with something that is not an image answer "
                f"(content-type {response.headers.get('content-type', 'unknown')}: {snippet!r})",
                code="invalid_response",
            ) from None
        info: dict[str, Any] = {}
        if isinstance(item, dict) and item.get("revised_prompt"):
            info["revised_prompt"] = item["revised_prompt"]
        if isinstance(payload, dict) and isinstance(payload.get("usage"), dict):
            info["usage"] = payload["usage"]
        if isinstance(item, dict) and isinstance(item.get("b64_json"), str):
            try:
                data = base64.b64decode(item["b64_json"], validate=True)
            except (binascii.Error, ValueError):
                raise ProviderError(
                    "the API answered with invalid base64 image data", code="invalid_base64"
                ) from None
        elif isinstance(item, dict) and isinstance(item.get("url"), str):
            data = await self._download(item["url"])
        else:
            raise ProviderError("the API answer has neither b64_json nor url", code="invalid_response")
        return GeneratedImage(data=data, info=info)

    async def _download(self, url: str) -> bytes:
        """Fetch an image URL: http(s) only, size-capped, without our Authorization header."""
        scheme = httpx.URL(url).scheme if "://" in url else url.split(":", 1)[0]
        if scheme not in ("http", "https"):
            raise ProviderError(
                f"the API answered with an image URL of scheme '{scheme}:'; only http and https are fetched",
                code="bad_url",
            )
        with self._transport_errors("the image URL"):
            async with self._client.stream("GET", url, follow_redirects=True) as response:
                if response.status_code >= 400:
                    # No `status`: the image was made (and billed) already, only fetching failed.
                    raise ProviderError(
                        f"downloading the image failed with HTTP {response.status_code}",
                        retryable=response.status_code >= 500 or response.status_code in RETRY_STATUSES,
                    )
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > MAX_DOWNLOAD_BYTES:
                    raise _too_big()
                chunks, total = [], 0
                async for chunk in response.aiter_bytes():
                    total += len(chunk)
                    if total > MAX_DOWNLOAD_BYTES:
                        raise _too_big()
                    chunks.append(chunk)
                return b"".join(chunks)

    @contextlib.contextmanager
    def _transport_errors(self, subject: str) -> Iterator[None]:
        """httpx's failures as ProviderErrors that say what failed and whether a retry may help."""
        try:
            yield
        except httpx.TooManyRedirects:
            raise ProviderError(f"{subject} redirected too many times", code="redirect_loop") from None
        except httpx.TimeoutException:
            raise ProviderError(
                f"{subject} did not answer within {self.timeout:g} s (timeout)",
                code="timeout",
                retryable=True,
            ) from None
        except httpx.TransportError as exc:
            raise ProviderError(
                f"{subject} could not be reached: {self.scrub(str(exc)) or type(exc).__name__}",
                code="connection_error",
                retryable=True,
            ) from None

    def _error(self, response: httpx.Response, spec: ImageSpec) -> ProviderError:
        status = response.status_code
        message, code = "", None
        try:
            err = response.json().get("error") or {}
            if isinstance(err, dict):
                message, code = str(err.get("message") or ""), err.get("code") or err.get("type")
            elif isinstance(err, str):
                message = err
        except (ValueError, AttributeError):
            message = response.text[:200].strip()
        detail = f"{message} ({code})" if code else message or response.reason_phrase
        detail = self.scrub(detail)
        retryable = status in RETRY_STATUSES or status >= 500
        if code == "insufficient_quota":
            retryable = False
        if status == 401 or code in ("invalid_api_key", "missing_api_key"):
            text = (
                f"the API rejected the key in {self.api_key_env} (HTTP {status}): {detail}. "
                f"Set {self.api_key_env} to a valid key"
            )
        elif code == "moderation_blocked" or "safety system" in message:
            text = f"the prompt was refused by the provider's safety system (HTTP {status}): {detail}"
        elif code == "model_not_found" or (status == 404 and "model" in message.lower()):
            text = f"unknown model '{spec.model}' at {self.base_url} (HTTP {status}): {detail}"
        else:
            text = f"the API answered HTTP {status}: {detail}"
        return ProviderError(
            text, code=code, status=status, retryable=retryable, retry_after=retry_after(response.headers)
        )

    async def aclose(self) -> None:
        await self._client.aclose()


def retry_after(headers: httpx.Headers) -> float | None:
    """Seconds the server asked us to wait: `retry-after-ms`, then `Retry-After` (seconds or a date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, parsed.timestamp() - time.time())


def _too_big() -> ProviderError:
    return ProviderError(
        f"the image at the answered URL is larger than {MAX_DOWNLOAD_BYTES} bytes", code="too_large"
    )


def _mime(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    return {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}.get(
        ext, "application/octet-stream"
    )
