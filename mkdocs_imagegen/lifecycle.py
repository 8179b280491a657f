"""Model lifecycle: shutdown dates, and what a change of model would re-key and cost.

Two sources of shutdown dates: the model table (OpenAI's announced dates, which only apply at
OpenAI's own API) and the API's `GET /models` where it lists a `shutdown_date`, cached for a day
in cache_dir as JSON. Asking `/models` never blocks or fails anything: any failure is no answer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import hashlib
import json
import os
import re
import time
from collections.abc import Iterable
from typing import Any

from . import models
from .providers import ENDPOINTS, PAID, endpoint
from .spec import ImageSpec

DAY = 86_400.0
FAILED_TTL = 3_600.0  # an unanswered /models is asked again after an hour, not at every build
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclasses.dataclass(frozen=True)
class Note:
    model: str
    shutdown: str
    source: str  # "table" or "api"
    text: str


def _is_openai(plugin_config: Any) -> bool:
    return endpoint(plugin_config)[0].rstrip("/") == ENDPOINTS["openai"][0]


def notes(
    plugin_config: Any,
    cache_dir: str,
    in_use: Iterable[str | None],
    *,
    ask_api: bool = True,
    today: datetime.date | None = None,
) -> list[Note]:
    """A note for each model in use that has a shutdown date, the API's date first."""
    provider = plugin_config["provider"]
    if provider not in PAID:
        return []
    names = sorted({m for m in in_use if m})
    listed = api_dates(plugin_config, cache_dir) if ask_api else cached_dates(plugin_config, cache_dir)
    out: list[Note] = []
    for name in names:
        api_date = (listed or {}).get(name) or (listed or {}).get(models.base_name(name))
        if api_date:
            day = datetime.date.fromisoformat(api_date)
            verb = "was shut down" if day <= (today or datetime.date.today()) else "will be shut down"
            base_url = endpoint(plugin_config)[0]
            out.append(
                Note(name, api_date, "api", f"model {name} {verb} on {api_date} (as {base_url}/models says)")
            )
            continue
        if provider == "openai" and _is_openai(plugin_config):
            text = models.lifecycle_note(name, provider, today)
            model = models.find(name)
            if text and model is not None and model.shutdown:
                out.append(Note(name, model.shutdown, "table", text))
    return out


def _cache_file(cache_dir: str, base_url: str) -> str:
    digest = hashlib.sha256(base_url.encode()).hexdigest()[:16]
    return os.path.join(cache_dir, f"models-{digest}.json")


def api_dates(plugin_config: Any, cache_dir: str, *, timeout: float = 10.0) -> dict[str, str] | None:
    """The API's shutdown dates, from the day-old cache or one `GET /models`; None when unknown."""
    base_url, key_env = endpoint(plugin_config)
    if not os.environ.get(key_env, "").strip():
        return None
    path = _cache_file(cache_dir, base_url)
    cached = _read(path, base_url)
    if cached is not None:
        return cached
    from .providers.openai import OpenAIProvider

    async def ask() -> dict[str, str] | None:
        provider = OpenAIProvider.from_config({**dict(plugin_config), "timeout": timeout, "concurrency": 1})
        try:
            return await provider.shutdown_dates()
        finally:
            await provider.aclose()

    try:
        dates = asyncio.run(ask())
    except Exception:  # never let a lifecycle question break anything
        dates = None
    _write(path, base_url, dates)
    return dates


def cached_dates(plugin_config: Any, cache_dir: str) -> dict[str, str] | None:
    """The API's shutdown dates if a fresh answer is cached; never asks."""
    base_url = endpoint(plugin_config)[0]
    return _read(_cache_file(cache_dir, base_url), base_url)


