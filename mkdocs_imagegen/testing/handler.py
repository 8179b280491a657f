"""The fake API's HTTP side: parsing requests, answering them as scripted."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import time
import traceback
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from .images import (
    _CONTENT_TYPES,
    HTML_ERROR_PAGE,
    INVALID_BASE64,
    INVALID_JSON_BODY,
    NOT_IMAGE_BYTES,
    PNG_SIGNATURE,
    _ImageSpec,
    bomb_png,
    colour_for,
    encode_image,
)
from .script import _ERROR_DEFAULTS, Behaviour, RecordedRequest, _BadRequest, _parse_multipart
from .validate import validate_request


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeImageAPI/1.0"
    sys_version = ""
    timeout = 30  # idle keep-alive connections are closed after this
    disable_nagle_algorithm = True
    server: Any  # server._Server, whose `api` is the FakeImageAPI (not imported: no cycle)

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
            if method == "GET" and path.rstrip("/") == "/v1/models":
                if api.models_status != 200:
                    self._send_error_json(api.models_status, "server_error", None, "models unavailable", None)
                else:
                    self._send_json(200, {"object": "list", "data": api.models})
            elif (
                method == "POST"
                and path.rstrip("/") == "/v1/images/generations"
                and "dryRun=true" in split.query
            ):
                self._send_json(200, {"dryRun": True, "metadata": {"cost": api.dry_run_cost}})
            elif method == "POST" and path.rstrip("/") in (
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
        if name == "raw_error":
            body = (behaviour.message or "").encode("utf-8")
            self._send(behaviour.status or 422, body, behaviour.content_type, extra)
            return
        if name == "invalid_json":
            self._send(200, INVALID_JSON_BODY, "application/json", extra)
            return
        if name == "html_200":
            self._send(200, HTML_ERROR_PAGE, "text/html; charset=utf-8", extra)
            return
        if name == "raw":
            self._send(behaviour.status or 200, behaviour.body, behaviour.content_type, extra)
            return
        if name == "b64_huge":
            self._stream_huge_b64(behaviour.size, behaviour.content_length)
            return
        if name in ("b64_data", "url_to", "redirect_to"):
            one: dict[str, Any] = {}
            if name == "b64_data":
                one["b64_json"] = base64.b64encode(behaviour.data).decode("ascii")
            elif name == "url_to":
                one["url"] = behaviour.url
            else:
                file_id = api._store_file(("redirect", behaviour.url))
                one["url"] = f"{api.root_url}/files/{file_id}.png"
            if behaviour.revised_prompt is not None:
                one["revised_prompt"] = behaviour.revised_prompt
            payload: dict[str, Any] = {"created": int(time.time()), "data": [one]}
            if behaviour.usage is not None:
                payload["usage"] = behaviour.usage
            self._send_json(200, payload, extra)
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
            if api.validate:
                validate_request(params, endpoint, record.file_parts, api.flavour)
            spec = _ImageSpec.from_params(params, endpoint, record)
        except _BadRequest as exc:
            api.rejections.append(exc.message)
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
            elif name == "url_fail_once":
                file_id = api._store_file(("fail_once", spec.encode(rgb), spec.fmt))
                item["url"] = f"{api.root_url}/files/{file_id}.{spec.fmt}"
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
        if api.reported_cost is not None:
            payload["metadata"] = {"cost": api.reported_cost}
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
        elif kind == "fail_once":
            _, data, fmt = entry
            with api._lock:
                api._files[name.rsplit(".", 1)[0]] = ("bytes", data, fmt)
            self._send(500, b"temporary storage error\n", "text/plain")
        elif kind == "loop":
            location = f"{api.root_url}/files/{name}"
            self._send(302, b"", "text/plain", {"Location": location})
        elif kind == "redirect":
            self._send(302, b"", "text/plain", {"Location": entry[1]})
        elif kind == "big":
            _, size, with_length = entry
            self._stream_big(size, with_length)
        else:  # pragma: no cover
            raise AssertionError(f"unknown file kind {kind!r}")

    def _stream_huge_b64(self, size: int, with_length: bool) -> None:
        """A JSON answer whose base64 string is `size` bytes long, never held in memory whole."""
        api = self.server.api
        head, tail = b'{"data": [{"b64_json": "', b'"}]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if with_length:
            self.send_header("Content-Length", str(len(head) + size + len(tail)))
        else:  # delimited by closing the connection: only a cap while reading can stop it
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        chunk = b"A" * (1 << 16)
        try:
            self.wfile.write(head)
            sent = 0
            while sent < size and not api._stopping.is_set():
                piece = chunk[: size - sent]
                self.wfile.write(piece)
                sent += len(piece)
            self.wfile.write(tail)
        except OSError:  # the client stopped reading: expected
            self.close_connection = True

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
