"""How the fake API writes an answer: whole bodies, OpenAI-shaped errors, and the slow or endless
streams that test a client's deadlines and size caps."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from .images import PNG_SIGNATURE


class Reply:
    """The answer side of one request; `stopping` ends every stream and wait at `stop()`."""

    def __init__(self, handler: BaseHTTPRequestHandler, stopping: threading.Event) -> None:
        self.handler = handler
        self.stopping = stopping

    def close(self) -> None:
        """Close the connection after this answer (its body is delimited by the close)."""
        self.handler.close_connection = True

    def send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        h = self.handler
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        if h.close_connection:
            h.send_header("Connection", "close")
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    def json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self.send(status, json.dumps(payload).encode("utf-8"), "application/json", headers)

    def error(
        self,
        status: int,
        error_type: str,
        code: str | None,
        message: str,
        param: str | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        payload = {"error": {"message": message, "type": error_type, "param": param, "code": code}}
        self.json(status, payload, headers)

    def hang_up(self) -> None:
        """Drop the connection without an answer."""
        self.close()
        with contextlib.suppress(OSError):
            self.handler.connection.shutdown(socket.SHUT_RDWR)

    def drip(self, seconds: float) -> None:
        """Keep a 200 answer alive with a byte now and then, so only a whole-request deadline ends it."""
        h = self.handler
        self.close()
        with contextlib.suppress(OSError):
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", "100000")
            h.end_headers()
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and not self.stopping.wait(0.3):
                h.wfile.write(b" ")
                h.wfile.flush()

    def _stream_head(self, content_type: str, length: int | None) -> None:
        """Headers of a streamed 200; without a length the body ends when the connection closes."""
        h = self.handler
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        if length is not None:
            h.send_header("Content-Length", str(length))
        else:  # delimited by closing the connection: only a cap while reading can stop it
            self.close()
            h.send_header("Connection", "close")
        h.end_headers()

    def huge_b64(self, size: int, with_length: bool) -> None:
        """A JSON answer whose base64 string is `size` bytes long, never held in memory whole."""
        head, tail = b'{"data": [{"b64_json": "', b'"}]}'
        self._stream_head("application/json", len(head) + size + len(tail) if with_length else None)
        chunk = b"A" * (1 << 16)
        wfile = self.handler.wfile
        try:
            wfile.write(head)
            sent = 0
            while sent < size and not self.stopping.is_set():
                piece = chunk[: size - sent]
                wfile.write(piece)
                sent += len(piece)
            wfile.write(tail)
        except OSError:  # the client stopped reading: expected
            self.close()

    def big_png(self, size: int, with_length: bool) -> None:
        """`size` bytes that start like a PNG, streamed: for a client's download cap."""
        self._stream_head("image/png", size if with_length else None)
        chunk = bytes(1 << 16)
        first = (PNG_SIGNATURE + chunk)[: len(chunk)]
        sent = 0
        try:
            while sent < size and not self.stopping.is_set():
                piece = first if sent == 0 else chunk
                piece = piece[: size - sent]
                self.handler.wfile.write(piece)
                sent += len(piece)
        except OSError:  # the client gave up reading: expected
            self.close()
        if sent < size:
            self.close()
