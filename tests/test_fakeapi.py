"""Tests of the FakeImageAPI fixture itself (plain httpx, no plugin code)."""

from __future__ import annotations

import base64
import binascii
import io
import json
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from PIL import Image

from mkdocs_imagegen.testing import (
    BEHAVIOURS,
    Behaviour,
    FakeImageAPI,
    bomb_png,
    colour_for,
    encode_image,
    serve_fake_api,
)
from mkdocs_imagegen.testing.images import PNG_SIGNATURE

pytestmark = pytest.mark.timeout(30)

GEN = "/images/generations"
EDIT = "/images/edits"


@pytest.fixture
def api() -> Iterator[FakeImageAPI]:
    yield from serve_fake_api()


@pytest.fixture
def client(api: FakeImageAPI) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.base_url, timeout=5.0) as c:
        yield c


def generate(client: httpx.Client, prompt: str = "a red fox", **extra: object) -> httpx.Response:
    body: dict[str, object] = {"model": "gpt-image-1-mini", "prompt": prompt, "n": 1}
    body.update(extra)
    return client.post(GEN, json=body, headers={"Authorization": "Bearer sk-test"})


def open_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def png_chunks(data: bytes) -> list[tuple[bytes, bytes, int]]:
    assert data.startswith(PNG_SIGNATURE)
    out = []
    pos = len(PNG_SIGNATURE)
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        out.append((kind, body, crc))
        pos += 12 + length
    return out


def assert_error(response: httpx.Response, status: int, code: str | None, error_type: str) -> dict:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code
    assert error["type"] == error_type
    assert isinstance(error["message"], str) and error["message"]
    return error


# -- images ---------------------------------------------------------------------------


def test_solid_png_encoder_is_valid_and_cached() -> None:
    for size in [(1, 1), (3, 2), (1536, 1024)]:
        data = encode_image(*size, "png", (10, 200, 30))
        image = open_image(data)
        assert image.size == size and image.mode == "RGB"
        assert image.getextrema() == ((10, 10), (200, 200), (30, 30))
        chunks = png_chunks(data)
        for kind, body, crc in chunks:
            assert zlib.crc32(kind + body) == crc
        zlib.decompress(b"".join(body for kind, body, _ in chunks if kind == b"IDAT"))  # adler ok
    assert encode_image(8, 8, "png", (1, 2, 3)) is encode_image(8, 8, "png", (1, 2, 3))


def test_b64_success(api: FakeImageAPI, client: httpx.Client) -> None:
    response = generate(client, "a red fox", size="1536x1024", quality="low")
    assert response.status_code == 200
    payload = response.json()
    assert isinstance(payload["created"], int)
    assert set(payload["usage"]) >= {"input_tokens", "output_tokens", "total_tokens"}
    assert payload["usage"]["total_tokens"] == (
        payload["usage"]["input_tokens"] + payload["usage"]["output_tokens"]
    )
    (item,) = payload["data"]
    assert item["revised_prompt"] == "a red fox"
    image = open_image(base64.b64decode(item["b64_json"], validate=True))
    assert image.format == "PNG"
    assert image.size == (1536, 1024)
    assert image.getpixel((0, 0)) == colour_for("a red fox")

    (recorded,) = api.generation_requests()
    assert recorded.method == "POST" and recorded.path == "/v1/images/generations"
    assert recorded.json == {
        "model": "gpt-image-1-mini",
        "prompt": "a red fox",
        "n": 1,
        "size": "1536x1024",
        "quality": "low",
    }
    assert recorded.form is None and recorded.files is None
    assert recorded.headers["authorization"] == "Bearer sk-test"
    assert recorded.headers["content-type"] == "application/json"
    assert recorded.behaviour == "ok"
    assert recorded.time <= time.monotonic()


