"""The cache's index: a diskcache store of metadata records, read as JSON text and nothing else.

The database may have been written by anyone who could write the cache directory, so our
diskcache `Disk` refuses to unpickle anything or to read or delete a file named by a row, and
settings diskcache does not define are dropped before it opens (it would run them as pragmas).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from typing import Any

import diskcache
import diskcache.core

from ..files import inside
from .record import FALLBACK, KEY_RE, REAL, validate_meta


class _Refused(ValueError):
    """A row of the index that our rules do not allow to be read (a pickle, a file)."""


class _SafeDisk(diskcache.Disk):  # type: ignore[misc]  # diskcache ships no types
    """diskcache's serialisation, minus everything that trusts the database.

    Keys and values are text only. A pickled key or value, or a value kept in a file named by
    the row, is refused instead of loaded; a file a row names is deleted only when it really
    is inside the cache directory (diskcache would delete any path, and its empty folders).
    """

    def __init__(self, directory: str, **kwargs: Any) -> None:
        super().__init__(directory, **kwargs)
        self._real = os.path.realpath(directory)

    def put(self, key: Any) -> tuple[Any, bool]:
        if not isinstance(key, str):
            raise TypeError(f"cache keys are text, not {type(key).__name__}")
        return key, True

    def get(self, key: Any, raw: bool) -> Any:
        if not raw or not isinstance(key, str):
            return None  # a pickled (or binary) key is not one of ours: never unpickled
        return key

    def store(self, value: Any, read: bool, key: Any = diskcache.core.UNKNOWN) -> tuple[Any, ...]:
        if not isinstance(value, str):
            raise TypeError(f"cache values are JSON text, not {type(value).__name__}")
        return 0, diskcache.core.MODE_RAW, None, value

    def fetch(self, mode: int, filename: Any, value: Any, read: bool) -> Any:
        if mode != diskcache.core.MODE_RAW or filename is not None or not isinstance(value, str):
            raise _Refused("not a JSON text value")
        return value

    def remove(self, file_path: Any) -> None:
        if not isinstance(file_path, str) or not file_path:
            return
        full = os.path.join(self._directory, file_path)
        real = os.path.realpath(full)
        if not inside(self._real, real) or os.path.islink(full):
            return  # a row naming a file outside the cache: leave that file alone
        with contextlib.suppress(OSError):
            os.remove(real)


class MetaIndex:
    """One metadata record per key and namespace, `<ns>-meta:<key>`, switched in transactions."""

    def __init__(self, directory: str) -> None:
        """Open (creating) the index; raises OSError, sqlite3.Error or diskcache.Timeout."""
        _forget_foreign_settings(os.path.join(directory, diskcache.core.DBNAME))
        self._store = diskcache.Cache(
            directory,
            disk=_SafeDisk,
            eviction_policy="none",  # paid images are never evicted behind the user's back
            statistics=False,
            timeout=60,
            disk_min_file_size=2**40,  # every value inline in the database, never a file
        )

    def read(self, key: str, ns: str) -> tuple[dict[str, Any] | None, str | None]:
        """(record, None), (None, None) when there is none, or (None, why it is damaged)."""
        try:
            text = self._store.get(f"{ns}-meta:{key}")
        except _Refused:
            return None, "its metadata record is not JSON text"
        if text is None:
            return None, None
        try:
            return validate_meta(text), None
        except ValueError as exc:
            return None, f"its metadata record is invalid: {exc}"

    def write(self, key: str, ns: str, text: str) -> None:
        self._store.set(f"{ns}-meta:{key}", text)

    def delete(self, key: str, ns: str) -> bool:
        """Delete the record; True when there was one."""
        return bool(self._store.delete(f"{ns}-meta:{key}"))

    def forget(self, key: str, ns: str) -> bool:
        """Delete the record and any image row of an earlier layout; True when there was a record."""
        deleted = self.delete(key, ns)
        self._store.delete(f"{ns}:{key}")
        return deleted

    def transact(self) -> contextlib.AbstractContextManager[Any]:
        return self._store.transact()  # type: ignore[no-any-return]

    def records(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(key, namespace, record) of every row that is a valid record of ours."""
        for name in list(self._store.iterkeys()):
            if not isinstance(name, str):
                continue
            ns, sep, key = name.partition("-meta:")
            if not sep or ns not in (REAL, FALLBACK) or not KEY_RE.match(key):
                continue
            meta, _ = self.read(key, ns)
            if meta is not None:
                yield key, ns, meta

    def close(self) -> None:
        self._store.close()


def _forget_foreign_settings(db: str) -> None:
    """Drop settings diskcache does not define: it would apply any `sqlite_*` row as a pragma."""
    if not os.path.isfile(db):
        return
    known = [*diskcache.core.DEFAULT_SETTINGS, *diskcache.core.METADATA]
    with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(db, timeout=60)) as con:
        placeholders = ",".join("?" * len(known))
        with con:
            con.execute(f"DELETE FROM Settings WHERE key NOT IN ({placeholders})", known)
