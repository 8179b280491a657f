"""From a raw directive to an `ImageSpec` and its cache key: the single key path.

The plugin and the CLI both call `resolve()`; nothing else computes a key. The key hashes a
canonical form of everything that decides the pixels and nothing that does not (page paths, alt
text and captions are not in it), so the same directive on two pages is one image.
"""

from __future__ import annotations

import copy
import hashlib
import html
import json
import os
import re
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from types import FrameType
from typing import Any, Literal

import yaml
from jinja2 import TemplateError, meta
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from . import models, options
from .lock import intent_id
from .options import OptionError

# Bump when the canonical form or the meaning of a field changes: old entries then stop matching.
SCHEMA_VERSION = 1
MAX_SOURCE_BYTES = 50 * 1024 * 1024
_PIXELS = re.compile(r"^[0-9]{1,5}$")  # ASCII digits only: '²' is a digit to str.isdigit()
_ATTR_NAME = re.compile(r"^[A-Za-z_:][-\w:.]*$")  # what attr_list accepts as an attribute name


@dataclass(frozen=True)
class RawDirective:
    """One directive as the site's Markdown renderer met it, before its values are checked.

    `line` is the line of the directive in `source` (a snippet's file, say) or else in the page;
    `note` says where the text came from when no file holds it as written.
    """

    kind: Literal["block", "inline"]
    line: int
    body: str
    alt: str | None = None
    attrs: str | None = None
    error: str | None = None
    source: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class ImageSpec:
    """Everything that decides the pixels of one image."""

    provider: str
    model: str | None
    prompt: str
    size: str
    format: str
    quality: str | None = None
    background: str | None = None
    output_compression: int | None = None
    variant: str | None = None
    extra: str = ""  # canonical JSON of provider-specific body fields (a seed, say)
    # (role, sha256) of input bytes: an edit's source and mask today; another image's digest later.
    inputs: tuple[tuple[str, str], ...] = ()
    input_fidelity: str | None = None  # edits: "high" or "low"

    def canonical(self) -> dict[str, Any]:
        form = {
            "schema": SCHEMA_VERSION,
            "provider": self.provider,
            "model": self.model,
            "prompt": self.prompt,
            "size": self.size,
            "format": self.format,
            "quality": self.quality,
            "background": self.background,
            "output_compression": self.output_compression,
            "variant": self.variant,
            "extra": self.extra,
            "inputs": [list(pair) for pair in self.inputs],
        }
        # Newer fields are keyed only when set, so every key made before them stays as it was.
        if self.input_fidelity is not None:
            form["input_fidelity"] = self.input_fidelity
        return form

    @cached_property
    def key(self) -> str:
        blob = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    @property
    def dimensions(self) -> tuple[int, int] | None:
        return options.parse_size(self.size)

    @property
    def filename(self) -> str:
        return f"{self.key}.{'jpg' if self.format == 'jpeg' else self.format}"


@dataclass(frozen=True)
class Settings:
    """The site-wide part of resolution, built once from the plugin's config."""

    docs_dir: str
    provider: str
    defaults: dict[str, Any]  # DEFAULTABLE keys set in mkdocs.yml
    extra_body: dict[str, Any] = field(default_factory=dict)
    takes_model: bool = True  # False: the provider reads no model and no body fields, so neither is keyed
    # The provider's default model and the quality that comes with it (low), used only where no
    # model is set: a model set in mkdocs.yml, a page or a directive takes no implied quality.
    implied: dict[str, Any] = field(default_factory=dict)
    template: str | None = None  # prompt_template: from mkdocs.yml only, never from a page


@dataclass(frozen=True)
class PageInfo:
    """What resolution needs to know of a page; built the same way by plugin and CLI."""

    src_uri: str
    abs_path: str | None
    title: str
    meta: dict[str, Any]
    defaults: dict[str, Any]  # validated front matter `imagegen:` mapping
    defaults_error: str | None = None


