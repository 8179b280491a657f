"""Trust boundaries: a tampered cache, a hostile page, a hostile API or a careless config can run
nothing, read nothing, delete nothing, stall nothing and leak nothing.

Each test reproduces one row of the attack table (issue 11) against a real build, the real
`mkdocs-imagegen` command and the loopback fake API, and asserts the safe outcome.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import generated_images, run_mkdocs, write_site

from mkdocs_imagegen.cache import CacheError, ImageCache

CACHE = ".cache/plugin/imagegen"
CLI = str(Path(sys.executable).with_name("mkdocs-imagegen"))


def cli(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real `mkdocs-imagegen` command, as a user (or CI) runs it."""
    full = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "IMAGEGEN_FROZEN")}
    full.update(env or {})
    return subprocess.run(
        [CLI, args[0], "-f", str(root / "mkdocs.yml"), *args[1:]],
        capture_output=True,
        text=True,
        env=full,
        cwd=root,
        timeout=120,
    )


def rows(root: Path) -> dict[str, tuple[int, int, str | None, object]]:
    """{name: (rowid, mode, filename, value)} of the cache index, read with sqlite directly."""
    with sqlite3.connect(root / CACHE / "cache.db") as con:
        return {
            key: (rowid, mode, filename, value)
            for rowid, key, mode, filename, value in con.execute(
                "SELECT rowid, key, mode, filename, value FROM Cache"
            )
        }


def tamper(root: Path, name: str, **columns: object) -> None:
    """What anyone who can write the cache (a restored CI cache, a shared runner) can do."""
    with sqlite3.connect(root / CACHE / "cache.db") as con:
        sets = ", ".join(f"{column} = ?" for column in columns)
        con.execute(f"UPDATE Cache SET {sets} WHERE key = ?", [*columns.values(), name])


def one_image_site(root: Path, prompt: str = "a lighthouse") -> tuple[str, bytes]:
    """A built site with one cached image: (its key, its bytes)."""
    write_site(root, {"index.md": f"# Home\n\n![a](imagegen:{prompt})\n"})
    first = run_mkdocs(root, "--strict")
    assert first.returncode == 0, first.output
    (image,) = generated_images(first)
    return image.stem, image.read_bytes()


class Pwn:
    """A pickle that runs a command when it is loaded."""

    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.canary}",)


# -- the cache: no code and no paths from stored data -------------------------------------------------


def test_a_pickled_metadata_record_is_never_loaded(tmp_path: Path) -> None:
    key, original = one_image_site(tmp_path)
    canary = tmp_path / "canary"
    payload = pickle.dumps(Pwn(canary))
    tamper(tmp_path, f"img-meta:{key}", mode=4, value=sqlite3.Binary(payload))
    # A pickled *key* too: listing the cache (prune, report) must not unpickle it either.
    with sqlite3.connect(tmp_path / CACHE / "cache.db") as con:
        con.execute(
            "INSERT INTO Cache (key, raw, store_time, expire_time, access_time, access_count, tag, size,"
            " mode, filename, value) VALUES (?, 0, 0, NULL, 0, 0, NULL, 0, 1, NULL, 'x')",
            [sqlite3.Binary(payload)],
        )
    for args in (("check",), ("status", "--json"), ("report", "-o", str(tmp_path / "r.html")), ("prune",)):
        result = cli(tmp_path, *args)
        assert "Traceback" not in result.stderr, result.stderr
        assert not canary.exists(), f"{args[0]} ran the pickle"
    rebuilt = run_mkdocs(tmp_path, "--strict")
    assert rebuilt.returncode == 0, rebuilt.output
    assert not canary.exists()
    assert "0 from cache, 1 generated" in rebuilt.output  # damage, regenerated
    (image,) = generated_images(rebuilt)
    assert image.read_bytes() == original


def test_a_metadata_record_that_is_not_a_mapping_is_damage(tmp_path: Path) -> None:
    key, _ = one_image_site(tmp_path)
    for value in ("[1, 2, 3]", '"text"', "not json", "[" * 100_000 + "]" * 100_000, "{" + '"a":' * 5):
        tamper(tmp_path, f"img-meta:{key}", value=value)
        checked = cli(tmp_path, "check")
        assert checked.returncode == 1 and "Traceback" not in checked.stderr, checked.stderr
        rebuilt = run_mkdocs(tmp_path, "--strict")
        assert rebuilt.returncode == 0 and "Traceback" not in rebuilt.output, rebuilt.output
        assert "1 generated" in rebuilt.output


