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
import ipaddress
import json
import os
import re
import socket
from collections.abc import Iterator
from typing import Any

import httpx

from .. import __version__, imaging, models, options, pricing
from ..spec import ImageSpec
from . import GeneratedImage, GenerationRequest, Provider, ProviderError, clean_text, endpoint
from .retry import RETRY_STATUSES, decide, parse_retry_after

MAX_DOWNLOAD_BYTES = 32 * 1024 * 1024
DOWNLOAD_ATTEMPTS = 3  # a generated (and billed) image is fetched again, never generated again
MAX_ERROR_CHARS = 300
# A b64_json answer is a base64 image (4 bytes for 3) in a little JSON: capped while it streams.
MAX_ANSWER_BYTES = MAX_DOWNLOAD_BYTES * 4 // 3 + 1024 * 1024
MAX_ERROR_BYTES = 64 * 1024
MAX_REDIRECTS = 5
MAX_DECLARED_FACTOR = 4  # an answer may hold up to 4x the pixels asked for, never more
MAX_STORED_TEXT = 4000  # revised_prompt
MAX_USAGE_CHARS = 4096
_SHORT_KEY = 8  # shorter than any real key: scrubbed only where it stands alone, never inside words
# Error codes that mean no other request of this run would fare better.
STOP_CODES = frozenset(
    {
        "invalid_api_key",
        "missing_api_key",
        "insufficient_quota",
        "INSUFFICIENT_BALANCE",
        "AUTHENTICATION_FAILED",
    }
)
# Lumenfall's codes that say a retry may help (whatever the HTTP status).
RETRY_CODES = frozenset({"RATE_LIMITED", "ALL_PROVIDERS_EXHAUSTED"})
GONE_CODES = frozenset({"model_not_found", "MODEL_NOT_FOUND", "MODEL_DISABLED"})
USER_AGENT = f"mkdocs-imagegen/{__version__} (+https://pypi.org/project/mkdocs-imagegen/)"


