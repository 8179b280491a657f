"""Leases: one runner generates a key, the others wait for its image instead of paying again.

A lease is a small create-only object with an expiry; a runner that died holding one is taken
over only once it has lapsed, and only if nobody else took it over meanwhile (by e-tag).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from .client import StoreClient, errors
from .record import MAX_LEASE_BYTES, Damaged, dumps, lease_path

MAX_LEASE_SECONDS = 24 * 3600  # a lease that claims a longer life is read as lasting this long


@dataclass
class Lease:
    """A lease this runner holds, with the e-tag the store gave it."""

    key: str
    owner: str
    e_tag: str | None


class Leases:
    """The leases of one runner (`owner`) in one store."""

    def __init__(self, client: StoreClient, owner: str, seconds: float) -> None:
        self._client = client
        self.owner = owner
        self.seconds = seconds

    def claim(self, key: str) -> Lease | None:
        """Take the lease on `key`, or None when another live runner holds it."""
        import obstore

        path = lease_path(key)
        body = dumps({"owner": self.owner, "expires": time.time() + self.seconds})
        missing, exists = errors()
        try:
            store = self._client.store()
            try:
                result = obstore.put(store, path, body, mode="create")
                return Lease(key, self.owner, result.get("e_tag"))
            except exists:
                pass
            current = self._current(key)
            if current is None:
                return None
            _owner, expires, e_tag = current
            if expires > time.time() or e_tag is None:
                return None
            # Expired (its runner died): take it over only if nobody else did meanwhile.
            try:
                result = obstore.put(store, path, body, mode={"e_tag": e_tag})
            except exists:
                return None
            return Lease(key, self.owner, result.get("e_tag"))
        except missing:
            return None  # released between our two calls: the caller looks again
        except Exception as exc:
            self._client.fail("claiming", exc)
            return None

    def _current(self, key: str) -> tuple[str, float, str | None] | None:
        """(owner, expiry, e_tag) of the current lease, or None; an unreadable lease is expired."""
        missing, _ = errors()
        try:
            data, e_tag = self._client.get_bytes(lease_path(key), MAX_LEASE_BYTES)
        except missing:
            return None
        except Damaged:
            return ("?", 0.0, None)
        try:
            value = json.loads(data)
            owner, expires = str(value["owner"])[:100], float(value["expires"])
        except (ValueError, KeyError, TypeError):
            return ("?", 0.0, e_tag)
        return owner, min(expires, time.time() + MAX_LEASE_SECONDS), e_tag

    def expiry(self, key: str) -> float | None:
        """When the lease on `key` lapses (epoch seconds), or None if there is none."""
        if not self._client.available:
            return None
        try:
            current = self._current(key)
        except Exception as exc:
            self._client.fail("reading", exc)
            return None
        return None if current is None else current[1]

    def release(self, lease: Lease) -> None:
        """Delete our own lease; one another runner has taken over since stays."""
        import obstore

        try:
            current = self._current(lease.key)
            if current is not None and current[0] == lease.owner:
                obstore.delete(self._client.store(), lease_path(lease.key))
        except Exception as exc:  # a lease left behind lapses by itself
            self._client.fail("releasing a lease", exc)
