"""A fake OpenAI Images API served over real HTTP on loopback, for tests.

The plugin's tests must never talk to a real image service.  ``FakeImageAPI``
runs a threaded HTTP server on ``127.0.0.1`` (ephemeral port) that speaks the
subset of the OpenAI Images API used by the plugin:

* ``POST /v1/images/generations`` (JSON body)
* ``POST /v1/images/edits`` (``multipart/form-data`` body)
* ``GET /files/<id>.<ext>`` (images handed out in URL mode)

Answers are scripted with :meth:`FakeImageAPI.enqueue` (one behaviour per
generation/edit request, FIFO); when nothing is queued the answer is a success
in the server's ``mode`` (``"b64"`` or ``"url"``).  Every request is recorded
in :attr:`FakeImageAPI.requests`.

Typical use::

    with FakeImageAPI(latency=0.0) as api:
        api.enqueue("429", Behaviour("hang", seconds=2), "ok")
        ...  # point the plugin at api.base_url
        assert len(api.generation_requests()) == 3

For pytest, wrap :func:`serve_fake_api` in a fixture::

    @pytest.fixture
    def fake_api():
        yield from serve_fake_api()
"""

from __future__ import annotations

import base64
import contextlib
import email.parser
import email.policy
import functools
import hashlib
import io
import itertools
import json
import re
import socket
import socketserver
import struct
import sys
import threading
import time
import traceback
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from PIL import Image

__all__ = [
    "BEHAVIOURS",
    "Behaviour",
    "FakeImageAPI",
    "RecordedRequest",
    "bomb_png",
    "colour_for",
    "serve_fake_api",
]

# --------------------------------------------------------------------------
# Behaviours
# --------------------------------------------------------------------------

#: Names accepted by :meth:`FakeImageAPI.enqueue` (as strings or ``Behaviour.name``).
BEHAVIOURS: frozenset[str] = frozenset(
    {
        # successes
        "ok",  # 200, data[i].b64_json
        "url",  # 200, data[i].url -> GET /files/<id>.<ext>
        # retryable errors
        "429",  # Retry-After: <retry_after> and/or retry-after-ms: <retry_after_ms>
        "500",
        "503",
        "hang",  # no answer; connection closed after `seconds` (or at stop())
        "drip",  # 200 headers, then one body byte every 0.3 s for `seconds`: never a whole answer
        # broken 200 answers
        "invalid_json",
        "not_image",
        "invalid_base64",
        "truncated_png",
        "html_200",
        "echo_auth",  # 200 text/html page that echoes the request's Authorization header back
        "bomb",  # PNG whose IHDR declares bomb_width x bomb_height
        # non-retryable errors
        "moderation",
        "401",
        "404_model",
        "400",
        "error",  # generic: status / error_type / code / message from the Behaviour
        # hostile URLs
        "url_file_scheme",
        "url_big",  # GET body of `size` bytes, streamed
        "url_redirect_loop",  # GET answers 302 to itself forever
    }
)

_ERROR_DEFAULTS: dict[str, tuple[int, str, str | None, str]] = {
    # name: (status, type, code, message)
    "429": (
        429,
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for images per minute. Please try again later.",
    ),
    "500": (
        500,
        "server_error",
        "server_error",
        "The server had an error while processing your request. Sorry about that!",
    ),
    "503": (
        503,
        "server_error",
        "service_unavailable",
        "The engine is currently overloaded, please try again later.",
    ),
    "moderation": (
        400,
        "image_generation_user_error",
        "moderation_blocked",
        "Your request was rejected by the safety system.",
    ),
    "401": (
        401,
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided: sk-ab***yz.",
    ),
    "404_model": (
        404,
        "invalid_request_error",
        "model_not_found",
        "The model `{model}` does not exist or you do not have access to it.",
    ),
    "400": (
        400,
        "invalid_request_error",
        "invalid_value",
        "Invalid request: the request could not be processed.",
    ),
    "error": (
        400,
        "invalid_request_error",
        None,
        "Scripted error.",
    ),
}


