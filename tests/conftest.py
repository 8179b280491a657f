"""Shared helpers: write small real sites, build them with the real `mkdocs` command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
sys.path.insert(0, str(TESTS))

from fakeapi import FakeImageAPI  # noqa: E402

CORPORA = ROOT.parent / "shared" / "corpora"


@dataclass
class Build:
    returncode: int
    output: str
    site: Path

    def page(self, path: str = "index.html") -> str:
        return (self.site / path).read_text(encoding="utf-8")


def write_site(
    root: Path,
    pages: dict[str, str],
    plugin: dict[str, Any] | None = None,
    **config: Any,
) -> Path:
    """A site in `root`: mkdocs.yml with the imagegen plugin, and `pages` under docs/."""
    docs = root / "docs"
    for name, text in pages.items():
        target = docs / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(text, encoding="utf-8")
    settings: dict[str, Any] = {
        "site_name": "Test site",
        "docs_dir": "docs",
        "site_dir": "site",
        "plugins": [{"imagegen": plugin or {}}],
    }
    settings.update(config)
    (root / "mkdocs.yml").write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return root


def run_mkdocs(root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Build:
    """Run the real `mkdocs build` in a subprocess, as a user would."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "IMAGEGEN_FROZEN")}
    full_env.update(env or {})
    site = root / "site"
    for i, arg in enumerate(args):
        if arg in ("-d", "--site-dir"):
            site = root / args[i + 1]
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "-f", str(root / "mkdocs.yml"), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=root,
    )
    return Build(proc.returncode, proc.stdout + proc.stderr, site)


@pytest.fixture
def fake_api() -> Iterator[FakeImageAPI]:
    with FakeImageAPI() as api:
        yield api
