"""The request an image spec becomes: only the fields the model and the endpoint accept.

Which fields a model takes is the model table's (`models.request_fields`); here they are put
together with the prompt, `extra_body` and, for an edit, the multipart form and its files.
"""

from __future__ import annotations

import json
import os
from typing import Any

from .. import models
from ..spec import ImageSpec
from . import GenerationRequest

Files = dict[str, tuple[str, bytes, str]]


def api_size(spec: ImageSpec) -> str:
    """The size asked of the API: as written where the model takes it, else the nearest it takes."""
    model = models.find(spec.model)
    return spec.size if model is None else model.api_size(spec.size)


def request_body(request: GenerationRequest, *, extra_body: dict[str, Any], provider: str) -> dict[str, Any]:
    """Only what the model and the endpoint accept (models.request_fields)."""
    spec = request.spec
    body: dict[str, Any] = {**extra_body, "model": spec.model, "prompt": spec.prompt, "n": 1}
    body.update(
        models.request_fields(
            models.find(spec.model),
            size=spec.size,
            quality=spec.quality,
            background=spec.background,
            fmt=spec.format,
            output_compression=spec.output_compression,
            moderation=request.moderation,
            edit=bool(request.source_path),
            input_fidelity=spec.input_fidelity,
        )
    )
    if provider == "lumenfall" and "response_format" not in body:
        body["response_format"] = "b64_json"  # Lumenfall may answer with a URL otherwise
    return body


def form_fields(body: dict[str, Any]) -> dict[str, str]:
    """The body as multipart form fields: an edit's fields are text, anything else JSON."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}


def edit_files(request: GenerationRequest) -> Files:
    """An edit's source image and mask, as multipart files."""
    files = {}
    for field_name, path in (("image", request.source_path), ("mask", request.mask_path)):
        if path:
            with open(path, "rb") as fh:
                data = fh.read()
            files[field_name] = (os.path.basename(path), data, _mime(path))
    return files


def _mime(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    return {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}.get(
        ext, "application/octet-stream"
    )
