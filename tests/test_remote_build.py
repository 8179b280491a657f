"""Many runners, one bucket: real `mkdocs build` processes against moto's S3 server and the fake API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Build, run_mkdocs, start_mkdocs, write_site
from s3server import S3, SECRET, s3_server

from mkdocs_imagegen.testing import FakeImageAPI

API_KEY = "sk-remote-test-0123456789abcdef"
PAGES = {
    "index.md": "# Home\n\n![A red lighthouse](imagegen:a red lighthouse)\n\n![A green boat](imagegen:a green boat)\n",
    "more.md": "# More\n\n```imagegen\nprompt: a blue whale\nalt: A blue whale\n```\n\n![A red lighthouse](imagegen:a red lighthouse)\n",
}
UNIQUE = 3


@pytest.fixture
def s3() -> Iterator[S3]:
    with s3_server() as server:
        yield server


def site(root: Path, api: FakeImageAPI, s3: S3, **plugin: object) -> Path:
    options = {
        "provider": "openai",
        "base_url": api.base_url,
        "timeout": 30,
        "size": "256x256",
        "remote_cache": f"s3://{s3.bucket}/team-docs",
        **plugin,
    }
    return write_site(root, PAGES, options)


def env(s3: S3, key: bool = True) -> dict[str, str]:
    return {**s3.env, **({"OPENAI_API_KEY": API_KEY} if key else {})}


def images(build: Build) -> dict[str, bytes]:
    folder = build.site / "assets" / "imagegen"
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def no_secret_anywhere(*roots: Path, output: str) -> None:
    assert SECRET not in output and API_KEY not in output
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert SECRET.encode() not in data, path
                assert API_KEY.encode() not in data, path


def test_a_second_runner_builds_from_the_store_with_no_key_and_no_request(tmp_path: Path, s3: S3) -> None:
    with FakeImageAPI() as api:
        first = run_mkdocs(site(tmp_path / "a", api, s3), env=env(s3))
        assert first.returncode == 0, first.output
        assert len(api.generation_requests()) == UNIQUE
        second = run_mkdocs(site(tmp_path / "b", api, s3), env=env(s3, key=False))
        assert second.returncode == 0, second.output
        assert len(api.generation_requests()) == UNIQUE  # nothing asked again
    assert images(second) == images(first)
    assert f"{UNIQUE} from the remote cache" in second.output
    no_secret_anywhere(tmp_path, output=first.output + second.output)


def test_concurrent_runners_generate_each_key_once_in_total(tmp_path: Path, s3: S3) -> None:
    with FakeImageAPI(latency=1.5) as api:
        roots = [site(tmp_path / f"runner{n}", api, s3) for n in range(3)]
        procs = [
            start_mkdocs(root, env=env(s3), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for root in roots
        ]
        outputs = [p.communicate(timeout=120)[0] for p in procs]
        assert all(p.returncode == 0 for p in procs), outputs
        prompts = sorted(r.params["prompt"] for r in api.generation_requests())
    assert prompts == ["a blue whale", "a green boat", "a red lighthouse"], outputs
    built = [images(Build(0, "", root / "site")) for root in roots]
    assert built[0] == built[1] == built[2]


def test_a_runner_killed_holding_a_lease_blocks_the_others_only_until_it_lapses(
    tmp_path: Path, s3: S3
) -> None:
    pages = {"index.md": "# Home\n\n![A slow moon](imagegen:a slow moon)\n"}
    with FakeImageAPI(latency=60) as slow:
        root = write_site(
            tmp_path / "doomed",
            pages,
            {
                "provider": "openai",
                "base_url": slow.base_url,
                "timeout": 90,
                "size": "256x256",
                "remote_cache": f"s3://{s3.bucket}/team-docs",
                "remote_cache_lease": 4,
            },
        )
        doomed = start_mkdocs(root, env=env(s3), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not any("/leases/" in k for k in s3.objects()) or not slow.generation_requests():
            assert time.monotonic() < deadline, "the first runner never took its lease"
            time.sleep(0.2)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
    with FakeImageAPI() as api:
        other = write_site(
            tmp_path / "other",
            pages,
            {
                "provider": "openai",
                "base_url": api.base_url,
                "timeout": 30,
                "size": "256x256",
                "remote_cache": f"s3://{s3.bucket}/team-docs",
            },
        )
        build = run_mkdocs(other, env=env(s3), timeout=90)
        assert build.returncode == 0, build.output
        assert len(api.generation_requests()) == 1  # took over the lapsed lease and made it
    assert any(k.endswith(".json") and "/entries/" in k for k in s3.objects())


def test_a_read_only_runner_writes_nothing(tmp_path: Path, s3: S3) -> None:
    with FakeImageAPI() as api:
        build = run_mkdocs(site(tmp_path, api, s3, remote_cache_mode="read-only"), env=env(s3))
        assert build.returncode == 0, build.output
        assert len(api.generation_requests()) == UNIQUE
    assert s3.objects() == {}


def test_a_mis_signed_entry_is_refused_when_signing_is_on(tmp_path: Path, s3: S3) -> None:
    with FakeImageAPI() as api:
        opts = {"remote_cache_signing_key_env": "IMAGEGEN_SIGNING_KEY"}
        first = run_mkdocs(
            site(tmp_path / "a", api, s3, **opts), env={**env(s3), "IMAGEGEN_SIGNING_KEY": "one"}
        )
        assert first.returncode == 0, first.output
        second = run_mkdocs(
            site(tmp_path / "b", api, s3, **opts), env={**env(s3), "IMAGEGEN_SIGNING_KEY": "two"}
        )
        assert second.returncode == 0, second.output
        assert len(api.generation_requests()) == 2 * UNIQUE  # refused, so made again locally
    assert second.output.count("signature does not match") == UNIQUE
    assert "one" not in second.output.split("IMAGEGEN_SIGNING_KEY")[0][-3:]


def test_a_stopped_store_degrades_to_local_generation_with_one_warning(tmp_path: Path, s3: S3) -> None:
    s3.server.stop()
    with FakeImageAPI() as api:
        build = run_mkdocs(site(tmp_path, api, s3), env=env(s3), timeout=120)
        assert build.returncode == 0, build.output
        assert len(api.generation_requests()) == UNIQUE
    assert build.output.count("remote cache s3://docs-images/team-docs cannot be used") == 1
    no_secret_anywhere(tmp_path, output=build.output)


def test_remote_cache_options_are_checked_when_the_config_loads(tmp_path: Path, s3: S3) -> None:
    with FakeImageAPI() as api:
        bad = run_mkdocs(site(tmp_path / "a", api, s3, remote_cache="s3://AKIA:pw@bucket/x"), env=env(s3))
        assert bad.returncode != 0 and "must not carry credentials" in bad.output and "pw@" not in bad.output
        unset = run_mkdocs(
            site(tmp_path / "b", api, s3, remote_cache_signing_key_env="NOT_SET_HERE"), env=env(s3)
        )
        assert unset.returncode != 0 and "NOT_SET_HERE, which is not set" in unset.output
        assert api.generation_requests() == []
        reader = run_mkdocs(
            site(
                tmp_path / "c",
                api,
                s3,
                remote_cache_signing_key_env="NOT_SET_HERE",
                remote_cache_mode="read-only",
            ),
            "--strict",
            env=env(s3),
        )
        assert reader.returncode == 0, reader.output


def command(root: Path, *args: str, env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "IMAGEGEN_FROZEN")}
    full_env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-m", "mkdocs_imagegen.cli", *args, "-f", str(root / "mkdocs.yml")],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=root,
        timeout=120,
    )


def test_the_command_knows_the_store(tmp_path: Path, s3: S3) -> None:
    import json

    with FakeImageAPI() as api:
        # A runner with no remote builds the images locally, then pushes them.
        a = site(tmp_path / "a", api, s3)
        built = run_mkdocs(a, env=env(s3))
        assert built.returncode == 0, built.output
        assert len(api.generation_requests()) == UNIQUE
        for path in list(s3.objects()):
            s3.client().delete_object(Bucket=s3.bucket, Key=path)
        pushed = command(a, "generate", "--push", env_extra=env(s3))
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        assert f"pushed {UNIQUE} image(s)" in pushed.stdout
        again = command(a, "generate", "--push", env_extra=env(s3))
        assert "pushed 0 image(s)" in again.stdout and f"{UNIQUE} were there already" in again.stdout

        # Another runner: status says the images are remote; check passes; a dry run costs nothing.
        b = site(tmp_path / "b", api, s3)
        status = command(b, "status", "--json", env_extra=env(s3, key=False))
        data = json.loads(status.stdout)
        assert {row["location"] for row in data["directives"]} == {"remote"}
        assert data["totals"]["remote"] == UNIQUE and data["estimated_cost"] == 0
        checked = command(b, "check", env_extra=env(s3, key=False))
        assert checked.returncode == 0 and "in the remote cache" in checked.stdout
        dry = command(b, "generate", "--dry-run", env_extra=env(s3))
        assert (
            "would generate 0 image(s)" in dry.stdout
            and f"fetch {UNIQUE} from the remote cache" in dry.stdout
        )
        fetched = command(b, "generate", env_extra=env(s3))
        assert fetched.returncode == 0, fetched.stdout + fetched.stderr
        assert f"({UNIQUE} from the remote cache)" in fetched.stdout
        assert len(api.generation_requests()) == UNIQUE  # nothing generated twice

        # prune --remote removes only what no directive of this site uses.
        (b / "docs" / "more.md").write_text("# More\n\nNo images here any more.\n", encoding="utf-8")
        dry_prune = command(b, "prune", "--remote", "--dry-run", env_extra=env(s3))
        assert "would remove 1 unused image(s)" in dry_prune.stdout, dry_prune.stdout + dry_prune.stderr
        assert len([k for k in s3.objects() if "/entries/" in k]) == UNIQUE
        pruned = command(b, "prune", "--remote", env_extra=env(s3))
        assert "removed 1 unused image(s)" in pruned.stdout, pruned.stdout + pruned.stderr
        assert len([k for k in s3.objects() if "/entries/" in k]) == UNIQUE - 1
        outputs = "".join(p.stdout + p.stderr for p in (pushed, again, status, checked, dry, fetched, pruned))
    no_secret_anywhere(tmp_path, output=outputs)
