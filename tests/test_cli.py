"""The `mkdocs-imagegen` command on real sites: status, generate, check, prune, report, frozen builds.

Commands run in-process through click's CliRunner (fast), one flow through a real subprocess; builds
are real `mkdocs build` subprocesses, so the command and the build are checked to agree on keys.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import Build, run_mkdocs, write_site
from conftest import openai_site as gateway_site

from mkdocs_imagegen import cli
from mkdocs_imagegen.cache import ImageCache
from mkdocs_imagegen.testing import FakeImageAPI

KEY = "sk-test-cli-0b7e4c2d9f1a4e6b8c3d5f7a9b1c3e5d"
ROW_KEYS = {
    "page",
    "line",
    "key",
    "state",
    "location",
    "provider",
    "model",
    "size",
    "quality",
    "format",
    "prompt",
    "error",
}
TOTAL_KEYS = {"cached", "stale", "missing", "directives", "images", "errors"}
COMMANDS = ("status", "generate", "check", "prune", "report")
OUTPUTS: list[str] = []  # everything the command and the builds printed in the current test


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("IMAGEGEN_FROZEN", raising=False)
    OUTPUTS.clear()


@pytest.fixture
def with_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def run(root: Path, command: str, *args: str) -> Result:
    """`mkdocs-imagegen COMMAND -f ROOT/mkdocs.yml ARGS` in-process."""
    result = CliRunner().invoke(cli.main, [command, "-f", str(root / "mkdocs.yml"), *args])
    OUTPUTS.append(result.output)
    assert "Traceback" not in result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def status(root: Path) -> dict[str, Any]:
    result = run(root, "status", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def states(root: Path) -> list[tuple[str, int, str]]:
    return [(r["page"], r["line"], r["state"]) for r in status(root)["directives"]]


def openai_site(root: Path, api: FakeImageAPI, pages: dict[str, str], **plugin: Any) -> Path:
    """conftest's gateway site, asking each image once (no retries)."""
    return gateway_site(root, api, pages, **{"max_retries": 0, **plugin})


def build(root: Path, *args: str, key: bool = True, **env: str) -> Build:
    result = run_mkdocs(root, *args, env={**({"OPENAI_API_KEY": KEY} if key else {}), **env})
    OUTPUTS.append(result.output)
    return result


def cache_keys(root: Path, cache_dir: str = ".cache/plugin/imagegen") -> dict[tuple[str, bool], int]:
    """{(key, is_fallback): bytes} of everything stored in a site's cache."""
    with ImageCache(str(root / cache_dir)) as cache:
        return {(key, fb): meta["bytes"] for key, fb, meta in cache.entries()}


TWO_PAGES = {
    "index.md": "# Home\n\n![fox](imagegen:a red fox)\n\n```imagegen\nprompt: a blue whale\nalt: whale\nsize: 1536x1024\n```\n",
    "guide/page.md": "# Guide\n\nText.\n\n![fox again](imagegen:a red fox)\n",
}


# -- help and errors ---------------------------------------------------------------------------------