def test_a_file_outside_the_cache_is_never_published_or_deleted(tmp_path: Path) -> None:
    key, original = one_image_site(tmp_path)
    outside = tmp_path / "outside" / "secret.png"
    outside.parent.mkdir()
    secret = b"\x89PNG\r\n\x1a\n root:x:0:0:root:/root:/bin/bash (a secret outside the cache)"
    outside.write_bytes(secret)
    ((_, _, _, text),) = [v for k, v in rows(tmp_path).items() if k == f"img-meta:{key}"]
    meta = json.loads(str(text))
    # The record made to describe the outside file exactly (size and digest); the row points at it
    # (a file-backed value, as diskcache would read and delete it), and so does a symlink planted
    # where the image file is.
    meta.update(bytes=len(secret), sha256=hashlib.sha256(secret).hexdigest())
    images = tmp_path / CACHE / "images" / "img" / key[:2]
    for old in images.iterdir():
        old.unlink()
    (images / f"{key}-{meta['sha256'][:16]}.img").symlink_to(outside)
    tamper(tmp_path, f"img-meta:{key}", value=json.dumps(meta))
    checked = cli(tmp_path, "check")
    assert checked.returncode == 1, checked.stdout  # not "all cached"
    rebuilt = run_mkdocs(tmp_path, "--strict")
    assert rebuilt.returncode == 0, rebuilt.output
    published = [p.read_bytes() for p in rebuilt.site.rglob("*") if p.is_file()]
    assert secret not in published and original in published

    # Now a row that names the outside file itself; dropping it must not delete that file.
    tamper(tmp_path, f"img-meta:{key}", mode=2, filename=str(outside), value=None)
    for args in (("check",), ("prune",)):
        assert "Traceback" not in cli(tmp_path, *args).stderr
    again = run_mkdocs(tmp_path, "--strict")
    assert again.returncode == 0, again.output
    assert secret not in [p.read_bytes() for p in again.site.rglob("*") if p.is_file()]
    assert outside.read_bytes() == secret and outside.parent.is_dir()
    with sqlite3.connect(tmp_path / CACHE / "cache.db") as con:
        con.execute(
            "INSERT INTO Cache (key, raw, mode, filename, value, store_time, size, access_count)"
            " VALUES ('img:ffffffffffffffffffffffffffffffff', 1, 2, ?, NULL, 0, 1, 0)",
            [str(outside)],
        )
    assert cli(tmp_path, "prune").returncode in (0, 1)
    with ImageCache(str(tmp_path / CACHE)) as cache:
        cache.delete("ffffffffffffffffffffffffffffffff")
    assert outside.read_bytes() == secret and outside.parent.is_dir()


def test_sqlite_settings_planted_in_the_cache_are_not_applied(tmp_path: Path) -> None:
    one_image_site(tmp_path)
    with sqlite3.connect(tmp_path / CACHE / "cache.db") as con:
        con.execute("INSERT INTO Settings VALUES ('sqlite_query_only', 1)")
        con.execute("UPDATE Settings SET value = 'least-recently-stored' WHERE key = 'eviction_policy'")
        con.execute("UPDATE Settings SET value = 1 WHERE key = 'size_limit'")
    again = run_mkdocs(tmp_path, "--strict")
    assert again.returncode == 0 and "1 from cache" in again.output, again.output


def test_the_write_probe_never_follows_a_planted_symlink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    for pid in {os.getpid(), *range(1, 400)}:
        (cache_dir / f".write-test-{pid}").symlink_to(victim)
    ImageCache(str(cache_dir)).close()
    assert victim.read_text() == "precious"
    # Even a name guessed exactly (the random part made predictable here) is never written through.
    monkeypatch.setattr(os, "urandom", lambda n: b"\x00" * n)
    (cache_dir / f".write-test-{os.getpid()}-{'00' * 6}").symlink_to(victim)
    with pytest.raises(CacheError, match="cannot use the image cache directory"):
        ImageCache(str(cache_dir))
    assert victim.read_text() == "precious"


# -- a file checked is the file copied ----------------------------------------------------------------

