"""The remote tier: a content-addressed image store shared by many CI runners, on obstore.

Layout under the URL's prefix (`s3://bucket/prefix`, or `file:///path` for a shared folder)::

    imagegen/v1/images/<key>        the image bytes
    imagegen/v1/entries/<key>.json  the record: digest, size, metadata, optional HMAC signature
    imagegen/v1/leases/<key>.json   a runner's claim on a key it is generating, with an expiry

Every object is written create-only (S3's `If-None-Match: *`), so an entry, once there, is never
replaced; the record is written after the image and is what makes an entry exist, so a reader
never takes an upload cut short for an image (and the digest is checked anyway). Everything read
back is hostile: size-capped before it is read, parsed as JSON, validated, and the image must
match the digest (and, with a signing secret, the HMAC) before it is used. Nothing is unpickled
and no path is taken from stored data.

A store that fails (timeouts, 5xx, no credentials) is switched off for the rest of the run after
one warning: it never fails a build that could succeed without it.

`urls` checks the URL and cleans messages, `record` is the stored format, `client` the
object store, `lease` the leases, `store` the store the plugin and the command use, `tier`
the engine's view of it.
"""

from __future__ import annotations

from .lease import Lease
from .record import MAX_IMAGE_BYTES, MAX_RECORD_BYTES, ROOT
from .store import RemoteEntry, RemoteStore, from_config
from .tier import RemoteTier
from .urls import MODES, RemoteConfigError, check_url, redact

__all__ = [
    "MAX_IMAGE_BYTES",
    "MAX_RECORD_BYTES",
    "MODES",
    "ROOT",
    "Lease",
    "RemoteConfigError",
    "RemoteEntry",
    "RemoteStore",
    "RemoteTier",
    "check_url",
    "from_config",
    "redact",
]