def test_default_size_formats_and_n(client: httpx.Client) -> None:
    image = open_image(base64.b64decode(generate(client, "x", size="auto").json()["data"][0]["b64_json"]))
    assert image.size == (1024, 1024)
    image = open_image(base64.b64decode(generate(client, "x").json()["data"][0]["b64_json"]))
    assert image.size == (1024, 1024)
    for fmt, pil_name in [("jpeg", "JPEG"), ("webp", "WEBP"), ("png", "PNG")]:
        compression = {} if fmt == "png" else {"output_compression": 80}  # the spec: webp and jpeg only
        response = generate(client, "formats", size="1024x1536", output_format=fmt, **compression)
        assert response.json()["output_format"] == fmt
        image = open_image(base64.b64decode(response.json()["data"][0]["b64_json"]))
        assert (image.format, image.size) == (pil_name, (1024, 1536))
    data = generate(client, "two", n=2).json()["data"]
    assert len(data) == 2
    assert data[0]["b64_json"] != data[1]["b64_json"]
    # different prompts give different images
    other = generate(client, "another prompt").json()["data"][0]["b64_json"]
    assert other != data[0]["b64_json"]


def test_invalid_parameters_get_400(client: httpx.Client) -> None:
    error = assert_error(generate(client, size="12x"), 400, "invalid_value", "invalid_request_error")
    assert error["param"] == "size"
    error = assert_error(generate(client, output_format="gif"), 400, "invalid_value", "invalid_request_error")
    assert error["param"] == "output_format"
    response = client.post(GEN, json={"model": "m"})
    assert assert_error(response, 400, "invalid_value", "invalid_request_error")["param"] == "prompt"
    response = client.post(GEN, content=b"{nope", headers={"content-type": "application/json"})
    assert_error(response, 400, None, "invalid_request_error")
    assert_error(client.post("/nothing/here", json={}), 404, None, "invalid_request_error")


def test_api_key_enforced_when_configured() -> None:
    with FakeImageAPI(api_key="sk-good") as api, httpx.Client(base_url=api.base_url) as client:
        response = client.post(GEN, json={"prompt": "p"}, headers={"Authorization": "Bearer sk-bad"})
        assert_error(response, 401, "invalid_api_key", "invalid_request_error")
        response = client.post(GEN, json={"prompt": "p"}, headers={"Authorization": "Bearer sk-good"})
        assert response.status_code == 200


# -- URL mode ---------------------------------------------------------------------------


def test_url_mode_download() -> None:
    with FakeImageAPI(mode="url") as api, httpx.Client(base_url=api.base_url, timeout=5) as client:
        response = generate(client, "url mode", size="1024x1536")
        assert response.status_code == 200
        (item,) = response.json()["data"]
        assert "b64_json" not in item
        url = item["url"]
        assert url.startswith(f"http://127.0.0.1:{api.port}/files/") and url.endswith(".png")
        download = client.get(url)
        assert download.status_code == 200
        assert download.headers["content-type"] == "image/png"
        image = open_image(download.content)
        assert image.size == (1024, 1536)
        assert image.getpixel((5, 5)) == colour_for("url mode")
        # "ok" forces a b64 answer in URL mode
        api.enqueue("ok")
        assert "b64_json" in generate(client).json()["data"][0]
        assert client.get(f"{api.root_url}/files/nope.png").status_code == 404
        methods = [(r.method, r.path) for r in api.requests]
        assert ("GET", urlpath(url)) in methods
        assert all(r.method == "POST" for r in api.generation_requests())


def urlpath(url: str) -> str:
    return httpx.URL(url).path


def test_url_behaviour_in_b64_mode(api: FakeImageAPI, client: httpx.Client) -> None:
    api.enqueue("url")
    url = generate(client, "jpeg url", output_format="jpeg").json()["data"][0]["url"]
    assert url.endswith(".jpeg")
    download = client.get(url)
    assert download.headers["content-type"] == "image/jpeg"
    assert open_image(download.content).format == "JPEG"


# -- scripting ----------------------------------------------------------------------------


