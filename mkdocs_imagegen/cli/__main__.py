"""`python -m mkdocs_imagegen.cli`: the command, named as its entry point names it."""

from . import main

main(prog_name="mkdocs-imagegen")
