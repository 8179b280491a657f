"""The fake API's HTTP side: read each request, record it, and route it to its answer."""

from __future__ import annotations

import contextlib
import time
import traceback
from http.server import BaseHTTPRequestHandler
from typing import Any

from .answers import answer_image
from .files import serve_file
from .reply import Reply
from .request import new_record, parse_body, read_body
from .script import RecordedRequest, _BadRequest


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
        self.server.api._connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.api._connections.remove(self.connection)

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
        reply = Reply(self, api._stopping)
        record = new_record(method, self.path, self.headers.items(), time.monotonic())
        try:
            record.body = read_body(self.rfile, self.headers, api.max_body_bytes)
        except _BadRequest as exc:
            api._record(record)
            reply.error(exc.status, "invalid_request_error", None, exc.message, None)
            reply.close()
            return
        parse_error = parse_body(record)
        api._record(record)
        try:
            _route(api, reply, record, parse_error)
        except (ConnectionError, TimeoutError):
            reply.close()
        except OSError:
            reply.close()
            if not api._stopping.is_set():
                raise
        except Exception as exc:  # a bug in the fixture: report it, answer 500
            api.errors.append(exc)
            traceback.print_exc()
            reply.close()
            with contextlib.suppress(OSError):
                reply.error(500, "server_error", "fake_server_bug", f"FakeImageAPI bug: {exc!r}", None)


def _route(api: Any, reply: Reply, record: RecordedRequest, parse_error: _BadRequest | None) -> None:
    method, path = record.method, record.path
    endpoint = path.rstrip("/")
    if method == "GET" and endpoint == "/v1/models":
        if api.models_status != 200:
            reply.error(api.models_status, "server_error", None, "models unavailable", None)
        else:
            reply.json(200, {"object": "list", "data": api.models})
    elif method == "POST" and endpoint == "/v1/images/generations" and "dryRun=true" in record.query:
        reply.json(200, {"dryRun": True, "metadata": {"cost": api.dry_run_cost}})
    elif method == "POST" and endpoint in ("/v1/images/generations", "/v1/images/edits"):
        answer_image(api, reply, record, endpoint.rsplit("/", 1)[1], parse_error)
    elif method == "GET" and path.startswith("/files/"):
        serve_file(api._files, api.root_url, reply, path[len("/files/") :])
    else:
        reply.error(404, "invalid_request_error", None, f"Invalid URL ({method} {path})", None)
