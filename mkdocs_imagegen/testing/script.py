"""What the fake API answers: behaviours to script, and the record of each request it got."""

from __future__ import annotations

import email.parser
import email.policy
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

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
        "url_fail_once",  # data[i].url whose first GET answers 500, the next ones the image
        "raw_error",  # `status` with `message` as the whole body (not OpenAI-shaped), `content_type`
        # hostile answers built from the Behaviour's own fields (trust-boundary tests)
        "b64_data",  # 200, data[0].b64_json = base64(`data`); `revised_prompt`/`usage` if given
        "raw",  # 200 (or `status`), `body` bytes sent as is with `content_type`
        "b64_huge",  # 200 JSON whose b64_json string is `size` bytes, streamed in chunks
        "url_to",  # 200, data[0].url = `url` (any address: an SSRF probe)
        "redirect_to",  # 200, data[0].url = a file here that answers 302 to `url`
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
    * ``"b64_data"``: ``data`` (and ``revised_prompt``, ``usage`` when set);
      ``"raw"``: ``status``, ``body``, ``content_type``; ``"b64_huge"``:
      ``size`` and ``content_length``; ``"url_to"`` / ``"redirect_to"``: ``url``.
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
    data: bytes = b""
    body: bytes = b""
    content_type: str = "application/json"
    url: str = ""
    revised_prompt: str | None = None
    usage: Any = None

    def __post_init__(self) -> None:
        if self.name not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {self.name!r}; expected one of {sorted(BEHAVIOURS)}")


class Script:
    """The answers scripted so far: per-prompt queues first, then the FIFO, then the default."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Behaviour] = deque()
        self._by_prompt: dict[str, deque[Behaviour]] = {}

    def add(self, behaviours: tuple[str | Behaviour, ...], prompt: str | None = None) -> None:
        items = [b if isinstance(b, Behaviour) else Behaviour(b) for b in behaviours]
        with self._lock:
            if prompt is None:
                self._queue.extend(items)
            else:
                self._by_prompt.setdefault(prompt, deque()).extend(items)

    def pending(self) -> list[Behaviour]:
        with self._lock:
            return list(self._queue)

    def next(self, prompt: object, default: str) -> Behaviour:
        with self._lock:
            by_prompt = self._by_prompt.get(prompt) if isinstance(prompt, str) else None
            if by_prompt:
                return by_prompt.popleft()
            if self._queue:
                return self._queue.popleft()
        return Behaviour(default)


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
# Request parsing
# --------------------------------------------------------------------------


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