@dataclass(frozen=True)
class Occurrence:
    """One directive on one page: the spec plus what is per-occurrence (alt, caption, attributes)."""

    page: str
    line: int
    raw: RawDirective
    spec: ImageSpec | None
    alt: str = ""
    caption: str | None = None
    attrs: tuple[tuple[str, str], ...] = ()
    moderation: str | None = None
    source_path: str | None = None
    mask_path: str | None = None
    error: str | None = None
    # What the writer asked for (the directive's own prompt and keys), apart from site defaults,
    # template and model: the image lock pins an image to it across re-keys.
    intent: str | None = None
    # True when the directive gave no alt text of its own, so `alt` is the prompt: a screen reader
    # would read out an instruction to an image model, not a description of the image.
    alt_defaulted: bool = False

    @property
    def where(self) -> str:
        """`page:line`, or the snippet's `file:line` and the page, or the page and what made the text."""
        if self.raw.source and self.raw.source != self.page:
            return f"{self.raw.source}:{self.line} (included in {self.page})"
        if self.raw.note:
            return f"{self.page}:{self.line} ({self.raw.note})"
        return f"{self.page}:{self.line}"

    @property
    def alt_problem(self) -> str | None:
        """Why this image's alt text fails a reader, or None when it does not."""
        if self.spec is None:
            return None
        if self.alt_defaulted:
            how = "inside the [brackets]" if self.raw.kind == "inline" else "as 'alt: ...' in the block"
            return (
                "image has no alt text, so a screen reader would read out its prompt: "
                f"describe the image {how} (or set alt_required: false)"
            )
        if not self.alt.strip():
            return (
                "image has empty alt text: describe the image for readers who cannot see it "
                "(or set alt_required: false)"
            )
        return None


def where(occurrences: Sequence[Occurrence]) -> str:
    """Where a key is used, for messages: its first directive, and how many more use it."""
    more = len(occurrences) - 1
    return occurrences[0].where + (f" (and {more} more)" if more else "")


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


MAX_TEMPLATE_OUTPUT = 4 * options.MAX_PROMPT_CHARS
_MAX_SEQUENCE = 100_000  # what one `*`, `+` or range() in a template may build


