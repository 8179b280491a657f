"""From a raw directive to an `Occurrence` with its `ImageSpec`: the single key path.

Defaults stack site, then page, then directive; the template, the edit's files and the model's
own limits are applied here, and every user mistake becomes the occurrence's error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .. import models, options
from ..lock import intent_id
from ..options import OptionError
from .directive import Occurrence, PageInfo, RawDirective
from .imagespec import ImageSpec
from .inputs import input_file
from .parse import directive_values
from .template import apply_template


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
        values, attrs = directive_values(raw)
        return _build(raw, page, settings, values, attrs)
    except OptionError as exc:
        return Occurrence(page=page.src_uri, line=raw.line, raw=raw, spec=None, error=str(exc))


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
    prompt = apply_template(template, user_prompt, page)

    inputs: list[tuple[str, str]] = []
    paths: dict[str, str] = {}
    for role in ("source", "mask"):
        if role in merged:
            path, digest = input_file(merged[role], role, settings.docs_dir, page.src_uri)
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