HOOK = """
import os, subprocess, sys

def on_env(env, config, files, **kwargs):
    # Runs after imagegen checked its images, before MkDocs copies them: another process replaces
    # every entry now.
    cli = os.path.join(os.path.dirname(sys.executable), "mkdocs-imagegen")
    if os.environ.get("RACE_INNER"):  # the command plans through a build of its own: no recursion
        return env
    args = os.environ["RACE_ARGS"].split()
    environ = {**os.environ, "OPENAI_API_KEY": os.environ["RACE_KEY"], "RACE_INNER": "1"}
    subprocess.run([cli, "generate", *args, "-f", config.config_file_path], check=True, env=environ)
    return env
"""


@pytest.mark.parametrize("race", ["generate --force", "real replaces fallback"])
def test_a_concurrent_generate_never_crashes_a_build(tmp_path: Path, race: str) -> None:
    from conftest import ENV, KEY

    from mkdocs_imagegen.testing import FakeImageAPI

    pages = {"index.md": "# Home\n\n![a](imagegen:raced one)\n\n![b](imagegen:raced two)\n"}
    (tmp_path / "race_hook.py").write_text(HOOK)
    with FakeImageAPI() as api:
        write_site(
            tmp_path,
            pages,
            plugin={"provider": "openai", "base_url": api.base_url, "max_retries": 0, "timeout": 10},
            hooks=["race_hook.py"],
        )
        if race == "generate --force":
            first = run_mkdocs(tmp_path, "--strict", env={**ENV, "RACE_KEY": KEY, "RACE_ARGS": "--dry-run"})
            assert first.returncode == 0, first.output
            before = {p.name: p.read_bytes() for p in generated_images(first)}
            # Different bytes for the same keys: the API now paints them differently.
            from mkdocs_imagegen.testing import Behaviour, encode_image

            api.enqueue(*(Behaviour("b64_data", data=encode_image(1024, 1024, "png", (9, 9, 9))),) * 2)
            raced = run_mkdocs(tmp_path, "--strict", env={**ENV, "RACE_KEY": KEY, "RACE_ARGS": "--force"})
            assert raced.returncode == 0, raced.output
            # What was published is what this build checked (the old images), complete.
            assert {p.name: p.read_bytes() for p in generated_images(raced)} == before
        else:
            # No key: the build shows placeholders; meanwhile a `generate` with the key replaces them.
            raced = run_mkdocs(tmp_path, env={"RACE_KEY": KEY, "RACE_ARGS": ""})
            assert raced.returncode == 0, raced.output
            assert len(generated_images(raced)) == 2
        assert "FileNotFoundError" not in raced.output and "Traceback" not in raced.output
    pins = tmp_path / CACHE / "pins"
    assert not pins.exists() or list(pins.iterdir()) == []  # released when the build ended


def test_pinned_entries_survive_replacement(tmp_path: Path) -> None:
    from mkdocs_imagegen.testing import encode_image

    key = "0123456789abcdef0123456789abcdef"
    old, new = encode_image(64, 64, "png", (1, 2, 3)), encode_image(64, 64, "png", (4, 5, 6))
    meta = {"format": "png", "width": 64, "height": 64}
    with ImageCache(str(tmp_path), pin=True) as build, ImageCache(str(tmp_path)) as other:
        build.put(key, old, meta, fallback=True)
        seen = build.get(key, fallback=True)
        assert seen is not None
        other.put(key, new, meta)  # the real image replaces the placeholder
        assert Path(seen.path).read_bytes() == old
        real = build.get(key)
        assert real is not None
        other.put(key, old, meta)  # and is replaced again (generate --force)
        assert Path(real.path).read_bytes() == new
        assert other.get(key) is not None and other.get(key, fallback=True) is None


# -- templates are the site owner's ---------------------------------------------------------------

BOMBS = {
    "nested loops": "{{ prompt }}{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "huge string": "{{ prompt }}{{ ('x' * 4000000000)[:10] }}",
    "include": '{{ prompt }}{% include "x" %}',
}