def test_queue_is_fifo_then_default(api: FakeImageAPI, client: httpx.Client) -> None:
    api.enqueue("500", Behaviour("503"))
    assert len(api.pending) == 2
    assert [generate(client).status_code for _ in range(3)] == [500, 503, 200]
    assert api.pending == []
    assert [r.behaviour for r in api.generation_requests()] == ["500", "503", "ok"]


def test_unknown_behaviour_rejected(api: FakeImageAPI) -> None:
    with pytest.raises(ValueError, match="unknown behaviour"):
        api.enqueue("teapot")
    with pytest.raises(ValueError):
        FakeImageAPI(mode="ftp")


def test_429_headers(api: FakeImageAPI, client: httpx.Client) -> None:
    api.enqueue(
        "429",
        Behaviour("429", retry_after=2.5),
        Behaviour("429", retry_after=None, retry_after_ms=250),
        Behaviour("429", retry_after=3, retry_after_ms=3000),
    )
    first = generate(client)
    assert_error(first, 429, "rate_limit_exceeded", "requests")
    assert first.headers["retry-after"] == "1"
    assert "retry-after-ms" not in first.headers
    assert generate(client).headers["retry-after"] == "2.5"
    third = generate(client)
    assert "retry-after" not in third.headers and third.headers["retry-after-ms"] == "250"
    fourth = generate(client)
    assert (fourth.headers["retry-after"], fourth.headers["retry-after-ms"]) == ("3", "3000")


@pytest.mark.parametrize(
    ("name", "status", "code", "error_type"),
    [
        ("500", 500, "server_error", "server_error"),
        ("503", 503, "service_unavailable", "server_error"),
        ("moderation", 400, "moderation_blocked", "image_generation_user_error"),
        ("401", 401, "invalid_api_key", "invalid_request_error"),
        ("404_model", 404, "model_not_found", "invalid_request_error"),
        ("400", 400, "invalid_value", "invalid_request_error"),
    ],
)
def test_error_behaviours(
    api: FakeImageAPI, client: httpx.Client, name: str, status: int, code: str, error_type: str
) -> None:
    api.enqueue(name)
    error = assert_error(generate(client), status, code, error_type)
    assert error["param"] is None
    if name == "moderation":
        assert error["message"] == "Your request was rejected by the safety system."
    if name == "401":
        assert error["message"] == "Incorrect API key provided: sk-ab***yz."
    if name == "404_model":
        assert "gpt-image-1-mini" in error["message"]


def test_error_overrides_and_extra_headers(api: FakeImageAPI, client: httpx.Client) -> None:
    api.enqueue(
        Behaviour("503", headers={"Retry-After": "7"}),
        Behaviour("error", status=418, code="teapot", message="short and stout", param="prompt"),
    )
    response = generate(client)
    assert response.status_code == 503 and response.headers["retry-after"] == "7"
    error = assert_error(generate(client), 418, "teapot", "invalid_request_error")
    assert (error["message"], error["param"]) == ("short and stout", "prompt")


def test_hang_times_out_client_and_stop_is_quick() -> None:
    before = set(threading.enumerate())
    api = FakeImageAPI().start()
    api.enqueue(Behaviour("hang", seconds=10))
    with httpx.Client(base_url=api.base_url, timeout=0.3) as client, pytest.raises(httpx.ReadTimeout):
        generate(client)
    assert api.generation_requests()[0].behaviour == "hang"
    # keep one more hang in progress while stopping
    api.enqueue(Behaviour("hang", seconds=10))
    results: list[BaseException] = []

    def hang_request() -> None:
        try:
            with httpx.Client(base_url=api.base_url, timeout=5) as client:
                generate(client)
        except BaseException as exc:
            results.append(exc)

    thread = threading.Thread(target=hang_request)
    thread.start()
    deadline = time.monotonic() + 3
    while api.in_flight == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert api.in_flight == 1
    start = time.monotonic()
    api.stop()
    assert time.monotonic() - start < 1.0
    thread.join(3)
    assert not thread.is_alive()
    assert len(results) == 1 and isinstance(results[0], httpx.TransportError)
    leaked = [t for t in set(threading.enumerate()) - before if t.is_alive()]
    assert leaked == []
    assert api.errors == []
    api.stop()  # idempotent


