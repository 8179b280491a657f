"""The command's small parts on their own: the formatters, the shared options, the spending caps."""

from __future__ import annotations

from typing import Any

import click
import pytest

from mkdocs_imagegen.cli.make import cap
from mkdocs_imagegen.cli.options import making_options
from mkdocs_imagegen.cli.site import Image, Site
from mkdocs_imagegen.cli.text import clip, duration, estimated, human, model_label
from mkdocs_imagegen.config import ImagegenConfig
from mkdocs_imagegen.spec import ImageSpec


def test_the_formatters() -> None:
    assert [human(n) for n in (999, 1000, 2_500_000, 3_000_000_000)] == [
        "999 bytes",
        "1.0 kB",
        "2.5 MB",
        "3.0 GB",
    ]
    assert [duration(s) for s in (89, 600, 7200)] == ["89 s", "10 min", "2.0 h"]
    assert clip("x" * 60) == "x" * 60 and clip("x" * 61) == "x" * 59 + "…"
    assert estimated(None) == "cost unknown" and estimated(0.088) == "estimated cost $0.088"
    assert model_label("openai", "gpt-image-2") == "openai/gpt-image-2"
    assert model_label("lumenfall", "Lumenfall/flux") == "Lumenfall/flux"
    assert model_label("placeholder", None) == "placeholder/-"


def test_the_shared_options_keep_their_order() -> None:
    @click.command()
    @making_options(dry_run="d", max_new_images="m", force=True)
    def with_force(**_: Any) -> None: ...

    @click.command()
    @making_options(dry_run="d", max_new_images="m")
    def without(**_: Any) -> None: ...

    assert [p.name for p in with_force.params] == [
        "config_file",
        "dry_run",
        "force",
        "only",
        "max_new_images",
    ]
    assert [p.name for p in without.params] == ["config_file", "dry_run", "only", "max_new_images"]


def site(**options: Any) -> Site:
    config = ImagegenConfig()
    config.load_dict({"provider": "openai", **options})
    errors, _warnings = config.validate()
    assert not errors, errors
    return Site(config=None, plugin_config=config, cache_dir="", frozen=False, occurrences=[])


def image(n: int, **fields: Any) -> Image:
    spec = ImageSpec(
        provider="openai",
        model="gpt-image-1-mini",
        prompt=f"p{n}",
        size="1024x1024",
        format="png",
        quality="low",
    )
    return Image(spec, **fields)


@pytest.mark.parametrize(("new", "todo", "held"), [(None, 3, 0), (2, 2, 1), (0, 0, 3)])
def test_max_new_images_holds_back_the_last(new: int | None, todo: int, held: int) -> None:
    images = [image(n) for n in range(3)]
    capped = cap(site(), images, force=False, max_new_images=new, regenerate=False)
    assert (capped.todo, capped.held) == (images[:todo], images[todo:])
    assert (f"{held} held back by max_new_images" in capped.held_back) == bool(held)


def test_fetching_from_the_remote_counts_against_no_cap() -> None:
    images = [image(0, location="remote"), image(1), image(2)]
    capped = cap(site(), images, force=False, max_new_images=1, regenerate=False)
    assert capped.todo == images[:2] and capped.held == images[2:]


def test_max_cost_holds_back_what_does_not_fit() -> None:
    images = [image(n) for n in range(3)]  # $0.005 each
    capped = cap(site(max_cost=0.012), images, force=False, max_new_images=None, regenerate=False)
    assert capped.todo == images[:2] and capped.over == images[2:]
    assert capped.held_back == ", 1 held back by max_cost ($0.012; an unknown cost counts as over it)"