@pytest.mark.timeout(90)
@pytest.mark.parametrize("where", ["front matter", "directive"])
def test_a_page_cannot_set_a_prompt_template(tmp_path: Path, where: str) -> None:
    bomb = json.dumps(BOMBS["nested loops"])
    if where == "front matter":
        page = f"---\nimagegen:\n  prompt_template: {bomb}\n---\n# Home\n\n![a](imagegen:x)\n"
        line = 2  # the front matter's own line: one message for the page
    else:
        page = f"# Home\n\n```imagegen\nprompt: x\nprompt_template: {bomb}\n```\n"
        line = 3
    write_site(tmp_path, {"index.md": page})
    result = run_mkdocs(tmp_path, timeout=60)
    assert f"index.md:{line}: " in result.output, result.output
    assert "prompt_template can only be set in mkdocs.yml" in result.output
    assert "Traceback" not in result.output and generated_images(result) == []
    checked = cli(tmp_path, "check")
    assert checked.returncode == 1 and "Traceback" not in checked.stderr


@pytest.mark.timeout(90)
@pytest.mark.parametrize("bomb", sorted(BOMBS))
def test_a_runaway_site_template_is_a_page_line_error(tmp_path: Path, bomb: str) -> None:
    pages = {"index.md": "# Home\n\n" + "".join(f"![{n}](imagegen:bomb {n})\n\n" for n in range(20))}
    write_site(tmp_path, pages, plugin={"prompt_template": BOMBS[bomb]})
    result = run_mkdocs(tmp_path, timeout=60)
    assert result.returncode == 0, result.output
    assert "index.md:3: prompt_template failed" in result.output, result.output
    assert "index.md:41: prompt_template failed" in result.output
    assert "Traceback" not in result.output and generated_images(result) == []
    checked = cli(tmp_path, "check")
    assert checked.returncode == 1 and "Traceback" not in checked.stderr


def test_a_template_without_the_prompt_is_a_config_error(tmp_path: Path) -> None:
    write_site(tmp_path, {"index.md": "# Home\n"}, plugin={"prompt_template": "flat vector illustration"})
    result = run_mkdocs(tmp_path)
    assert result.returncode == 1 and "never uses {{ prompt }}" in result.output, result.output
    assert "Traceback" not in result.output


# -- careless config ------------------------------------------------------------------------------


def test_userinfo_in_base_url_is_refused_and_never_shown(tmp_path: Path) -> None:
    secret = "sk-secret-in-the-url-0123456789abcdef"
    write_site(
        tmp_path,
        {"index.md": "# Home\n\n![a](imagegen:x)\n"},
        plugin={"provider": "openai", "base_url": f"https://user:{secret}@gateway.example/v1"},
    )
    outputs = [run_mkdocs(tmp_path).output, cli(tmp_path, "status").stderr]
    for text in outputs:
        assert "must not hold a user name or password (https://***@gateway.example/v1)" in text, text
        assert secret not in text and "Traceback" not in text
    assert not (tmp_path / "site").exists()
    assert not any(
        secret.encode() in p.read_bytes()
        for p in tmp_path.rglob("*")
        if p.is_file() and p.name != "mkdocs.yml"
    )


@pytest.mark.parametrize("inside", ["site/imagegen-cache", "docs/.cache"])
def test_a_cache_inside_site_dir_or_docs_dir_is_refused(tmp_path: Path, inside: str) -> None:
    write_site(tmp_path, {"index.md": "# Home\n\n![a](imagegen:x)\n"}, plugin={"cache_dir": inside})
    name = "site_dir" if inside.startswith("site") else "docs_dir"
    result = run_mkdocs(tmp_path)
    assert result.returncode == 1 and f"is inside {name}" in result.output, result.output
    checked = cli(tmp_path, "check")
    assert checked.returncode == 1 and f"is inside {name}" in checked.stderr, checked.stderr
    assert "Traceback" not in result.output + checked.stderr
    assert not (tmp_path / inside).exists()


def test_a_key_pasted_as_api_key_env_is_refused_and_never_echoed(tmp_path: Path) -> None:
    pasted = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
    write_site(
        tmp_path,
        {"index.md": "# Home\n\n![a](imagegen:x)\n"},
        plugin={"provider": "openai", "api_key_env": pasted},
    )
    outputs = [run_mkdocs(tmp_path).output, cli(tmp_path, "status").stderr]
    for text in outputs:
        assert "option 'api_key_env': expected the NAME of an environment variable" in text, text
        assert pasted not in text and pasted[:12] not in text


# -- hostile answers --------------------------------------------------------------------------------