def test_hang_closes_after_its_bound(api: FakeImageAPI, client: httpx.Client) -> None:
    api.enqueue(Behaviour("hang", seconds=0.2))
    start = time.monotonic()
    with pytest.raises(httpx.RemoteProtocolError):
        generate(client)
    assert time.monotonic() - start >= 0.2
    assert generate(client).status_code == 200  # the server is still fine


def test_invalid_json(api: FakeImageAPI, client: httpx.Client) -> None:
    api.enqueue("invalid_json")
    response = generate(client)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_echo_auth(api: FakeImageAPI, client: httpx.Client) -> None:
    api.enqueue("echo_auth")
    response = client.post(
        "/images/generations",
        json={"model": "m", "prompt": "p", "n": 1},
        headers={"Authorization": "Bearer k1"},
    )
    assert response.status_code == 200 and response.text == "<html>Bearer k1</html>"


def test_drip_never_finishes_within_a_read_timeout(api: FakeImageAPI) -> None:
    from mkdocs_imagegen.testing import Behaviour

    api.enqueue(Behaviour("drip", seconds=1.5))
    with (
        httpx.Client(base_url=api.base_url, timeout=1) as client,
        client.stream("POST", "/images/generations", json={"model": "m", "prompt": "p", "n": 1}) as response,
    ):
        assert response.status_code == 200
        with pytest.raises(httpx.HTTPError):
            response.read()  # the 100000 announced bytes never come


def test_html_200(api: FakeImageAPI, client: httpx.Client) -> None:
    api.enqueue("html_200")
    response = generate(client)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<html>" in response.text
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_not_image(api: FakeImageAPI, client: httpx.Client) -> None:
    api.enqueue("not_image")
    data = base64.b64decode(generate(client).json()["data"][0]["b64_json"], validate=True)
    assert data
    with pytest.raises(Image.UnidentifiedImageError):
        open_image(data)


def test_invalid_base64(api: FakeImageAPI, client: httpx.Client) -> None:
    api.enqueue("invalid_base64", "invalid_base64")
    value = generate(client).json()["data"][0]["b64_json"]
    with pytest.raises(binascii.Error):
        base64.b64decode(value, validate=True)
    with pytest.raises(binascii.Error):
        base64.b64decode(generate(client).json()["data"][0]["b64_json"])


