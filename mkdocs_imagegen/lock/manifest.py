"""The lock's manifest format: one JSON line per image, parsed and checked as hostile data.

`imagegen.lock` is JSON Lines, one record per image, sorted by key. Reading accepts the unsorted
or repeated lines a union merge leaves, skips (and names) a line that is not a valid record,
and never takes a file name from it: the name is derived from the key and the format.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

MANIFEST = "imagegen.lock"
KEY_RE = re.compile(r"^[0-9a-f]{32}$")
SHA_RE = re.compile(r"^[0-9a-f]{64}$")
EXTENSIONS = {"png": "png", "webp": "webp", "jpeg": "jpg"}
MAX_MANIFEST_BYTES = 256 * 1024 * 1024
MAX_LINE_CHARS = 1024 * 1024
MAX_IMAGE_BYTES = 256 * 1024 * 1024
MAX_PAGES = 10_000
MAX_TEXT = 64_000
# Directive keys that do not decide the pixels: editing them keeps the writer's intent.
NOT_INTENT = frozenset({"alt", "caption", "moderation"})
INTENT_VERSION = 1


class LockError(RuntimeError):
    """The lock folder cannot be used; the message names it and says what to do."""


def intent_id(own: Mapping[str, Any], inputs: Iterable[tuple[str, str]] = ()) -> str:
    """A hash of what the writer wrote in one directive: its prompt and its own keys.

    The site's defaults, the prompt template and the model are left out on purpose, so that
    changing them re-keys an image without changing its intent: the lock then keeps showing the
    pinned image instead of spending on every image of the site. Input files count by content
    (`inputs`: role and SHA-256), so editing a `source:` image is a new intent.
    """
    values = {k: v for k, v in own.items() if k not in NOT_INTENT and k not in ("source", "mask")}
    blob = json.dumps(
        {"v": INTENT_VERSION, "own": values, "inputs": [list(p) for p in inputs]},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Record:
    """One line of the manifest: one image of the lock folder."""

    key: str
    format: str
    sha256: str
    bytes: int
    width: int
    height: int
    provider: str
    model: str | None
    prompt: str
    intent: str | None
    pages: tuple[str, ...] = ()
    created: str = ""
    cost: float | None = None

    @property
    def file(self) -> str:
        """The image's file name, always derived from the key and the format."""
        return f"{self.key}.{EXTENSIONS[self.format]}"

    def meta(self) -> dict[str, Any]:
        """The record as cache-style metadata, for code that reads cache entries."""
        data = asdict(self)
        data["pages"] = list(self.pages)
        data["file"] = self.file
        return data

    def line(self) -> str:
        data = {
            "key": self.key,
            "file": self.file,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "width": self.width,
            "height": self.height,
            "format": self.format,
            "provider": self.provider,
            "model": self.model,
            "prompt": self.prompt,
            "intent": self.intent,
            "pages": list(self.pages),
            "created": self.created,
            "cost": self.cost,
        }
        return json.dumps(data, ensure_ascii=False, separators=(", ", ": "))

    @classmethod
    def from_data(cls, data: Any) -> Record:
        """Validate one decoded line; raise ValueError saying which field is wrong."""
        if not isinstance(data, dict):
            raise ValueError("a line must be a JSON object")
        key = _text(data, "key", KEY_RE)
        fmt = data.get("format")
        if fmt not in EXTENSIONS:
            raise ValueError(f"'format' must be one of {', '.join(EXTENSIONS)}")
        record = cls(
            key=key,
            format=fmt,
            sha256=_text(data, "sha256", SHA_RE),
            bytes=_int(data, "bytes", 1, MAX_IMAGE_BYTES),
            width=_int(data, "width", 1, 65_535),
            height=_int(data, "height", 1, 65_535),
            provider=_text(data, "provider"),
            model=_optional_text(data, "model"),
            prompt=_text(data, "prompt"),
            intent=_optional_text(data, "intent", KEY_RE),
            pages=_pages(data.get("pages", [])),
            created=_optional_text(data, "created") or "",
            cost=_cost(data.get("cost")),
        )
        if "file" in data and data["file"] != record.file:
            # Never a path from the manifest: a file name that is not the key's is tampering.
            raise ValueError(f"'file' must be {record.file}, the name derived from the key")
        return record


