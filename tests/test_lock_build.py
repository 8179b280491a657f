"""The image lock through real `mkdocs build` runs and the real command, against the loopback API."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from conftest import Build, run_mkdocs, start_mkdocs, write_site

from mkdocs_imagegen import cli
from mkdocs_imagegen.lock import parse_manifest
from mkdocs_imagegen.testing import FakeImageAPI

KEY = "sk-test-lock-5c1e0a7b3d9f4e2a8b6c4d2e0f1a3b5c"
PAGES = {
    "index.md": "# Home\n\n![A lighthouse](imagegen:a lighthouse at dusk)\n\n"
    "```imagegen\nprompt: a harbour in fog\nsize: 1536x1024\n```\n",
    "guide.md": "# Guide\n\n![Boat](imagegen:a small red boat)\n\n![Again](imagegen:a lighthouse at dusk)\n",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("IMAGEGEN_FROZEN", raising=False)


def lock_site(root: Path, api: FakeImageAPI, pages: dict[str, str] = PAGES, **plugin: Any) -> Path:
    options = {
        "provider": "openai",
        "base_url": api.base_url,
        "model": "gpt-image-1-mini",  # a gateway serving it (OpenAI's own default is gpt-image-2)
        "timeout": 10,
        "max_retries": 0,
        "lock": "docs-images",
        "alt_required": False,  # these pages test the lock, not alt text (tests/test_alt.py does)
        **plugin,
    }
    return write_site(root, pages, plugin=options)


def set_plugin(root: Path, **changes: Any) -> None:
    path = root / "mkdocs.yml"
    config = yaml.safe_load(path.read_text())
    config["plugins"][0]["imagegen"].update(changes)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def build(root: Path, *args: str, key: bool = True) -> Build:
    return run_mkdocs(root, *args, env={"OPENAI_API_KEY": KEY} if key else {})


def command(root: Path, *args: str, key: bool = True) -> Result:
    env = {"OPENAI_API_KEY": KEY} if key else {}
    result = CliRunner().invoke(cli.main, [args[0], "-f", str(root / "mkdocs.yml"), *args[1:]], env=env)
    assert "Traceback" not in result.output, result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def site_images(result: Build) -> dict[str, bytes]:
    folder = result.site / "assets" / "imagegen"
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


def manifest(root: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (root / "docs-images" / "imagegen.lock").read_text().splitlines()]


def git(root: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    proc = subprocess.run(["git", *args], cwd=root, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_a_clone_with_the_lock_builds_the_real_images_with_no_cache_and_no_key(
    tmp_path: Path, fake_api: FakeImageAPI
) -> None:
    root = lock_site(tmp_path / "first", fake_api)
    first = build(root, "--strict")
    assert first.returncode == 0, first.output
    assert len(fake_api.generation_requests()) == 3
    lines = manifest(root)
    assert [line["key"] for line in lines] == sorted(line["key"] for line in lines)
    assert {line["prompt"] for line in lines} == {
        "a lighthouse at dusk",
        "a harbour in fog",
        "a small red boat",
    }
    dusk = next(line for line in lines if line["prompt"] == "a lighthouse at dusk")
    assert dusk["pages"] == ["guide.md", "index.md"] and dusk["model"] == "gpt-image-1-mini"
    assert (root / "docs-images" / ".gitattributes").read_text() == "imagegen.lock merge=union\n"

    clone = tmp_path / "clone"
    shutil.copytree(root, clone, ignore=shutil.ignore_patterns(".cache", "site"))
    requests = len(fake_api.requests)
    second = build(clone, "--strict", key=False)
    assert second.returncode == 0, second.output
    assert len(fake_api.requests) == requests  # not one request
    assert site_images(second) == site_images(first)  # byte for byte, no placeholder
    assert "3 from cache, 0 generated, 0 outdated, 0 failed" in second.output
    assert not (clone / ".cache").exists() or not any((clone / ".cache").rglob("*.png"))
    # A frozen CI build of the clone passes too, and `check` agrees.
    assert run_mkdocs(clone, "--strict", env={"IMAGEGEN_FROZEN": "1"}).returncode == 0
    assert command(clone, "check", key=False).exit_code == 0


def test_an_existing_cache_fills_the_lock_without_paying(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    root = lock_site(tmp_path, fake_api)
    set_plugin(root, lock=None)
    assert build(root).returncode == 0
    assert not (root / "docs-images").exists()
    set_plugin(root, lock="docs-images")
    requests = len(fake_api.requests)
    assert build(root, "--strict").returncode == 0
    assert len(fake_api.requests) == requests
    assert len(manifest(root)) == 3


def test_a_tampered_lock_image_is_refused(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    root = lock_site(tmp_path, fake_api)
    assert build(root).returncode == 0
    line = manifest(root)[0]
    target = root / "docs-images" / line["file"]
    evil = bytearray(target.read_bytes())
    evil[-20] ^= 0xFF
    target.write_bytes(bytes(evil))
    shutil.rmtree(root / ".cache")
    strict = build(root, "--strict", key=False)
    assert strict.returncode != 0
    assert f"docs-images/{line['file']} does not match the SHA-256 recorded in imagegen.lock" in strict.output
    assert bytes(evil) not in site_images(strict).values()
    frozen = run_mkdocs(root, env={"IMAGEGEN_FROZEN": "1"})
    assert frozen.returncode != 0 and line["file"] in frozen.output


def test_a_new_model_or_template_shows_the_pinned_images_then_update_replaces_them(
    tmp_path: Path, fake_api: FakeImageAPI
) -> None:
    root = lock_site(tmp_path, fake_api)
    git(root, "init", "-q", "-b", "main")
    first = build(root, "--strict")
    assert first.returncode == 0, first.output
    git(root, "add", "docs", "docs-images", "mkdocs.yml")
    git(root, "commit", "-qm", "images")
    before = site_images(first)
    old_manifest = manifest(root)
    requests = len(fake_api.requests)

    for change in ({"model": "gpt-image-1"}, {"prompt_template": "{{ prompt }}, flat vector illustration"}):
        set_plugin(root, **change)
        result = build(root, "--strict")
        assert result.returncode == 0, result.output
        assert len(fake_api.requests) == requests  # nothing generated
        assert "0 generated, 3 outdated" in result.output
        assert "mkdocs-imagegen update" in result.output
        assert sorted(site_images(result).values()) == sorted(before.values())  # the old images
        rows = json.loads(command(root, "status", "--json").stdout)["directives"]
        assert {r["state"] for r in rows} == {"outdated"} and len(rows) == 4
        checked = command(root, "check")
        assert checked.exit_code == 0 and "outdated" in checked.output
    assert manifest(root) == old_manifest  # pins untouched

    dry = command(root, "update", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.output.count("(was ") == 3 and "3 outdated image(s) to regenerate" in dry.output
    assert "would generate 3 image(s)" in dry.output
    assert "estimated cost $0.584" in dry.output  # gpt-image-1 at high: 2 x $0.167 + 1 x $0.25
    assert len(fake_api.requests) == requests

    updated = command(root, "update")
    assert updated.exit_code == 0, updated.output
    assert len(fake_api.generation_requests()) == 6  # exactly the three outdated ones
    asked = [r.json for r in fake_api.generation_requests()[3:]]
    assert {a["model"] for a in asked} == {"gpt-image-1"}
    assert all(a["prompt"].endswith(", flat vector illustration") for a in asked)
    lines = manifest(root)
    assert len(lines) == 3 and {line["model"] for line in lines} == {"gpt-image-1"}
    assert not ({line["key"] for line in lines} & {line["key"] for line in old_manifest})
    assert {p.name for p in (root / "docs-images").glob("*.png")} == {line["file"] for line in lines}
    rows = json.loads(command(root, "status", "--json").stdout)["directives"]
    assert {r["state"] for r in rows} == {"cached"}

    report = command(root, "report", "--since", "HEAD", "-o", str(tmp_path / "r.html"))
    assert report.exit_code == 0, report.output
    html = (tmp_path / "r.html").read_text()
    assert html.count('class="change changed"') == 3
    assert html.count("<img") >= 6 and "image not available" not in html  # old and new side by side
    assert "before:</strong> a harbour in fog<br>" in html  # both prompts
    assert "now:</strong> a harbour in fog, flat vector illustration<br>" in html
    since = json.loads(command(root, "status", "--since", "HEAD", "--json").stdout)["since"]
    assert [len(since[k]) for k in ("added", "changed", "outdated", "removed")] == [0, 3, 0, 0]
    changed = since["changed"][0]
    assert {"old", "new"} <= set(changed) and changed["old"]["model"] == "gpt-image-1-mini"
    assert since["cost"] == pytest.approx(0.584)


def test_outdated_regenerate_generates_at_build(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    root = lock_site(tmp_path, fake_api, outdated="regenerate")
    assert build(root).returncode == 0
    set_plugin(root, model="gpt-image-1")
    result = build(root, "--strict")
    assert result.returncode == 0, result.output
    assert len(fake_api.generation_requests()) == 6
    assert {line["model"] for line in manifest(root)} == {"gpt-image-1"}
    # without a key, a regenerate site still shows the pins rather than placeholders
    set_plugin(root, model="gpt-image-1.5")
    keyless = build(root, key=False)
    assert keyless.returncode == 0 and "3 outdated" in keyless.output


def test_two_branches_adding_images_merge_without_conflict(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    root = lock_site(tmp_path, fake_api, pages={"index.md": "# Home\n\n![a](imagegen:the base image)\n"})
    git(root, "init", "-q", "-b", "main")
    assert build(root).returncode == 0
    git(root, "add", "docs", "docs-images", "mkdocs.yml")
    git(root, "commit", "-qm", "base")
    for branch in ("one", "two"):
        git(root, "checkout", "-qb", branch, "main")
        (root / "docs" / f"{branch}.md").write_text(
            f"# {branch}\n\n" + "".join(f"![x](imagegen:{branch} picture {n})\n\n" for n in range(4))
        )
        assert build(root).returncode == 0
        git(root, "add", "docs", "docs-images")
        git(root, "commit", "-qm", branch)
    git(root, "checkout", "-q", "one")
    git(root, "merge", "-q", "--no-edit", "two")
    text = (root / "docs-images" / "imagegen.lock").read_text()
    assert "<<<<<<<" not in text
    assert len(parse_manifest(text).candidates) == 9 and not parse_manifest(text).problems
    requests = len(fake_api.requests)
    shutil.rmtree(root / ".cache")
    merged = build(root, "--strict", key=False)
    assert merged.returncode == 0, merged.output
    assert len(fake_api.requests) == requests and len(site_images(merged)) == 9


def test_a_killed_build_leaves_a_valid_manifest(tmp_path: Path) -> None:
    with FakeImageAPI() as api:
        pages = {"index.md": "# Home\n\n" + "".join(f"![x](imagegen:image {n})\n\n" for n in range(6))}
        root = lock_site(tmp_path, api, pages=pages)
        assert build(root).returncode == 0
        before = (root / "docs-images" / "imagegen.lock").read_bytes()
        (root / "docs" / "more.md").write_text(
            "# More\n\n" + "".join(f"![x](imagegen:slow image {n})\n\n" for n in range(8))
        )
        api.latency = 0.5
        proc = start_mkdocs(
            root, env={"OPENAI_API_KEY": KEY}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 60
            while len(api.generation_requests()) < 6 + 3 and time.monotonic() < deadline:
                time.sleep(0.02)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
        assert (root / "docs-images" / "imagegen.lock").read_bytes() == before
        assert not parse_manifest(before.decode()).problems
        # the next build finishes the rest and writes them all
        after = build(root, "--strict")
        assert after.returncode == 0, after.output
        assert len(manifest(root)) == 14


def test_generate_fills_the_lock_and_prune_empties_what_no_page_uses(
    tmp_path: Path, fake_api: FakeImageAPI
) -> None:
    root = lock_site(tmp_path, fake_api)
    generated = command(root, "generate")
    assert generated.exit_code == 0, generated.output
    assert len(manifest(root)) == 3 and len(fake_api.generation_requests()) == 3
    # a contributor's generated images are all a keyless frozen build needs
    shutil.rmtree(root / ".cache")
    assert run_mkdocs(root, "--strict", env={"IMAGEGEN_FROZEN": "1"}).returncode == 0

    set_plugin(root, model="gpt-image-1")  # every directive now shows a pin: pins are in use
    (root / "docs" / "guide.md").write_text("# Guide\n\nNo pictures any more.\n")
    dry = command(root, "prune", "--dry-run")
    assert "would remove 1 unused image(s) from the lock" in dry.output
    assert len(manifest(root)) == 3
    pruned = command(root, "prune")
    assert pruned.exit_code == 0, pruned.output
    lines = manifest(root)
    assert {line["prompt"] for line in lines} == {"a lighthouse at dusk", "a harbour in fog"}
    assert {p.name for p in (root / "docs-images").glob("*.png")} == {line["file"] for line in lines}
    assert all(
        r["state"] == "outdated" for r in json.loads(command(root, "status", "--json").stdout)["directives"]
    )


def test_frozen_with_a_lock_fails_only_without_an_image_or_a_pin(
    tmp_path: Path, fake_api: FakeImageAPI
) -> None:
    root = lock_site(tmp_path, fake_api)
    assert build(root).returncode == 0
    shutil.rmtree(root / ".cache")
    set_plugin(root, model="gpt-image-1")
    frozen = run_mkdocs(root, "--strict", env={"IMAGEGEN_FROZEN": "1"})
    assert frozen.returncode == 0, frozen.output
    assert "3 outdated" in frozen.output
    (root / "docs" / "new.md").write_text("# New\n\n![n](imagegen:a brand new picture)\n")
    frozen = run_mkdocs(root, env={"IMAGEGEN_FROZEN": "1"})
    assert frozen.returncode != 0 and "new.md:3" in frozen.output


def test_update_only_keeps_the_other_pins(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    root = lock_site(tmp_path, fake_api)
    assert build(root).returncode == 0
    set_plugin(root, model="gpt-image-1")
    updated = command(root, "update", "--only", "guide.md")
    assert updated.exit_code == 0, updated.output
    # guide.md's two directives: the boat, and the lighthouse (also on index.md)
    assert len(fake_api.generation_requests()) == 5
    rows = json.loads(command(root, "status", "--json").stdout)["directives"]
    assert {(r["page"], r["state"]) for r in rows} == {
        ("guide.md", "cached"),
        ("index.md", "cached"),
        ("index.md", "outdated"),
    }
    harbour = next(r for r in rows if r["state"] == "outdated")
    assert harbour["pinned"] in {line["key"] for line in manifest(root)}
    assert (root / "docs-images" / f"{harbour['pinned']}.png").exists()


def test_a_pin_of_another_format_and_size_keeps_its_own(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    root = lock_site(tmp_path, fake_api, pages={"index.md": "# Home\n\n![a](imagegen:a wide shot)\n"})
    assert build(root).returncode == 0
    set_plugin(root, format="webp", size="1536x1024")
    result = build(root, "--strict")
    assert result.returncode == 0 and "1 outdated" in result.output, result.output
    (name,) = site_images(result)
    assert name.endswith(".png")  # the pinned PNG is not published under a .webp name
    assert 'height="1024"' in result.page() and 'width="1024"' in result.page()


@pytest.mark.parametrize(("folder", "inside"), [("site/images", "site_dir"), ("docs/images", "docs_dir")])
def test_a_lock_folder_inside_site_or_docs_is_refused_by_build_and_command(
    tmp_path: Path, fake_api: FakeImageAPI, folder: str, inside: str
) -> None:
    """site_dir is emptied on every build; docs_dir would publish the lock, and serve would loop."""
    lock_site(tmp_path, fake_api, lock=folder)
    built = build(tmp_path)
    assert built.returncode == 1 and "Traceback" not in built.output
    assert f"is inside {inside}" in built.output and "such as docs-images" in built.output
    status = CliRunner().invoke(cli.main, ["status", "-f", str(tmp_path / "mkdocs.yml")])
    assert status.exit_code == 1 and f"is inside {inside}" in status.output
    assert fake_api.generation_requests() == [] and not (tmp_path / folder).exists()