def test_truncated_png(api: FakeImageAPI, client: httpx.Client) -> None:
    api.enqueue("truncated_png")
    data = base64.b64decode(generate(client, size="1024x1024").json()["data"][0]["b64_json"])
    full = encode_image(1024, 1024, "png", colour_for("a red fox"))
    assert data == full[: len(full) // 2]
    with pytest.raises(OSError):
        open_image(data)


def test_bomb(api: FakeImageAPI, client: httpx.Client) -> None:
    api.enqueue("bomb", Behaviour("bomb", bomb_width=50_000, bomb_height=60_000))
    data = base64.b64decode(generate(client).json()["data"][0]["b64_json"])
    assert len(data) < 10_000
    chunks = png_chunks(data)
    assert [kind for kind, _, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    for kind, body, crc in chunks:
        assert zlib.crc32(kind + body) == crc
    assert struct.unpack(">II", chunks[0][1][:8]) == (100_000, 100_000)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(data))
    data = base64.b64decode(generate(client).json()["data"][0]["b64_json"])
    assert data == bomb_png(50_000, 60_000)
    assert struct.unpack(">II", png_chunks(data)[0][1][:8]) == (50_000, 60_000)


def test_url_file_scheme(api: FakeImageAPI, client: httpx.Client) -> None:
    api.enqueue("url_file_scheme")
    assert generate(client).json()["data"][0]["url"] == "file:///etc/passwd"


def test_url_big(api: FakeImageAPI, client: httpx.Client) -> None:
    api.enqueue(
        "url_big",
        Behaviour("url_big", size=3 * 1024 * 1024),
        Behaviour("url_big", size=1_000_000, content_length=False),
    )
    # default: 30 MiB announced; the client gives up after the first chunk
    url = generate(client).json()["data"][0]["url"]
    with client.stream("GET", url) as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(30 * 1024 * 1024)
        first = next(response.iter_bytes())
        assert first.startswith(PNG_SIGNATURE)
    # a smaller body read fully
    url = generate(client).json()["data"][0]["url"]
    with client.stream("GET", url) as response:
        assert sum(len(chunk) for chunk in response.iter_bytes()) == 3 * 1024 * 1024
    # without Content-Length: close-delimited
    url = generate(client).json()["data"][0]["url"]
    with client.stream("GET", url) as response:
        assert "content-length" not in response.headers
        assert sum(len(chunk) for chunk in response.iter_bytes()) == 1_000_000
    assert generate(client).status_code == 200
    assert api.errors == []


def test_url_redirect_loop(api: FakeImageAPI, client: httpx.Client) -> None:
    api.enqueue("url_redirect_loop")
    url = generate(client).json()["data"][0]["url"]
    response = client.get(url)
    assert response.status_code == 302
    assert response.headers["location"] == url
    with (
        httpx.Client(follow_redirects=True, max_redirects=5, timeout=5) as follower,
        pytest.raises(httpx.TooManyRedirects),
    ):
        follower.get(url)
    assert sum(1 for r in api.requests if r.method == "GET") == 1 + 6


# -- edits ----------------------------------------------------------------------------------


def test_multipart_edits(api: FakeImageAPI, client: httpx.Client) -> None:
    image_bytes = encode_image(16, 16, "png", (1, 2, 3)) + b"\r\n--not-a-boundary\r\n\x00\xff"
    # A real PNG of the image's dimensions (the spec's rule), with bytes after it that a parser
    # might take for a boundary.
    mask_bytes = encode_image(16, 16, "png", (0, 0, 0)) + b"\r\n--x\r\n" + bytes(range(256)) * 3
    response = client.post(
        EDIT,
        data={"model": "gpt-image-1-mini", "prompt": "make it blue ✓", "n": "1", "size": "1024x1536"},
        files={
            "image": ("input.png", image_bytes, "image/png"),
            "mask": ("mask.png", mask_bytes, "image/png"),
        },
    )
    assert response.status_code == 200
    image = open_image(base64.b64decode(response.json()["data"][0]["b64_json"]))
    assert image.size == (1024, 1536)
    assert image.getpixel((0, 0)) == colour_for("make it blue ✓")
    (recorded,) = api.generation_requests()
    assert recorded.path == "/v1/images/edits"
    assert recorded.json is None
    assert recorded.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert recorded.form == {
        "model": "gpt-image-1-mini",
        "prompt": "make it blue ✓",
        "n": "1",
        "size": "1024x1536",
    }
    assert recorded.files == {"image": image_bytes, "mask": mask_bytes}
    assert [(p.name, p.filename, p.content_type) for p in recorded.file_parts] == [
        ("image", "input.png", "image/png"),
        ("mask", "mask.png", "image/png"),
    ]
    assert recorded.params["prompt"] == "make it blue ✓"


def test_multipart_edits_multiple_images_and_errors(api: FakeImageAPI, client: httpx.Client) -> None:
    response = client.post(
        EDIT,
        data={"model": "m", "prompt": "combine"},
        files=[("image[]", ("a.png", b"AAA", "image/png")), ("image[]", ("b.png", b"BBBB", "image/png"))],
    )
    assert response.status_code == 200
    recorded = api.generation_requests()[-1]
    assert recorded.files == {"image[]": b"AAA"}
    assert [p.data for p in recorded.file_parts] == [b"AAA", b"BBBB"]
    # an edit without an image is a 400; scripted behaviours apply to edits too
    response = client.post(EDIT, data={"model": "m", "prompt": "x"}, files={"other": ("o", b"o")})
    assert assert_error(response, 400, "invalid_value", "invalid_request_error")["param"] == "image"
    api.enqueue("moderation")
    response = client.post(EDIT, data={"prompt": "x"}, files={"image": ("i.png", b"i")})
    assert_error(response, 400, "moderation_blocked", "image_generation_user_error")


# -- concurrency and lifecycle -------------------------------------------------------------


def test_concurrent_requests_overlap() -> None:
    with FakeImageAPI(latency=0.3) as api, httpx.Client(base_url=api.base_url, timeout=5) as client:
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(lambda i: generate(client, f"prompt {i}").status_code, range(8)))
        assert statuses == [200] * 8
        assert api.max_in_flight > 1
        # The handler leaves the counter just after its answer is sent: give it that moment.
        deadline = time.monotonic() + 5
        while api.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)
        assert api.in_flight == 0
        assert len(api.generation_requests()) == 8


