"""The stored format of an entry: where its objects live, and its record, checked as hostile data.

A record names its key, the image's size and SHA-256, plain metadata and, with a signing
secret, an HMAC over all of them. Whatever is read back is parsed as JSON, validated and
flattened before anything trusts it; nothing is unpickled and no path is taken from it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any

ROOT = "imagegen/v1"
MAX_RECORD_BYTES = 64 * 1024
MAX_IMAGE_BYTES = 64 * 1024 * 1024
MAX_LEASE_BYTES = 4096
KEY = re.compile(r"^[0-9a-f]{32}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class Damaged(Exception):
    """An object that is not what an entry must be."""


def image_path(key: str) -> str:
    return f"{ROOT}/images/{key}"


def entry_path(key: str) -> str:
    return f"{ROOT}/entries/{key}.json"


def lease_path(key: str) -> str:
    return f"{ROOT}/leases/{key}.json"


def dumps(value: Any) -> bytes:
    """Canonical JSON: the bytes an HMAC is taken over must not depend on dict order."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def new_record(key: str, data: bytes, meta: dict[str, Any], secret: bytes | None) -> dict[str, Any]:
    """The record that makes `data` the entry of `key`, signed when there is a secret."""
    record: dict[str, Any] = {
        "schema": 1,
        "key": key,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "meta": plain(meta),
    }
    if secret is not None:
        record["signature"] = sign(secret, key, record)
    return record


def sign(secret: bytes, key: str, record: dict[str, Any]) -> str:
    """HMAC-SHA256 over the key, the image digest and size, and the metadata."""
    body = {k: record[k] for k in ("schema", "key", "bytes", "sha256", "meta")}
    if body["key"] != key:
        raise Damaged("its record names another key")
    return hmac.new(secret, dumps(body), hashlib.sha256).hexdigest()


def check_signature(record: dict[str, Any], key: str, secret: bytes | None) -> None:
    """With a secret, only a record signed with it is an entry; without one, any valid record is."""
    if secret is None:
        return
    signature = record.get("signature")
    if not isinstance(signature, str):
        raise Damaged("it is not signed, and remote_cache_signing_key_env is set")
    if not hmac.compare_digest(signature, sign(secret, key, record)):
        raise Damaged("its signature does not match")


def check_image(record: dict[str, Any], data: bytes) -> None:
    """An upload cut short, or an image swapped under its record, is never taken for the image."""
    if len(data) != record["bytes"] or hashlib.sha256(data).hexdigest() != record["sha256"]:
        raise Damaged("the image does not match the recorded size and digest")


def parse_record(data: bytes, key: str) -> dict[str, Any]:
    """The record of `key` read from untrusted bytes, or Damaged saying what is wrong with it."""
    try:
        record = json.loads(data)
    except (ValueError, RecursionError):
        raise Damaged("its record is not JSON") from None
    if not isinstance(record, dict):
        raise Damaged("its record is not a JSON object")
    if record.get("schema") != 1 or record.get("key") != key:
        raise Damaged("its record is for another key or schema")
    size, digest, meta = record.get("bytes"), record.get("sha256"), record.get("meta")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_IMAGE_BYTES:
        raise Damaged("its record has no valid size")
    if not isinstance(digest, str) or not _HEX64.match(digest):
        raise Damaged("its record has no valid digest")
    if not isinstance(meta, dict):
        raise Damaged("its record has no metadata mapping")
    record["meta"] = plain(meta)
    return record


def plain(meta: dict[str, Any]) -> dict[str, Any]:
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