def api_size(spec: ImageSpec) -> str:
    """The size asked of the API: as written where the model takes it, else the nearest it takes."""
    model = models.find(spec.model)
    return spec.size if model is None else model.api_size(spec.size)


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
        # A transport of the caller's own (a test's MockTransport) reaches no network: image URLs
        # are then not resolved, since no address is ever connected to.
        self._network = transport is None
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 30.0)),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
            transport=transport,
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
        """Make any text bound for a log, an exception, the cache or a placeholder safe.

        Control characters go first (so none can split the key), then every whole occurrence of
        the key. A key too short to be real (a test's `x`) is replaced only where it stands alone,
        so words around it are never garbled. Scrub before truncating, never after.
        """
        text = clean_text(str(text))
        key = self.api_key
        if not key:
            return text
        if len(key) >= _SHORT_KEY:
            return text.replace(key, "[redacted]")
        return re.sub(rf"(?<![\w.-]){re.escape(key)}(?![\w-])", "[redacted]", text)

    # -- the request -----------------------------------------------------------------------------
    def _fields(self, request: GenerationRequest) -> dict[str, Any]:
        """Only what the model and the endpoint accept (models.request_fields)."""
        spec = request.spec
        body: dict[str, Any] = {**self.extra_body, "model": spec.model, "prompt": spec.prompt, "n": 1}
        body.update(
            models.request_fields(
                models.find(spec.model),
                size=spec.size,
                quality=spec.quality,
                background=spec.background,
                fmt=spec.format,
                output_compression=spec.output_compression,
                moderation=request.moderation,
                edit=bool(request.source_path),
                input_fidelity=spec.input_fidelity,
            )
        )
        if self.provider == "lumenfall" and "response_format" not in body:
            body["response_format"] = "b64_json"  # Lumenfall may answer with a URL otherwise
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
        gone = self._gone.get(request.spec.model or "")
        if gone:  # an earlier answer said so: ask nothing more of this model
            raise ProviderError(gone, code="model_not_found", status=404)
        headers = {"Authorization": f"Bearer {self.api_key}"}
        fields = self._fields(request)
        with self._transport_errors(f"the API at {self.base_url}"):
            if request.source_path:
                outgoing = self._client.build_request(
                    "POST",
                    f"{self.base_url}/images/edits",
                    data={k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()},
                    files=self._files(request),
                    headers=headers,
                )
            else:
                outgoing = self._client.build_request(
                    "POST", f"{self.base_url}/images/generations", json=fields, headers=headers
                )
            response = await self._read_capped(outgoing)
        if response.status_code >= 400:
            error = self._error(response, request.spec)
            if error.code in GONE_CODES:
                self._gone[request.spec.model or ""] = error.message
            raise error
        return await self._image(response, request.spec)

    async def _read_capped(self, outgoing: httpx.Request) -> httpx.Response:
        """Send and read the answer, never holding more than an image answer can need."""
        streamed = await self._client.send(outgoing, stream=True)
        try:
            limit = MAX_ERROR_BYTES if streamed.status_code >= 400 else MAX_ANSWER_BYTES
            declared = streamed.headers.get("content-length", "")
            if streamed.status_code < 400 and declared.isdigit() and int(declared) > limit:
                raise ProviderError(
                    f"the API's answer is larger than {limit} bytes; nothing of it was kept", code="too_large"
                )
            body = bytearray()
            async for chunk in streamed.aiter_bytes():  # decoded: the cap is on what is held
                body += chunk
                if len(body) > limit:
                    if streamed.status_code >= 400:
                        break  # the start of an error says enough
                    raise ProviderError(
                        f"the API's answer is larger than {limit} bytes; nothing of it was kept",
                        code="too_large",
                    )
        finally:
            await streamed.aclose()
        dropped = ("content-encoding", "content-length")  # the body below is decoded, maybe cut
        headers = [(k, v) for k, v in streamed.headers.items() if k.lower() not in dropped]
        return httpx.Response(streamed.status_code, headers=headers, content=bytes(body), request=outgoing)

    def _files(self, request: GenerationRequest) -> dict[str, tuple[str, bytes, str]]:
        files = {}
        for field_name, path in (("image", request.source_path), ("mask", request.mask_path)):
            if path:
                with open(path, "rb") as fh:
                    data = fh.read()
                files[field_name] = (os.path.basename(path), data, _mime(path))
        return files

    # -- the answer ------------------------------------------------------------------------------
    async def _image(self, response: httpx.Response, spec: ImageSpec) -> GeneratedImage:
        try:
            payload = json.loads(response.content)
            item = payload["data"][0]
            if not isinstance(item, dict):
                raise TypeError
        except (ValueError, KeyError, IndexError, TypeError, RecursionError):
            # Never the answer's bytes: they may be anything (a page from an internal address).
            kind = clean_text(response.headers.get("content-type", "unknown"))[:60]
            raise ProviderError(
                f"the API answered {response.status_code} with something that is not an image answer "
                f"(content-type {kind}, {len(response.content)} bytes)",
                code="invalid_response",
            ) from None
        info: dict[str, Any] = {}
        if isinstance(item.get("revised_prompt"), str) and item["revised_prompt"].strip():
            info["revised_prompt"] = self.scrub(item["revised_prompt"])[:MAX_STORED_TEXT]
        usage = _plain(payload.get("usage"), self.scrub) if isinstance(payload, dict) else None
        if isinstance(usage, dict) and len(json.dumps(usage)) <= MAX_USAGE_CHARS:
            info["usage"] = usage
        if isinstance(item.get("b64_json"), str):
            try:
                data = base64.b64decode(item["b64_json"], validate=True)
            except (binascii.Error, ValueError):
                raise ProviderError(
                    "the API answered with invalid base64 image data", code="invalid_base64"
                ) from None
        elif isinstance(item.get("url"), str):
            data = await self._download_again_if_needed(item["url"])
        else:
            raise ProviderError("the API answer has neither b64_json nor url", code="invalid_response")
        asked = options.parse_size(api_size(spec))
        try:
            imaging.check_declared_size(data, asked, factor=MAX_DECLARED_FACTOR)
        except imaging.ImageError as exc:
            raise ProviderError(
                f"the API's answer is not an acceptable image: {exc}", code="invalid_image"
            ) from None
        return GeneratedImage(data=data, info=info, cost=reported_cost(payload))

    async def _download_again_if_needed(self, url: str) -> bytes:
        """The image is made and billed: a failed download is retried here, never the generation."""
        attempt = 0
        while True:
            try:
                return await self._download(url)
            except ProviderError as exc:
                attempt += 1
                if not exc.retryable or attempt >= DOWNLOAD_ATTEMPTS:
                    # Not retryable by the engine: a retry there would generate (and pay) again.
                    raise ProviderError(
                        f"{exc.message}; the image was generated (and billed) but could not be "
                        f"downloaded after {attempt} attempt(s)",
                        code=exc.code or "download_failed",
                    ) from None
                await asyncio.sleep(min(4.0, 0.25 * 2**attempt))

    async def _download(self, url: str) -> bytes:
        """Fetch an image URL without our key: http(s) only, size-capped, never to a private address.

        Redirects are followed here, one at a time, so every hop is checked like the first: a
        loopback, private or link-local address (after name resolution) is refused unless it is
        base_url's own host and port. The connection goes to the very address that was checked.
        """
        for _hop in range(MAX_REDIRECTS + 1):
            target, pinned = await self._destination(url)
            with self._transport_errors("the image URL"):
                async with self._client.stream(
                    "GET",
                    pinned,
                    headers={"Host": _host_header(target)},
                    extensions={"sni_hostname": target.host} if target.scheme == "https" else {},
                    follow_redirects=False,
                ) as response:
                    if response.is_redirect and response.headers.get("location"):
                        try:
                            url = str(target.join(response.headers["location"]))
                        except (httpx.InvalidURL, ValueError):
                            raise ProviderError(
                                "the image URL redirected to an invalid address", code="bad_url"
                            ) from None
                        continue
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
        raise ProviderError("the image URL redirected too many times", code="redirect_loop")

    async def _destination(self, url: str) -> tuple[httpx.URL, httpx.URL]:
        """(the URL, the same URL with its host replaced by the checked address)."""
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme not in ("http", "https"):
            shown = clean_text(scheme)[:20]
            raise ProviderError(
                f"the API answered with an image URL of scheme '{shown}:'; only http and https are fetched",
                code="bad_url",
            )
        try:
            target = httpx.URL(url)
        except (httpx.InvalidURL, ValueError):
            raise ProviderError("the API answered with an invalid image URL", code="bad_url") from None
        if not target.host:
            raise ProviderError("the API answered with an image URL without a host", code="bad_url")
        port = target.port or (443 if target.scheme == "https" else 80)
        if not self._network:
            return target, target
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(target.host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise ProviderError(
                "the image URL's host could not be resolved", code="connection_error", retryable=True
            ) from None
        own = self._own_addresses(target, port)
        for _family, _type, _proto, _name, sockaddr in infos:
            address = _address(str(sockaddr[0]))
            if address is None:
                continue
            if (address.is_global and not address.is_multicast) or own:
                # base_url's own host and port may be local: a gateway may serve its own files.
                return target, target.copy_with(host=str(address))
        raise ProviderError(
            "the API answered with an image URL on a loopback, private or link-local address; "
            "it is not fetched (only base_url's own host may be local)",
            code="bad_url",
        )

    def _own_addresses(self, target: httpx.URL, port: int) -> bool:
        base = httpx.URL(self.base_url)
        base_port = base.port or (443 if base.scheme == "https" else 80)
        return (target.host.lower(), port) == (base.host.lower(), base_port)

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
        message, code = error_detail(response, self.scrub)
        detail = self.scrub(f"{message} ({code})" if code else message or response.reason_phrase)
        retryable_code: bool | None = None
        if code in RETRY_CODES:
            retryable_code = True
        elif code in STOP_CODES or code in GONE_CODES:
            retryable_code = False
        decision = decide(status, response.headers, retryable_code=retryable_code)
        stop = status == 401 or code in STOP_CODES
        if code in ("INSUFFICIENT_BALANCE", "insufficient_quota"):
            text = (
                f"the account behind {self.api_key_env} has no credit left at {self.base_url} "
                f"(HTTP {status}): {detail}. Top it up, then build again; nothing more is asked this run"
            )
        elif stop:
            text = (
                f"the API rejected the key in {self.api_key_env} (HTTP {status}): {detail}. "
                f"Set {self.api_key_env} to a valid key"
            )
        elif code == "moderation_blocked" or "safety system" in message:
            text = f"the prompt was refused by the provider's safety system (HTTP {status}): {detail}"
        elif code in GONE_CODES or (status == 404 and "model" in message.lower()):
            code = code or "model_not_found"
            known = models.find(spec.model)
            elsewhere = (
                "; provider: lumenfall still serves it"
                if known is not None and known.lumenfall and self.provider != "lumenfall"
                else ""
            )
            text = (
                f"model '{spec.model}' is not served at {self.base_url} (HTTP {status}): {detail}. "
                f"It may have been retired: set another model: (see the README's model table){elsewhere}; "
                "cached images keep working"
            )
        else:
            text = f"the API answered HTTP {status}: {detail}"
        if not decision.retry and decision.reason and (status in RETRY_STATUSES or status >= 500):
            text += f" (not retried: {decision.reason})"
        return ProviderError(
            text, code=code, status=status, retryable=decision.retry, retry_after=decision.delay, stop=stop
        )

    # -- estimates and lifecycle ---------------------------------------------------------------
    async def dry_run_cost(self, request: GenerationRequest) -> float | None:
        """Lumenfall's own estimate (`?dryRun=true`, nothing generated or billed), or None."""
        if self.provider != "lumenfall" or not self.api_key or request.source_path:
            return None
        try:
            response = await self._client.post(
                f"{self.base_url}/images/generations",
                params={"dryRun": "true"},
                json=self._fields(request),
                headers={"Authorization": f"Bearer {self.api_key}"},
            )
            if response.status_code >= 400:
                return None
            return reported_cost(response.json())
        except (httpx.HTTPError, ValueError):
            return None

    async def shutdown_dates(self) -> dict[str, str] | None:
        """`GET /models`: model id -> shutdown_date where the API lists one; None on any failure."""
        if not self.api_key:
            return None
        try:
            response = await self._client.get(
                f"{self.base_url}/models",
                headers={"Authorization": f"Bearer {self.api_key}"},
                timeout=min(self.timeout, 10.0),
            )
            if response.status_code >= 400 or len(response.content) > 4 * 1024 * 1024:
                return None
            data = response.json().get("data")
        except (httpx.HTTPError, ValueError, AttributeError):
            return None
        dates: dict[str, str] = {}
        for item in data if isinstance(data, list) else []:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            value = item.get("shutdown_date")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                import datetime

                try:
                    value = datetime.datetime.fromtimestamp(value, datetime.timezone.utc).date().isoformat()
                except (OverflowError, OSError, ValueError):
                    continue
            if isinstance(value, str) and _ISO_DATE.match(value):
                dates[item["id"][:200]] = value[:10]
        return dates

    async def aclose(self) -> None:
        await self._client.aclose()


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


class LumenfallProvider(OpenAIProvider):
    """Lumenfall's OpenAI-compatible API: its own URL, key variable, codes and reported costs."""

    name = "lumenfall"
    # Lumenfall still serves gpt-image-1-mini: at low quality the cheapest image here ($0.005).
    default_model = "gpt-image-1-mini"
    default_quality = "low"


def retry_after(headers: httpx.Headers) -> float | None:
    """Seconds the server asked us to wait, when it is a delay openai-python would honour."""
    delay = parse_retry_after(headers)
    return delay if delay is not None and 0 < delay <= 120 else None


def error_detail(response: httpx.Response, scrub: Any = clean_text) -> tuple[str, str | None]:
    """(message, code) of an error answer: OpenAI's `{"error": {...}}`, Lumenfall's upper-case codes,
    or, for any other body (a 422's validation details, an HTML page), the body itself, trimmed.

    Everything is scrubbed (control characters, the key) before it is trimmed, never after: a cut
    must never leave a piece of the key behind."""
    message, code = _error_fields(response)
    message = scrub(message)
    if len(message) > MAX_ERROR_CHARS:
        message = message[: MAX_ERROR_CHARS - 1] + "…"
    return message, scrub(code)[:80] if code else None


def _error_fields(response: httpx.Response) -> tuple[str, str | None]:
    try:
        payload = response.json()
    except (ValueError, RecursionError):
        payload = None
    if isinstance(payload, dict):
        err = payload.get("error")
        if isinstance(err, dict) and (err.get("message") or err.get("code")):
            code = err.get("code") or err.get("type")
            return str(err.get("message") or ""), str(code) if code else None
        if isinstance(err, str) and err:
            code = payload.get("code")
            return err, str(code) if isinstance(code, str) else None
        if isinstance(payload.get("code"), str) and isinstance(payload.get("message"), str):
            return payload["message"], payload["code"]
    return " ".join(response.text.split()), None


def reported_cost(payload: Any) -> float | None:
    """The cost a gateway reports with its answer (Lumenfall: `metadata.cost`), or None."""
    if not isinstance(payload, dict):
        return None
    for holder in (payload.get("metadata"), payload):
        if isinstance(holder, dict):
            for name in ("cost", "estimated_cost"):
                value = holder.get(name)
                if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1000:
                    return float(value)
    return None


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _host_header(url: httpx.URL) -> str:
    default = 443 if url.scheme == "https" else 80
    host = f"[{url.host}]" if ":" in url.host else url.host
    return host if url.port in (None, default) else f"{host}:{url.port}"


def _plain(value: Any, scrub: Any, depth: int = 0) -> Any:
    """JSON-plain data (mappings, lists, text, numbers) at most 4 levels deep, text scrubbed; else None."""
    if depth > 4:
        return None
    if isinstance(value, dict):
        out = {}
        for key, item in list(value.items())[:50]:
            clean = _plain(item, scrub, depth + 1)
            if clean is not None:
                out[scrub(str(key))[:100]] = clean
        return out
    if isinstance(value, list):
        return [x for x in (_plain(item, scrub, depth + 1) for item in value[:50]) if x is not None]
    if isinstance(value, str):
        return scrub(value)[:200]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else None
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    return None


def _too_big() -> ProviderError:
    return ProviderError(
        f"the image at the answered URL is larger than {MAX_DOWNLOAD_BYTES} bytes", code="too_large"
    )


def _mime(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    return {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}.get(
        ext, "application/octet-stream"
    )