def test_latency_applies_to_errors_and_each_request(api: FakeImageAPI, client: httpx.Client) -> None:
    api.latency = 0.1
    api.enqueue("500")
    start = time.monotonic()
    assert generate(client).status_code == 500
    assert time.monotonic() - start >= 0.1


def test_lifecycle() -> None:
    api = FakeImageAPI()
    assert not api.running
    with api:
        assert api.running
        assert api.base_url == f"http://127.0.0.1:{api.port}/v1"
        assert api.port > 0
        with pytest.raises(RuntimeError):
            api.start()
        with httpx.Client(base_url=api.base_url) as client:  # keep-alive connection left open
            assert generate(client).status_code == 200
            start = time.monotonic()
            api.stop()
            assert time.monotonic() - start < 1.0
            assert not api.running
    with pytest.raises(httpx.ConnectError), httpx.Client(timeout=1) as client:
        client.get(f"{api.root_url}/files/x.png")


def test_hostile_answer_behaviours(api: FakeImageAPI, client: httpx.Client) -> None:
    api.enqueue(
        Behaviour("b64_data", data=b"any bytes", revised_prompt="said", usage={"n": 1}),
        Behaviour("raw", status=418, body=b"\x1b[2Jteapot", content_type="text/plain"),
        Behaviour("b64_huge", size=100_000),
        Behaviour("b64_huge", size=1000, content_length=False),
        Behaviour("url_to", url="http://169.254.169.254/latest/"),
        Behaviour("redirect_to", url="http://10.0.0.1/x"),
    )
    answer = generate(client).json()
    assert base64.b64decode(answer["data"][0]["b64_json"]) == b"any bytes"
    assert answer["data"][0]["revised_prompt"] == "said" and answer["usage"] == {"n": 1}
    raw = generate(client)
    assert (raw.status_code, raw.content, raw.headers["content-type"]) == (
        418,
        b"\x1b[2Jteapot",
        "text/plain",
    )
    assert len(generate(client).json()["data"][0]["b64_json"]) == 100_000
    with httpx.Client(base_url=api.base_url, timeout=5.0) as fresh:  # this one closes its connection
        assert len(generate(fresh).json()["data"][0]["b64_json"]) == 1000
    assert generate(client).json()["data"][0]["url"] == "http://169.254.169.254/latest/"
    hop = client.get(generate(client).json()["data"][0]["url"])
    assert (hop.status_code, hop.headers["location"]) == (302, "http://10.0.0.1/x")


def test_every_behaviour_is_tested() -> None:
    covered = {
        "ok", "url", "429", "500", "503", "hang", "invalid_json", "not_image", "invalid_base64",
        "truncated_png", "html_200", "bomb", "moderation", "401", "404_model", "400", "error",
        "url_file_scheme", "url_big", "url_redirect_loop", "echo_auth", "drip",
        "url_fail_once", "raw_error",
        "b64_data", "raw", "b64_huge", "url_to", "redirect_to",
    }  # fmt: skip
    assert covered == BEHAVIOURS