# 34 bytes of lossless WebP that decode to 16383x3906 pixels: a quarter of a gigabyte each.
WEBP_BOMB = bytes.fromhex("524946461a000000574542505650384c0e0000002ffe7fd003071011fd0f4444ff03")
PEAK_RSS_LIMIT_MB = 400

PEAK_RSS = """
import resource, runpy, sys
sys.argv = ["mkdocs", "build"]
try:
    runpy.run_module("mkdocs", run_name="__main__")
except SystemExit:
    pass
print("PEAK_RSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def openai_build(root: Path, api: object, pages: dict[str, str], *args: str, **plugin: object):
    from conftest import ENV

    options = {"provider": "openai", "base_url": api.base_url, "timeout": 30, "max_retries": 0, **plugin}  # type: ignore[attr-defined]
    write_site(root, pages, plugin=options)
    return run_mkdocs(root, *args, env=ENV)


def test_hostile_answers_keep_peak_memory_flat(tmp_path: Path) -> None:
    from conftest import ENV

    from mkdocs_imagegen.testing import Behaviour, FakeImageAPI

    n = 16
    pages = {"index.md": "# Home\n\n" + "".join(f"![{i}](imagegen:bomb {i})\n\n" for i in range(n + 2))}
    with FakeImageAPI() as api:
        # Sixteen WebPs declaring 16383x3906 at once, and two 300 MB b64_json bodies (one without a
        # Content-Length: only a cap while it streams can stop it).
        api.enqueue(
            *[Behaviour("b64_data", data=WEBP_BOMB)] * n,
            Behaviour("b64_huge", size=300 * 1024 * 1024),
            Behaviour("b64_huge", size=300 * 1024 * 1024, content_length=False),
        )
        write_site(
            tmp_path,
            pages,
            plugin={"provider": "openai", "base_url": api.base_url, "max_retries": 0, "concurrency": n + 2},
        )
        env = {k: v for k, v in os.environ.items() if k not in ("IMAGEGEN_FROZEN",)} | ENV
        proc = subprocess.run(
            [sys.executable, "-c", PEAK_RSS],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    output = proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert output.count("far more than the 1024x1024 asked for") == n, output[-3000:]
    assert output.count("the API's answer is larger than") == 2
    assert "Traceback" not in output
    peak_mb = int(output.rsplit("PEAK_RSS_KB", 1)[1].split()[0]) / 1024
    print(f"peak RSS of the hostile build: {peak_mb:.0f} MB")
    assert peak_mb < PEAK_RSS_LIMIT_MB, f"peak RSS {peak_mb:.0f} MB"


class Canary:
    """A loopback server standing for the cloud metadata service: it records every request."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[str] = []
        canary = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                canary.requests.append(self.path)
                body = b"AccessKeyId=AKIA-SECRET-FROM-METADATA"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/latest/meta-data/iam/credentials"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Canary:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(
    "how", ["direct", "redirect", "localhost name", "ipv6 loopback", "mapped ipv4", "private", "link-local"]
)
def test_an_image_url_to_a_private_address_is_never_fetched(tmp_path: Path, how: str) -> None:
    from mkdocs_imagegen.testing import Behaviour, FakeImageAPI

    with Canary() as canary, FakeImageAPI() as api:
        port = canary.server.server_port
        url = {
            "direct": canary.url,
            "redirect": canary.url,
            "localhost name": f"http://localhost:{port}/latest/meta-data/",
            "ipv6 loopback": f"http://[::1]:{port}/latest/meta-data/",
            "mapped ipv4": f"http://[::ffff:127.0.0.1]:{port}/latest/meta-data/",
            "private": "http://10.0.0.1/latest/meta-data/",
            "link-local": "http://169.254.169.254/latest/meta-data/",
        }[how]
        api.enqueue(Behaviour("redirect_to" if how == "redirect" else "url_to", url=url))
        result = openai_build(tmp_path, api, {"index.md": "# Home\n\n![a](imagegen:ssrf)\n"})
        assert canary.requests == []
    assert result.returncode == 0, result.output
    assert "index.md:3:" in result.output and "loopback, private or link-local address" in result.output
    assert "AKIA" not in result.output
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert b"AKIA" not in path.read_bytes()


