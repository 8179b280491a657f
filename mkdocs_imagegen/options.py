"""The vocabulary of image options, shared by mkdocs.yml, page front matter and directives.

One table decides which keys exist and how each value is checked, so that the plugin's config,
a page's `imagegen:` front matter and a fenced directive can never disagree about a value.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Any

FORMATS = ("png", "webp", "jpeg")
QUALITIES = ("low", "medium", "high", "auto", "standard", "hd")
BACKGROUNDS = ("transparent", "opaque", "auto")
MODERATIONS = ("auto", "low")
MAX_PROMPT_CHARS = 32_000
MIN_SIDE, MAX_SIDE = 16, 4096

ATTR_NAME = re.compile(r"^[A-Za-z_:][-\w:.]*$")  # what attr_list accepts as an attribute name
_SIZE = re.compile(r"^\s*(\d{1,5})\s*[xX×]\s*(\d{1,5})\s*$")


class OptionError(ValueError):
    """A user mistake in an option value; the message says what is wrong and how to fix it."""


def check_size(value: Any) -> str:
    """Normalise `WIDTHxHEIGHT` (or `auto`), so `800 X 400` and `800x400` share a cache key."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    m = _SIZE.match(value) if isinstance(value, str) else None
    if not m:
        raise OptionError(f"size must look like 1024x1024 (WIDTHxHEIGHT) or 'auto', not {value!r}")
    width, height = int(m[1]), int(m[2])
    for side in (width, height):
        if not MIN_SIDE <= side <= MAX_SIDE:
            raise OptionError(f"size {value!r}: each side must be between {MIN_SIDE} and {MAX_SIDE} pixels")
    return f"{width}x{height}"


def parse_size(size: str) -> tuple[int, int] | None:
    """(width, height) of a normalised size, or None for 'auto'."""
    if size == "auto":
        return None
    w, h = size.split("x")
    return int(w), int(h)


def _choice(
    name: str, choices: tuple[str, ...], aliases: dict[str, str] | None = None
) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = str(value).strip().lower() if isinstance(value, str) else value
        text = (aliases or {}).get(text, text)
        if text not in choices:
            raise OptionError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
        return text

    return check


check_format = _choice("format", FORMATS, {"jpg": "jpeg"})
check_quality = _choice("quality", QUALITIES)
check_background = _choice("background", BACKGROUNDS)
check_moderation = _choice("moderation", MODERATIONS)


def check_text(name: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise OptionError(f"{name} must be text, not {type(value).__name__} ({_short(value)})")
        return value

    return check


def check_prompt(value: Any) -> str:
    if not isinstance(value, str):
        raise OptionError(
            f"prompt must be text, not {type(value).__name__} ({_short(value)}); "
            "quote it if it looks like YAML"
        )
    text = " ".join(value.split())
    if not text:
        raise OptionError("the prompt is empty: write what the image should show")
    if len(text) > MAX_PROMPT_CHARS:
        raise OptionError(f"the prompt has {len(text)} characters, over the limit of {MAX_PROMPT_CHARS}")
    return text


def check_variant(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise OptionError(f"variant must be a string or a number, not {type(value).__name__}")
    return str(value)


def check_compression(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise OptionError(f"output_compression must be a whole number from 0 to 100, not {value!r}")
    return value


def check_display_side(name: str) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100_000:
            raise OptionError(
                f"{name} is the displayed {name} in pixels, a whole number such as 300, not {value!r}"
            )
        return value

    return check


def check_attrs(value: Any) -> dict[str, str]:
    """Extra HTML attributes for the image: names as attr_list accepts them, plain values."""
    if not isinstance(value, dict):
        raise OptionError(f"attrs must be a mapping such as {{loading: eager}}, not {type(value).__name__}")
    out: dict[str, str] = {}
    for name, item in value.items():
        if not isinstance(name, str) or not ATTR_NAME.match(name) or name.lower().startswith("on"):
            raise OptionError(f"attrs: {name!r} is not an attribute name this plugin writes")
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise OptionError(f"attrs: {name} must be text or a number, not {type(item).__name__}")
        out[name] = str(item)
    return out


def check_model(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise OptionError(f"model must be a model name such as gpt-image-1-mini, not {value!r}")
    return value.strip()


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# Keys a page's front matter (and mkdocs.yml) may set as defaults for its directives.
DEFAULTABLE: dict[str, Callable[[Any], Any]] = {
    "size": check_size,
    "quality": check_quality,
    "background": check_background,
    "format": check_format,
    "model": check_model,
    "variant": check_variant,
    "output_compression": check_compression,
    "moderation": check_moderation,
}

# Keys only mkdocs.yml may set: a template is code, and a page (a pull request that edits only
# Markdown) must not run code at build time.
SITE_ONLY: dict[str, str] = {
    "prompt_template": (
        "prompt_template can only be set in mkdocs.yml (a template is code, and pages must not run "
        "code at build time); remove it here and set it under the plugin in mkdocs.yml"
    ),
}

# Keys only a directive may carry: they describe one image, not a page's style.
DIRECTIVE_ONLY: dict[str, Callable[[Any], Any]] = {
    "prompt": check_prompt,
    "alt": check_text("alt"),
    "caption": check_text("caption"),
    "source": check_text("source"),
    "mask": check_text("mask"),
    # How closely an edit keeps the source's features (faces, logos); edits only, some models only.
    "input_fidelity": _choice("input_fidelity", ("high", "low")),
    # How the image is shown (not part of the key): the fenced block's counterpart of an inline
    # image's attribute list. A display width alone lets the height follow the aspect ratio.
    "width": check_display_side("width"),
    "height": check_display_side("height"),
    "class": check_text("class"),
    "id": check_text("id"),
    "attrs": check_attrs,
}

DIRECTIVE_KEYS: dict[str, Callable[[Any], Any]] = {**DIRECTIVE_ONLY, **DEFAULTABLE}


def unknown_key_message(key: Any, known: dict[str, Any]) -> str:
    """Name the nearest known key, because most unknown keys are typos."""
    close = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(sorted(known))}"
    return f"unknown key '{key}'{hint}"


def check_mapping(values: dict[Any, Any], known: dict[str, Callable[[Any], Any]]) -> dict[str, Any]:
    """Validate every key and value of a mapping; raise naming every problem at once."""
    out, problems = checked_mapping(values, known)
    if problems:
        raise OptionError("; ".join(problems))
    return out


def checked_mapping(
    values: dict[Any, Any], known: dict[str, Callable[[Any], Any]]
) -> tuple[dict[str, Any], list[str]]:
    """The valid part of a mapping, and one message for each problem of the rest."""
    out: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in values.items():
        if key in SITE_ONLY:
            problems.append(SITE_ONLY[key])
            continue
        if key not in known:
            problems.append(unknown_key_message(key, known))
            continue
        if value is None:
            if key == "prompt":
                problems.append("the prompt is empty: write what the image should show after 'prompt:'")
            continue
        try:
            out[key] = known[key](value)
        except OptionError as exc:
            problems.append(str(exc))
    return out, problems
