"""A directive's text to checked values: its YAML body (safely, no aliases) and its attribute lists."""

from __future__ import annotations

import copy
import html
import re
from functools import lru_cache
from typing import Any

import yaml

from .. import options
from ..options import OptionError
from .directive import RawDirective

_PIXELS = re.compile(r"^[0-9]{1,5}$")  # ASCII digits only: '²' is a digit to str.isdigit()


class _NoAliasLoader(yaml.SafeLoader):
    """Safe loading without anchors and aliases, which can expand exponentially."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            # Marked like any other YAML error, so the message names the page's line.
            raise yaml.MarkedYAMLError(
                problem="YAML aliases are not allowed here", problem_mark=event.start_mark
            )
        return super().compose_node(parent, index)


_FastLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@lru_cache(maxsize=4096)
def _load_yaml(text: str) -> Any:
    # No '&' and no '*': no anchor or alias can be there, so libyaml's fast safe loader may read
    # it; otherwise the pure-Python loader that refuses aliases does.
    loader = _FastLoader if "&" not in text and "*" not in text else _NoAliasLoader
    return yaml.load(text, Loader=loader)  # both are safe loaders


def load_yaml(text: str) -> Any:
    """Safe YAML without aliases; a fresh copy each call, since callers may change the result."""
    return copy.deepcopy(_load_yaml(text))


def directive_values(raw: RawDirective) -> tuple[dict[str, Any], tuple[tuple[str, str], ...]]:
    """The checked keys of an inline image or a fenced block, and its HTML attributes."""
    if raw.kind == "inline":
        values: dict[str, Any] = {"prompt": raw.body}
        if raw.alt:
            # The renderer has already undone Markdown escapes; `Fish &amp; chips` means '&'.
            values["alt"] = html.unescape(raw.alt)
        return options.check_mapping(values, options.DIRECTIVE_KEYS), parse_attrs(raw.attrs)
    try:
        data = load_yaml(raw.body) if raw.body.strip() else None
    except yaml.YAMLError as exc:
        # Every kind of YAML error with a position names the page's line, not the block's.
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" (line {raw.line + 1 + mark.line})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise OptionError(f"the imagegen block is not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise OptionError("the imagegen block is nested too deeply to be a directive") from None
    if data is None:
        raise OptionError("the imagegen block is empty: write at least 'prompt: <what the image shows>'")
    if not isinstance(data, dict):
        data = {"prompt": raw.body}
    values = options.check_mapping(data, options.DIRECTIVE_KEYS)
    return values, block_attrs(raw.attrs, values)


def block_attrs(info: str | None, values: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """A fenced block's attributes: the fence's attribute list, then `attrs:`, `class:`, `id:`,
    `width:` and `height:` (the later wins, classes add up)."""
    merged = dict(parse_attrs(info))
    classes = [merged.pop("class", "")]
    extra = dict(values.get("attrs") or {})
    classes.append(extra.pop("class", ""))
    merged.update(extra)
    classes.append(values.get("class", ""))
    for name in ("id", "width", "height"):
        if name in values:
            merged[name] = str(values[name])
    joined = " ".join(" ".join(classes).split())
    head: tuple[tuple[str, str], ...] = (("class", joined),) if joined else ()
    return head + tuple(merged.items())


def parse_attrs(text: str | None) -> tuple[tuple[str, str], ...]:
    """Read an attribute list `{ #id .class key="value" }` with attr_list's own parser."""
    from markdown.extensions.attr_list import get_attrs_and_remainder

    text = (text or "").strip()
    if text.startswith(":"):  # `{: .center }`, attr_list's older spelling
        text = text[1:]
    if not text.strip():
        return ()
    out: list[tuple[str, str]] = []
    classes: list[str] = []
    for name, value in get_attrs_and_remainder(text.strip())[0]:
        if name in ("width", "height") and not _PIXELS.match(value or ""):
            raise OptionError(
                f"{name}={(value or '')[:20]!r} in the attribute list must be a whole number of pixels, "
                f'such as {name}="300"'
            )
        if name == ".":
            classes.append(value or "")
        elif name == "class":
            classes.extend((value or "").split())
        elif options.ATTR_NAME.match(name):
            out.append((name, name if value is None else value))
    if classes:
        out.insert(0, ("class", " ".join(c for c in classes if c)))
    return tuple(out)