def test_an_image_url_on_base_urls_own_host_is_fetched(tmp_path: Path) -> None:
    from mkdocs_imagegen.testing import FakeImageAPI

    with FakeImageAPI(mode="url") as api:
        result = openai_build(
            tmp_path, api, {"index.md": "# Home\n\n![a](imagegen:a local gateway)\n"}, "--strict"
        )
        assert result.returncode == 0, result.output
        assert [r.path for r in api.requests if r.method == "GET"] != []


def test_api_messages_cannot_forge_log_lines_or_reach_the_terminal(tmp_path: Path) -> None:
    from mkdocs_imagegen.testing import Behaviour, FakeImageAPI

    forged = "nope\r\nINFO    -  Documentation built in 0.01 seconds\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\x9b31m"
    with FakeImageAPI() as api:
        api.enqueue(Behaviour("error", status=400, message=forged))
        result = openai_build(tmp_path, api, {"index.md": "# Home\n\n![a](imagegen:forged)\n"})
    assert result.returncode == 0, result.output
    lines = result.output.splitlines()
    assert sum(ln.startswith("INFO    -  Documentation built") for ln in lines) == 1
    assert not any(ch in result.output for ch in "\x1b\x07\x9b\r")
    (line,) = [ln for ln in lines if "index.md:3:" in ln]
    assert "nope" in line and "Documentation built in 0.01" in line  # shown, harmless, on its own line


def _png(**kwargs: object) -> bytes:
    import io

    from PIL import Image, PngImagePlugin

    out = io.BytesIO()
    mode = kwargs.pop("mode", "RGB")
    image = Image.new(str(mode), (1024, 1024), 7000 if mode == "I;16" else (40, 80, 120))
    if kwargs.pop("text", False):
        info = PngImagePlugin.PngInfo()
        info.add_text("Comment", "<script>alert(1)</script>")
        kwargs["pnginfo"] = info
    if kwargs.pop("animated", False):
        kwargs.update(save_all=True, append_images=[Image.new("RGB", (1024, 1024), (200, 0, 0))])
    image.save(out, "PNG", **kwargs)
    return out.getvalue()


@pytest.mark.parametrize("kind", ["trailing html", "animated", "16-bit", "text chunks"])
def test_what_is_published_is_a_clean_image(tmp_path: Path, kind: str) -> None:
    from PIL import Image

    from mkdocs_imagegen import imaging
    from mkdocs_imagegen.testing import Behaviour, FakeImageAPI

    data = {
        "trailing html": lambda: _png() + b"<html><script>alert(1)</script></html>",
        "animated": lambda: _png(animated=True),
        "16-bit": lambda: _png(mode="I;16"),
        "text chunks": lambda: _png(text=True),
    }[kind]()
    assert not imaging.is_clean(data, "png")
    with FakeImageAPI() as api:
        api.enqueue(Behaviour("b64_data", data=data))
        result = openai_build(tmp_path, api, {"index.md": "# Home\n\n![a](imagegen:dirty)\n"}, "--strict")
    assert result.returncode == 0, result.output
    (image,) = generated_images(result)
    published = image.read_bytes()
    assert imaging.is_clean(published, "png")
    assert b"<script" not in published and b"acTL" not in published and published[24] == 8
    with Image.open(image) as img:
        assert getattr(img, "n_frames", 1) == 1 and img.size == (1024, 1024)


@pytest.mark.parametrize(
    "answer",
    ["deeply nested", "data not a list", "item not a mapping", "usage nested", "huge error", "null"],
)
def test_no_malformed_answer_aborts_a_placeholder_build(tmp_path: Path, answer: str) -> None:
    import base64

    from mkdocs_imagegen.testing import Behaviour, FakeImageAPI, encode_image

    png = base64.b64encode(encode_image(1024, 1024, "png", (1, 2, 3))).decode()
    body = {
        "deeply nested": b'{"data": ' + b"[" * 200_000 + b"]" * 200_000 + b"}",
        "data not a list": b'{"data": {"b64_json": 5}}',
        "item not a mapping": b'{"data": ["x"]}',
        "usage nested": (
            '{"data": [{"b64_json": "' + png + '"}], "usage": ' + "[" * 100_000 + "]" * 100_000 + "}"
        ).encode(),
        "huge error": b"x" * 5_000_000,
        "null": b"null",
    }[answer]
    status = 500 if answer == "huge error" else 200
    with FakeImageAPI() as api:
        api.enqueue(Behaviour("raw", body=body, status=status))
        result = openai_build(tmp_path, api, {"index.md": "# Home\n\n![a](imagegen:malformed)\n"})
    assert result.returncode == 0, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert len(generated_images(result)) == 1
    if answer != "usage nested":
        assert "index.md:3:" in result.output and "placeholder is shown" in result.output