@dataclass
class Behaviour:
    """One scripted answer.  ``Behaviour("500")`` is the same as ``"500"``.

    Only the parameters relevant to ``name`` are used:

    * ``"429"``: ``retry_after`` (``Retry-After`` header value, default ``1``;
      ``None`` omits the header; a ``str`` is sent verbatim, e.g. an HTTP date)
      and ``retry_after_ms`` (``retry-after-ms`` header, default omitted).
    * ``"hang"``: ``seconds`` (default 5.0) - how long the connection is held
      open without an answer before it is closed; ``stop()`` ends it at once.
    * ``"url_big"``: ``size`` (default 30 MiB) bytes served by the GET, in
      chunks; ``content_length=False`` omits ``Content-Length`` (body delimited
      by closing the connection).
    * ``"bomb"``: ``bomb_width`` / ``bomb_height`` (default 100000 each).
    * error behaviours (``"429"``, ``"500"``, ``"503"``, ``"moderation"``,
      ``"401"``, ``"404_model"``, ``"400"``, ``"error"``): ``status``,
      ``error_type``, ``code``, ``message``, ``param`` override the defaults.
    * every behaviour: ``headers`` are added to the response (e.g. a
      ``Retry-After`` on a ``"503"``).
    """

    name: str
    retry_after: float | str | None = 1
    retry_after_ms: int | None = None
    seconds: float = 5.0
    size: int = 30 * 1024 * 1024
    content_length: bool = True
    bomb_width: int = 100_000
    bomb_height: int = 100_000
    status: int | None = None
    error_type: str | None = None
    code: str | None = None
    message: str | None = None
    param: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {self.name!r}; expected one of {sorted(BEHAVIOURS)}")


# --------------------------------------------------------------------------
# Recorded requests
# --------------------------------------------------------------------------


@dataclass
class FilePart:
    """One file of a multipart body."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class RecordedRequest:
    """A request as received by the fake server."""

    method: str
    path: str  # without the query string
    headers: dict[str, str]  # lower-case names; repeated headers joined by ", "
    json: Any | None  # parsed JSON body (None if the body is not JSON)
    form: dict[str, str] | None  # multipart text fields (None if not multipart)
    files: dict[str, bytes] | None  # multipart files, name -> bytes (first wins)
    time: float  # time.monotonic() at arrival
    query: str = ""
    body: bytes = b""
    file_parts: list[FilePart] = field(default_factory=list)  # all files, in order
    behaviour: str | None = None  # behaviour that answered (image requests only)

    @property
    def params(self) -> dict[str, Any]:
        """The request parameters, from the JSON body or the multipart fields."""
        if isinstance(self.json, dict):
            return self.json
        return dict(self.form or {})


# --------------------------------------------------------------------------
# Image helpers
# --------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
_SIZE_RE = re.compile(r"^(\d{1,5})x(\d{1,5})$")
_MAX_SIDE = 4096


def colour_for(prompt: str, index: int = 0) -> tuple[int, int, int]:
    """The RGB colour of image ``index`` generated for ``prompt``."""
    key = prompt if index == 0 else f"{prompt}\x00{index}"
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return digest[0], digest[1], digest[2]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


@functools.lru_cache(maxsize=16)
def _zero_rows_deflate(width: int, height: int) -> tuple[bytes, bytes]:
    """Raw scanlines 1..height-1 of a solid image ("Up" filter: all zeros), and
    their raw-deflate compression (final block, independent of prior data)."""
    raw = (b"\x02" + b"\x00" * (3 * width)) * (height - 1)
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    return raw, comp.compress(raw) + comp.flush(zlib.Z_FINISH)


def _solid_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour 8-bit RGB PNG, built by hand in ~1 ms (Pillow takes ~25 ms).

    Row 0 uses the "Sub" filter (first pixel, then zeros), the other rows the
    "Up" filter (all zeros), so only row 0 depends on the colour: it is
    compressed and full-flushed, then the cached deflate of the other rows is
    appended.
    """
    row0 = b"\x01" + bytes(rgb) + b"\x00" * (3 * width - 3)
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    head = comp.compress(row0) + comp.flush(zlib.Z_FULL_FLUSH)
    if height > 1:
        tail_raw, tail_deflate = _zero_rows_deflate(width, height)
    else:
        tail_raw, tail_deflate = b"", zlib.compressobj(6, zlib.DEFLATED, -15).flush()
    adler = zlib.adler32(tail_raw, zlib.adler32(row0))
    idat = b"\x78\x9c" + head + tail_deflate + struct.pack(">I", adler & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


@functools.lru_cache(maxsize=1024)
def encode_image(
    width: int,
    height: int,
    fmt: str,
    rgb: tuple[int, int, int],
    compression: int | None = None,
) -> bytes:
    """Encoded solid-colour image, cached per (size, format, colour, compression)."""
    if fmt == "png":
        return _solid_png(width, height, rgb)
    buf = io.BytesIO()
    image = Image.new("RGB", (width, height), rgb)
    quality = 90 if compression is None else max(1, min(100, compression))
    if fmt == "jpeg":
        image.save(buf, "JPEG", quality=quality)
    elif fmt == "webp":
        image.save(buf, "WEBP", quality=quality, method=0)
    else:
        raise ValueError(f"unsupported format {fmt!r}")
    return buf.getvalue()


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A small, well-formed PNG whose IHDR declares ``width`` x ``height``.

    Chunk CRCs are correct; the IDAT holds only one (compressed) scanline, so
    a decoder that trusts the header would try to allocate width*height pixels.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    idat = zlib.compress(b"\x00" * (width + 1), 9)
    return PNG_SIGNATURE + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


NOT_IMAGE_BYTES = b"This is not an image. It is plain text pretending to be one.\n"
# Fails base64 decoding both with and without validate=True (bad characters,
# and after discarding them the length is not a multiple of 4).
INVALID_BASE64 = "not*valid*base64!"
HTML_ERROR_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    b"<body><h1>502 Bad Gateway</h1><p>The upstream server returned an invalid "
    b"response.</p></body></html>\n"
)
INVALID_JSON_BODY = b'{"created": 1700000000, "data": [{"b64_json": "iVBORw0KGgo'


