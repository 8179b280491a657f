"""mkdocs-imagegen: image-prompt directives in Markdown become cached images at build time."""

from __future__ import annotations

__version__ = "0.1.0"
