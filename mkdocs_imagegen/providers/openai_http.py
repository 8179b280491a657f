"""The HTTP exchange with an Images API: one shared client per build, the key, answers read under a cap.

The key goes in the Authorization header of requests to `base_url` only (an answered image URL is
fetched without it, by `image_url`), and is scrubbed from anything the exchange says.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from .. import __version__
from . import ProviderError, clean_text
from .image_url import MAX_DOWNLOAD_BYTES
from .openai_errors import transport_errors
from .openai_request import Files, form_fields

# A b64_json answer is a base64 image (4 bytes for 3) in a little JSON: capped while it streams.
MAX_ANSWER_BYTES = MAX_DOWNLOAD_BYTES * 4 // 3 + 1024 * 1024
MAX_ERROR_BYTES = 64 * 1024
_SHORT_KEY = 8  # shorter than any real key: scrubbed only where it stands alone, never inside words
USER_AGENT = f"mkdocs-imagegen/{__version__} (+https://pypi.org/project/mkdocs-imagegen/)"


class ImagesAPI:
    """Requests to `base_url` with the key, and the answers they get, never held past their cap."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout: float,
        concurrency: int,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.timeout = timeout
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 30.0)),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
            transport=transport,
        )

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def scrub(self, text: str) -> str:
        """Control characters go first (so none can split the key), then every whole occurrence of
        the key. A key too short to be real (a test's `x`) is replaced only where it stands alone,
        so words around it are never garbled. Scrub before truncating, never after."""
        text = clean_text(str(text))
        key = self.api_key
        if not key:
            return text
        if len(key) >= _SHORT_KEY:
            return text.replace(key, "[redacted]")
        return re.sub(rf"(?<![\w.-]){re.escape(key)}(?![\w-])", "[redacted]", text)

    async def post(self, path: str, body: dict[str, Any], files: Files | None = None) -> httpx.Response:
        """POST `body` as JSON, or with `files` as a multipart form; the answer whatever its status."""
        url = f"{self.base_url}{path}"
        with transport_errors(f"the API at {self.base_url}", self.timeout, self.scrub):
            if files is None:
                outgoing = self.client.build_request("POST", url, json=body, headers=self.auth)
            else:
                outgoing = self.client.build_request(
                    "POST", url, data=form_fields(body), files=files, headers=self.auth
                )
            return await self._read_capped(outgoing)

    async def _read_capped(self, outgoing: httpx.Request) -> httpx.Response:
        """Send and read the answer, never holding more than an image answer can need."""
        streamed = await self.client.send(outgoing, stream=True)
        try:
            limit = MAX_ERROR_BYTES if streamed.status_code >= 400 else MAX_ANSWER_BYTES
            declared = streamed.headers.get("content-length", "")
            if streamed.status_code < 400 and declared.isdigit() and int(declared) > limit:
                raise _too_large(limit)
            body = bytearray()
            async for chunk in streamed.aiter_bytes():  # decoded: the cap is on what is held
                body += chunk
                if len(body) > limit:
                    if streamed.status_code >= 400:
                        break  # the start of an error says enough
                    raise _too_large(limit)
        finally:
            await streamed.aclose()
        dropped = ("content-encoding", "content-length")  # the body below is decoded, maybe cut
        headers = [(k, v) for k, v in streamed.headers.items() if k.lower() not in dropped]
        return httpx.Response(streamed.status_code, headers=headers, content=bytes(body), request=outgoing)

    async def quote(self, body: dict[str, Any]) -> Any:
        """Lumenfall's `?dryRun=true` answer (nothing generated or billed); None on any failure."""
        try:
            response = await self.client.post(
                f"{self.base_url}/images/generations", params={"dryRun": "true"}, json=body, headers=self.auth
            )
            if response.status_code >= 400:
                return None
            return response.json()
        except (httpx.HTTPError, ValueError):
            return None

    async def model_list(self) -> dict[str, Any] | None:
        """`GET /models`'s answer; None on any failure, an answer over 4 MiB or not a JSON object."""
        try:
            response = await self.client.get(
                f"{self.base_url}/models", headers=self.auth, timeout=min(self.timeout, 10.0)
            )
            if response.status_code >= 400 or len(response.content) > 4 * 1024 * 1024:
                return None
            payload = response.json()
        except (httpx.HTTPError, ValueError):
            return None
        return payload if isinstance(payload, dict) else None

    async def aclose(self) -> None:
        await self.client.aclose()


def _too_large(limit: int) -> ProviderError:
    return ProviderError(
        f"the API's answer is larger than {limit} bytes; nothing of it was kept", code="too_large"
    )