def test_url_fail_once_and_raw_error(api: FakeImageAPI, client: httpx.Client) -> None:
    api.enqueue("url_fail_once", Behaviour("raw_error", status=422, message='{"detail": "bad size"}'))
    url = generate(client, "once").json()["data"][0]["url"]
    assert client.get(url).status_code == 500
    assert open_image(client.get(url).content).size == (1024, 1024)
    response = generate(client)
    assert response.status_code == 422 and response.json() == {"detail": "bad size"}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "dall-e-3", "size": "auto"}, "size"),
        ({"model": "dall-e-2", "prompt": "x" * 1001}, "prompt"),
        ({"model": "dall-e-3", "output_format": "png"}, "output_format"),
        ({"model": "gpt-image-1", "quality": "hd"}, "quality"),
        ({"model": "gpt-image-1-mini", "size": "800x400"}, "size"),
        ({"model": "gpt-image-2", "size": "801x400"}, "size"),
        ({"model": "gpt-image-2", "size": "1600x400"}, "size"),
        ({"model": "gpt-image-2", "background": "transparent"}, "background"),
        ({"model": "gpt-image-1", "background": "transparent", "output_format": "jpeg"}, "background"),
        ({"model": "gpt-image-1", "output_compression": 50}, "output_compression"),
        ({"model": "gpt-image-1", "response_format": "b64_json"}, "response_format"),
    ],
)
def test_requests_the_spec_refuses_are_refused(client: httpx.Client, body: dict, param: str) -> None:
    response = client.post(GEN, json={"prompt": "p", **body})
    assert assert_error(response, 400, "invalid_value", "invalid_request_error")["param"] == param


def test_requests_the_spec_takes_are_taken(client: httpx.Client) -> None:
    for body in (
        {"model": "gpt-image-2", "size": "800x400"},
        {"model": "gpt-image-2-2026-04-21", "size": "3840x2160"},
        {"model": "dall-e-3", "size": "1792x1024", "quality": "hd", "response_format": "b64_json"},
        {"model": "openai/gpt-image-1-mini", "size": "1536x1024", "quality": "low"},
        {"model": "acme/anything", "size": "123x45", "quality": "ultra"},
    ):
        assert client.post(GEN, json={"prompt": "p", **body}).status_code == 200, body


def test_edits_refuse_moderation_dalle3_and_a_wrong_mask(client: httpx.Client) -> None:
    png = encode_image(16, 16, "png", (1, 2, 3))
    small = encode_image(8, 8, "png", (1, 2, 3))
    cases = [
        ({"model": "gpt-image-1", "moderation": "low"}, {"image": ("i.png", png)}, "moderation"),
        ({"model": "dall-e-3"}, {"image": ("i.png", png)}, "model"),
        ({"model": "gpt-image-1"}, {"image": ("i.png", png), "mask": ("m.png", small)}, "mask"),
        (
            {"model": "gpt-image-1-mini", "input_fidelity": "high"},
            {"image": ("i.png", png)},
            "input_fidelity",
        ),
    ]
    for data, files, param in cases:
        response = client.post(EDIT, data={"prompt": "p", **data}, files=files)
        assert assert_error(response, 400, "invalid_value", "invalid_request_error")["param"] == param


def test_lumenfall_flavour_takes_response_format_and_lists_models() -> None:
    with FakeImageAPI(flavour="lumenfall") as api, httpx.Client(base_url=api.base_url) as client:
        body = {"model": "gpt-image-1-mini", "prompt": "p", "response_format": "b64_json"}
        assert client.post(GEN, json=body).status_code == 200
        api.models = [{"id": "gpt-image-1-mini", "shutdown_date": "2027-01-01"}]
        assert client.get("/models").json()["data"] == api.models
        quote = client.post(GEN, params={"dryRun": "true"}, json=body).json()
        assert quote["metadata"]["cost"] == api.dry_run_cost
        assert len(api.generation_requests()) == 1  # the estimate generated nothing
