"""The README's promises that a fresh clone depends on: its commands, CI, and the options table."""

from __future__ import annotations

import re

from conftest import ROOT

from mkdocs_imagegen.config import ImagegenConfig

README = (ROOT / "README.md").read_text(encoding="utf-8")


def commands() -> list[str]:
    return re.findall(r"```sh\n(python -m pip install[^\n]*)\n```", README)


def test_readme_has_the_two_fresh_clone_commands() -> None:
    example, tests = commands()[:2]
    assert "mkdocs build -f example-site/mkdocs.yml" in example
    assert tests.endswith("python -m pytest")


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert commands()[1] in ci.splitlines()


def test_every_option_is_documented_with_its_default() -> None:
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]+) \|", README, re.M))
    for name, option in ImagegenConfig._schema:
        assert name in rows, f"option {name} missing from the README table"
        default = option.default
        if isinstance(default, float) and default.is_integer():
            default = int(default)
        if isinstance(default, (int, float, str)) and not isinstance(default, bool):
            assert str(default) in rows[name], (name, rows[name])
        if isinstance(default, bool):
            assert str(default).lower() in rows[name], (name, rows[name])


def test_the_layout_table_names_every_module_and_only_real_ones() -> None:
    """The Development section's table is the map of the package: it must not drift from the tree."""
    table = README.split("| module | responsibility |", 1)[1].split("\n\n", 1)[0]
    named = {
        n.rstrip("/")
        for row in table.splitlines()[2:]
        for n in re.findall(r"`([\w.]+/?)`", row.split("|")[1])
    }
    package = ROOT / "mkdocs_imagegen"
    for name in named:
        assert (package / name).exists(), f"the README's layout names {name}, which does not exist"
    top = {p.name for p in package.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    top |= {"templates"}
    assert top - {"__init__.py"} <= named, (
        f"not in the README's layout: {sorted(top - named - {'__init__.py'})}"
    )
