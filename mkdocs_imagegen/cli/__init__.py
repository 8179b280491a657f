"""The `mkdocs-imagegen` command: see, generate, check, prune and report a site's images without building it.

The group lives here (the entry point is `mkdocs_imagegen.cli:main`); each command lives in the
module of its family, and the site model they share in `site`.
"""

from __future__ import annotations

import logging

import click

from .. import __version__
from .generate import generate, update
from .prune import prune
from .report import report
from .site import LOCK_STATES, STATES, Image, Site, estimate, load_site, open_cache, open_lock, site_images
from .status import check, status

# The site model is re-exported: it was reached as `cli.Site`, `cli.load_site` and so on.
__all__ = [
    "LOCK_STATES",
    "STATES",
    "Image",
    "Site",
    "check",
    "estimate",
    "generate",
    "load_site",
    "main",
    "open_cache",
    "open_lock",
    "prune",
    "report",
    "site_images",
    "status",
    "update",
]


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=(
        "States: 'cached' (a real image for the key is in the cache), 'missing' (nothing cached), "
        "'stale' (only a placeholder made because real generation was impossible: no API key, an "
        "error or the spending cap). Run `mkdocs-imagegen COMMAND --help` for a command's options."
    ),
)
@click.version_option(__version__, "-V", "--version", prog_name="mkdocs-imagegen")
def main() -> None:
    """See, generate, check, prune and report the images of a MkDocs site.

    Every command reads the site's mkdocs.yml and pages like `mkdocs build` does, without building
    the site, and uses the plugin's cache (cache_dir).
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)-7s -  %(message)s")
    logging.getLogger("mkdocs").setLevel(logging.WARNING)


for _command in (status, generate, check, prune, report, update):
    main.add_command(_command)