def test_help_lists_every_command_and_reads_well() -> None:
    result = CliRunner().invoke(cli.main, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert re.search(rf"^  {command}\s+\S", result.output, re.M), result.output
    commands = result.output.split("Commands:")[1]
    assert "..." not in commands  # no short help is cut off
    assert "stale" in result.output  # the states are explained
    for command in COMMANDS:
        sub = CliRunner().invoke(cli.main, [command, "-h"])
        assert sub.exit_code == 0, sub.output
        assert f"{command} [OPTIONS]" in sub.output
        assert "-f, --config-file FILE" in sub.output
    version = CliRunner().invoke(cli.main, ["--version"])
    assert version.exit_code == 0 and version.output.startswith("mkdocs-imagegen, version ")


def test_missing_config_file_is_a_click_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(cli.main, ["status", "-f", str(tmp_path / "nope.yml")])
    assert result.exit_code == 2 and "does not exist" in result.output
    monkeypatch.chdir(tmp_path)  # no mkdocs.yml here, and no -f
    result = CliRunner().invoke(cli.main, ["check"])
    assert result.exit_code == 1
    assert "Error: cannot load the MkDocs config: Config file 'mkdocs.yml' does not exist." in result.output
    assert isinstance(result.exception, SystemExit)


def test_config_without_the_plugin(tmp_path: Path) -> None:
    write_site(tmp_path, {"index.md": "# Home\n"})
    (tmp_path / "mkdocs.yml").write_text("site_name: x\n")
    for command in COMMANDS:
        result = run(tmp_path, command)
        assert result.exit_code == 1
        assert "the imagegen plugin is not enabled in" in result.output and "- imagegen" in result.output


def test_invalid_config_is_a_click_error(tmp_path: Path) -> None:
    write_site(tmp_path, {"index.md": "# Home\n"}, plugin={"size": "huge"})
    result = run(tmp_path, "status")
    assert result.exit_code == 1
    assert "Error: cannot load the MkDocs config" in result.output
    (tmp_path / "mkdocs.yml").write_text("site_name: x\nplugins: [imagegen\n")
    result = run(tmp_path, "check")
    assert result.exit_code == 1 and "error parsing the configuration file" in result.output


def test_unreadable_page_is_a_click_error_naming_it(tmp_path: Path) -> None:
    write_site(tmp_path, {"index.md": "# Home\n\n![a](imagegen:x)\n", "bad.md": b"# Bad \xff\xfe imagegen\n"})
    result = run(tmp_path, "status")
    assert result.exit_code == 1
    assert "Error: cannot read the page bad.md: 'utf-8' codec can't decode" in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_unusable_cache_dir_is_a_click_error(tmp_path: Path, command: str) -> None:
    write_site(tmp_path, {"index.md": "# Home\n\n![a](imagegen:x)\n"}, plugin={"cache_dir": "blocked"})
    (tmp_path / "blocked").write_text("a file, not a folder")
    result = run(tmp_path, command)
    assert result.exit_code == 1
    assert "Error: cannot use the image cache directory" in result.output and "blocked" in result.output


# -- status ----------------------------------------------------------------------------------------


def test_status_json_shape_and_text(tmp_path: Path) -> None:
    pages = {**TWO_PAGES, "broken.md": "# Broken\n\n```imagegen\nsize: 1024x1024\n```\n"}
    write_site(tmp_path, pages)
    data = status(tmp_path)
    assert set(data) == {"directives", "totals", "estimated_cost", "lifecycle", "unknown_models", "rekeyed"}
    rows = data["directives"]
    assert all(set(row) == ROW_KEYS for row in rows)
    by_where = {(r["page"], r["line"]): r for r in rows}
    assert set(by_where) == {("index.md", 3), ("index.md", 5), ("guide/page.md", 5), ("broken.md", 3)}
    fox, whale = by_where["index.md", 3], by_where["index.md", 5]
    assert fox["location"] == whale["location"] == "missing"  # no remote store: local or missing
    assert fox["key"] == by_where["guide/page.md", 5]["key"]  # one image for both directives
    assert (fox["state"], fox["provider"], fox["model"], fox["size"]) == (
        "missing",
        "placeholder",
        None,
        "1024x1024",
    )
    assert (whale["prompt"], whale["size"], whale["format"], whale["error"]) == (
        "a blue whale",
        "1536x1024",
        "png",
        None,
    )
    assert re.fullmatch(r"[0-9a-f]{32}", fox["key"])
    error = by_where["broken.md", 3]
    assert error["state"] == "error" and error["key"] is None and "prompt" in error["error"]
    assert data["totals"] == {
        "cached": 0,
        "stale": 0,
        "missing": 2,
        "directives": 4,
        "images": 2,
        "errors": 1,
    }
    assert data["estimated_cost"] == 0.0  # placeholders are free

    text = run(tmp_path, "status")
    assert text.exit_code == 0
    assert re.search(
        rf"^missing\s+{fox['key'][:12]}\s+guide/page.md:5\s+placeholder/- 1024x1024\s+a red fox$",
        text.output,
        re.M,
    )
    assert re.search(r"^error\s+-\s+broken.md:3\s+the imagegen block has no 'prompt'", text.output, re.M)
    assert "4 directive(s), 2 image(s): 0 cached, 0 stale, 2 missing, 1 broken" in text.output


def test_status_after_a_build_is_all_cached_and_keys_agree(tmp_path: Path) -> None:
    """Front matter defaults, a prompt template, nested pages and excluded pages: the same keys."""
    pages = {
        **TWO_PAGES,
        "deep/nested/page.md": (
            "---\ntitle: Deep Title\nimagegen:\n  size: 800x400\n---\n\nBody.\n\n"
            "- item\n\n    ```imagegen\n    prompt: indented in a list\n    alt: list\n    ```\n\n![i](imagegen:inline one){ .wide }\n"
        ),
        "drafts/wip.md": "# WIP\n\n![x](imagegen:never built)\n",
    }
    write_site(
        tmp_path,
        pages,
        plugin={"prompt_template": "{{ prompt }}, for the page {{ title }}"},
        exclude_docs="drafts/\n",
        # superfences renders a fence inside a list item (plain fenced_code shows it as text)
        markdown_extensions=["attr_list", "pymdownx.superfences"],
    )
    result = build(tmp_path, "--strict")
    assert result.returncode == 0, result.output
    data = status(tmp_path)
    assert {r["state"] for r in data["directives"]} == {"cached"}
    # The template puts each page's title in the prompt: the fox is two images here.
    assert data["totals"]["cached"] == data["totals"]["images"] == data["totals"]["directives"] == 5
    assert not any(r["page"].startswith("drafts/") for r in data["directives"])
    assert any(r["prompt"] == "inline one, for the page Deep Title" for r in data["directives"])
    built = {p.stem for p in (result.site / "assets" / "imagegen").iterdir()}
    assert built == {r["key"] for r in data["directives"]}
    check = run(tmp_path, "check")
    assert check.exit_code == 0 and "all 5 image(s) of 5 directive(s) are cached" in check.output
    nothing = run(tmp_path, "generate")
    assert nothing.exit_code == 0 and "nothing to generate: 5 image(s) cached" in nothing.output


# -- the openai provider against the fake API --------------------------------------------------------


def test_states_missing_stale_cached_and_the_build_agrees(
    tmp_path: Path, fake_api: FakeImageAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    openai_site(tmp_path, fake_api, TWO_PAGES)
    assert {s for *_, s in states(tmp_path)} == {"missing"}
    check = run(tmp_path, "check")
    assert check.exit_code == 1
    assert re.search(r"^missing\s+index.md:3\s+a red fox$", check.output, re.M)
    assert re.search(r"^missing\s+guide/page.md:5\s+a red fox$", check.output, re.M)
    assert "3 directive(s) need attention" in check.output

    # No key: the build shows fallback placeholders, which do not count as the real images.
    first = build(tmp_path, key=False)
    assert first.returncode == 0, first.output
    assert fake_api.requests == []
    data = status(tmp_path)
    assert states(tmp_path) == [
        ("index.md", 3, "stale"),
        ("index.md", 5, "stale"),
        ("guide/page.md", 5, "stale"),
    ]
    assert data["totals"] == {
        "cached": 0,
        "stale": 2,
        "missing": 0,
        "directives": 3,
        "images": 2,
        "errors": 0,
    }
    assert data["estimated_cost"] == pytest.approx(0.036 + 0.052)
    assert all(r["provider"] == "openai" and r["model"] == "gpt-image-1-mini" for r in data["directives"])
    check = run(tmp_path, "check")
    assert check.exit_code == 1 and re.search(r"^stale\s+index.md:5\s+a blue whale$", check.output, re.M)

    # Without the key, generate refuses up front: nothing is called, nothing changes.
    refused = run(tmp_path, "generate")
    assert refused.exit_code == 1
    assert "OPENAI_API_KEY is not set" in refused.output and "Nothing was generated" in refused.output
    assert fake_api.requests == []

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    generated = run(tmp_path, "generate")
    assert generated.exit_code == 0, generated.output
    assert len(fake_api.generation_requests()) == 2  # the shared prompt is one image
    assert re.search(r"^\[1/2\] generated", generated.output, re.M)
    assert re.search(r"^\[2/2\] generated", generated.output, re.M)
    assert "2 generated, 0 already cached, 0 failed" in generated.output
    assert "estimated cost $0.088" in generated.output
    assert {s for *_, s in states(tmp_path)} == {"cached"}
    assert status(tmp_path)["estimated_cost"] == 0.0
    assert run(tmp_path, "check").exit_code == 0

    # The build finds everything the command made: zero requests.
    again = build(tmp_path, "--strict")
    assert again.returncode == 0, again.output
    assert len(fake_api.generation_requests()) == 2
    assert "0 generated" in again.output and "2 from cache" in again.output
    assert all(KEY not in output for output in OUTPUTS)


def test_openai_build_then_status_is_all_cached(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    openai_site(tmp_path, fake_api, TWO_PAGES, size="1536x1024", quality="low", extra_body={"seed": 3})
    result = build(tmp_path, "--strict")
    assert result.returncode == 0, result.output
    assert len(fake_api.generation_requests()) == 2
    data = status(tmp_path)
    assert data["totals"] == {
        "cached": 2,
        "stale": 0,
        "missing": 0,
        "directives": 3,
        "images": 2,
        "errors": 0,
    }
    assert {(r["size"], r["quality"]) for r in data["directives"]} == {("1536x1024", "low")}
    assert data["estimated_cost"] == 0.0
    assert run(tmp_path, "check").exit_code == 0
    assert "nothing to generate" in run(tmp_path, "generate").output
    assert len(fake_api.generation_requests()) == 2


def test_dry_run_calls_nothing_and_prints_the_cost(
    tmp_path: Path, fake_api: FakeImageAPI, with_key: None
) -> None:
    openai_site(tmp_path, fake_api, TWO_PAGES)
    result = run(tmp_path, "generate", "--dry-run")
    assert result.exit_code == 0, result.output
    assert fake_api.generation_requests() == []
    # gpt-image-1-mini, no quality set: estimated at the dearest tier ("high").
    assert "would generate 2 image(s), estimated cost $0.088" in result.output
    assert re.search(
        r"^would generate [0-9a-f]{12}  index.md:3 \(and 1 more\)  a red fox$", result.output, re.M
    )
    assert {s for *_, s in states(tmp_path)} == {"missing"}
    low = run(tmp_path, "generate", "--dry-run", "--only", "guide/*")
    assert "would generate 1 image(s), estimated cost $0.036" in low.output
    assert fake_api.generation_requests() == []
    assert KEY not in result.output + low.output


def test_unknown_model_price_is_cost_unknown(tmp_path: Path, fake_api: FakeImageAPI, with_key: None) -> None:
    openai_site(
        tmp_path, fake_api, {"index.md": "# Home\n\n![a](imagegen:gateway image)\n"}, model="acme/flux"
    )
    assert status(tmp_path)["estimated_cost"] is None
    text = run(tmp_path, "status").output
    assert "openai/acme/flux 1024x1024  gateway image" in text and "generating the rest: cost unknown" in text
    dry = run(tmp_path, "generate", "--dry-run")
    assert "would generate 1 image(s), cost unknown" in dry.output and fake_api.generation_requests() == []
    done = run(tmp_path, "generate")
    assert done.exit_code == 0 and done.output.rstrip().endswith("s, cost unknown")
    assert fake_api.generation_requests()[0].json["model"] == "acme/flux"


def test_force_and_only(tmp_path: Path, fake_api: FakeImageAPI, with_key: None) -> None:
    pages = {
        "a.md": "# A\n\n![a](imagegen:image of a)\n",
        "b.md": "# B\n\n![b](imagegen:image of b)\n",
        "guide/c.md": "# C\n\n![c](imagegen:image of c)\n",
    }
    openai_site(tmp_path, fake_api, pages)
    assert run(tmp_path, "generate", "--only", "guide/*").exit_code == 0
    requests = fake_api.generation_requests()
    assert [r.json["prompt"] for r in requests] == ["image of c"]
    assert run(tmp_path, "generate").exit_code == 0
    assert len(fake_api.generation_requests()) == 3
    # Nothing left: no request, with or without --only.
    assert "nothing to generate: 3 image(s) cached" in run(tmp_path, "generate").output
    assert "nothing to generate: 1 image(s) cached" in run(tmp_path, "generate", "--only", "a.md").output
    assert len(fake_api.generation_requests()) == 3
    # --force --only regenerates the matching page's image, and only that one.
    forced = run(tmp_path, "generate", "--force", "--only", "b.md")
    assert forced.exit_code == 0 and "1 generated" in forced.output
    assert [r.json["prompt"] for r in fake_api.generation_requests()[3:]] == ["image of b"]
    # --only also matches keys.
    key_a = next(r["key"] for r in status(tmp_path)["directives"] if r["page"] == "a.md")
    assert run(tmp_path, "generate", "--force", "--only", key_a[:8] + "*").exit_code == 0
    assert [r.json["prompt"] for r in fake_api.generation_requests()[4:]] == ["image of a"]
    # --force alone regenerates everything.
    assert "3 generated" in run(tmp_path, "generate", "--force").output
    assert len(fake_api.generation_requests()) == 8
    typo = run(tmp_path, "generate", "--only", "nothing/*")
    assert typo.exit_code == 1 and "no image of the site matches --only 'nothing/*'" in typo.output
    assert len(fake_api.generation_requests()) == 8


def test_generate_failures_exit_nonzero_and_store_no_placeholder(
    tmp_path: Path, fake_api: FakeImageAPI, with_key: None
) -> None:
    fake_api.enqueue("moderation")
    openai_site(tmp_path, fake_api, {"index.md": "# Home\n\n![a](imagegen:refused)\n"})
    result = run(tmp_path, "generate")
    assert result.exit_code == 1
    assert re.search(r"^failed\s+index.md:3: .*safety system", result.stderr, re.M), result.output
    assert "0 generated, 0 already cached, 1 failed" in result.stdout
    assert states(tmp_path) == [("index.md", 3, "missing")]
    assert cache_keys(tmp_path) == {}
    retry = run(tmp_path, "generate")
    assert retry.exit_code == 0 and "1 generated" in retry.output


def test_broken_directive_makes_generate_and_check_fail(tmp_path: Path) -> None:
    write_site(
        tmp_path, {"index.md": "# Home\n\n![a](imagegen:fine)\n\n```imagegen\nprompt: x\nsize: big\n```\n"}
    )
    result = run(tmp_path, "generate")
    assert result.exit_code == 1
    assert re.search(r"^error\s+index.md:5: size must look like", result.stderr, re.M)
    assert "1 generated, 0 already cached, 0 failed, 1 broken directive(s)" in result.stdout
    check = run(tmp_path, "check")
    assert check.exit_code == 1 and "error    index.md:5: size" in check.output
    assert "fix the broken directives" in check.output
    dry = run(tmp_path, "generate", "--dry-run")
    assert dry.exit_code == 1 and "would generate 0 image(s)" in dry.output  # as the real run


def test_max_new_images_leaves_the_rest_for_later(
    tmp_path: Path, fake_api: FakeImageAPI, with_key: None
) -> None:
    pages = {"index.md": "# Home\n\n" + "".join(f"![{n}](imagegen:capped {n})\n\n" for n in range(3))}
    # Unattended, the command spends no more than a build may: the plugin's max_new_images.
    openai_site(tmp_path, fake_api, pages, max_new_images=1)
    capped = run(tmp_path, "generate")
    assert capped.exit_code == 0, capped.output
    assert len(fake_api.generation_requests()) == 1
    assert "1 generated, 0 already cached, 0 failed, 2 held back by max_new_images (1)" in capped.output
    assert [s for *_, s in states(tmp_path)] == ["cached", "missing", "missing"]
    # Asked explicitly, it goes further.
    result = run(tmp_path, "generate", "--max-new-images", "2")
    assert result.exit_code == 0, result.output
    assert len(fake_api.generation_requests()) == 3
    assert "2 generated, 0 already cached, 0 failed" in result.output
    assert [s for *_, s in states(tmp_path)] == ["cached", "cached", "cached"]


def test_progress_bar_on_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_site(tmp_path, {"index.md": "# Home\n\n![a](imagegen:one)\n\n![b](imagegen:two)\n"})
    monkeypatch.setattr("mkdocs_imagegen.cli.progress.interactive", lambda: True)
    result = run(tmp_path, "generate")
    assert result.exit_code == 0, result.output
    assert "Generating images" in result.output and "[1/2]" not in result.output
    assert "2 generated" in result.output


# -- prune -----------------------------------------------------------------------------------------


def test_prune_removes_exactly_the_orphans(tmp_path: Path) -> None:
    write_site(tmp_path, TWO_PAGES)
    assert run(tmp_path, "generate").exit_code == 0
    before = cache_keys(tmp_path)
    assert len(before) == 2
    whale = next(r["key"] for r in status(tmp_path)["directives"] if r["prompt"] == "a blue whale")
    none = run(tmp_path, "prune")
    assert none.exit_code == 0 and "removed 0 unused image(s), 0 bytes (0 bytes)" in none.output

    index = tmp_path / "docs" / "index.md"
    index.write_text(index.read_text().replace("a blue whale", "a grey whale"))
    size = before[whale, False]
    dry = run(tmp_path, "prune", "--dry-run")
    assert dry.exit_code == 0
    assert f"would remove 1 unused image(s), {size} bytes ({size / 1000:.1f} kB)" in dry.output
    assert cache_keys(tmp_path) == before
    done = run(tmp_path, "prune")
    assert done.exit_code == 0 and f"removed 1 unused image(s), {size} bytes" in done.output
    after = cache_keys(tmp_path)
    assert (whale, False) not in after and after == {k: v for k, v in before.items() if k[0] != whale}
    assert "a red fox" in [r["prompt"] for r in status(tmp_path)["directives"] if r["state"] == "cached"]
    assert "removed 0 unused image(s)" in run(tmp_path, "prune").output


def test_prune_sweeps_the_files_an_interrupted_run_left_and_nothing_else(tmp_path: Path) -> None:
    """A run killed between writing an image file and recording it leaves a file no record names."""
    write_site(tmp_path, TWO_PAGES)
    assert run(tmp_path, "generate").exit_code == 0
    images = tmp_path / ".cache/plugin/imagegen/images"
    kept = sorted(p for p in images.rglob("*") if p.is_file())
    old = images / "img" / "ab" / ("ab" * 16 + "-0123456789abcdef.img")
    old.parent.mkdir(parents=True, exist_ok=True)
    old.write_bytes(b"x" * 2048)
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    fresh = images / "img" / "ab" / ".tmp-underway"  # a put of another process, not recorded yet
    fresh.write_bytes(b"y" * 10)
    dry = run(tmp_path, "prune", "--dry-run")
    assert "would remove 1 stray file(s) an interrupted run left in the cache, 2.0 kB" in dry.output
    assert old.exists()
    done = run(tmp_path, "prune")
    assert done.exit_code == 0 and "removed 1 stray file(s)" in done.output
    assert not old.exists() and fresh.exists()
    assert all(p.exists() for p in kept)
    assert {r["state"] for r in status(tmp_path)["directives"]} == {"cached"}
    assert "stray" not in run(tmp_path, "prune").output


def test_prune_keeps_what_drafts_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`mkdocs serve` builds draft pages: their images are in use, even though a build skips them."""
    from mkdocs.commands.build import build as mkdocs_build
    from mkdocs.config import load_config

    write_site(
        tmp_path,
        {
            "index.md": "# Home\n\n![a](imagegen:published)\n",
            "drafts/next.md": "# Next\n\n![b](imagegen:draft)\n",
        },
        plugin={"serve_mode": "blocking"},  # background (the default) would race the assertion
        draft_docs="drafts/\n",
    )
    assert [r["prompt"] for r in status(tmp_path)["directives"]] == ["published"]  # as a build sees it
    monkeypatch.chdir(tmp_path)
    config = load_config(str(tmp_path / "mkdocs.yml"))
    config.plugins.on_startup(command="serve", dirty=False)
    try:
        mkdocs_build(config, serve_url="http://127.0.0.1:8000/")  # what `mkdocs serve` does
    finally:
        config.plugins.on_shutdown()
    keys = cache_keys(tmp_path)
    assert len(keys) == 2
    result = run(tmp_path, "prune")
    assert result.exit_code == 0 and "removed 0 unused image(s)" in result.output
    assert cache_keys(tmp_path) == keys


def test_prune_refuses_while_a_directive_is_broken(tmp_path: Path) -> None:
    write_site(tmp_path, {"index.md": "# Home\n\n```imagegen\nprompt: precious\n```\n"})
    assert run(tmp_path, "generate").exit_code == 0
    before = cache_keys(tmp_path)
    index = tmp_path / "docs" / "index.md"
    index.write_text(index.read_text().replace("prompt: precious", "prompt: precious\nsise: 10x10"))
    dry = run(tmp_path, "prune", "--dry-run")  # the same decision as the real run
    assert dry.exit_code == 1 and "prune would refuse: 1 broken directive(s)" in dry.stderr
    refused = run(tmp_path, "prune")
    assert refused.exit_code == 1
    assert "error    index.md:3: unknown key 'sise'; did you mean 'size'?" in refused.stderr
    assert "1 broken directive(s): fix them first" in refused.stderr
    assert cache_keys(tmp_path) == before
    index.write_text(index.read_text().replace("\nsise: 10x10", ""))
    assert "removed 0 unused image(s)" in run(tmp_path, "prune").output


def test_prune_removes_orphaned_fallbacks(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    openai_site(
        tmp_path, fake_api, {"index.md": "# Home\n\n![a](imagegen:old prompt)\n\n![b](imagegen:kept)\n"}
    )
    assert build(tmp_path, key=False).returncode == 0
    before = cache_keys(tmp_path)
    assert len(before) == 2 and all(fallback for _, fallback in before)
    index = tmp_path / "docs" / "index.md"
    index.write_text(index.read_text().replace("old prompt", "new prompt"))
    result = run(tmp_path, "prune")
    assert result.exit_code == 0 and "removed 1 unused image(s)" in result.output
    kept = next(r["key"] for r in status(tmp_path)["directives"] if r["prompt"] == "kept")
    assert set(cache_keys(tmp_path)) == {(kept, True)}


# -- report ----------------------------------------------------------------------------------------


class _Attrs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_report_is_one_self_contained_page(
    tmp_path: Path, fake_api: FakeImageAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages = {
        "index.md": "# Home\n\n![a](imagegen:a <b>bold</b> & daring fox)\n\n![b](imagegen:stays a placeholder)\n",
        "guide/page.md": "# Guide\n\n```imagegen\nprompt: a blue whale\nsize: 1536x1024\nquality: low\n```\n",
    }
    openai_site(tmp_path, fake_api, pages)
    assert build(tmp_path, key=False).returncode == 0  # two stale placeholders
    (tmp_path / "docs" / "new.md").write_text("# New\n\n![n](imagegen:not made yet)\n\n![x](imagegen:)\n")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert run(tmp_path, "generate", "--only", "index.md").exit_code == 1  # the broken directive on new.md
    out = tmp_path / "reports" / "images.html"
    result = run(tmp_path, "report", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert f"wrote {out}: 4 image(s), 1 broken directive(s)" in result.output
    html = out.read_text(encoding="utf-8")

    parser = _Attrs()
    parser.feed(html)
    srcs = [a["src"] for _, a in parser.tags if a.get("src") is not None]
    assert len(srcs) == 3  # cached and stale images have thumbnails; the missing one has none
    assert all(src.startswith(("data:image/webp;base64,", "data:image/png;base64,")) for src in srcs)
    # Nothing loaded from anywhere: no stylesheet link, no script file (the filters are inline), no href.
    assert not [t for t, a in parser.tags if t == "link" or (t == "script" and a.get("src")) or a.get("href")]
    assert "http://" not in html and "https://" not in html

    assert "a &lt;b&gt;bold&lt;/b&gt; &amp; daring fox" in html and "<b>bold</b>" not in html
    for where in ("index.md:3", "index.md:5", "guide/page.md:3", "new.md:3", "new.md:5"):
        assert f"<code>{where}</code>" in html
    assert html.count('class="state cached"') == 2 and html.count('class="state stale"') == 1
    assert html.count('class="state missing"') == 1 and "not generated yet" in html
    assert "openai / gpt-image-1-mini" in html and "1536x1024" in html
    assert re.search(r"<dt>created</dt><dd>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ</dd>", html)
    assert "<dt>cost</dt><dd>$0.036</dd>" in html  # gpt-image-1-mini, 1024x1024, estimated at high
    assert "4 images: 2 cached, 1 stale, 1 missing" in html
    assert "the prompt is empty" in html
    assert KEY not in html and KEY not in result.output


def test_report_default_output_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_site(tmp_path, {"index.md": "# Home\n\n![a](imagegen:x)\n"})
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli.main, ["report"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "imagegen-report.html").is_file()
    assert "not generated yet" in (tmp_path / "imagegen-report.html").read_text()


# -- frozen builds ---------------------------------------------------------------------------------


def test_frozen_option_fails_the_build_then_passes_when_cached(tmp_path: Path) -> None:
    write_site(
        tmp_path,
        {
            "index.md": "# Home\n\n![a](imagegen:frozen one)\n",
            "more/p.md": "# P\n\nx\n\n![b](imagegen:two)\n",
        },
        plugin={"frozen": True},
    )
    failed = build(tmp_path)
    assert failed.returncode == 1
    assert "frozen mode forbids generating it" in failed.output
    assert re.search(r"(index\.md:3|more/p\.md:5)", failed.output)
    assert "Traceback" not in failed.output
    assert {s for *_, s in states(tmp_path)} == {"missing"}  # the frozen build made nothing
    assert run(tmp_path, "generate").exit_code == 0  # the command is not frozen
    passed = build(tmp_path, "--strict")
    assert passed.returncode == 0, passed.output
    assert "0 generated" in passed.output


def test_frozen_env_var_and_stale_placeholders(
    tmp_path: Path, fake_api: FakeImageAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    openai_site(tmp_path, fake_api, {"index.md": "# Home\n\n![a](imagegen:frozen by env)\n"})
    assert build(tmp_path, key=False).returncode == 0  # a fallback placeholder only
    assert states(tmp_path) == [("index.md", 3, "stale")]
    frozen = build(tmp_path, IMAGEGEN_FROZEN="1")
    assert frozen.returncode == 1, frozen.output
    assert "index.md:3" in frozen.output and "frozen mode forbids generating it" in frozen.output
    assert (
        fake_api.generation_requests() == []
    )  # a stale placeholder is not the image, and frozen calls nothing
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("IMAGEGEN_FROZEN", "1")  # generate is how a frozen site's cache gets filled
    assert run(tmp_path, "generate").exit_code == 0
    assert len(fake_api.generation_requests()) == 1
    passed = build(tmp_path, "--strict", IMAGEGEN_FROZEN="1")
    assert passed.returncode == 0, passed.output
    assert len(fake_api.generation_requests()) == 1 and "0 generated" in passed.output
    assert all(KEY not in output for output in OUTPUTS)


# -- a real process ----------------------------------------------------------------------------------


def test_real_subprocess(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    openai_site(tmp_path, fake_api, TWO_PAGES)
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "IMAGEGEN_FROZEN")}
    config = str(tmp_path / "mkdocs.yml")

    def mkdocs_imagegen(*args: str, key: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "mkdocs_imagegen.cli", *args],
            capture_output=True,
            text=True,
            env={**env, **({"OPENAI_API_KEY": KEY} if key else {})},
            timeout=60,
        )
        assert "Traceback" not in proc.stderr and KEY not in proc.stdout + proc.stderr
        return proc

    assert mkdocs_imagegen("--help").stdout.startswith("Usage: mkdocs-imagegen [OPTIONS] COMMAND")
    check = mkdocs_imagegen("check", "-f", config)
    assert check.returncode == 1 and "missing  index.md:3  a red fox" in check.stdout
    refused = mkdocs_imagegen("generate", "-f", config, key=False)
    assert refused.returncode == 1 and refused.stderr.startswith("Error: no API key")
    done = mkdocs_imagegen("generate", "-f", config)
    assert done.returncode == 0, done.stderr
    assert "[2/2] generated" in done.stdout and "2 generated" in done.stdout
    assert len(fake_api.generation_requests()) == 2
    assert mkdocs_imagegen("check", "-f", config).returncode == 0
    script = Path(sys.executable).parent / "mkdocs-imagegen"
    if script.exists():
        proc = subprocess.run(
            [str(script), "status", "--json", "-f", config], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0 and json.loads(proc.stdout)["totals"]["cached"] == 2
