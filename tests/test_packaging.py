"""What a packager and a PyPI page read: classifiers, version, licence, changelog.

Building and installing the artifacts is `.ci/wheel-check`'s job (it runs in `.ci/run`); these are
the fast checks of the metadata those artifacts are made from.
"""

from __future__ import annotations

import re

import tomllib
from conftest import ROOT
from trove_classifiers import classifiers as KNOWN

import mkdocs_imagegen

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
CHANGELOG = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
SECTIONS = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def test_every_classifier_exists() -> None:
    unknown = [c for c in PROJECT["classifiers"] if c not in KNOWN]
    assert not unknown, f"not in trove-classifiers: {unknown}"
    assert "Framework :: MkDocs" in PROJECT["classifiers"]


def test_python_classifiers_agree_with_requires_python() -> None:
    floor = re.fullmatch(r">=(3\.\d+)", PROJECT["requires-python"])
    assert floor, PROJECT["requires-python"]
    claimed = [c.rsplit(" :: ", 1)[1] for c in PROJECT["classifiers"] if re.search(r":: 3\.\d+$", c)]
    assert claimed and claimed[0] == floor[1], (claimed, floor[1])
    assert all(tuple(map(int, v.split("."))) >= tuple(map(int, floor[1].split("."))) for v in claimed)


def test_version_has_one_source() -> None:
    assert "version" in PROJECT["dynamic"] and "version" not in PROJECT
    assert re.fullmatch(r"\d+\.\d+\.\d+", mkdocs_imagegen.__version__)


def test_licence_is_mit_and_shipped() -> None:
    assert PROJECT["license"] == "MIT"
    assert PROJECT["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")


def test_changelog_follows_keep_a_changelog() -> None:
    releases = re.findall(r"^## \[([^\]]+)\](.*)$", CHANGELOG, re.M)
    assert releases and releases[0][0] == "Unreleased", "the first section is ## [Unreleased]"
    for name, rest in releases[1:]:
        assert re.fullmatch(r"\d+\.\d+\.\d+", name) and re.fullmatch(r" - \d{4}-\d\d-\d\d", rest), name
    headings = set(re.findall(r"^### (.+)$", CHANGELOG, re.M))
    assert headings <= SECTIONS, headings - SECTIONS
    # Every release section has at least one entry.
    for body in re.split(r"^## .*$", CHANGELOG, flags=re.M)[1:]:
        assert re.search(r"^- \S", body, re.M), body[:80]
