"""The shared store as the rest of the plugin sees it: verified reads, create-only writes, leases."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..logs import log
from .client import StoreClient, errors
from .lease import Lease, Leases
from .record import (
    KEY,
    MAX_IMAGE_BYTES,
    MAX_RECORD_BYTES,
    ROOT,
    Damaged,
    check_image,
    check_signature,
    dumps,
    entry_path,
    image_path,
    lease_path,
    new_record,
    parse_record,
)
from .urls import RemoteConfigError, check_mode, check_url


@dataclass(frozen=True)
class RemoteEntry:
    """An entry that passed every check: its image bytes and the metadata stored with them."""

    key: str
    data: bytes
    meta: dict[str, Any]


class RemoteStore:
    """One remote store for one run; safe to call from several threads."""

    def __init__(
        self,
        url: str,
        *,
        mode: str = "read-write",
        lease_seconds: float = 300.0,
        signing_key: bytes | None = None,
        timeout: float = 10.0,
        store: Any = None,
    ) -> None:
        self.mode = check_mode(mode)
        self.url = check_url(url)
        self.lease_seconds = lease_seconds
        self._signing_key = signing_key
        self._client = StoreClient(self.url, timeout=timeout, store=store)
        self.owner = f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._leases = Leases(self._client, self.owner, lease_seconds)
        self._lock = threading.Lock()
        self.counts = {"hits": 0, "uploads": 0, "refused": 0}

    @property
    def writable(self) -> bool:
        return self.mode == "read-write"

    @property
    def available(self) -> bool:
        return self._client.available

    def _count(self, what: str) -> None:
        with self._lock:
            self.counts[what] += 1

    # -- reading -------------------------------------------------------------------------------
    def get(self, key: str) -> RemoteEntry | None:
        """The verified entry for `key`, or None (missing, refused, or the store is off)."""
        if not KEY.match(key) or not self.available:
            return None
        missing, _ = errors()
        try:
            record = parse_record(self._client.get_bytes(entry_path(key), MAX_RECORD_BYTES)[0], key)
            check_signature(record, key, self._signing_key)
            data = self._client.get_bytes(image_path(key), min(MAX_IMAGE_BYTES, record["bytes"]))[0]
            check_image(record, data)
        except missing:
            return None
        except Damaged as exc:
            self.refuse(key, str(exc))
            return None
        except Exception as exc:
            self._client.fail("reading", exc)
            return None
        self._count("hits")
        return RemoteEntry(key=key, data=data, meta=record["meta"])

    def refuse(self, key: str, why: str) -> None:
        """Count and say why an entry is not used (each refused key once per run)."""
        self._count("refused")
        log.warning(f"remote cache entry {key} is refused ({why}); the image is made locally instead")

    def has(self, key: str) -> bool:
        """Whether a record exists for `key` (not verified: for `status` and `--push`)."""
        if not KEY.match(key) or not self.available:
            return False
        import obstore

        missing, _ = errors()
        try:
            obstore.head(self._client.store(), entry_path(key))
            return True
        except missing:
            return False
        except Exception as exc:
            self._client.fail("reading", exc)
            return False

    def entries(self) -> Iterator[tuple[str, int]]:
        """(key, image bytes) of every entry under this prefix; orphan images count with key."""
        import obstore

        seen: dict[str, int] = {}
        for batch in obstore.list(self._client.store(), prefix=f"{ROOT}/"):
            for meta in batch:
                path = str(meta["path"])
                name = path.rsplit("/", 1)[-1].removesuffix(".json")
                if KEY.match(name):
                    seen[name] = seen.get(name, 0) + (int(meta["size"]) if "/images/" in path else 0)
        yield from seen.items()

    # -- writing -------------------------------------------------------------------------------
    def put(self, key: str, data: bytes, meta: dict[str, Any]) -> bool:
        """Upload a real image create-only; True when this call added it."""
        if not self.writable or not self.available or not KEY.match(key):
            return False
        import obstore

        record = new_record(key, data, meta, self._signing_key)
        _, exists = errors()
        try:
            store = self._client.store()
            # An earlier upload may have got this far: the record decides what the entry is.
            with contextlib.suppress(*exists):
                obstore.put(store, image_path(key), data, mode="create")
            obstore.put(store, entry_path(key), dumps(record), mode="create")
        except exists:
            return False  # another runner stored it first: never replaced
        except Exception as exc:
            self._client.fail("uploading", exc)
            return False
        self._count("uploads")
        return True

    def delete(self, key: str) -> None:
        """Remove an entry, its record first: no reader may find a record whose image is gone."""
        import obstore

        missing, _ = errors()
        store = self._client.store()
        for path in (entry_path(key), image_path(key), lease_path(key)):
            with contextlib.suppress(*missing):
                obstore.delete(store, path)

    # -- leases --------------------------------------------------------------------------------
    def claim(self, key: str) -> Lease | None:
        """Take the lease on `key`, or None when another live runner holds it (or we may not)."""
        if not self.writable or not self.available or not KEY.match(key):
            return None
        return self._leases.claim(key)

    def lease_expiry(self, key: str) -> float | None:
        """When another runner's lease on `key` lapses (epoch seconds), or None if there is none."""
        return self._leases.expiry(key)

    def release(self, lease: Lease) -> None:
        """Hand a lease back early, so runners waiting on it need not sit out its expiry."""
        self._leases.release(lease)


def from_config(plugin_config: Any) -> RemoteStore | None:
    """The store named by `remote_cache`, or None when it is not set."""
    url = plugin_config.get("remote_cache")
    if not url:
        return None
    mode = plugin_config.get("remote_cache_mode") or "read-write"
    secret_env = plugin_config.get("remote_cache_signing_key_env")
    secret = os.environ.get(secret_env, "").encode() if secret_env else b""
    if secret_env and not secret:
        if mode == "read-write":
            # A trusted build that lost its secret would upload unsigned entries that every
            # signed reader refuses (and pays to make again): stop here instead.
            raise RemoteConfigError(
                f"remote_cache_signing_key_env names {secret_env}, which is not set: set it to the "
                "signing secret, or use remote_cache_mode: read-only for builds without it"
            )
        log.info(f"{secret_env} is not set: remote cache entries are read without checking signatures")
    return RemoteStore(
        url,
        mode=mode,
        lease_seconds=float(plugin_config.get("remote_cache_lease") or 300),
        signing_key=secret or None,
    )