class _BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status


def _parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], list[FilePart]]:
    """Parse a multipart/form-data body (small hand parser; no cgi module)."""
    header = email.parser.HeaderParser(policy=email.policy.compat32).parsestr(
        f"Content-Type: {content_type}\r\n\r\n"
    )
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise _BadRequest("multipart body without boundary")
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    chunks = (b"\r\n" + body).split(delimiter)
    if len(chunks) < 2:
        raise _BadRequest("malformed multipart body")
    fields: dict[str, str] = {}
    files: list[FilePart] = []
    closed = False
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            closed = True
            break
        # transport padding, then CRLF, then the part
        _, sep, part = chunk.partition(b"\r\n")
        if not sep:
            raise _BadRequest("malformed multipart body")
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            if part.startswith(b"\r\n"):  # part without headers
                head, content = b"", part[2:]
            else:
                raise _BadRequest("malformed multipart part headers")
        headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(head + b"\r\n\r\n")
        name = headers.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        filename = headers.get_filename()
        if filename is not None:
            files.append(FilePart(name, filename, headers.get_content_type(), content))
        else:
            charset = headers.get_content_charset() or "utf-8"
            fields[name] = content.decode(charset, errors="replace")
    if not closed:
        raise _BadRequest("multipart body without closing boundary")
    return fields, files


