"""Faults, concurrent builds and hostile input lose nothing, corrupt nothing and leak nothing."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import (
    ENV,
    KEY,
    generated_images,
    imgs,
    openai_site,
    resolve_src,
    run_mkdocs,
    start_mkdocs,
    write_site,
)
from conftest import openai_build as build
from PIL import Image

from mkdocs_imagegen import imaging
from mkdocs_imagegen.cache import ImageCache
from mkdocs_imagegen.testing import Behaviour, FakeImageAPI

CACHE = ".cache/plugin/imagegen"


def cache_entries(root: Path) -> list[tuple[str, bool, dict]]:
    with ImageCache(str(root / CACHE)) as cache:
        return list(cache.entries())


def assert_cache_sound(root: Path) -> int:
    """Every entry is complete and valid: its file exists, matches its digest and decodes."""
    entries = cache_entries(root)
    with ImageCache(str(root / CACHE)) as cache:
        for key, fallback, meta in entries:
            entry = cache.get(key, fallback=fallback)
            assert entry is not None, f"entry {key} is damaged"
            info = imaging.inspect(cache.read_bytes(entry))
            assert (info.width, info.height) == (meta["width"], meta["height"])
    return len(entries)


# -- faults --------------------------------------------------------------------------------------


def test_sigkill_mid_generation_leaves_a_sound_cache(tmp_path: Path) -> None:
    text = "# Home\n\n" + "".join(f"![{n}](imagegen:killed build {n})\n\n" for n in range(8))
    with FakeImageAPI(latency=0.5) as api:
        openai_site(tmp_path, api, {"index.md": text}, concurrency=2)
        proc = start_mkdocs(
            tmp_path, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + 60
        while len(api.generation_requests()) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.45)  # the first answers are being written, the next requests are in flight
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        done_before = assert_cache_sound(tmp_path)
        assert done_before < 8

        result = build(tmp_path, "--strict")
        assert result.returncode == 0, result.output
    assert assert_cache_sound(tmp_path) == 8
    assert len(api.generation_requests()) <= 8 + 4  # what finished before the kill is not asked again
    for img in imgs(result.page()):
        Image.open(resolve_src(result, "index.html", img["src"])).load()


def test_two_builds_at_once_share_the_cache_and_generate_each_key_once(tmp_path: Path) -> None:
    text = "# Home\n\n" + "".join(f"![{n}](imagegen:shared build {n})\n\n" for n in range(6))
    with FakeImageAPI(latency=0.3) as api:
        openai_site(
            tmp_path, api, {"index.md": text, "other.md": "# Other\n\n![x](imagegen:shared build 0)\n"}
        )
        env = {k: v for k, v in os.environ.items() if k != "IMAGEGEN_FROZEN"} | ENV
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", "mkdocs.yml", "-d", out],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for out in ("site-a", "site-b")
        ]
        outputs = [p.communicate(timeout=120)[0] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outputs
        assert len(api.generation_requests()) == 6
        assert sorted(r.json["prompt"] for r in api.generation_requests()) == [
            f"shared build {n}" for n in range(6)
        ]
    for page in ("index.html", "other/index.html"):
        a = (tmp_path / "site-a" / page).read_text()
        b = (tmp_path / "site-b" / page).read_text()
        assert imgs(a) == imgs(b)
    files_a = {p.name: p.read_bytes() for p in (tmp_path / "site-a" / "assets" / "imagegen").iterdir()}
    files_b = {p.name: p.read_bytes() for p in (tmp_path / "site-b" / "assets" / "imagegen").iterdir()}
    assert files_a == files_b and len(files_a) == 6


def test_a_large_cold_build_stays_within_a_small_open_file_limit(tmp_path: Path) -> None:
    """Claims (lock files) are held only by running jobs, not by every pending one."""
    text = "# Home\n\n" + "".join(f"![{n}](imagegen:many {n})\n\n" for n in range(300))
    write_site(tmp_path, {"index.md": text}, plugin={"size": "32x32"})
    script = (
        "import resource, sys, runpy; resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128)); "
        "sys.argv = ['mkdocs', 'build', '--strict']; runpy.run_module('mkdocs', run_name='__main__')"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "300 images in use: 0 from cache, 300 generated, 0 failed" in proc.stderr


def test_unusable_cache_directory_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where the cache folder should be")
    write_site(tmp_path, {"index.md": "# Home\n\n![a](imagegen:x)\n"}, plugin={"cache_dir": "blocker/cache"})
    result = run_mkdocs(tmp_path)
    assert result.returncode == 1
    assert f"cannot use the image cache directory {tmp_path / 'blocker' / 'cache'}" in result.output
    assert "Traceback" not in result.output


def test_disk_full_while_writing_fails_the_build_and_keeps_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from mkdocs.commands.build import build as mkdocs_build
    from mkdocs.config import load_config
    from mkdocs.exceptions import Abort

    import mkdocs_imagegen.cache

    write_site(tmp_path, {"index.md": "# Home\n\n![a](imagegen:no room)\n"})
    real_fdopen = os.fdopen

    class FullDisk:
        """A file that takes half of what it is given, then runs out of space."""

        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, data):
            self.fh.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

    def full_disk(fd, mode="r", *args, **kwargs):
        fh = real_fdopen(fd, mode, *args, **kwargs)
        return FullDisk(fh) if "w" in mode else fh

    monkeypatch.setattr(mkdocs_imagegen.cache.os, "fdopen", full_disk)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Abort):
        mkdocs_build(load_config(str(tmp_path / "mkdocs.yml")))
    message = next(r.getMessage() for r in caplog.records if "No space left" in r.getMessage())
    assert f"cannot write to the image cache directory {tmp_path / CACHE}" in message
    monkeypatch.undo()
    assert cache_entries(tmp_path) == []
    assert [p for p in (tmp_path / CACHE).rglob("*") if p.is_file() and "images" in p.parts] == []


def test_damaged_or_deleted_entries_are_regenerated_not_served(tmp_path: Path) -> None:
    write_site(
        tmp_path, {"index.md": "# Home\n\n![a](imagegen:will be damaged)\n\n![b](imagegen:will be deleted)\n"}
    )
    first = run_mkdocs(tmp_path, "--strict")
    assert first.returncode == 0, first.output
    originals = {p.name: p.read_bytes() for p in generated_images(first)}
    damaged, deleted = sorted((tmp_path / CACHE).rglob("*.img"))
    # Same size, same mtime, one flipped byte: only the digest can tell.
    stat = damaged.stat()
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    os.utime(damaged, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    deleted.unlink()

    second = run_mkdocs(tmp_path, "--strict")
    assert second.returncode == 0, second.output
    assert "0 from cache, 2 generated" in second.output
    assert {p.name: p.read_bytes() for p in generated_images(second)} == originals
    assert assert_cache_sound(tmp_path) == 2


# -- hostile or broken answers from the API ----------------------------------------------------------

HOSTILE = {
    "invalid_base64": ("invalid_base64", "invalid base64"),
    "not_image": ("not_image", "not an image"),
    "truncated_png": ("truncated_png", "truncated"),
    "html_200": ("html_200", "not an image answer"),
    "bomb": ("bomb", "image declares 100000x100000 pixels, far more than the 1024x1024 asked for"),
    "url_file_scheme": ("url_file_scheme", "scheme 'file:'"),
    "url_big": (Behaviour("url_big", size=40 * 1024 * 1024), "larger than"),
    "url_redirect_loop": ("url_redirect_loop", "redirected too many times"),
    "hang": (Behaviour("hang", seconds=4), "did not answer within 1 s"),
    "drip": (Behaviour("drip", seconds=4), "did not answer within 1 s"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_answers_are_rejected_and_nothing_is_cached(tmp_path: Path, case: str) -> None:
    behaviour, message = HOSTILE[case]
    with FakeImageAPI() as api:
        api.enqueue(behaviour, behaviour, behaviour)
        openai_site(
            tmp_path, api, {"docs.md": "# Docs\n\n![a](imagegen:hostile answer)\n"}, max_retries=0, timeout=1
        )
        result = build(tmp_path)
        assert result.returncode == 0, result.output
        warning = next(ln for ln in result.output.splitlines() if "docs.md:3:" in ln)
        assert "WARNING" in warning and message in warning, result.output
        assert [fallback for _, fallback, _ in cache_entries(tmp_path)] == [True]  # a placeholder, kept apart

        failing = build(tmp_path, "--strict")
        assert failing.returncode == 1
        write_site(
            tmp_path,
            {},
            plugin={
                "provider": "openai",
                "base_url": api.base_url,
                "timeout": 1,
                "max_retries": 0,
                "on_error": "fail",
            },
        )
        stopped = build(tmp_path)
        assert stopped.returncode == 1 and "docs.md:3:" in stopped.output and message in stopped.output
        assert "Traceback" not in result.output + stopped.output
    assert [fallback for _, fallback, _ in cache_entries(tmp_path)] == [True]


# -- hostile or broken input in the docs ---------------------------------------------------------------

BILLION_LAUGHS = (
    "```imagegen\n"
    'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
    "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
    "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
    "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
    "prompt: *g\n"
    "```\n"
)

HOSTILE_INPUT = {
    "long prompt": ("```imagegen\nprompt: " + "word " * 7000 + "\n```\n", "over the limit of 32000"),
    "prompt not text": ("```imagegen\nprompt: [1, 2, 3]\n```\n", "prompt must be text, not list"),
    "prompt number": ("```imagegen\nprompt: 42\n```\n", "prompt must be text, not int"),
    "yaml aliases": (BILLION_LAUGHS, "aliases are not allowed"),
    "unknown key": ("```imagegen\nprompt: x\ncolour: red\n```\n", "unknown key 'colour'"),
    "source dotdot": (
        "```imagegen\nprompt: x\nsource: ../../../etc/hostname\n```\n",
        "leads outside docs_dir",
    ),
    # A leading / means docs_dir (as MkDocs reads absolute links): never the machine's /etc.
    "source absolute": ("```imagegen\nprompt: x\nsource: /etc/hostname\n```\n", "not found in docs_dir"),
    "source drive": ("```imagegen\nprompt: x\nsource: C:/Windows/win.ini\n```\n", "is an absolute path"),
    "unterminated": ("```imagegen\nprompt: x\n", "unterminated imagegen block"),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", sorted(HOSTILE_INPUT))
def test_hostile_input_is_a_clear_error(tmp_path: Path, case: str) -> None:
    text, message = HOSTILE_INPUT[case]
    write_site(tmp_path, {"page.md": "# Page\n\n" + text})
    result = run_mkdocs(tmp_path)
    assert result.returncode == 0, result.output
    assert any("page.md:3:" in ln and message in ln for ln in result.output.splitlines()), result.output
    assert "Traceback" not in result.output
    assert generated_images(result) == []


def test_symlink_out_of_docs_is_never_read(tmp_path: Path) -> None:
    (tmp_path / "secret.png").write_bytes(b"not for the docs")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "escape.png").symlink_to(tmp_path / "secret.png")
    write_site(tmp_path, {"index.md": "# Home\n\n```imagegen\nprompt: x\nsource: escape.png\n```\n"})
    result = run_mkdocs(tmp_path)
    assert "index.md:3: source 'escape.png' leads outside docs_dir" in result.output


def test_windows_line_endings_and_byte_order_mark_work(tmp_path: Path) -> None:
    page = "\ufeff# Home\r\n\r\n```imagegen\r\nprompt: crlf block\r\nalt: crlf\r\nsize: 64x32\r\n```\r\n\r\n![a](imagegen:bom inline)\r\n"
    write_site(tmp_path, {"index.md": page.encode("utf-8")})
    result = run_mkdocs(tmp_path, "--strict")
    assert result.returncode == 0, result.output
    block, inline = imgs(result.page())
    assert (
        (block["width"], block["height"]) == ("64", "32") and block["alt"] == "crlf" and inline["alt"] == "a"
    )


# -- secrets -----------------------------------------------------------------------------------------


def test_the_key_appears_nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from mkdocs_imagegen.cli import main

    with FakeImageAPI() as api:
        # A hostile server that echoes the key back in its error message, then a 401, then success.
        api.enqueue(Behaviour("error", status=400, message=f"bad request for key {KEY}"), "echo_auth", "401")
        openai_site(
            tmp_path,
            api,
            {"index.md": "# Home\n\n![a](imagegen:one)\n\n![b](imagegen:two)\n\n![c](imagegen:three)\n"},
            max_retries=0,
            concurrency=1,
        )
        outputs = [build(tmp_path, "-v").output]
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        runner = CliRunner()
        cfg = str(tmp_path / "mkdocs.yml")
        for args in (
            ["status", "--json"],
            ["status"],
            ["generate"],
            ["report", "-o", str(tmp_path / "r.html")],
        ):
            outputs.append(runner.invoke(main, [*args, "-f", cfg]).output)
        outputs.append(build(tmp_path, "-v").output)
    assert "bad request for key [redacted]" in outputs[0]
    # The page echoing the header is not an image answer: none of its bytes are shown at all.
    assert "not an image answer" in outputs[0] and "Bearer" not in outputs[0]
    for text in outputs:
        assert KEY not in text
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
