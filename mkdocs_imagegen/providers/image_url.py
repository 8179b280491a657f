"""Fetching an image an API answered with as a URL: the one place an answer makes us connect anywhere.

So it is guarded: http(s) only, no key sent, size-capped, never to a loopback, private or link-local
address (after name resolution, on every redirect hop) unless it is base_url's own host and port.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable

import httpx

from . import ProviderError, clean_text
from .openai_errors import transport_errors
from .retry import RETRY_STATUSES

MAX_DOWNLOAD_BYTES = 32 * 1024 * 1024
DOWNLOAD_ATTEMPTS = 3  # a generated (and billed) image is fetched again, never generated again
MAX_REDIRECTS = 5


class ImageFetcher:
    """Downloads answered image URLs on the build's shared client, checking every hop first."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        base_url: str,
        network: bool,
        timeout: float,
        scrub: Callable[[str], str],
    ) -> None:
        self._client = client
        self._base_url = base_url
        # False with a caller's own transport (a test's MockTransport): no address is ever
        # connected to, so none is resolved.
        self._network = network
        self._timeout = timeout
        self._scrub = scrub

    async def fetch(self, url: str) -> bytes:
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
        """Redirects are followed here, one at a time, so every hop is checked like the first; the
        connection goes to the very address that was checked."""
        for _hop in range(MAX_REDIRECTS + 1):
            target, pinned = await self._destination(url)
            with transport_errors("the image URL", self._timeout, self._scrub):
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
                    return await _body(response)
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
        port = target.port or _default_port(target)
        if not self._network:
            return target, target
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(target.host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise ProviderError(
                "the image URL's host could not be resolved", code="connection_error", retryable=True
            ) from None
        own = self._is_base_url(target, port)
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

    def _is_base_url(self, target: httpx.URL, port: int) -> bool:
        base = httpx.URL(self._base_url)
        base_port = base.port or _default_port(base)
        return (target.host.lower(), port) == (base.host.lower(), base_port)


async def _body(response: httpx.Response) -> bytes:
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


def _default_port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _host_header(url: httpx.URL) -> str:
    host = f"[{url.host}]" if ":" in url.host else url.host
    return host if url.port in (None, _default_port(url)) else f"{host}:{url.port}"


def _too_big() -> ProviderError:
    return ProviderError(
        f"the image at the answered URL is larger than {MAX_DOWNLOAD_BYTES} bytes", code="too_large"
    )
