"""Per-model request validation for the fake API: what the real API would refuse, it refuses."""

from __future__ import annotations

import io
import re
from typing import Any

from PIL import Image

from .script import FilePart, _BadRequest

_SIZE_RE = re.compile(r"^(\d{1,5})x(\d{1,5})$")

# What each model accepts, written from the OpenAPI spec (openai/openai-openapi, API 2.3.0) and
# Lumenfall's docs, independently of the plugin's own table so that the two check each other.
_GPT_SIZES = {"1024x1024", "1536x1024", "1024x1536", "auto"}
_GPT_QUALITIES = {"low", "medium", "high", "auto"}
_EDIT_QUALITIES = {"standard", "low", "medium", "high", "auto"}
_MODEL_RULES: dict[str, dict[str, Any]] = {
    "gpt-image-1-mini": {"sizes": _GPT_SIZES, "fidelity": False},
    "gpt-image-1": {"sizes": _GPT_SIZES, "fidelity": True},
    "gpt-image-1.5": {"sizes": _GPT_SIZES, "fidelity": True},
    "chatgpt-image-latest": {"sizes": _GPT_SIZES, "fidelity": True},
    "gpt-image-2": {"sizes": None, "fidelity": False, "no_transparent": True},
    "gpt-image-2.6-sunburst": {"sizes": None, "fidelity": False, "no_transparent": True},
    "gpt-image-2.6-flare": {"sizes": None, "fidelity": False, "no_transparent": True},
    "dall-e-2": {"sizes": {"256x256", "512x512", "1024x1024"}, "dalle": True, "prompt": 1000},
    "dall-e-3": {"sizes": {"1024x1024", "1792x1024", "1024x1792"}, "dalle": True, "prompt": 4000},
}
_SNAPSHOT_RE = re.compile(r"^(.+?)-\d{4}-\d{2}-\d{2}$")


def _rules_for(model: Any) -> dict[str, Any] | None:
    name = str(model or "").lower().rsplit("/", 1)[-1]
    if name in _MODEL_RULES:
        return _MODEL_RULES[name]
    m = _SNAPSHOT_RE.match(name)
    return _MODEL_RULES.get(m.group(1)) if m else None


def _free_size_ok(size: str) -> bool:
    if size == "auto":
        return True
    m = _SIZE_RE.match(size)
    if not m:
        return False
    w, h = int(m.group(1)), int(m.group(2))
    return (
        w % 16 == 0
        and h % 16 == 0
        and max(w, h) <= 3840
        and w * h <= 3840 * 2160
        and max(w, h) / min(w, h) <= 3
    )


def validate_request(
    params: dict[str, Any], endpoint: str, parts: list[FilePart], flavour: str = "openai"
) -> None:
    """Raise _BadRequest where the spec (or Lumenfall's docs) would refuse this request."""
    rules = _rules_for(params.get("model"))
    if rules is None:
        return  # a gateway's own model: not ours to judge
    model = str(params.get("model"))
    dalle = rules.get("dalle", False)
    prompt = str(params.get("prompt") or "")
    limit = rules.get("prompt", 32000)
    if len(prompt) > limit:
        raise _BadRequest(
            f"Invalid 'prompt': string too long. Expected at most {limit} characters.", "prompt"
        )
    if endpoint == "edits" and model.endswith("dall-e-3"):
        raise _BadRequest("dall-e-3 does not support image edits.", "model")
    size = str(params.get("size") or ("1024x1024" if dalle else "auto"))  # the spec's defaults
    if rules["sizes"] is None:
        if not _free_size_ok(size):
            raise _BadRequest(f"Invalid size '{size}' for {model}.", "size")
    elif size not in rules["sizes"]:
        raise _BadRequest(f"Invalid value: '{size}'. Supported values are: {sorted(rules['sizes'])}.", "size")
    quality = params.get("quality")
    if quality is not None:
        if endpoint == "edits":
            allowed = {"standard"} if dalle else _EDIT_QUALITIES
        elif model.endswith("dall-e-3"):
            allowed = {"standard", "hd", "auto"}
        elif dalle:
            allowed = {"standard"}
        else:
            allowed = _GPT_QUALITIES
        if quality not in allowed:
            raise _BadRequest(
                f"Invalid value: '{quality}'. Supported values are: {sorted(allowed)}.", "quality"
            )
    gpt_only = ("background", "output_format", "output_compression", "moderation")
    for name in gpt_only:
        if dalle and params.get(name) is not None:
            raise _BadRequest(f"Unknown parameter: '{name}' is not supported for {model}.", name)
    if endpoint == "edits" and params.get("moderation") is not None:
        raise _BadRequest("Unknown parameter: 'moderation'.", "moderation")
    if not dalle and params.get("response_format") is not None and flavour != "lumenfall":
        raise _BadRequest(
            f"Unknown parameter: 'response_format' is not supported for {model}.", "response_format"
        )
    fmt = str(params.get("output_format") or "png")
    if params.get("background") == "transparent":
        if rules.get("no_transparent"):
            raise _BadRequest(f"Transparent background is not supported for {model}.", "background")
        if fmt == "jpeg":
            raise _BadRequest("Transparent background requires output_format png or webp.", "background")
    if params.get("output_compression") is not None and fmt == "png":
        raise _BadRequest("output_compression is only supported for jpeg and webp.", "output_compression")
    if params.get("input_fidelity") is not None and not rules.get("fidelity"):
        raise _BadRequest(f"input_fidelity is not supported for {model}.", "input_fidelity")
    images = [p for p in parts if p.name in ("image", "image[]")]
    if endpoint == "edits":
        if len(images) > (1 if dalle else 16):
            raise _BadRequest("Too many images.", "image")
        masks = [p for p in parts if p.name == "mask"]
        if masks and images:
            try:
                with (
                    Image.open(io.BytesIO(masks[0].data)) as mask,
                    Image.open(io.BytesIO(images[0].data)) as img,
                ):
                    if mask.format != "PNG":
                        raise _BadRequest("Invalid mask: must be a PNG file.", "mask")
                    if mask.size != img.size:
                        raise _BadRequest("Invalid mask: must have the same dimensions as image.", "mask")
            except OSError:
                raise _BadRequest("Invalid image file.", "image") from None
