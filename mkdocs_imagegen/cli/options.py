"""The options several commands take, written once so that their help reads alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

config_file_option = click.option(
    "-f",
    "--config-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Provide a specific MkDocs config (default: mkdocs.yml in the current folder).",
)


def making_options(*, dry_run: str, max_new_images: str, force: bool = False) -> Callable[[F], F]:
    """The options of `generate` and `update`, in the order their help lists them.

    `force` adds `--force` after `--dry-run` (only `generate` regenerates cached images).
    """
    options = [config_file_option, click.option("--dry-run", is_flag=True, help=dry_run)]
    if force:
        options.append(
            click.option(
                "--force", is_flag=True, help="Regenerate cached images too (only those matching --only)."
            )
        )
    options += [
        click.option(
            "--only",
            "only",
            metavar="GLOB",
            help="Only images used on a page whose path (relative to docs_dir) matches GLOB, "
            "or whose key does.",
        ),
        click.option("--max-new-images", type=click.IntRange(min=0), metavar="N", help=max_new_images),
    ]

    def apply(command: F) -> F:
        for option in reversed(options):  # a decorator list applies from the bottom up
            command = option(command)
        return command

    return apply
