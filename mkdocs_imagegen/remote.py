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
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import hmac
import json
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mkdocs.plugins import get_plugin_logger

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig

    from .cache import Entry, ImageCache
    from .spec import ImageSpec

log = get_plugin_logger("mkdocs_imagegen")

ROOT = "imagegen/v1"
MAX_RECORD_BYTES = 64 * 1024
MAX_IMAGE_BYTES = 64 * 1024 * 1024
_KEY = re.compile(r"^[0-9a-f]{32}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MODES = ("read-write", "read-only")


class RemoteConfigError(ValueError):
    """`remote_cache` cannot be used as written; the message says how to fix it."""


@dataclass(frozen=True)
class RemoteEntry:
    key: str
    data: bytes
    meta: dict[str, Any]


@dataclass
class Lease:
    key: str
    owner: str
    e_tag: str | None


def check_url(url: str) -> str:
    """Accept `s3://bucket[/prefix]` and `file:///absolute/path`; never credentials in the URL."""
    text = url.strip()
    if text.startswith("s3://"):
        rest = text[5:]
        bucket = rest.split("/", 1)[0]
        if "@" in bucket or ":" in bucket:
            raise RemoteConfigError(
                "remote_cache must not carry credentials: write s3://bucket/prefix and set "
                "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or a profile) in the environment"
            )
        if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", bucket):
            raise RemoteConfigError(f"remote_cache {url!r}: {bucket!r} is not a valid S3 bucket name")
        return text.rstrip("/")
    if text.startswith("file://"):
        path = text[7:]
        if not path.startswith("/"):
            raise RemoteConfigError(f"remote_cache {url!r}: a file URL needs an absolute path, file:///path")
        return "file://" + os.path.normpath(path)
    raise RemoteConfigError(f"remote_cache must be s3://bucket/prefix or file:///path, not {url!r}")


def redact(url: str) -> str:
    """The URL as shown in messages: scheme, bucket and prefix only (never a query string)."""
    return url.split("?", 1)[0]


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
        if mode not in MODES:
            raise RemoteConfigError(f"remote_cache_mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.url = check_url(url)
        self.mode = mode
        self.lease_seconds = lease_seconds
        self._signing_key = signing_key
        self._timeout = timeout
        self._store = store
        self._lock = threading.Lock()
        self._disabled: str | None = None
        self.owner = f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.counts = {"hits": 0, "uploads": 0, "refused": 0}

    @property
    def writable(self) -> bool:
        return self.mode == "read-write"

    @property
    def available(self) -> bool:
        return self._disabled is None

    # -- the store itself ----------------------------------------------------------------------
    def _obstore(self) -> Any:
        """Built on first use, so a build with everything cached locally never touches it."""
        with self._lock:
            if self._store is None:
                from obstore.store import from_url

                options: ClientConfig = {
                    "timeout": f"{max(1, int(self._timeout))}s",
                    "connect_timeout": f"{max(1, int(min(self._timeout, 5)))}s",
                }
                endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL", "")
                if endpoint.startswith("http://"):
                    options["allow_http"] = True  # a local MinIO or test server named by the user
                retry: RetryConfig = {
                    "max_retries": 2,
                    "retry_timeout": datetime.timedelta(seconds=self._timeout * 2),
                    "backoff": {
                        "init_backoff": datetime.timedelta(milliseconds=100),
                        "max_backoff": datetime.timedelta(seconds=2),
                        "base": 2,
                    },
                }
                if self.url.startswith("file://"):
                    os.makedirs(self.url[7:], exist_ok=True)
                    self._store = from_url(self.url)
                else:
                    self._store = from_url(self.url, client_options=options, retry_config=retry)
            return self._store

    def _fail(self, action: str, exc: BaseException) -> None:
        """Switch the store off for the rest of the run, saying so once."""
        reason = _clean(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        with self._lock:
            first = self._disabled is None
            self._disabled = self._disabled or reason
        if first:
            log.warning(
                f"remote cache {redact(self.url)} cannot be used ({action}: {reason}); "
                "this run goes on with the local cache and generates what it lacks"
            )

    def _get_bytes(self, path: str, limit: int) -> tuple[bytes, str | None]:
        import obstore

        result = obstore.get(self._obstore(), path)
        size = int(result.meta.get("size") or 0)
        if size > limit:
            raise _Damaged(f"{path} is {size} bytes, over the {limit}-byte limit")
        data = result.bytes().to_bytes()
        if len(data) > limit:
            raise _Damaged(f"{path} is over the {limit}-byte limit")
        return data, result.meta.get("e_tag")

    # -- reading -------------------------------------------------------------------------------
    def get(self, key: str) -> RemoteEntry | None:
        """The verified entry for `key`, or None (missing, refused, or the store is off)."""
        if not _KEY.match(key) or not self.available:
            return None
        missing, _ = _errors()
        try:
            record = _parse_record(self._get_bytes(f"{ROOT}/entries/{key}.json", MAX_RECORD_BYTES)[0], key)
            self._check_signature(record, key)
            data = self._get_bytes(f"{ROOT}/images/{key}", min(MAX_IMAGE_BYTES, record["bytes"]))[0]
            if len(data) != record["bytes"] or hashlib.sha256(data).hexdigest() != record["sha256"]:
                raise _Damaged("the image does not match the recorded size and digest")
        except missing:
            return None
        except _Damaged as exc:
            self.refuse(key, str(exc))
            return None
        except Exception as exc:
            self._fail("reading", exc)
            return None
        with self._lock:
            self.counts["hits"] += 1
        return RemoteEntry(key=key, data=data, meta=record["meta"])

    def refuse(self, key: str, why: str) -> None:
        """Count and say why an entry is not used (each refused key once per run)."""
        with self._lock:
            self.counts["refused"] += 1
        log.warning(f"remote cache entry {key} is refused ({why}); the image is made locally instead")

    def _check_signature(self, record: dict[str, Any], key: str) -> None:
        if self._signing_key is None:
            return
        signature = record.get("signature")
        if not isinstance(signature, str):
            raise _Damaged("it is not signed, and remote_cache_signing_key_env is set")
        expected = _sign(self._signing_key, key, record)
        if not hmac.compare_digest(signature, expected):
            raise _Damaged("its signature does not match")

    def has(self, key: str) -> bool:
        """Whether a record exists for `key` (not verified: for `status` and `--push`)."""
        if not _KEY.match(key) or not self.available:
            return False
        import obstore

        missing, _ = _errors()
        try:
            obstore.head(self._obstore(), f"{ROOT}/entries/{key}.json")
            return True
        except missing:
            return False
        except Exception as exc:
            self._fail("reading", exc)
            return False

    def entries(self) -> Iterator[tuple[str, int]]:
        """(key, image bytes) of every entry under this prefix; orphan images count with key."""
        import obstore

        seen: dict[str, int] = {}
        for batch in obstore.list(self._obstore(), prefix=f"{ROOT}/"):
            for meta in batch:
                path = str(meta["path"])
                name = path.rsplit("/", 1)[-1].removesuffix(".json")
                if _KEY.match(name):
                    seen[name] = seen.get(name, 0) + (int(meta["size"]) if "/images/" in path else 0)
        yield from seen.items()

    # -- writing -------------------------------------------------------------------------------
    def put(self, key: str, data: bytes, meta: dict[str, Any]) -> bool:
        """Upload a real image create-only; True when this call added it."""
        if not self.writable or not self.available or not _KEY.match(key):
            return False
        import obstore

        record: dict[str, Any] = {
            "schema": 1,
            "key": key,
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "meta": _plain(meta),
        }
        if self._signing_key is not None:
            record["signature"] = _sign(self._signing_key, key, record)
        _, exists = _errors()
        try:
            store = self._obstore()
            # An earlier upload may have got this far: the record decides what the entry is.
            with contextlib.suppress(*exists):
                obstore.put(store, f"{ROOT}/images/{key}", data, mode="create")
            obstore.put(store, f"{ROOT}/entries/{key}.json", _dumps(record), mode="create")
        except exists:
            return False  # another runner stored it first: never replaced
        except Exception as exc:
            self._fail("uploading", exc)
            return False
        with self._lock:
            self.counts["uploads"] += 1
        return True

    def delete(self, key: str) -> None:
        import obstore

        missing, _ = _errors()
        store = self._obstore()
        for path in (f"{ROOT}/entries/{key}.json", f"{ROOT}/images/{key}", f"{ROOT}/leases/{key}.json"):
            with contextlib.suppress(*missing):
                obstore.delete(store, path)

    # -- leases: one runner generates a key, the others wait for it ------------------------------
    def claim(self, key: str) -> Lease | None:
        """Take the lease on `key`, or None when another live runner holds it (or we may not)."""
        if not self.writable or not self.available or not _KEY.match(key):
            return None
        import obstore

        path = f"{ROOT}/leases/{key}.json"
        body = _dumps({"owner": self.owner, "expires": time.time() + self.lease_seconds})
        missing, exists = _errors()
        try:
            store = self._obstore()
            try:
                result = obstore.put(store, path, body, mode="create")
                return Lease(key, self.owner, result.get("e_tag"))
            except exists:
                pass
            current = self._lease(key)
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
            self._fail("claiming", exc)
            return None

    def _lease(self, key: str) -> tuple[str, float, str | None] | None:
        """(owner, expiry, e_tag) of the current lease, or None; an unreadable lease is expired."""
        missing, _ = _errors()
        try:
            got = self._get_bytes(f"{ROOT}/leases/{key}.json", 4096)
        except missing:
            return None
        except _Damaged:
            return ("?", 0.0, None)
        data, e_tag = got
        try:
            value = json.loads(data)
            owner, expires = str(value["owner"])[:100], float(value["expires"])
        except (ValueError, KeyError, TypeError):
            return ("?", 0.0, e_tag)
        return owner, min(expires, time.time() + 24 * 3600), e_tag

    def lease_expiry(self, key: str) -> float | None:
        """When another runner's lease on `key` lapses (epoch seconds), or None if there is none."""
        if not self.available:
            return None
        try:
            current = self._lease(key)
        except Exception as exc:
            self._fail("reading", exc)
            return None
        return None if current is None else current[1]

    def release(self, lease: Lease) -> None:
        import obstore

        try:
            current = self._lease(lease.key)
            if current is not None and current[0] == lease.owner:
                obstore.delete(self._obstore(), f"{ROOT}/leases/{lease.key}.json")
        except Exception as exc:  # a lease left behind lapses by itself
            self._fail("releasing a lease", exc)


class _Damaged(Exception):
    """An object that is not what an entry must be."""


def _errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(missing, exists-or-changed) exception types, imported only when the store is used."""
    from obstore import exceptions as e

    return (FileNotFoundError, e.NotFoundError), (FileExistsError, e.AlreadyExistsError, e.PreconditionError)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _sign(secret: bytes, key: str, record: dict[str, Any]) -> str:
    """HMAC-SHA256 over the key, the image digest and size, and the metadata."""
    body = {k: record[k] for k in ("schema", "key", "bytes", "sha256", "meta")}
    if body["key"] != key:
        raise _Damaged("its record names another key")
    return hmac.new(secret, _dumps(body), hashlib.sha256).hexdigest()


def _parse_record(data: bytes, key: str) -> dict[str, Any]:
    try:
        record = json.loads(data)
    except (ValueError, RecursionError):
        raise _Damaged("its record is not JSON") from None
    if not isinstance(record, dict):
        raise _Damaged("its record is not a JSON object")
    if record.get("schema") != 1 or record.get("key") != key:
        raise _Damaged("its record is for another key or schema")
    size, digest, meta = record.get("bytes"), record.get("sha256"), record.get("meta")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_IMAGE_BYTES:
        raise _Damaged("its record has no valid size")
    if not isinstance(digest, str) or not _HEX64.match(digest):
        raise _Damaged("its record has no valid digest")
    if not isinstance(meta, dict):
        raise _Damaged("its record has no metadata mapping")
    record["meta"] = _plain(meta)
    return record


def _plain(meta: dict[str, Any]) -> dict[str, Any]:
    """Metadata as flat plain data: short strings, numbers, booleans, None; one level of dicts."""
    out: dict[str, Any] = {}
    for name, value in list(meta.items())[:64]:
        if not isinstance(name, str) or len(name) > 64:
            continue
        if isinstance(value, dict):
            value = {
                str(k)[:64]: v
                for k, v in list(value.items())[:64]
                if isinstance(v, (str, int, float, bool)) or v is None
            }
            value = {k: v[:4000] if isinstance(v, str) else v for k, v in value.items()}
        elif isinstance(value, str):
            value = value[:40_000]
        elif not (isinstance(value, (int, float, bool)) or value is None):
            continue
        out[name] = value
    return out


def _clean(text: str) -> str:
    """A store's error, safe for a log line: no control characters, no secret, bounded."""
    for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID"):
        secret = os.environ.get(name, "")
        if len(secret) >= 8:
            text = text.replace(secret, "[redacted]")
    text = re.sub(r"([?&](?:X-Amz-[A-Za-z-]+|Signature|AWSAccessKeyId)=)[^&\s]+", r"\1[redacted]", text)
    return _CONTROL.sub(" ", text)[:300]


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
        from . import imaging

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