def _read(path: str, base_url: str) -> dict[str, str] | None:
    """A fresh cached answer (plain JSON, checked field by field), or None."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.loads(fh.read(1_000_000))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("base_url") != base_url:
        return None
    fetched = data.get("fetched")
    dates = data.get("dates")
    if not isinstance(fetched, (int, float)) or isinstance(fetched, bool):
        return None
    ttl = DAY if isinstance(dates, dict) else FAILED_TTL
    if not 0 <= time.time() - fetched < ttl:
        return None
    if not isinstance(dates, dict):
        return {}
    return {k: v for k, v in dates.items() if isinstance(k, str) and isinstance(v, str) and _DATE.match(v)}


def _write(path: str, base_url: str, dates: dict[str, str] | None) -> None:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"base_url": base_url, "fetched": time.time(), "dates": dates}, fh)
        os.replace(tmp, path)
    except OSError:
        pass


def unknown_models(in_use: Iterable[str | None]) -> list[str]:
    """Models not in the table: sent unchecked, priced "cost unknown"."""
    return sorted({m for m in in_use if m and models.find(m) is None})


def unknown_note(names: list[str]) -> str | None:
    if not names:
        return None
    return (
        f"model(s) {', '.join(names)} not in the model table: requests are sent as written, "
        "unchecked, and their cost is unknown"
    )


# -- what a model change re-keys ---------------------------------------------------------------


@dataclasses.dataclass
class Rekeyed:
    """Missing images that the cache holds under another provider/model (the key differs only so)."""

    count: int = 0
    cost: float | None = 0.0
    was: set[str] = dataclasses.field(default_factory=set)  # "provider/model" they were made with

    def summary(self) -> str | None:
        if not self.count:
            return None
        from .pricing import format_cost

        was = ", ".join(sorted(self.was))
        return (
            f"{self.count} image(s) are cached for {was} but not for the configured model: "
            f"the model change re-keys them, and generating them again costs {format_cost(self.cost)}. "
            "Set the old model (and provider) back to keep using the cached images"
        )


def rekeyed(
    missing: Iterable[ImageSpec], cache_entries: Iterable[tuple[str, bool, dict[str, Any]]]
) -> Rekeyed:
    """Count the missing specs whose key, with another cached provider/model (and the quality that
    came with a default model, or none), is in the cache."""
    from .pricing import estimate

    keys: set[str] = set()
    made_with: set[tuple[str, str | None]] = set()
    for key, fallback, meta in cache_entries:
        if fallback:
            continue
        keys.add(key)
        provider, model = meta.get("provider"), meta.get("model")
        if (
            isinstance(provider, str)
            and provider != "placeholder"
            and (model is None or isinstance(model, str))
        ):
            made_with.add((provider, model))
    result = Rekeyed()
    for spec in missing:
        for provider, model in made_with:
            if (provider, model) == (spec.provider, spec.model):
                continue
            found = False
            for quality in {spec.quality, None, "low"}:
                candidate = dataclasses.replace(spec, provider=provider, model=model, quality=quality)
                if candidate.key in keys:
                    found = True
                    break
            if found:
                result.count += 1
                result.was.add(f"{provider}/{model or '-'}")
                cost = estimate(spec)
                result.cost = None if cost is None or result.cost is None else result.cost + cost
                break
    return result


# -- in a build ------------------------------------------------------------------------------------


class BuildNotes:
    """The build's model notes, reported once at its end.

    `GET /models` is asked (once a day, a few seconds at most) only by a build that had to ask for
    images: a build served from the cache makes no request at all. A note is a warning (so
    `--strict` fails) only for a model this build asked images of; otherwise an info line, so a
    retired model never breaks a build that spends nothing.
    """

    def __init__(self, plugin_config: Any, cache_dir: str) -> None:
        self.plugin_config = plugin_config
        self.cache_dir = cache_dir
        self._said: set[str] = set()

    def report(
        self,
        every: list[ImageSpec],
        fresh: list[ImageSpec],
        cache: Any,
        log: Any,
        *,
        also_in_use: Iterable[Any] = (),
    ) -> None:
        """`also_in_use`: models of images served from the cache without a spec at hand."""
        if self.plugin_config["provider"] not in PAID:
            return
        asked = {s.model for s in fresh}
        in_use = [s.model for s in every] + [m for m in also_in_use if isinstance(m, str)]
        found = notes(self.plugin_config, self.cache_dir, in_use, ask_api=False)
        if fresh:
            listed = api_dates(self.plugin_config, self.cache_dir, timeout=3.0)
            if listed:
                found = _with_api(found, listed, self.plugin_config, in_use)
        for note in found:
            if note.text in self._said:
                continue
            self._said.add(note.text)
            (log.warning if note.model in asked else log.info)(note.text)
        unknown_text = unknown_note(unknown_models(in_use))
        if unknown_text and unknown_text not in self._said:
            self._said.add(unknown_text)
            log.info(unknown_text)
        if fresh:
            moved = rekeyed(fresh, cache.entries())
            if moved.summary():
                # Part of the summary, not a warning: changing the model is a choice, and the
                # spending guard (and the lock, where used) already holds what it would cost.
                log.info(moved.summary())


def _with_api(
    found: list[Note], listed: dict[str, str], plugin_config: Any, in_use: list[str | None]
) -> list[Note]:
    """The table's notes, with the API's own dates winning for the models it lists."""
    by_model = {n.model: n for n in found}
    base_url = endpoint(plugin_config)[0]
    today = datetime.date.today()
    for name in {m for m in in_use if m}:
        date = listed.get(name) or listed.get(models.base_name(name))
        if date:
            verb = "was shut down" if datetime.date.fromisoformat(date) <= today else "will be shut down"
            by_model[name] = Note(
                name, date, "api", f"model {name} {verb} on {date} (as {base_url}/models says)"
            )
    return [by_model[k] for k in sorted(by_model)]
