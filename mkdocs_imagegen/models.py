"""The questions every model-dependent part asks of the model table (`model_table`).

The per-directive check (a directive the model cannot do is a page:line error before any request),
the request fields (only what the model accepts) and the lifecycle warnings; the size asked of the
API and the price estimate are the table entry's own (`Model.api_size`, `Model.price`).

A model that is not in the table (a gateway's own) is sent as written, unchecked, at "cost unknown".
"""

from __future__ import annotations

import datetime
import re

from .model_table import AS_OF as AS_OF
from .model_table import MODELS as MODELS
from .model_table import SQUARE as SQUARE
from .model_table import FreeSize as FreeSize
from .model_table import Model as Model
from .options import OptionError

_SNAPSHOT = re.compile(r"^(?P<base>.+?)-\d{4}-\d{2}-\d{2}$")


def base_name(model: str | None) -> str:
    """`openai/gpt-image-1-mini` (a gateway's name) -> `gpt-image-1-mini`."""
    return (model or "").strip().lower().rsplit("/", 1)[-1]


def find(model: str | None) -> Model | None:
    """The table's entry for a model name: gateway prefixes and dated snapshots included."""
    name = base_name(model)
    if name in MODELS:
        return MODELS[name]
    m = _SNAPSHOT.match(name)
    if m and m["base"] in MODELS:
        return MODELS[m["base"]]
    return None


def _choices(values: tuple[str, ...]) -> str:
    return ", ".join(values) if values else "none"


def check(
    model_name: str | None,
    *,
    prompt: str,
    size: str,
    quality: str | None,
    background: str | None,
    fmt: str,
    output_compression: int | None,
    edit: bool,
    input_fidelity: str | None = None,
    mask_path: str | None = None,
    source_path: str | None = None,
) -> Model | None:
    """Raise OptionError for what the model cannot do, naming what it supports; None when unknown."""
    model = find(model_name)
    # Model-independent rules of the Images API.
    if background == "transparent" and fmt == "jpeg":
        raise OptionError("background 'transparent' needs format png or webp: JPEG has no transparency")
    if output_compression is not None and fmt == "png":
        raise OptionError(
            "output_compression applies to webp and jpeg only; drop it or set format: webp or jpeg"
        )
    if input_fidelity is not None and not edit:
        raise OptionError("input_fidelity applies to edits only: add a source: image, or drop it")
    if model is None:
        return None
    name = model_name
    if edit and not model.edits:
        raise OptionError(f"model {name} cannot edit images (source:); use gpt-image-2 or drop source:")
    if len(prompt) > model.prompt_max:
        raise OptionError(
            f"the prompt has {len(prompt)} characters; model {name} takes at most {model.prompt_max}"
        )
    if size == "auto" and not model.size_auto:
        raise OptionError(f"model {name} has no size 'auto'; it takes {model.describe_sizes()}")
    if quality is not None:
        allowed = model.edit_qualities if edit else model.qualities
        if quality not in allowed:
            where = " on edits" if edit else ""
            raise OptionError(f"model {name} takes quality {_choices(allowed)}{where}, not '{quality}'")
    if background is not None and background not in model.backgrounds:
        raise OptionError(f"model {name} takes background {_choices(model.backgrounds)}, not '{background}'")
    if input_fidelity is not None and not model.input_fidelity:
        takes = ", ".join(m.name for m in MODELS.values() if m.input_fidelity)
        raise OptionError(f"model {name} takes no input_fidelity ({takes} do)")
    if edit and mask_path:
        _check_mask(name or "", model, mask_path, source_path)
    return model


def _check_mask(name: str, model: Model, mask_path: str, source_path: str | None) -> None:
    """The mask must be a PNG of the source image's dimensions (the edit schema's rule)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(mask_path) as mask:
            mask_format, mask_size = mask.format, mask.size
        source_size = None
        if source_path:
            with Image.open(source_path) as source:
                source_size = source.size
    except (OSError, UnidentifiedImageError):
        raise OptionError("the mask (or the source) is not a readable image") from None
    if mask_format != "PNG":
        raise OptionError(f"the mask must be a PNG (with an alpha channel), not {mask_format or 'this file'}")
    if source_size is not None and mask_size != source_size:
        raise OptionError(
            f"the mask is {mask_size[0]}x{mask_size[1]} but the source is {source_size[0]}x{source_size[1]}: "
            "the mask must have the image's dimensions"
        )


def request_fields(
    model: Model | None,
    *,
    size: str,
    quality: str | None,
    background: str | None,
    fmt: str,
    output_compression: int | None,
    moderation: str | None,
    edit: bool,
    input_fidelity: str | None = None,
) -> dict[str, object]:
    """The optional request fields, only those the model (and the endpoint) accept."""
    if model is None:  # unknown: send what was asked, as written
        fields: dict[str, object] = {
            "size": size,
            "quality": quality,
            "background": background,
            "output_format": fmt,
            "output_compression": output_compression,
            "moderation": None if edit else moderation,
            "input_fidelity": input_fidelity if edit else None,
        }
        return {k: v for k, v in fields.items() if v is not None}
    fields = {"size": model.api_size(size), "quality": quality}
    if model.backgrounds:
        fields["background"] = background
    if model.output_format:
        fields["output_format"] = fmt
        if fmt != "png":
            fields["output_compression"] = output_compression
    else:
        # DALL·E answers with a URL unless asked otherwise; the plugin re-encodes to `format`.
        fields["response_format"] = "b64_json"
    if model.moderation and not edit:
        fields["moderation"] = moderation
    if edit and model.input_fidelity:
        fields["input_fidelity"] = input_fidelity
    return {k: v for k, v in fields.items() if v is not None}


def lifecycle_note(model_name: str | None, provider: str, today: datetime.date | None = None) -> str | None:
    """A warning for a configured model with a shutdown date at OpenAI, or None."""
    model = find(model_name)
    if model is None or not model.shutdown:
        return None
    if provider == "lumenfall":
        return None  # OpenAI's dates are not Lumenfall's; its own come from its model list
    verb = "was shut down" if model.retired(today) else "will be shut down"
    text = f"model {model_name} {verb} at OpenAI on {model.shutdown}"
    if model.replacement:
        text += f"; replacement: {model.replacement}"
    if model.lumenfall:
        text += "; Lumenfall still serves it (provider: lumenfall)"
    return text
