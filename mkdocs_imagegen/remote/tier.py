"""The remote store as the engine's last tier, behind the local cache and its claim."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .store import RemoteStore

if TYPE_CHECKING:
    from ..cache import Entry, ImageCache
    from ..spec import ImageSpec


class RemoteTier:
    """The store as the engine's last tier: asked only under the local claim, never on a hit.

    What it hands back has passed the store's checks (size, digest, signature) and is opened
    again as an image whose format and size must be what the key's spec asks, before it is put
    into the local cache that the site is built from.
    """

    def __init__(self, store: RemoteStore) -> None:
        self.store = store

    def fetch(self, spec: ImageSpec, local: ImageCache) -> Entry | None:
        got = self.store.get(spec.key)
        if got is None:
            return None
        from .. import imaging

        try:
            info = imaging.inspect(got.data)
        except imaging.ImageError as exc:
            self.store.refuse(spec.key, str(exc))
            return None
        if info.format != spec.format or (spec.dimensions and (info.width, info.height) != spec.dimensions):
            shape = f"{info.width}x{info.height} {info.format}"
            self.store.refuse(spec.key, f"it is a {shape}, not what the key asks")
            return None
        # What the record says of the pixels is replaced by what the pixels are.
        meta = {**got.meta, "format": info.format, "width": info.width, "height": info.height}
        return local.put(spec.key, got.data, meta)

    async def wait(self, spec: ImageSpec, local: ImageCache, *, poll: float = 0.5) -> Entry | None:
        """While another runner holds the lease: its image, or None once the lease is gone or lapsed.

        Polls on the event loop (no worker thread sleeps), bounded by the lease's own expiry and
        never longer than `lease_seconds` from now.
        """
        import asyncio

        deadline = time.time() + self.store.lease_seconds
        while self.store.available:
            entry = await asyncio.to_thread(self.fetch, spec, local)
            if entry is not None:
                return entry
            expires = await asyncio.to_thread(self.store.lease_expiry, spec.key)
            if expires is None or time.time() >= min(expires, deadline):
                return None
            await asyncio.sleep(min(poll, max(0.05, expires - time.time())))
        return None

    def upload(self, key: str, data: bytes, meta: dict[str, Any]) -> None:
        self.store.put(key, data, meta)
