"""The one logger: MkDocs's plugin logger, so `mkdocs build --strict` sees every warning."""

from __future__ import annotations

from mkdocs.plugins import get_plugin_logger

log = get_plugin_logger("mkdocs_imagegen")