# --------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 1024  # the benchmark opens 200 connections at once

    def __init__(self, api: FakeImageAPI) -> None:
        self.api = api
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), which may do a slow DNS lookup.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return  # the client went away
        if isinstance(exc, OSError) and self.api._stopping.is_set():
            return  # connection shut down by stop()
        if exc is not None:
            self.api.errors.append(exc)
        traceback.print_exc()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeImageAPI/1.0"
    sys_version = ""
    timeout = 30  # idle keep-alive connections are closed after this
    disable_nagle_algorithm = True
    server: _Server

    # -- connection bookkeeping ------------------------------------------------

    def setup(self) -> None:
        super().setup()
        self.server.api._register_connection(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.api._unregister_connection(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- dispatch --------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        api = self.server.api
        arrival = time.monotonic()
        split = urlsplit(self.path)
        path = split.path
        headers: dict[str, str] = {}
        for key, value in self.headers.items():
            lower = key.lower()
            headers[lower] = f"{headers[lower]}, {value}" if lower in headers else value
        record = RecordedRequest(
            method=method,
            path=path,
            headers=headers,
            json=None,
            form=None,
            files=None,
            time=arrival,
            query=split.query,
        )
        try:
            record.body = self._read_body()
        except _BadRequest as exc:
            api._record(record)
            self._send_error_json(exc.status, "invalid_request_error", None, exc.message, None)
            self.close_connection = True
            return
        content_type = headers.get("content-type", "")
        media_type = content_type.split(";", 1)[0].strip().lower()
        parse_error: _BadRequest | None = None
        if media_type == "multipart/form-data":
            try:
                form, parts = _parse_multipart(content_type, record.body)
            except _BadRequest as exc:
                parse_error = exc
            else:
                record.form = form
                record.file_parts = parts
                files: dict[str, bytes] = {}
                for part in parts:
                    files.setdefault(part.name, part.data)
                record.files = files
        elif record.body:
            try:
                record.json = json.loads(record.body)
            except ValueError:
                if media_type == "application/json":
                    parse_error = _BadRequest("We could not parse the JSON body of your request.")
        api._record(record)

        try:
            if method == "POST" and path.rstrip("/") in (
                "/v1/images/generations",
                "/v1/images/edits",
            ):
                self._handle_image(record, path.rstrip("/").rsplit("/", 1)[1], parse_error)
            elif method == "GET" and path.startswith("/files/"):
                self._handle_file(path[len("/files/") :])
            else:
                self._send_error_json(
                    404,
                    "invalid_request_error",
                    None,
                    f"Invalid URL ({method} {path})",
                    None,
                )
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except OSError:
            self.close_connection = True
            if not api._stopping.is_set():
                raise
        except Exception as exc:  # a bug in the fixture: report it, answer 500
            api.errors.append(exc)
            traceback.print_exc()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._send_error_json(
                    500, "server_error", "fake_server_bug", f"FakeImageAPI bug: {exc!r}", None
                )

    def _read_body(self) -> bytes:
        limit = self.server.api.max_body_bytes
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            while True:
                line = self.rfile.readline(1024)
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise _BadRequest("malformed chunked body") from None
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                if len(out) + size > limit:
                    raise _BadRequest("request body too large", status=413)
                out += self.rfile.read(size)
                self.rfile.readline(1024)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise _BadRequest("invalid Content-Length") from None
        if length < 0:
            raise _BadRequest("invalid Content-Length")
        if length > limit:
            raise _BadRequest("request body too large", status=413)
        return self.rfile.read(length) if length else b""

    # -- responses ---------------------------------------------------------------

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode("utf-8"), "application/json", headers)

    def _send_error_json(
        self,
        status: int,
        error_type: str,
        code: str | None,
        message: str,
        param: str | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        payload = {"error": {"message": message, "type": error_type, "param": param, "code": code}}
        self._send_json(status, payload, headers)

    # -- image endpoints -------------------------------------------------------------

    def _handle_image(self, record: RecordedRequest, endpoint: str, parse_error: _BadRequest | None) -> None:
        api = self.server.api
        with api._in_flight_counter():
            behaviour = api._next_behaviour(record)
            record.behaviour = behaviour.name
            if behaviour.name == "hang":
                api._stopping.wait(max(0.0, behaviour.seconds))
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            if behaviour.name == "drip":
                self._drip(behaviour.seconds)
                return
            if api.latency > 0:
                api._stopping.wait(api.latency)
            if behaviour.name in ("ok", "url") and (
                api.api_key is not None and record.headers.get("authorization") != f"Bearer {api.api_key}"
            ):
                behaviour = Behaviour("401")
                record.behaviour = "401"
            self._answer(record, endpoint, behaviour, parse_error)

    def _drip(self, seconds: float) -> None:
        """Keep a 200 answer alive with a byte now and then, so only a whole-request deadline ends it."""
        api = self.server.api
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and not api._stopping.wait(0.3):
                self.wfile.write(b" ")
                self.wfile.flush()

    def _answer(
        self,
        record: RecordedRequest,
        endpoint: str,
        behaviour: Behaviour,
        parse_error: _BadRequest | None,
    ) -> None:
        api = self.server.api
        name = behaviour.name
        extra = dict(behaviour.headers)
        params = record.params

        if name in _ERROR_DEFAULTS:
            status, error_type, code, message = _ERROR_DEFAULTS[name]
            if name == "429":
                if behaviour.retry_after is not None:
                    value = behaviour.retry_after
                    if isinstance(value, float) and value.is_integer():
                        value = int(value)
                    extra.setdefault("Retry-After", str(value))
                if behaviour.retry_after_ms is not None:
                    extra.setdefault("retry-after-ms", str(behaviour.retry_after_ms))
            message = behaviour.message or message.format(model=params.get("model", ""))
            self._send_error_json(
                behaviour.status or status,
                behaviour.error_type or error_type,
                behaviour.code if behaviour.code is not None else code,
                message,
                behaviour.param,
                extra,
            )
            return
        if name == "invalid_json":
            self._send(200, INVALID_JSON_BODY, "application/json", extra)
            return
        if name == "html_200":
            self._send(200, HTML_ERROR_PAGE, "text/html; charset=utf-8", extra)
            return
        if name == "echo_auth":
            echoed = f"<html>{record.headers.get('authorization', '')}</html>".encode()
            self._send(200, echoed, "text/html; charset=utf-8", extra)
            return

        if parse_error is not None:
            self._send_error_json(
                parse_error.status,
                "invalid_request_error",
                None,
                parse_error.message,
                parse_error.param,
            )
            return
        try:
            spec = _ImageSpec.from_params(params, endpoint, record)
        except _BadRequest as exc:
            self._send_error_json(
                exc.status, "invalid_request_error", "invalid_value", exc.message, exc.param
            )
            return

        items: list[dict[str, Any]] = []
        for index in range(spec.n):
            rgb = colour_for(spec.prompt, index)
            item: dict[str, Any] = {}
            if name == "ok":
                item["b64_json"] = base64.b64encode(spec.encode(rgb)).decode("ascii")
            elif name == "url":
                file_id = api._store_file(("bytes", spec.encode(rgb), spec.fmt))
                item["url"] = f"{api.root_url}/files/{file_id}.{spec.fmt}"
            elif name == "not_image":
                item["b64_json"] = base64.b64encode(NOT_IMAGE_BYTES).decode("ascii")
            elif name == "invalid_base64":
                item["b64_json"] = INVALID_BASE64
            elif name == "truncated_png":
                png = encode_image(spec.width, spec.height, "png", rgb)
                item["b64_json"] = base64.b64encode(png[: len(png) // 2]).decode("ascii")
            elif name == "bomb":
                png = bomb_png(behaviour.bomb_width, behaviour.bomb_height)
                item["b64_json"] = base64.b64encode(png).decode("ascii")
            elif name == "url_file_scheme":
                item["url"] = "file:///etc/passwd"
            elif name == "url_big":
                file_id = api._store_file(("big", behaviour.size, behaviour.content_length))
                item["url"] = f"{api.root_url}/files/{file_id}.png"
            elif name == "url_redirect_loop":
                file_id = api._store_file(("loop",))
                item["url"] = f"{api.root_url}/files/{file_id}.png"
            else:  # pragma: no cover - BEHAVIOURS and this dispatch are kept in sync
                raise AssertionError(f"unhandled behaviour {name!r}")
            item["revised_prompt"] = spec.prompt
            items.append(item)

        input_tokens = max(1, len(spec.prompt.split()))
        image_tokens = sum(len(part.data) // 4096 + 65 for part in record.file_parts)
        output_tokens = {"low": 272, "medium": 1056, "high": 4160}.get(spec.quality, 1056)
        output_tokens *= spec.n
        payload = {
            "created": int(time.time()),
            "data": items,
            "background": spec.background,
            "output_format": spec.fmt,
            "quality": spec.quality,
            "size": f"{spec.width}x{spec.height}",
            "usage": {
                "input_tokens": input_tokens + image_tokens,
                "input_tokens_details": {
                    "text_tokens": input_tokens,
                    "image_tokens": image_tokens,
                },
                "output_tokens": output_tokens,
                "total_tokens": input_tokens + image_tokens + output_tokens,
            },
        }
        self._send_json(200, payload, extra)

    # -- files (URL mode) ---------------------------------------------------------------

    def _handle_file(self, name: str) -> None:
        api = self.server.api
        entry = api._files.get(name.rsplit(".", 1)[0])
        if entry is None:
            self._send(404, b"Not Found\n", "text/plain")
            return
        kind = entry[0]
        if kind == "bytes":
            _, data, fmt = entry
            self._send(200, data, _CONTENT_TYPES[fmt])
        elif kind == "loop":
            location = f"{api.root_url}/files/{name}"
            self._send(302, b"", "text/plain", {"Location": location})
        elif kind == "big":
            _, size, with_length = entry
            self._stream_big(size, with_length)
        else:  # pragma: no cover
            raise AssertionError(f"unknown file kind {kind!r}")

    def _stream_big(self, size: int, with_length: bool) -> None:
        api = self.server.api
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        if with_length:
            self.send_header("Content-Length", str(size))
        else:
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        chunk = bytes(1 << 16)
        first = (PNG_SIGNATURE + chunk)[: len(chunk)]
        sent = 0
        try:
            while sent < size and not api._stopping.is_set():
                piece = first if sent == 0 else chunk
                piece = piece[: size - sent]
                self.wfile.write(piece)
                sent += len(piece)
        except OSError:  # the client gave up reading: expected
            self.close_connection = True
        if sent < size:
            self.close_connection = True


@dataclass
class _ImageSpec:
    prompt: str
    n: int
    width: int
    height: int
    fmt: str
    quality: str
    background: str
    compression: int | None

    @classmethod
    def from_params(cls, params: dict[str, Any], endpoint: str, record: RecordedRequest) -> _ImageSpec:
        prompt = params.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            raise _BadRequest("Missing required parameter: 'prompt'.", "prompt")
        if endpoint == "edits" and not any(p.name in ("image", "image[]") for p in record.file_parts):
            raise _BadRequest("Missing required parameter: 'image'.", "image")
        try:
            n = int(params.get("n", 1) if params.get("n") is not None else 1)
        except (TypeError, ValueError):
            raise _BadRequest("Invalid value for 'n'.", "n") from None
        if not 1 <= n <= 10:
            raise _BadRequest(f"Invalid 'n': {n}. Expected a value between 1 and 10.", "n")
        size = str(params.get("size") or "auto")
        if size == "auto":
            width = height = 1024
        else:
            match = _SIZE_RE.match(size)
            if not match:
                raise _BadRequest(f"Invalid value: '{size}'.", "size")
            width, height = int(match.group(1)), int(match.group(2))
            if not (1 <= width <= _MAX_SIDE and 1 <= height <= _MAX_SIDE):
                raise _BadRequest(f"Invalid value: '{size}'.", "size")
        fmt = str(params.get("output_format") or "png").lower()
        if fmt not in _CONTENT_TYPES:
            raise _BadRequest(
                f"Invalid value: '{fmt}'. Supported values are: 'png', 'jpeg', and 'webp'.",
                "output_format",
            )
        compression_raw = params.get("output_compression")
        compression: int | None = None
        if compression_raw is not None and fmt != "png":
            try:
                compression = int(compression_raw)
            except (TypeError, ValueError):
                raise _BadRequest("Invalid value for 'output_compression'.", "output_compression") from None
        return cls(
            prompt=prompt,
            n=n,
            width=width,
            height=height,
            fmt=fmt,
            quality=str(params.get("quality") or "auto"),
            background=str(params.get("background") or "opaque"),
            compression=compression,
        )

    def encode(self, rgb: tuple[int, int, int]) -> bytes:
        return encode_image(self.width, self.height, self.fmt, rgb, self.compression)


# --------------------------------------------------------------------------
# The fixture
# --------------------------------------------------------------------------


class FakeImageAPI:
    """A fake OpenAI Images API on ``127.0.0.1:<ephemeral port>``.

    :param latency: seconds every image answer (generations/edits) is delayed,
        slept in the handler thread so concurrent requests overlap.
    :param mode: ``"b64"`` (default successes carry ``b64_json``) or ``"url"``
        (default successes carry a ``url`` served by ``GET /files/<id>.<ext>``).
    :param api_key: if set, default/``"ok"``/``"url"`` answers require
        ``Authorization: Bearer <api_key>`` and otherwise give the ``"401"`` answer.
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        mode: str = "b64",
        api_key: str | None = None,
        max_body_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        if mode not in ("b64", "url"):
            raise ValueError(f"mode must be 'b64' or 'url', not {mode!r}")
        self.latency = latency
        self.mode = mode
        self.api_key = api_key
        self.max_body_bytes = max_body_bytes
        self.requests: list[RecordedRequest] = []
        self.errors: list[BaseException] = []  # bugs in the fixture itself
        self.max_in_flight = 0
        self.in_flight = 0
        self.base_url = ""
        self.root_url = ""
        self.port = 0
        self._lock = threading.Lock()
        self._queue: deque[Behaviour] = deque()
        self._by_prompt: dict[str, deque[Behaviour]] = {}
        self._files: dict[str, tuple[Any, ...]] = {}
        self._file_ids = itertools.count(1)
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> FakeImageAPI:
        if self._server is not None:
            raise RuntimeError("FakeImageAPI already started")
        self._stopping.clear()
        server = _Server(self)
        self._server = server
        self.port = server.server_port
        self.root_url = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.root_url}/v1"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeImageAPI:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop serving, drop open connections, end hangs/latency waits; idempotent."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        if thread is not None and thread.is_alive():
            server.shutdown()
        with self._lock:
            connections = dict(self._connections)
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        server.server_close()
        deadline = time.monotonic() + timeout
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
        for handler_thread in connections.values():
            if handler_thread is not threading.current_thread():
                handler_thread.join(max(0.0, deadline - time.monotonic()))
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeImageAPI:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    # -- scripting -----------------------------------------------------------------

    def enqueue(self, *behaviours: str | Behaviour) -> None:
        """Script the next answers (FIFO), one per generation/edit request."""
        items = [b if isinstance(b, Behaviour) else Behaviour(b) for b in behaviours]
        with self._lock:
            self._queue.extend(items)

    def enqueue_for(self, prompt: str, *behaviours: str | Behaviour) -> None:
        """Script the next answers to requests whose prompt is exactly `prompt` (before the FIFO).

        Concurrent clients send requests in no fixed order; this ties an answer to an image.
        """
        items = [b if isinstance(b, Behaviour) else Behaviour(b) for b in behaviours]
        with self._lock:
            self._by_prompt.setdefault(prompt, deque()).extend(items)

    @property
    def pending(self) -> list[Behaviour]:
        """Behaviours enqueued but not used yet."""
        with self._lock:
            return list(self._queue)

    def generation_requests(self) -> list[RecordedRequest]:
        """Recorded POSTs to ``/images/generations`` and ``/images/edits``."""
        return [
            r
            for r in list(self.requests)
            if r.method == "POST" and r.path.rstrip("/").endswith(("/images/generations", "/images/edits"))
        ]

    # -- internals used by the handler -----------------------------------------------

    def _next_behaviour(self, record: RecordedRequest | None = None) -> Behaviour:
        prompt = record.params.get("prompt") if record is not None else None
        with self._lock:
            by_prompt = self._by_prompt.get(prompt) if isinstance(prompt, str) else None
            if by_prompt:
                return by_prompt.popleft()
            if self._queue:
                return self._queue.popleft()
        return Behaviour("url" if self.mode == "url" else "ok")

    def _record(self, record: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(record)

    def _store_file(self, entry: tuple[Any, ...]) -> str:
        with self._lock:
            file_id = f"img{next(self._file_ids):05d}"
            self._files[file_id] = entry
        return file_id

    def _register_connection(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections[sock] = threading.current_thread()

    def _unregister_connection(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections.pop(sock, None)

    @contextlib.contextmanager
    def _in_flight_counter(self) -> Iterator[None]:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            yield
        finally:
            with self._lock:
                self.in_flight -= 1


def serve_fake_api(**kwargs: Any) -> Iterator[FakeImageAPI]:
    """Generator for a pytest fixture: ``yield from serve_fake_api(latency=0.1)``.

    Starts a :class:`FakeImageAPI` with ``kwargs``, yields it, and stops it.
    """
    api = FakeImageAPI(**kwargs).start()
    try:
        yield api
    finally:
        api.stop()
