"""The canonical key, pinned: a change here re-keys (and re-bills) every user's images.

If this test fails, the key changed. If that was not the point, undo it. If it was, bump
`spec.SCHEMA_VERSION`, say why in the commit, and update the pins below.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from mkdocs_imagegen import spec
from mkdocs_imagegen.config import ImagegenConfig
from mkdocs_imagegen.runtime import settings_for
from mkdocs_imagegen.spec import PageInfo, RawDirective, resolve

# The directives of a page, as the Markdown extension hands them over (line, kind, body, attrs).
DIRECTIVES = [
    RawDirective("inline", 3, "a red fox in the snow", alt="A fox"),
    RawDirective(
        "block", 5, "prompt: A watercolor lighthouse at dusk\nsize: 1536 X 1024\nformat: jpg\nvariant: 2\n"
    ),
    RawDirective("inline", 12, "same prompt", alt="x", attrs='width="300"'),
    RawDirective(
        "block",
        14,
        # Written out as the page-level prompt_template of earlier versions made it (templates are
        # the site's alone now): the same final prompt, so the same pinned key.
        "prompt: flat icon of a gear, on Guide\nbackground: transparent\nformat: webp\noutput_compression: 80\n",
    ),
]

PINNED = {
    "placeholder": {
        3: "a2807e7500f8b4b65ea37097fe29aeb2",
        5: "a430ae3a4263aeea5b32cb382b921f53",
        12: "88d89b73a3b699b2a65da86e7538d6af",
        14: "b149233ff3d957ebf21185a52727a5dc",
    },
    "openai": {
        3: "bc1b978e9e773b3a07c50387758e3f74",
        5: "993a34ac8a647e6fe4254f2f5053cd3a",
        12: "d8305183b8284038ad83d6b08341275d",
        14: "a13672a7c30089f1116f95ec37e30e19",
    },
}


def config(**options: Any) -> ImagegenConfig:
    cfg = ImagegenConfig()
    cfg.load_dict(options)
    errors, _warnings = cfg.validate()
    assert not errors, errors
    return cfg


def keys(provider: str) -> dict[int, str]:
    # extra_body is set for both: the placeholder provider reads no body fields, so keys none.
    # The model is named: OpenAI's default changed to gpt-image-2 when gpt-image-1-mini was shut
    # down there (2026-12-01); a site that names gpt-image-1-mini keeps these very keys.
    model = {"model": "gpt-image-1-mini"} if provider == "openai" else {}
    settings = settings_for(
        config(provider=provider, quality="low", extra_body={"seed": 7}, **model), "/docs"
    )
    page = PageInfo(src_uri="guide/page.md", abs_path=None, title="Guide", meta={}, defaults={})
    found = {}
    for raw in DIRECTIVES:
        occurrence = resolve(raw, page, settings)
        assert occurrence.spec is not None, occurrence.error
        found[occurrence.line] = occurrence.spec.key
    return found


def test_the_schema_version_is_the_one_the_pins_were_made_with() -> None:
    assert spec.SCHEMA_VERSION == 1, "new schema: update PINNED below to the new keys, on purpose"


@pytest.mark.parametrize("provider", sorted(PINNED))
def test_keys_of_a_set_of_directives_are_pinned(provider: str) -> None:
    assert keys(provider) == PINNED[provider]


def test_the_canonical_form_is_pinned() -> None:
    """What goes into the hash, field by field."""
    settings = settings_for(
        config(provider="openai", model="gpt-image-1-mini", quality="low", extra_body={"seed": 7}), "/docs"
    )
    page = PageInfo(src_uri="guide/page.md", abs_path=None, title="Guide", meta={}, defaults={})
    occurrence = resolve(DIRECTIVES[1], page, settings)
    assert occurrence.spec is not None
    assert json.dumps(occurrence.spec.canonical(), sort_keys=True) == (
        '{"background": null, "extra": "{\\"seed\\":7}", "format": "jpeg", "inputs": [], '
        '"model": "gpt-image-1-mini", "output_compression": null, "prompt": "A watercolor lighthouse at dusk", '
        '"provider": "openai", "quality": "low", "schema": 1, "size": "1536x1024", "variant": "2"}'
    )


def test_what_does_not_decide_the_pixels_is_not_keyed() -> None:
    settings = settings_for(config(provider="openai"), "/docs")
    one = PageInfo(src_uri="a.md", abs_path=None, title="A", meta={}, defaults={})
    two = PageInfo(src_uri="deep/b.md", abs_path=None, title="B", meta={}, defaults={})
    first = resolve(RawDirective("inline", 1, "a fox", alt="Alt one"), one, settings)
    second = resolve(RawDirective("inline", 9, "a fox", alt="Other", attrs='width="30"'), two, settings)
    assert first.spec is not None and second.spec is not None
    assert first.spec.key == second.spec.key


def test_the_default_model_comes_from_the_provider_with_its_quality() -> None:
    """No model set: the provider's default model and the quality that comes with it (low)."""
    page = PageInfo(src_uri="a.md", abs_path=None, title="A", meta={}, defaults={})
    for provider, model in (("openai", "gpt-image-2"), ("lumenfall", "gpt-image-1-mini")):
        occurrence = resolve(DIRECTIVES[0], page, settings_for(config(provider=provider), "/docs"))
        assert occurrence.spec is not None
        assert (occurrence.spec.model, occurrence.spec.quality) == (model, "low")
    # A model set by hand takes no implied quality: setting `model:` alone changes no other field.
    named = settings_for(config(provider="openai", model="gpt-image-1-mini"), "/docs")
    occurrence = resolve(DIRECTIVES[0], page, named)
    assert occurrence.spec is not None and occurrence.spec.quality is None
