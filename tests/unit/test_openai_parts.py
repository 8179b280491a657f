"""The OpenAI provider's layers on their own: request body, errors, exchange, answer, image URL fetch."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

import httpx
import pytest

from mkdocs_imagegen.providers import GenerationRequest, ProviderError
from mkdocs_imagegen.providers.image_url import MAX_REDIRECTS, ImageFetcher
from mkdocs_imagegen.providers.openai_answer import read_image, reported_cost, shutdown_dates
from mkdocs_imagegen.providers.openai_errors import api_error, transport_errors
from mkdocs_imagegen.providers.openai_http import MAX_ERROR_BYTES, ImagesAPI
from mkdocs_imagegen.providers.openai_request import form_fields, request_body
from mkdocs_imagegen.spec import ImageSpec

T = TypeVar("T")
KEY = "sk-parts-0123456789"
SPEC = ImageSpec(provider="openai", model="gpt-image-1-mini", prompt="a fox", size="1024x1024", format="png")
Handler = Callable[[httpx.Request], httpx.Response]


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def no_scrub(text: str) -> str:
    return text


def fetch(
    handler: Handler, url: str, *, network: bool = False, base_url: str = "https://api.test/v1"
) -> bytes:
    async def go() -> bytes:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            fetcher = ImageFetcher(client, base_url=base_url, network=network, timeout=5.0, scrub=no_scrub)
            return await fetcher.fetch(url)

    return run(go())


def test_lumenfall_is_asked_for_base64_and_form_fields_are_text() -> None:
    body = request_body(GenerationRequest(SPEC), extra_body={"seed": 7}, provider="lumenfall")
    assert body["response_format"] == "b64_json" and body["seed"] == 7
    assert "response_format" not in request_body(GenerationRequest(SPEC), extra_body={}, provider="openai")
    assert form_fields({"prompt": "a fox", "n": 1, "extra": {"a": [1]}}) == {
        "prompt": "a fox",
        "n": "1",
        "extra": '{"a": [1]}',
    }


def error_for(status: int, body: dict[str, Any], **headers: str) -> ProviderError:
    response = httpx.Response(status, json=body, headers=headers)
    return api_error(
        response,
        "gpt-image-1-mini",
        base_url="https://x.test",
        api_key_env="K",
        provider="openai",
        scrub=no_scrub,
    )


def test_an_error_answer_says_what_it_means() -> None:
    broke = error_for(402, {"error": "no balance", "code": "INSUFFICIENT_BALANCE"})
    assert broke.stop and not broke.retryable and "has no credit left at https://x.test" in broke.message
    busy = error_for(400, {"code": "RATE_LIMITED", "message": "busy"})  # Lumenfall's code wins over 400
    assert busy.retryable and busy.code == "RATE_LIMITED"
    refused = error_for(503, {"error": {"message": "down"}}, **{"x-should-retry": "false"})
    assert not refused.retryable and refused.message.endswith("(not retried: x-should-retry: false)")
    gone = error_for(404, {"error": {"message": "The model does not exist"}})
    assert gone.code == "model_not_found" and "provider: lumenfall still serves it" in gone.message


def test_transport_failures_become_provider_errors() -> None:
    with (
        pytest.raises(ProviderError) as caught,
        transport_errors("the API", 2.5, lambda t: t.replace("s3", "*")),
    ):
        raise httpx.ReadTimeout("slow")
    assert (caught.value.code, caught.value.retryable) == ("timeout", True)
    assert "did not answer within 2.5 s" in caught.value.message
    with (
        pytest.raises(ProviderError) as caught,
        transport_errors("the API", 1, lambda t: t.replace("s3", "*")),
    ):
        raise httpx.ConnectError("refused s3")
    assert caught.value.code == "connection_error" and caught.value.message.endswith("reached: refused *")


async def chunks(count: int, size: int) -> AsyncIterator[bytes]:
    for _ in range(count):
        yield b"e" * size


def test_an_error_answer_is_cut_not_refused() -> None:
    async def go() -> httpx.Response:
        api = ImagesAPI(
            base_url="https://api.test/v1",
            api_key=KEY,
            timeout=5.0,
            concurrency=1,
            transport=httpx.MockTransport(lambda request: httpx.Response(500, content=chunks(64, 4096))),
        )
        try:
            return await api.post("/images/generations", {"prompt": "p"})
        finally:
            await api.aclose()

    response = run(go())
    assert response.status_code == 500 and len(response.content) == MAX_ERROR_BYTES + 4096  # of 256 KiB
    assert response.request.headers["authorization"] == f"Bearer {KEY}"


def test_the_answer_keeps_only_plain_scrubbed_data() -> None:
    payload = {
        "data": [{"b64_json": base64.b64encode(b"IMG").decode(), "revised_prompt": f"fox {KEY}"}],
        "usage": {"tokens": 3, "nested": {"deep": {"deeper": {"deepest": {"gone": 1}}}}, "odd": float("nan")},
        "metadata": {"cost": 0.004},
    }

    async def nothing(url: str) -> bytes:
        raise AssertionError("a b64 answer fetches nothing")

    answer = httpx.Response(200, content=json.dumps(payload))  # NaN included: Python's json writes it
    image = run(read_image(answer, SPEC, scrub=lambda t: t.replace(KEY, "*"), fetch=nothing))
    assert image.data == b"IMG" and image.cost == 0.004
    assert image.info == {
        "revised_prompt": "fox *",
        "usage": {"tokens": 3, "nested": {"deep": {"deeper": {"deepest": {}}}}},  # cut 4 levels down
    }
    assert reported_cost({"cost": True}) is None and reported_cost({"estimated_cost": 2}) == 2.0


def test_shutdown_dates_read_iso_dates_and_unix_times() -> None:
    data = [
        {"id": "a", "shutdown_date": "2026-12-01T00:00:00Z"},
        {"id": "b", "shutdown_date": 0},
        {"id": "c", "shutdown_date": "soon"},
        {"id": 3, "shutdown_date": "2026-01-01"},
        "junk",
    ]
    assert shutdown_dates(data) == {"a": "2026-12-01", "b": "1970-01-01"}
    assert shutdown_dates({"not": "a list"}) == {}


def test_a_private_address_is_refused_unless_it_is_base_urls_own() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"LOCAL")

    with pytest.raises(ProviderError) as caught:
        fetch(handler, "http://127.0.0.1:9/i.png", network=True)
    assert caught.value.code == "bad_url" and "loopback, private or link-local" in caught.value.message
    assert (
        fetch(handler, "http://127.0.0.1:9/i.png", network=True, base_url="http://127.0.0.1:9/v1") == b"LOCAL"
    )


def test_redirects_are_followed_a_bounded_number_of_times() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(302, headers={"location": f"/hop{len(seen)}"})

    with pytest.raises(ProviderError) as caught:
        fetch(handler, "https://cdn.test/i.png")
    assert caught.value.code == "redirect_loop" and len(seen) == MAX_REDIRECTS + 1
    assert "generated (and billed) but could not be downloaded after 1 attempt(s)" in caught.value.message


def test_a_failing_download_is_tried_again() -> None:
    answers = iter([httpx.Response(503), httpx.Response(200, content=b"OK")])
    assert fetch(lambda request: next(answers), "https://cdn.test/i.png") == b"OK"  # after a 0.5 s pause