# -- the key --------------------------------------------------------------------------------------


def test_the_key_is_scrubbed_before_truncation_and_from_every_stored_field(tmp_path: Path) -> None:
    from conftest import KEY

    from mkdocs_imagegen.testing import Behaviour, FakeImageAPI, encode_image

    png = encode_image(1024, 1024, "png", (5, 6, 7))
    pages = {"index.md": "# Home\n\n![a](imagegen:one)\n\n![b](imagegen:two)\n\n![c](imagegen:three)\n"}
    with FakeImageAPI() as api:
        api.enqueue(
            Behaviour("raw", status=400, body=("f" * 185 + KEY).encode(), content_type="text/plain"),
            Behaviour(
                "b64_data", data=png, revised_prompt=f"a cat, key {KEY}", usage={"note": KEY, "n": [KEY]}
            ),
            Behaviour("error", status=400, message="m" * 490 + KEY),
        )
        result = openai_build(tmp_path, api, pages, concurrency=1)
        report = tmp_path / "report.html"
        reported = cli(tmp_path, "report", "-o", str(report), env={"OPENAI_API_KEY": KEY})
        status = cli(tmp_path, "status", "--json", env={"OPENAI_API_KEY": KEY})
    texts = [result.output, reported.stdout + reported.stderr, status.stdout + status.stderr]
    for text in texts:
        for n in range(12, len(KEY) + 1):
            assert KEY[:n] not in text, (n, text)
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.name != "mkdocs.yml":
            data = path.read_bytes()
            assert KEY[:12].encode() not in data, path
    assert "a cat, key [redacted]" in report.read_text()


def test_a_short_test_key_never_garbles_messages(tmp_path: Path) -> None:
    from mkdocs_imagegen.testing import Behaviour, FakeImageAPI

    with FakeImageAPI() as api:
        api.enqueue(Behaviour("error", status=400, message="refused for x, the key"))
        options = {"provider": "openai", "base_url": api.base_url, "max_retries": 0}
        write_site(tmp_path, {"index.md": "# Home\n\n![a](imagegen:a fox)\n"}, plugin=options)
        result = run_mkdocs(tmp_path, env={"OPENAI_API_KEY": "x"})
    assert "index.md:3:" in result.output and "inde[redacted]" not in result.output, result.output
    assert "refused for [redacted], the key" in result.output


# -- hostile input -----------------------------------------------------------------------------------

DEEP_YAML = "```imagegen\nprompt: &p x\nextra: " + "[" * 1000 + "]" * 1000 + "\n```\n"
HOSTILE_PAGES = {
    "superscript width": ('![a](imagegen:x){ width="²" }\n', "must be a whole number of pixels"),
    "5000-digit width": (
        '![a](imagegen:x){ width="' + "9" * 5000 + '" }\n',
        "must be a whole number of pixels",
    ),
    "deep yaml with anchor": (DEEP_YAML, "nested too deeply"),
    "dotfile source": ("```imagegen\nprompt: x\nsource: .env\n```\n", "MkDocs leaves out of the site"),
    "dot folder source": (
        "```imagegen\nprompt: x\nsource: .private/a.png\n```\n",
        "MkDocs leaves out of the site",
    ),
    "source not an image": (
        "```imagegen\nprompt: x\nsource: notes.png\n```\n",
        "is not a PNG, JPEG or WebP image",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_PAGES))
