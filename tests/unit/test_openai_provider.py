"""The OpenAI-compatible provider against httpx.MockTransport: what is sent, how answers are read."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from mkdocs_imagegen.providers import GeneratedImage, GenerationRequest, ProviderError
from mkdocs_imagegen.providers.openai import MAX_DOWNLOAD_BYTES, OpenAIProvider, api_size, retry_after
from mkdocs_imagegen.providers.openai_errors import STOP_CODES
from mkdocs_imagegen.spec import ImageSpec

KEY = "sk-unit-0123456789"
SPEC = ImageSpec(provider="openai", model="gpt-image-1-mini", prompt="a fox", size="1536x1024", format="webp")
Handler = Callable[[httpx.Request], httpx.Response]


def provider(handler: Handler, monkeypatch: pytest.MonkeyPatch, **options: Any) -> OpenAIProvider:
    monkeypatch.setenv("UNIT_KEY", KEY)
    settings: dict[str, Any] = {"base_url": "https://api.test/v1/", "api_key_env": "UNIT_KEY", "timeout": 5.0}
    return OpenAIProvider(concurrency=2, transport=httpx.MockTransport(handler), **{**settings, **options})


def generate(p: OpenAIProvider, request: GenerationRequest | None = None) -> GeneratedImage:
    async def run() -> GeneratedImage:
        try:
            return await p.generate(request or GenerationRequest(SPEC, moderation="low"))
        finally:
            await p.aclose()

    return asyncio.run(run())


def b64_answer(data: bytes = b"IMAGE", **extra: Any) -> httpx.Response:
    body = {"data": [{"b64_json": base64.b64encode(data).decode(), "revised_prompt": "a red fox"}], **extra}
    return httpx.Response(200, json=body)


def error(status: int, code: str | None, message: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"message": message, "code": code}}, headers=headers)


def test_the_request_carries_only_what_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return b64_answer(usage={"total_tokens": 3})

    image = generate(provider(handler, monkeypatch, extra_body={"seed": 7}), None)
    (request,) = seen
    assert str(request.url) == "https://api.test/v1/images/generations"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["user-agent"].startswith("mkdocs-imagegen/")
    assert json.loads(request.content) == {
        "seed": 7,
        "model": "gpt-image-1-mini",
        "prompt": "a fox",
        "n": 1,
        "size": "1536x1024",
        "output_format": "webp",
        "moderation": "low",
    }
    assert image.data == b"IMAGE" and not image.exact
    assert image.info == {"revised_prompt": "a red fox", "usage": {"total_tokens": 3}}


def test_an_edit_is_sent_as_multipart(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    source = tmp_path / "photo.png"
    source.write_bytes(b"\x89PNG source")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return b64_answer()

    generate(provider(handler, monkeypatch), GenerationRequest(SPEC, source_path=str(source)))
    (request,) = seen
    assert request.url.path == "/v1/images/edits"
    assert request.headers["content-type"].startswith("multipart/form-data")
    assert b'filename="photo.png"' in request.content and b"\x89PNG source" in request.content


def test_an_unsupported_size_asks_for_the_nearest_supported_one() -> None:
    assert api_size(SPEC) == "1536x1024"
    wide = ImageSpec(provider="openai", model="gpt-image-1", prompt="p", size="1600x900", format="png")
    assert api_size(wide) == "1536x1024"
    other = ImageSpec(
        provider="openai", model="some-gateway-model", prompt="p", size="1600x900", format="png"
    )
    assert api_size(other) == "1600x900"


@pytest.mark.parametrize(
    ("answer", "code", "retryable", "says"),
    [
        (
            error(429, "rate_limit_exceeded", "slow down", **{"retry-after-ms": "1500"}),
            "rate_limit_exceeded",
            True,
            "HTTP 429",
        ),
        (error(500, None, "oops"), None, True, "HTTP 500"),
        (error(401, "invalid_api_key", "bad key"), "invalid_api_key", False, "Set UNIT_KEY to a valid key"),
        (error(429, "insufficient_quota", "no money"), "insufficient_quota", False, "no money"),
        (
            error(429, "billing_hard_limit_reached", "limit"),
            "billing_hard_limit_reached",
            False,
            "no credit left",
        ),
        (error(402, None, "pay up"), None, False, "no credit left"),
        (error(403, "account_deactivated", "gone"), "account_deactivated", False, "is deactivated at"),
        (error(400, "moderation_blocked", "no"), "moderation_blocked", False, "safety system"),
        (
            error(404, "model_not_found", "no such model"),
            "model_not_found",
            False,
            "model 'gpt-image-1-mini' is not served at",
        ),
    ],
)
def test_errors_say_what_happened_and_whether_to_retry(
    monkeypatch: pytest.MonkeyPatch, answer: httpx.Response, code: str | None, retryable: bool, says: str
) -> None:
    with pytest.raises(ProviderError) as caught:
        generate(provider(lambda request: answer, monkeypatch))
    exc = caught.value
    assert (exc.code, exc.retryable, exc.status) == (code, retryable, answer.status_code)
    assert says in exc.message
    # The provider alone decides which answers end the run; the engine trusts its flag.
    assert exc.stop == (code in STOP_CODES or answer.status_code in (401, 402))
    if answer.status_code == 429 and retryable:
        assert exc.retry_after == 1.5


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (httpx.Response(200, json={"data": [{"b64_json": "***"}]}), "invalid_base64"),
        (httpx.Response(200, text="<html>gateway</html>"), "invalid_response"),
        (httpx.Response(200, json={"data": [{}]}), "invalid_response"),
        (httpx.Response(200, json={"data": [{"url": "file:///etc/passwd"}]}), "bad_url"),
    ],
)
def test_hostile_answers_are_refused(
    monkeypatch: pytest.MonkeyPatch, answer: httpx.Response, code: str
) -> None:
    with pytest.raises(ProviderError) as caught:
        generate(provider(lambda request: answer, monkeypatch))
    assert caught.value.code == code and caught.value.status is None


def test_an_image_url_is_fetched_without_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "cdn.test":
            return httpx.Response(200, content=b"FROM CDN")
        return httpx.Response(200, json={"data": [{"url": "https://cdn.test/i.webp"}]})

    assert generate(provider(handler, monkeypatch)).data == b"FROM CDN"
    assert "authorization" not in seen[1].headers


def test_an_oversized_download_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "cdn.test":
            return httpx.Response(200, headers={"content-length": str(MAX_DOWNLOAD_BYTES + 1)}, content=b"x")
        return httpx.Response(200, json={"data": [{"url": "https://cdn.test/i.webp"}]})

    with pytest.raises(ProviderError) as caught:
        generate(provider(handler, monkeypatch))
    assert caught.value.code == "too_large"


def test_a_connection_failure_is_retryable_and_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"refused while sending {KEY}")

    with pytest.raises(ProviderError) as caught:
        generate(provider(handler, monkeypatch))
    assert caught.value.retryable and caught.value.code == "connection_error"
    assert KEY not in caught.value.message and "[redacted]" in caught.value.message


def test_no_key_is_a_reason_not_a_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UNSET_KEY", raising=False)
    p = OpenAIProvider(
        base_url="https://api.test/v1",
        api_key_env="UNSET_KEY",
        timeout=5,
        concurrency=1,
        transport=httpx.MockTransport(lambda request: pytest.fail("no request without a key")),
    )
    assert "UNSET_KEY is not set" in (p.unavailable_reason() or "")


def test_retry_after_headers() -> None:
    assert retry_after(httpx.Headers({"retry-after-ms": "250"})) == 0.25
    assert retry_after(httpx.Headers({"retry-after": "3"})) == 3.0
    # In the past (or zero): the engine's backoff, not an instant retry (openai-python's rule).
    assert retry_after(httpx.Headers({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) is None
    assert retry_after(httpx.Headers({"retry-after": "0"})) is None
    assert retry_after(httpx.Headers({"retry-after": "soon"})) is None
    assert retry_after(httpx.Headers()) is None
