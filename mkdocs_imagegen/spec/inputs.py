"""An edit's `source:` and `mask:` files: found inside docs_dir only, bounded, hashed, verified once."""

from __future__ import annotations

import hashlib
import os

from ..files import within
from ..options import OptionError

MAX_SOURCE_BYTES = 50 * 1024 * 1024

_verified_inputs: set[str] = set()  # digests of source/mask files already decoded once


def input_file(value: str, role: str, docs_dir: str, src_uri: str) -> tuple[str, str]:
    """Find a `source:`/`mask:` file inside docs_dir and hash it; never read outside docs_dir."""
    if not value.strip():
        raise OptionError(f"{role} is empty: give a path relative to the page or to docs_dir")
    docs = os.path.realpath(docs_dir)
    if value.startswith("/") and not value.startswith("//"):
        # Like MkDocs's `absolute_links: relative_to_docs`: '/img/a.png' is docs_dir/img/a.png.
        candidates = [os.path.join(docs, value.lstrip("/"))]
    elif os.path.isabs(value) or value.startswith("\\") or ":" in value.split("/")[0]:
        raise OptionError(
            f"{role} '{value}' is an absolute path: use a path relative to the page, or one that "
            "starts with / for docs_dir"
        )
    else:
        page_dir = os.path.dirname(os.path.join(docs, src_uri))
        candidates = [os.path.join(page_dir, value), os.path.join(docs, value)]
    for candidate in candidates:
        real = os.path.realpath(candidate)
        if not within(docs, real):
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
                from .. import imaging

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
