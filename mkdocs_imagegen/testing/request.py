"""How the fake API reads a request into a `RecordedRequest`: tests inspect exactly what was sent."""

from __future__ import annotations

import json
from collections.abc import Iterable
from email.message import Message
from io import BufferedIOBase
from urllib.parse import urlsplit

from .script import RecordedRequest, _BadRequest, _parse_multipart


def new_record(
    method: str, raw_path: str, header_items: Iterable[tuple[str, str]], arrival: float
) -> RecordedRequest:
    """The request's line and headers; repeated headers are joined as one, the way HTTP allows."""
    split = urlsplit(raw_path)
    headers: dict[str, str] = {}
    for key, value in header_items:
        lower = key.lower()
        headers[lower] = f"{headers[lower]}, {value}" if lower in headers else value
    return RecordedRequest(
        method=method,
        path=split.path,
        headers=headers,
        json=None,
        form=None,
        files=None,
        time=arrival,
        query=split.query,
    )


def read_body(rfile: BufferedIOBase, headers: Message, limit: int) -> bytes:
    """The body, chunked or by Content-Length; over `limit` is refused before it is read."""
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        return _read_chunked(rfile, limit)
    try:
        length = int(headers.get("Content-Length") or 0)
    except ValueError:
        raise _BadRequest("invalid Content-Length") from None
    if length < 0:
        raise _BadRequest("invalid Content-Length")
    if length > limit:
        raise _BadRequest("request body too large", status=413)
    return rfile.read(length) if length else b""


def _read_chunked(rfile: BufferedIOBase, limit: int) -> bytes:
    out = bytearray()
    while True:
        line = rfile.readline(1024)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _BadRequest("malformed chunked body") from None
        if size == 0:
            while rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                pass
            return bytes(out)
        if len(out) + size > limit:
            raise _BadRequest("request body too large", status=413)
        out += rfile.read(size)
        rfile.readline(1024)


def parse_body(record: RecordedRequest) -> _BadRequest | None:
    """Fill the record's JSON or multipart fields; the error is kept for the image routes to answer."""
    content_type = record.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "multipart/form-data":
        try:
            form, parts = _parse_multipart(content_type, record.body)
        except _BadRequest as exc:
            return exc
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
                return _BadRequest("We could not parse the JSON body of your request.")
    return None
