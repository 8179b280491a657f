"""The images the fake API hands out by URL (`GET /files/<id>.<ext>`), hostile ones included."""

from __future__ import annotations

import itertools
import threading
from typing import Any

from .images import _CONTENT_TYPES
from .reply import Reply


class Files:
    """What each handed-out URL serves: ("bytes", data, fmt), ("fail_once", data, fmt), ("loop",),
    ("redirect", url) or ("big", size, with_length)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[Any, ...]] = {}
        self._ids = itertools.count(1)

    def store(self, entry: tuple[Any, ...]) -> str:
        with self._lock:
            file_id = f"img{next(self._ids):05d}"
            self._entries[file_id] = entry
        return file_id

    def get(self, file_id: str) -> tuple[Any, ...] | None:
        return self._entries.get(file_id)

    def replace(self, file_id: str, entry: tuple[Any, ...]) -> None:
        with self._lock:
            self._entries[file_id] = entry


def serve_file(files: Files, root_url: str, reply: Reply, name: str) -> None:
    """Answer `GET /files/<name>` as the stored entry says."""
    file_id = name.rsplit(".", 1)[0]
    entry = files.get(file_id)
    if entry is None:
        reply.send(404, b"Not Found\n", "text/plain")
        return
    kind = entry[0]
    if kind == "bytes":
        _, data, fmt = entry
        reply.send(200, data, _CONTENT_TYPES[fmt])
    elif kind == "fail_once":
        _, data, fmt = entry
        files.replace(file_id, ("bytes", data, fmt))
        reply.send(500, b"temporary storage error\n", "text/plain")
    elif kind == "loop":
        reply.send(302, b"", "text/plain", {"Location": f"{root_url}/files/{name}"})
    elif kind == "redirect":
        reply.send(302, b"", "text/plain", {"Location": entry[1]})
    elif kind == "big":
        _, size, with_length = entry
        reply.big_png(size, with_length)
    else:  # pragma: no cover
        raise AssertionError(f"unknown file kind {kind!r}")
