"""From a raw directive to an `ImageSpec` and its cache key: the single key path.

The plugin and the CLI both call `resolve()`; nothing else computes a key. The key hashes a
canonical form of everything that decides the pixels and nothing that does not (page paths, alt
text and captions are not in it), so the same directive on two pages is one image.

`imagespec` is the spec and its key, `directive` the data passed along (directive, page,
occurrence), `parse` reads a directive's YAML and attributes, `template` runs the site's
prompt template, `inputs` finds an edit's files, and `resolution` strings them together.
"""

from __future__ import annotations

from .directive import Occurrence, PageInfo, RawDirective, where
from .imagespec import SCHEMA_VERSION, ImageSpec
from .inputs import MAX_SOURCE_BYTES
from .parse import load_yaml, parse_attrs
from .resolution import Settings, page_defaults, resolve
from .template import MAX_TEMPLATE_OUTPUT, MAX_TEMPLATE_SECONDS, MAX_TEMPLATE_STEPS, compile_template

__all__ = [
    "MAX_SOURCE_BYTES",
    "MAX_TEMPLATE_OUTPUT",
    "MAX_TEMPLATE_SECONDS",
    "MAX_TEMPLATE_STEPS",
    "SCHEMA_VERSION",
    "ImageSpec",
    "Occurrence",
    "PageInfo",
    "RawDirective",
    "Settings",
    "compile_template",
    "load_yaml",
    "page_defaults",
    "parse_attrs",
    "resolve",
    "where",
]
