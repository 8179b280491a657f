"""The image lock: the real images a site uses, committed beside its docs, and their manifest.

A lock folder holds one image file per key, named by the key (`<key>.png`), and `imagegen.lock`,
a JSON Lines manifest with one record per image, sorted by key. The folder is meant for Git: its
`.gitattributes` declares the `union` merge driver for the manifest, so two branches that add
different images merge without a conflict, and reading accepts the unsorted or repeated lines a
union merge leaves (the next write normalises them).

Everything read back is hostile data: the manifest is parsed as JSON and validated field by
field, bounded in size, never executed; a file name is always derived from the key and the
format, never taken from the manifest; an image is served only when its bytes match the
recorded size and SHA-256. Writes go to a temporary file renamed into place, so an interrupted
run leaves the previous manifest (and every previous image) intact.

This module imports nothing from the package: the engine and the command use it as one tier in
front of the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import filelock

MANIFEST = "imagegen.lock"
GITATTRIBUTES = "imagegen.lock merge=union\n"
GITIGNORE = "# unfinished writes of an interrupted run\n.*.tmp\n"
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

log = logging.getLogger("mkdocs.plugins.mkdocs_imagegen")


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


def _newest(records: list[Record]) -> Record:
    return max(records, key=lambda r: (r.created, r.line()))


@dataclass(frozen=True)
class Locked:
    """A verified image of the lock: its record and the file that holds its bytes."""

    record: Record
    path: str


class ImageLock:
    """The lock folder of one site: verified reads, atomic writes, one save at the end of a run."""

    def __init__(
        self, folder: str, *, logger: logging.Logger | logging.LoggerAdapter[Any] | None = None
    ) -> None:
        self.folder = os.path.abspath(folder)
        self.log = logger or log
        self._mutex = threading.Lock()
        self._verified: dict[str, Locked | None] = {}
        self._records: dict[str, Record] = {}  # the one record chosen per key
        self._added: dict[str, Record] = {}  # written by this run
        self._pages: dict[str, set[str]] = {}  # pages using each key in this run
        self._removed: set[str] = set()
        self._warned: set[str] = set()
        if os.path.exists(self.folder) and not os.path.isdir(self.folder):
            raise LockError(f"the lock folder {self.folder} is a file; set lock to a folder")
        self._load()

    @property
    def manifest_path(self) -> str:
        return os.path.join(self.folder, MANIFEST)

    # -- reading -------------------------------------------------------------------------------
    def _load(self) -> None:
        manifest = self._read_manifest()
        for problem in manifest.problems:
            self.log.warning(f"lock {self._show(problem)}")
        for key, candidates in manifest.candidates.items():
            self._records[key] = self._choose(candidates)

    def _read_manifest(self) -> Manifest:
        try:
            with open(self.manifest_path, "rb") as fh:
                raw = fh.read(MAX_MANIFEST_BYTES + 1)
        except FileNotFoundError:
            return Manifest()
        except OSError as exc:
            raise LockError(f"cannot read {self.manifest_path}: {exc.strerror or exc}") from None
        return parse_manifest(raw.decode("utf-8", errors="replace"), self._show(self.manifest_path))

    def _choose(self, candidates: list[Record]) -> Record:
        """Of repeated lines for one key (a union merge), the one whose file is on disk wins."""
        pages = tuple(sorted({p for r in candidates for p in r.pages}))
        if len(candidates) > 1:
            digest = _sha256_file(os.path.join(self.folder, candidates[0].file))
            matching = [r for r in candidates if r.sha256 == digest] or candidates
            chosen = _newest(matching)
        else:
            chosen = candidates[0]
        return replace(chosen, pages=pages)

    def records(self) -> list[Record]:
        with self._mutex:
            return sorted(self._records.values(), key=lambda r: r.key)

    def record(self, key: str) -> Record | None:
        return self._records.get(key)

    def get(self, key: str) -> Locked | None:
        """The verified image of `key`, or None; a file that does not match its record is refused."""
        with self._mutex:
            if key in self._verified:
                return self._verified[key]
            record = self._records.get(key)
        found = None if record is None else self._verify(record)
        with self._mutex:
            self._verified[key] = found
        return found

    def pinned(self, intent: str, page: str | None = None) -> Locked | None:
        """The image pinned to an intent: the one this page already used, else the newest."""
        with self._mutex:
            candidates = [r for r in self._records.values() if r.intent == intent]
        candidates.sort(key=lambda r: (page is not None and page in r.pages, r.created, r.key), reverse=True)
        for record in candidates:
            found = self.get(record.key)
            if found is not None:
                return found
        return None

    def _verify(self, record: Record) -> Locked | None:
        path = os.path.join(self.folder, record.file)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            self._refuse(record, "is listed in imagegen.lock but missing from the lock folder")
            return None
        except OSError as exc:
            self._refuse(record, f"cannot be read: {exc.strerror or exc}")
            return None
        if not os.path.isfile(path) or os.path.islink(path):
            self._refuse(record, "is not a regular file")
            return None
        if st.st_size != record.bytes or _sha256_file(path) != record.sha256:
            hint = ""
            if st.st_size < 1024 and _is_lfs_pointer(path):
                hint = " (it is a Git LFS pointer: run `git lfs pull`)"
            self._refuse(
                record,
                f"does not match the SHA-256 recorded in imagegen.lock{hint}; it is refused. Restore it "
                "(`git checkout -- <file>`), or delete it and its line to generate it again",
            )
            return None
        return Locked(record, path)

    def _refuse(self, record: Record, why: str) -> None:
        with self._mutex:
            if record.key in self._warned:
                return
            self._warned.add(record.key)
        self.log.warning(f"lock image {self._show(os.path.join(self.folder, record.file))} {why}")

    # -- writing -------------------------------------------------------------------------------
    def add(self, record: Record, data: bytes) -> Locked:
        """Write a real image into the folder (temp file, then rename) and remember its line."""
        if hashlib.sha256(data).hexdigest() != record.sha256 or len(data) != record.bytes:
            raise LockError("internal error: the image bytes do not match their lock record")
        self._ensure_folder()
        path = os.path.join(self.folder, record.file)
        _atomic_write(path, data)
        found = Locked(record, path)
        with self._mutex:
            self._records[record.key] = record
            self._added[record.key] = record
            self._removed.discard(record.key)
            self._verified[record.key] = found
        return found

    def use(self, key: str, pages: Iterable[str], intent: str | None = None) -> None:
        """Record that these pages use `key` in this run (kept in the record's `pages`).

        An image written in this run learns its directive's intent here, if it had none.
        """
        seen = set(pages)
        with self._mutex:
            if seen:
                self._pages.setdefault(key, set()).update(seen)
            record = self._added.get(key)
            if record is not None and record.intent is None and intent is not None:
                record = replace(record, intent=intent)
                self._added[key] = self._records[key] = record

    def remove(self, key: str) -> int:
        """Forget a key and delete its file (derived from the key); return the bytes freed."""
        with self._mutex:
            record = self._records.pop(key, None)
            self._added.pop(key, None)
            self._verified.pop(key, None)
            self._removed.add(key)
        if record is None:
            return 0
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(self.folder, record.file))
            return record.bytes
        return 0

    def replace_pins(self, used: set[str]) -> list[str]:
        """Drop images whose intent has a newer image from this run and that nothing uses now."""
        with self._mutex:
            fresh = {r.intent for r in self._added.values() if r.intent}
            stale = [
                r.key
                for r in self._records.values()
                if r.intent in fresh and r.key not in used and r.key not in self._added
            ]
        for key in stale:
            self.remove(key)
        return stale

    @property
    def dirty(self) -> bool:
        with self._mutex:
            if self._added or self._removed:
                return True
            return any(
                key in self._records and not pages <= set(self._records[key].pages)
                for key, pages in self._pages.items()
            )

    def save(self) -> bool:
        """Write the manifest if this run changed anything; True when it did.

        Under a file lock, the manifest on disk is read again and this run's changes laid over
        it, so two runs sharing a folder (a build and a `generate`) never lose each other's lines.
        """
        if not self.dirty:
            return False
        self._ensure_folder()
        with _folder_lock(self.folder):
            on_disk = self._read_manifest()
            merged = {key: self._choose(c) for key, c in on_disk.candidates.items()}
            with self._mutex:
                for key in self._removed:
                    merged.pop(key, None)
                merged.update(self._added)
                for key, pages in self._pages.items():
                    if key in merged:
                        # Pages of this run replace the recorded ones only where the run saw the key.
                        merged[key] = replace(merged[key], pages=tuple(sorted(pages)))
                _atomic_write(self.manifest_path, manifest_text(merged.values()).encode())
                self._records = merged
                self._added.clear()
                self._removed.clear()
        return True

    def _ensure_folder(self) -> None:
        try:
            os.makedirs(self.folder, exist_ok=True)
            for name, text in ((".gitattributes", GITATTRIBUTES), (".gitignore", GITIGNORE)):
                path = os.path.join(self.folder, name)
                if not os.path.exists(path):
                    _atomic_write(path, text.encode())
                elif name == ".gitattributes":
                    with open(path, encoding="utf-8", errors="replace") as fh:
                        current = fh.read(65536)
                    if "merge=union" not in current:
                        _atomic_write(path, (current.rstrip("\n") + "\n" + GITATTRIBUTES).lstrip().encode())
        except OSError as exc:
            raise LockError(
                f"cannot write the lock folder {self.folder}: {exc.strerror or exc}. "
                "Make it writable, or remove the lock option"
            ) from None

    def _show(self, path: str) -> str:
        """A path as the user knows it: relative to the current folder when inside it."""
        with contextlib.suppress(ValueError):
            rel = os.path.relpath(path)
            if not rel.startswith(".."):
                return rel
        return path


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


def _atomic_write(path: str, data: bytes) -> None:
    """Write to a temporary file in the same folder, flush it to disk, then rename it into place."""
    folder, name = os.path.split(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def _folder_lock(folder: str) -> Iterator[None]:
    """A cross-process lock for rewriting a folder's manifest, kept outside the committed folder."""
    digest = hashlib.sha256(folder.encode()).hexdigest()[:16]
    with filelock.FileLock(os.path.join(tempfile.gettempdir(), f"imagegen-lock-{digest}.lock"), timeout=120):
        yield


def _sha256_file(path: str) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def _is_lfs_pointer(path: str) -> bool:
    with contextlib.suppress(OSError), open(path, "rb") as fh:
        return fh.read(64).startswith(b"version https://git-lfs.github.com/spec/")
    return False


def _git_show(revision: str, folder: str, name: str) -> tuple[bytes | None, str | None]:
    """A file of the lock folder at a git revision: (bytes, None), (None, None) if absent, or why not."""
    import subprocess

    if not revision or revision.startswith("-"):
        return None, f"{revision!r} is not a git revision"
    # `REV:./path` is relative to the working directory, so no repository root is needed.
    cwd, rel = (
        (folder, name)
        if os.path.isdir(folder)
        else (os.path.dirname(folder), f"{os.path.basename(folder)}/{name}")
    )
    try:
        proc = subprocess.run(
            ["git", "show", f"{revision}:./{rel}"], cwd=cwd, capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"cannot run git: {exc}"
    if proc.returncode == 0:
        return proc.stdout, None
    message = proc.stderr.decode("utf-8", errors="replace").strip()
    if "exists on disk, but not in" in message or "does not exist in" in message:
        return None, None
    return None, f"git show {revision}:{rel} failed: {message or proc.returncode}"


def read_manifest_at(revision: str, folder: str) -> tuple[Manifest, str | None]:
    """The manifest as it was at a git revision, or why it cannot be read (none there: empty)."""
    data, problem = _git_show(revision, folder, MANIFEST)
    if data is None:
        return Manifest(), problem
    return parse_manifest(data[:MAX_MANIFEST_BYTES].decode("utf-8", errors="replace")), None


def image_at(revision: str, folder: str, record: Record) -> bytes | None:
    """An image's bytes at a git revision, verified against its record; None when absent or wrong."""
    data, _ = _git_show(revision, folder, record.file)
    if data is None or len(data) != record.bytes or hashlib.sha256(data).hexdigest() != record.sha256:
        return None
    return data


def choose(manifest: Manifest) -> dict[str, Record]:
    """One record per key from parsed lines, without looking at files (for a revision's manifest)."""
    out = {}
    for key, candidates in manifest.candidates.items():
        pages = tuple(sorted({p for r in candidates for p in r.pages}))
        out[key] = replace(_newest(candidates), pages=pages)
    return out