def _text(data: dict[str, Any], name: str, pattern: re.Pattern[str] | None = None) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise ValueError(f"'{name}' must be non-empty text")
    if pattern is not None and not pattern.match(value):
        raise ValueError(f"'{name}' has the wrong form")
    return value


def _optional_text(data: dict[str, Any], name: str, pattern: re.Pattern[str] | None = None) -> str | None:
    return None if data.get(name) is None else _text(data, name, pattern)


def _int(data: dict[str, Any], name: str, low: int, high: int) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"'{name}' must be a whole number from {low} to {high}")
    return value


def _pages(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_PAGES:
        raise ValueError("'pages' must be a list of page paths")
    if not all(isinstance(p, str) and 0 < len(p) <= 4096 for p in value):
        raise ValueError("'pages' must be a list of page paths")
    return tuple(sorted(set(value)))


def _cost(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e6:
        raise ValueError("'cost' must be a number of US dollars or null")
    return float(value)


@dataclass
class Manifest:
    """Parsed manifest lines: every valid candidate per key, and what was wrong with the rest."""

    candidates: dict[str, list[Record]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def keys(self) -> list[str]:
        return sorted(self.candidates)


def parse_manifest(text: str, name: str = MANIFEST) -> Manifest:
    """Read JSON Lines as data: unsorted and repeated lines are fine, a bad line is skipped and named."""
    manifest = Manifest()
    if len(text) > MAX_MANIFEST_BYTES:
        manifest.problems.append(f"{name} is over {MAX_MANIFEST_BYTES} bytes; it was not read")
        return manifest
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith(("<<<<<<<", "=======", ">>>>>>>", "|||||||")):
            manifest.problems.append(
                f"{name}:{number}: a merge conflict marker; keep both sides' lines and delete the "
                f"markers (the .gitattributes in the lock folder makes git do this itself)"
            )
            continue
        if len(stripped) > MAX_LINE_CHARS:
            manifest.problems.append(f"{name}:{number}: a line over {MAX_LINE_CHARS} characters, skipped")
            continue
        try:
            record = Record.from_data(json.loads(stripped))
        except (ValueError, RecursionError) as exc:
            decoded = isinstance(exc, ValueError) and not isinstance(exc, json.JSONDecodeError)
            reason = exc if decoded else "not a JSON object"
            manifest.problems.append(f"{name}:{number}: {reason}; line skipped")
            continue
        manifest.candidates.setdefault(record.key, []).append(record)
    return manifest


def manifest_text(records: Iterable[Record]) -> str:
    return "".join(r.line() + "\n" for r in sorted(records, key=lambda r: r.key))


def pick(candidates: list[Record], on_disk: str | None = None) -> Record:
    """One record of a key's repeated lines (a union merge), carrying the pages of them all.

    The newest wins, among the lines whose digest is `on_disk` (the file's) when any is.
    """
    pages = tuple(sorted({p for r in candidates for p in r.pages}))
    matching = [r for r in candidates if r.sha256 == on_disk] or candidates
    return replace(max(matching, key=lambda r: (r.created, r.line())), pages=pages)


def record_for(
    key: str,
    data: bytes,
    meta: Mapping[str, Any],
    *,
    intent: str | None,
    pages: Iterable[str] = (),
) -> Record:
    """A lock record from an image's bytes and its cache-style metadata."""
    cost = meta.get("cost")
    return Record(
        key=key,
        format=str(meta["format"]),
        sha256=hashlib.sha256(data).hexdigest(),
        bytes=len(data),
        width=int(meta["width"]),
        height=int(meta["height"]),
        provider=str(meta.get("provider") or "unknown"),
        model=meta.get("model"),
        prompt=str(meta.get("prompt") or ""),
        intent=intent,
        pages=tuple(sorted(set(pages))),
        created=str(meta.get("created") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
        cost=float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None,
    )


def choose(manifest: Manifest) -> dict[str, Record]:
    """One record per key from parsed lines, without looking at files (for a revision's manifest)."""
    return {key: pick(candidates) for key, candidates in manifest.candidates.items()}
