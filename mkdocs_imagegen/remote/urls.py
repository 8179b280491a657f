"""Where the store is, and what a message may say of it: never a credential or a signed query."""

from __future__ import annotations

import os
import re

MODES = ("read-write", "read-only")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class RemoteConfigError(ValueError):
    """`remote_cache` cannot be used as written; the message says how to fix it."""


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


def check_mode(mode: str) -> str:
    """A mode this store knows; a typo must not silently make a reader into a writer."""
    if mode not in MODES:
        raise RemoteConfigError(f"remote_cache_mode must be one of {', '.join(MODES)}, not {mode!r}")
    return mode


def redact(url: str) -> str:
    """The URL as shown in messages: scheme, bucket and prefix only (never a query string)."""
    return url.split("?", 1)[0]


def clean(text: str) -> str:
    """A store's error, safe for a log line: no control characters, no secret, bounded."""
    for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID"):
        secret = os.environ.get(name, "")
        if len(secret) >= 8:
            text = text.replace(secret, "[redacted]")
    text = re.sub(r"([?&](?:X-Amz-[A-Za-z-]+|Signature|AWSAccessKeyId)=)[^&\s]+", r"\1[redacted]", text)
    return _CONTROL.sub(" ", text)[:300]
