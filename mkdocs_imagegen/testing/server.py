"""The fake API's server: start, stop, script and inspect it."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any

from .files import Files
from .handler import Handler
from .script import Behaviour, RecordedRequest, Script


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 1024  # the benchmark opens 200 connections at once

    def __init__(self, api: FakeImageAPI) -> None:
        self.api = api
        super().__init__(("127.0.0.1", 0), Handler)

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


class _Connections:
    """The open connections and their handler threads, so that stop() can end them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[socket.socket, threading.Thread] = {}

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._open[sock] = threading.current_thread()

    def remove(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.pop(sock, None)

    def shut_down(self) -> list[threading.Thread]:
        """Shut every open socket; the threads that served them, to join."""
        with self._lock:
            connections = dict(self._open)
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        return list(connections.values())


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
        validate: bool = True,
        flavour: str = "openai",
    ) -> None:
        if mode not in ("b64", "url"):
            raise ValueError(f"mode must be 'b64' or 'url', not {mode!r}")
        self.latency = latency
        self.mode = mode
        self.api_key = api_key
        self.max_body_bytes = max_body_bytes
        self.validate = validate  # refuse what the spec refuses, per model (validate.validate_request)
        self.flavour = flavour  # "openai" or "lumenfall" (which takes response_format everywhere)
        self.rejections: list[str] = []  # messages of requests refused by validate_request
        self.models: list[dict[str, Any]] = []  # GET /v1/models answers {"data": models}
        self.models_status = 200
        self.reported_cost: float | None = None  # successes carry metadata.cost when set
        self.dry_run_cost = 0.005  # ?dryRun=true answers metadata.cost
        self.requests: list[RecordedRequest] = []
        self.errors: list[BaseException] = []  # bugs in the fixture itself
        self.max_in_flight = 0
        self.in_flight = 0
        self.base_url = ""
        self.root_url = ""
        self.port = 0
        self._lock = threading.Lock()
        self._script = Script()
        self._files = Files()
        self._connections = _Connections()
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
        handler_threads = self._connections.shut_down()
        server.server_close()
        deadline = time.monotonic() + timeout
        for joined in (thread, *handler_threads):  # the serving thread first, then the handlers
            if joined is not None and joined is not threading.current_thread():
                joined.join(max(0.0, deadline - time.monotonic()))
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
        self._script.add(behaviours)

    def enqueue_for(self, prompt: str, *behaviours: str | Behaviour) -> None:
        """Script the next answers to requests whose prompt is exactly `prompt` (before the FIFO).

        Concurrent clients send requests in no fixed order; this ties an answer to an image.
        """
        self._script.add(behaviours, prompt)

    @property
    def pending(self) -> list[Behaviour]:
        """Behaviours enqueued but not used yet."""
        return self._script.pending()

    def generation_requests(self) -> list[RecordedRequest]:
        """Recorded POSTs to ``/images/generations`` and ``/images/edits``."""
        return [
            r
            for r in list(self.requests)
            if r.method == "POST"
            and r.path.rstrip("/").endswith(("/images/generations", "/images/edits"))
            and "dryRun=true" not in r.query  # an estimate generates nothing
        ]

    # -- internals used by the handler -----------------------------------------------

    def _next_behaviour(self, record: RecordedRequest | None = None) -> Behaviour:
        prompt = record.params.get("prompt") if record is not None else None
        return self._script.next(prompt, "url" if self.mode == "url" else "ok")

    def _record(self, record: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(record)

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