def test_hostile_page_input_is_a_page_line_error(tmp_path: Path, case: str) -> None:
    from mkdocs_imagegen import imaging  # noqa: F401  (the image the fixture writes below)
    from mkdocs_imagegen.testing import FakeImageAPI

    text, message = HOSTILE_PAGES[case]
    docs = tmp_path / "docs"
    (docs / ".private").mkdir(parents=True)
    (docs / ".env").write_text("OPENAI_API_KEY=sk-secret-of-the-dotfile\n")
    from mkdocs_imagegen.testing import encode_image

    (docs / ".private" / "a.png").write_bytes(encode_image(64, 64, "png", (1, 1, 1)))
    (docs / "notes.png").write_text("just text, named like an image")
    with FakeImageAPI() as api:
        write_site(
            tmp_path,
            {"page.md": "# Page\n\n" + text},
            plugin={"provider": "openai", "base_url": api.base_url, "max_retries": 0},
        )
        from conftest import ENV

        result = run_mkdocs(tmp_path, env=ENV)
        assert api.generation_requests() == []  # nothing was sent, nothing uploaded
    assert result.returncode == 0, result.output
    assert any("page.md:3:" in ln and message in ln for ln in result.output.splitlines()), result.output
    assert "Traceback" not in result.output
    checked = cli(tmp_path, "check")
    assert checked.returncode == 1 and "Traceback" not in checked.stderr


def test_an_output_dir_with_a_nul_is_a_config_error(tmp_path: Path) -> None:
    write_site(tmp_path, {"index.md": "# Home\n\n![a](imagegen:x)\n"}, plugin={"output_dir": "a\0b"})
    result = run_mkdocs(tmp_path)
    assert result.returncode == 1 and "must be a folder inside the site" in result.output, result.output
    assert "Traceback" not in result.output


def test_a_raw_token_image_in_a_page_is_left_alone(tmp_path: Path) -> None:
    write_site(
        tmp_path,
        {
            "index.md": "# Home\n\n![](imagegen-token:7)\n\n![](imagegen-token:0)\n\n![a](imagegen:x)\n",
            "other.md": "# Other\n\n![](imagegen-token:0)\n",
        },
    )
    result = run_mkdocs(tmp_path)
    assert result.returncode == 0 and "Traceback" not in result.output, result.output
    assert len(generated_images(result)) == 1


# -- spend in money -------------------------------------------------------------------------------


def test_max_cost_caps_what_a_build_spends(tmp_path: Path) -> None:
    from mkdocs_imagegen.testing import FakeImageAPI

    pages = {"index.md": "# Home\n\n" + "".join(f"![{n}](imagegen:cheap {n})\n\n" for n in range(3))}
    with FakeImageAPI() as api:
        # $0.006 an image (gpt-image-2, low, square): a cap of 1.5 cents allows two.
        result = openai_build(
            tmp_path, api, pages, model="gpt-image-2", quality="low", max_cost=0.015, concurrency=1
        )
        assert len(api.generation_requests()) == 2
    assert result.returncode == 0, result.output
    assert (
        "1 image(s) were not generated because they would take this build over max_cost ($0.015"
        in result.output
    )


@pytest.mark.parametrize("model", ["dall-e-3", "a-gateway-model"])
def test_a_page_cannot_spend_past_max_cost_with_a_dearer_model(tmp_path: Path, model: str) -> None:
    from mkdocs_imagegen.testing import FakeImageAPI

    # dall-e-3 hd at 1792x1024 is $0.12, over the cap; a gateway's own model has no known price,
    # which counts as over any cap.
    page = f"---\nimagegen:\n  model: {model}\n  quality: hd\n  size: 1792x1024\n---\n# Home\n\n![a](imagegen:dear)\n"
    if model != "dall-e-3":
        page = page.replace("  quality: hd\n  size: 1792x1024\n", "")
    with FakeImageAPI() as api:
        result = openai_build(tmp_path, api, {"index.md": page}, max_cost=0.10)
        assert api.generation_requests() == []
        assert result.returncode == 0, result.output
        assert "over max_cost ($0.100" in result.output, result.output
        generated = cli(tmp_path, "generate", env={"OPENAI_API_KEY": "sk-test-0123456789abcdef"})
        assert api.generation_requests() == []
    assert "1 held back by max_cost ($0.100" in generated.stdout, generated.stdout + generated.stderr


def test_without_max_cost_there_is_no_money_cap(tmp_path: Path) -> None:
    from mkdocs_imagegen.testing import FakeImageAPI

    with FakeImageAPI() as api:
        result = openai_build(
            tmp_path, api, {"index.md": "# Home\n\n![a](imagegen:x)\n"}, model="gateway-model"
        )
        assert len(api.generation_requests()) == 1
    assert result.returncode == 0 and "over max_cost" not in result.output, result.output