class _BoundedSandbox(SandboxedEnvironment):
    """Jinja2's sandbox, with the size of what one operation can build bounded too.

    The sandbox already refuses attribute tricks and caps range() at 100,000 items; a string
    multiplied by four billion, or `**` on big numbers, would still take the machine's memory.
    """

    intercepted_binops = frozenset({"*", "**", "+"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > 64:
            raise SecurityError("'**' with an exponent over 64 is not allowed in prompt_template")
        seqs = (str, list, tuple)
        too_long = (
            operator == "*"
            and any(
                isinstance(seq, seqs) and isinstance(times, int) and len(seq) * max(times, 0) > _MAX_SEQUENCE
                for seq, times in ((left, right), (right, left))
            )
        ) or (
            operator == "+"
            and isinstance(left, seqs)
            and isinstance(right, seqs)
            and len(left) + len(right) > _MAX_SEQUENCE
        )
        if too_long:
            raise SecurityError("a value built in prompt_template is too long")
        return super().call_binop(context, operator, left, right)


MAX_TEMPLATE_STEPS = 1_000_000  # lines a rendering may run: ample for a prompt, a second or so
MAX_TEMPLATE_SECONDS = 2.0
_budget = threading.local()
_runaway: dict[str, str] = {}


def _trace_calls(frame: FrameType, event: str, arg: Any) -> Any:
    """Trace only a template's own code (compiled under the name <template>), line by line."""
    return _trace_lines if frame.f_code.co_filename == "<template>" else None


def _trace_lines(frame: FrameType, event: str, arg: Any) -> Any:
    _budget.steps += 1
    if _budget.steps % 4096 == 0 and (
        _budget.steps > MAX_TEMPLATE_STEPS or time.monotonic() > _budget.deadline
    ):
        raise SecurityError(
            f"prompt_template ran longer than allowed ({MAX_TEMPLATE_STEPS} steps or "
            f"{MAX_TEMPLATE_SECONDS:g} s) for this directive"
        )
    return _trace_lines


_jinja = _BoundedSandbox(autoescape=False, keep_trailing_newline=False)


@lru_cache(maxsize=64)
def compile_template(source: str) -> Any:
    """Compile a prompt template; a template that never uses `{{ prompt }}` is refused."""
    if "prompt" not in meta.find_undeclared_variables(_jinja.parse(source)):
        raise TemplateError(
            "it never uses {{ prompt }}, so every image would get the same prompt; "
            'write it around the prompt, such as "{{ prompt }}, flat vector illustration"'
        )
    return _jinja.from_string(source)


def page_defaults(meta: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Validate a page's `imagegen:` front matter; return (defaults, error message)."""
    raw = meta.get("imagegen")
    if raw is None:
        return {}, None
    if not isinstance(raw, dict):
        return {}, "front matter 'imagegen' must be a mapping of defaults, such as 'size: 1536x1024'"
    defaults, problems = options.checked_mapping(raw, options.DEFAULTABLE)
    if problems:  # every problem at once: one message for the page, not one per directive
        return {}, f"front matter 'imagegen': {'; '.join(problems)}"
    return defaults, None


def resolve(raw: RawDirective, page: PageInfo, settings: Settings) -> Occurrence:
    """Turn a raw directive into an occurrence with its spec, or with an error that says how to fix it."""
    try:
        if raw.error:
            raise OptionError(raw.error)
        if page.defaults_error:
            raise OptionError(page.defaults_error)
        values, attrs = _directive_values(raw)
        return _build(raw, page, settings, values, attrs)
    except OptionError as exc:
        return Occurrence(page=page.src_uri, line=raw.line, raw=raw, spec=None, error=str(exc))


def _directive_values(raw: RawDirective) -> tuple[dict[str, Any], tuple[tuple[str, str], ...]]:
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
    return values, _block_attrs(raw.attrs, values)


def _block_attrs(info: str | None, values: dict[str, Any]) -> tuple[tuple[str, str], ...]:
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


def _build(
    raw: RawDirective,
    page: PageInfo,
    settings: Settings,
    values: dict[str, Any],
    attrs: tuple[tuple[str, str], ...],
) -> Occurrence:
    if "prompt" not in values:
        raise OptionError("the imagegen block has no 'prompt': add 'prompt: <what the image shows>'")
    explicit = {**settings.defaults, **page.defaults, **values}
    merged = {**settings.implied, **explicit} if "model" not in explicit else explicit
    user_prompt = merged["prompt"]
    template = settings.template
    if "source" in merged:
        # An edit's prompt is an instruction ("make the circle yellow"), not a picture to style:
        # the site's template (", flat vector illustration") would garble it.
        template = None
    prompt = _apply_template(template, user_prompt, page)

    inputs: list[tuple[str, str]] = []
    paths: dict[str, str] = {}
    for role in ("source", "mask"):
        if role in merged:
            path, digest = _input_file(merged[role], role, page, settings)
            inputs.append((role, digest))
            paths[role] = path
    if "mask" in paths and "source" not in paths:
        raise OptionError("'mask' needs a 'source' image to edit")

    spec = ImageSpec(
        provider=settings.provider,
        model=merged.get("model") if settings.takes_model else None,
        prompt=prompt,
        size=merged.get("size", "1024x1024"),
        format=merged.get("format", "png"),
        quality=merged.get("quality"),
        background=merged.get("background"),
        output_compression=merged.get("output_compression"),
        variant=merged.get("variant"),
        extra=json.dumps(settings.extra_body, sort_keys=True, separators=(",", ":"))
        if settings.takes_model and settings.extra_body
        else "",
        inputs=tuple(inputs),
        input_fidelity=merged.get("input_fidelity"),
    )
    if settings.takes_model:
        # What the model cannot do is this directive's error, before any request is made.
        models.check(
            spec.model,
            prompt=spec.prompt,
            size=spec.size,
            quality=spec.quality,
            background=spec.background,
            fmt=spec.format,
            output_compression=spec.output_compression,
            edit="source" in paths,
            input_fidelity=spec.input_fidelity,
            mask_path=paths.get("mask"),
            source_path=paths.get("source"),
        )
    return Occurrence(
        page=page.src_uri,
        line=raw.line,
        raw=raw,
        spec=spec,
        alt=merged.get("alt", user_prompt),
        alt_defaulted="alt" not in merged,
        caption=merged.get("caption"),
        attrs=attrs,
        moderation=merged.get("moderation"),
        source_path=paths.get("source"),
        mask_path=paths.get("mask"),
        intent=intent_id(values, inputs),
    )


def _apply_template(template: str | None, prompt: str, page: PageInfo) -> str:
    if not template:
        return prompt
    if template in _runaway:  # it ran out of time once: no other page gets to wait for it again
        raise OptionError(_runaway[template])
    page_vars = {"title": page.title, "meta": page.meta, "src_uri": page.src_uri}
    pieces: list[str] = []
    size = 0
    _budget.steps, _budget.deadline = 0, time.monotonic() + MAX_TEMPLATE_SECONDS
    previous = sys.gettrace()
    if previous is None:  # under a debugger or coverage, theirs stays and ours is skipped
        sys.settrace(_trace_calls)
    try:
        # Streamed, so output is bounded while it is made, not after.
        for piece in compile_template(template).generate(
            prompt=prompt, page=page_vars, title=page.title, meta=page.meta
        ):
            size += len(piece)
            if size > MAX_TEMPLATE_OUTPUT:
                raise OptionError(
                    f"prompt_template made more than {MAX_TEMPLATE_OUTPUT} characters for this directive"
                )
            pieces.append(piece)
    except OptionError:
        raise
    except SecurityError as exc:
        message = f"prompt_template failed: {exc}"
        if "ran longer" in str(exc):
            _runaway[template] = message
        raise OptionError(message) from None
    except (TemplateError, ArithmeticError, TypeError, ValueError, LookupError, RecursionError) as exc:
        # An include without a loader is a TypeError; every failure is the template's, not a crash.
        raise OptionError(f"prompt_template failed: {type(exc).__name__}: {exc}") from None
    except MemoryError:
        raise OptionError("prompt_template failed: it ran out of memory") from None
    finally:
        if previous is None:
            sys.settrace(None)
    return options.check_prompt("".join(pieces))


_verified_inputs: set[str] = set()  # digests of source/mask files already decoded once


def _input_file(value: str, role: str, page: PageInfo, settings: Settings) -> tuple[str, str]:
    """Find a `source:`/`mask:` file inside docs_dir and hash it; never read outside docs_dir."""
    if not value.strip():
        raise OptionError(f"{role} is empty: give a path relative to the page or to docs_dir")
    docs = os.path.realpath(settings.docs_dir)
    if value.startswith("/") and not value.startswith("//"):
        # Like MkDocs's `absolute_links: relative_to_docs`: '/img/a.png' is docs_dir/img/a.png.
        candidates = [os.path.join(docs, value.lstrip("/"))]
    elif os.path.isabs(value) or value.startswith("\\") or ":" in value.split("/")[0]:
        raise OptionError(
            f"{role} '{value}' is an absolute path: use a path relative to the page, or one that "
            "starts with / for docs_dir"
        )
    else:
        page_dir = os.path.dirname(os.path.join(docs, page.src_uri))
        candidates = [os.path.join(page_dir, value), os.path.join(docs, value)]
    for candidate in candidates:
        real = os.path.realpath(candidate)
        if os.path.commonpath([docs, real]) != docs:
            raise OptionError(
                f"{role} '{value}' leads outside docs_dir; images to edit must live in docs_dir"
            )
        if os.path.isfile(real):
            inside = os.path.relpath(real, docs).replace(os.sep, "/").split("/")
            named = os.path.normpath(value).replace(os.sep, "/").split("/")
            if any(part.startswith(".") and part not in (".", "..") for part in inside + named):
                raise OptionError(
                    f"{role} '{value}' is a file MkDocs leaves out of the site (a name starting with '.'); "
                    "images to edit must be ordinary files of docs_dir"
                )
            size = os.path.getsize(real)
            if size > MAX_SOURCE_BYTES:
                raise OptionError(f"{role} '{value}' is {size} bytes, over the {MAX_SOURCE_BYTES}-byte limit")
            with open(real, "rb") as fh:
                data = fh.read(MAX_SOURCE_BYTES + 1)
            digest = hashlib.sha256(data).hexdigest()
            if digest not in _verified_inputs:
                from . import imaging

                try:
                    imaging.inspect(data)
                except imaging.ImageError as exc:
                    raise OptionError(
                        f"{role} '{value}' is not a PNG, JPEG or WebP image ({exc}); nothing was sent"
                    ) from None
                _verified_inputs.add(digest)
            return real, digest
    if value.startswith("/"):
        raise OptionError(
            f"{role} '{value}' not found in docs_dir (a path that starts with / is in docs_dir)"
        )
    raise OptionError(f"{role} '{value}' not found next to the page or in docs_dir")


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
        elif _ATTR_NAME.match(name):
            out.append((name, name if value is None else value))
    if classes:
        out.insert(0, ("class", " ".join(c for c in classes if c)))
    return tuple(out)
