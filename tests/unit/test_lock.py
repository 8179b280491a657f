"""The image lock's manifest and folder, unit by unit: hostile lines, atomic writes, merges, pins."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
from pathlib import Path

import pytest

from mkdocs_imagegen import lock as lockmod
from mkdocs_imagegen.lock import ImageLock, Record, intent_id, manifest_text, parse_manifest, record_for


def key_of(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()[:32]


def record(
    n: int, data: bytes, *, intent: str | None = None, pages: tuple[str, ...] = ("index.md",)
) -> Record:
    meta = {"format": "png", "width": 8, "height": 8, "provider": "openai", "model": "m", "prompt": f"p{n}"}
    return record_for(key_of(n), data, meta, intent=intent or key_of(1000 + n), pages=pages)


def test_intent_ignores_what_does_not_decide_the_pixels() -> None:
    base = {"prompt": "a lighthouse", "size": "800x400"}
    assert intent_id(base) == intent_id({**base, "alt": "x", "caption": "y", "moderation": "low"})
    assert intent_id(base) != intent_id({**base, "size": "400x400"})
    assert intent_id(base) != intent_id({"prompt": "a lighthouse at night", "size": "800x400"})
    # an edit's source counts by content, not by its path
    assert intent_id({**base, "source": "a.png"}, [("source", "1" * 64)]) == intent_id(
        {**base, "source": "b.png"}, [("source", "1" * 64)]
    )
    assert intent_id(base, [("source", "1" * 64)]) != intent_id(base, [("source", "2" * 64)])


def test_a_record_round_trips_through_its_line() -> None:
    r = record(1, b"abc", pages=("b.md", "a.md"))
    line = r.line()
    assert Record.from_data(json.loads(line)) == r
    assert json.loads(line)["file"] == f"{key_of(1)}.png"
    assert r.pages == ("a.md", "b.md")


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"file": "../../etc/passwd"}, "'file' must be"),
        ({"key": "../x"}, "'key' has the wrong form"),
        ({"format": "svg"}, "'format' must be one of"),
        ({"bytes": -1}, "'bytes' must be"),
        ({"bytes": True}, "'bytes' must be"),
        ({"sha256": "zz"}, "'sha256' has the wrong form"),
        ({"pages": "index.md"}, "'pages' must be"),
        ({"cost": "free"}, "'cost' must be"),
        ({"prompt": {"a": 1}}, "'prompt' must be"),
    ],
)
def test_a_hostile_line_is_skipped_and_named(change: dict[str, object], why: str) -> None:
    good = record(1, b"abc")
    bad = {**json.loads(record(2, b"def").line()), **change}
    text = good.line() + "\n" + json.dumps(bad) + "\n"
    manifest = parse_manifest(text, "docs-images/imagegen.lock")
    assert manifest.keys() == [good.key]
    assert len(manifest.problems) == 1
    assert manifest.problems[0].startswith("docs-images/imagegen.lock:2: ")
    assert why in manifest.problems[0]


def test_garbage_nesting_and_conflict_markers_are_named_not_raised() -> None:
    text = "not json\n" + "[" * 100_000 + "\n<<<<<<< HEAD\n=======\n>>>>>>> other\n[1, 2]\n"
    manifest = parse_manifest(text)
    assert manifest.keys() == []
    assert [p.split(":")[1] for p in manifest.problems] == ["1", "2", "3", "4", "5", "6"]
    assert "merge conflict marker" in manifest.problems[2]


def test_unsorted_and_repeated_lines_are_read(tmp_path: Path) -> None:
    a, b = record(1, b"one"), record(2, b"two")
    folder = tmp_path / "lock"
    folder.mkdir()
    (folder / a.file).write_bytes(b"one")
    (folder / b.file).write_bytes(b"two")
    other = Record(
        **{**a.__dict__, "sha256": "0" * 64, "created": "2099-01-01T00:00:00Z", "pages": ("x.md",)}
    )
    (folder / "imagegen.lock").write_text(
        b.line() + "\n" + other.line() + "\n" + a.line() + "\n" + b.line() + "\n"
    )
    lock = ImageLock(str(folder))
    # of two lines for one key, the one whose file is on disk wins, even though it is older
    assert lock.get(a.key) is not None and lock.get(a.key).record.sha256 == a.sha256
    assert lock.record(a.key).pages == ("index.md", "x.md")  # pages of both lines
    lock.use(b.key, ["new.md"])
    assert lock.save()
    lines = (folder / "imagegen.lock").read_text().splitlines()
    assert [json.loads(line)["key"] for line in lines] == sorted([a.key, b.key])  # normalised


def test_add_and_save_write_the_folder_and_a_sorted_manifest(tmp_path: Path) -> None:
    folder = tmp_path / "docs-images"
    lock = ImageLock(str(folder))
    assert not lock.save()  # nothing changed: nothing written
    assert not folder.exists()
    for n in (3, 1, 2):
        lock.add(record(n, f"img{n}".encode()), f"img{n}".encode())
    assert lock.save()
    assert (folder / ".gitattributes").read_text() == "imagegen.lock merge=union\n"
    keys = [json.loads(line)["key"] for line in (folder / "imagegen.lock").read_text().splitlines()]
    assert keys == sorted(key_of(n) for n in (1, 2, 3))
    again = ImageLock(str(folder))
    assert again.get(key_of(2)) is not None
    assert Path(again.get(key_of(2)).path).read_bytes() == b"img2"
    assert not [p for p in os.listdir(folder) if p.endswith(".tmp")]


def test_a_tampered_image_is_refused_naming_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "lock"
    lock = ImageLock(str(folder))
    r = record(1, b"real")
    lock.add(r, b"real")
    lock.save()
    (folder / r.file).write_bytes(b"evil")  # same size, other bytes
    with caplog.at_level(logging.WARNING):
        assert ImageLock(str(folder)).get(r.key) is None
    assert r.file in caplog.text and "does not match the SHA-256" in caplog.text


def test_a_symlinked_image_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "lock"
    lock = ImageLock(str(folder))
    r = record(1, b"real")
    lock.add(r, b"real")
    lock.save()
    outside = tmp_path / "outside"
    outside.write_bytes(b"real")
    os.remove(folder / r.file)
    os.symlink(outside, folder / r.file)
    assert ImageLock(str(folder)).get(r.key) is None


def test_an_interrupted_write_leaves_the_previous_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "lock"
    lock = ImageLock(str(folder))
    lock.add(record(1, b"one"), b"one")
    lock.save()
    before = (folder / "imagegen.lock").read_bytes()

    def killed(fd: int) -> None:
        raise KeyboardInterrupt  # the process dies between writing the new manifest and renaming it

    lock2 = ImageLock(str(folder))
    lock2.add(record(2, b"two"), b"two")
    monkeypatch.setattr(lockmod.os, "fsync", killed)
    with pytest.raises(KeyboardInterrupt):
        lock2.save()
    assert (folder / "imagegen.lock").read_bytes() == before
    assert not [p for p in os.listdir(folder) if p.endswith(".tmp")]


def test_two_runs_sharing_a_folder_keep_each_others_lines(tmp_path: Path) -> None:
    folder = str(tmp_path / "lock")
    first, second = ImageLock(folder), ImageLock(folder)
    first.add(record(1, b"one"), b"one")
    second.add(record(2, b"two"), b"two")
    first.save()
    second.save()
    assert {r.key for r in ImageLock(folder).records()} == {key_of(1), key_of(2)}


def test_a_pin_prefers_the_image_the_page_already_used(tmp_path: Path) -> None:
    folder = str(tmp_path / "lock")
    lock = ImageLock(folder)
    intent = key_of(99)
    lock.add(record(1, b"one", intent=intent, pages=("a.md",)), b"one")
    lock.add(record(2, b"two", intent=intent, pages=("b.md",)), b"two")
    assert lock.pinned(intent, "a.md").record.key == key_of(1)
    assert lock.pinned(intent, "b.md").record.key == key_of(2)
    assert lock.pinned(key_of(98), "a.md") is None


def test_replacing_pins_drops_only_unused_images_of_a_fresh_intent(tmp_path: Path) -> None:
    folder = tmp_path / "lock"
    lock = ImageLock(str(folder))
    intent = key_of(99)
    lock.add(record(1, b"old", intent=intent), b"old")
    lock.add(record(5, b"other"), b"other")
    lock.save()
    lock = ImageLock(str(folder))
    lock.add(record(2, b"new", intent=intent), b"new")
    assert lock.replace_pins(used={key_of(2)}) == [key_of(1)]
    lock.save()
    assert {r.key for r in ImageLock(str(folder)).records()} == {key_of(2), key_of(5)}
    assert not (folder / record(1, b"old").file).exists()


def test_git_merges_two_branches_adding_images_without_conflict(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    folder = repo / "docs-images"
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=False)

    repo.mkdir()
    git("init", "-q", "-b", "main")
    lock = ImageLock(str(folder))
    lock.add(record(10, b"base"), b"base")
    lock.save()
    git("add", "-A")
    git("commit", "-qm", "base")
    # Both branches insert into the same gap of the sorted manifest.
    for branch, n in (("one", 11), ("two", 12)):
        git("checkout", "-qb", branch, "main")
        lock = ImageLock(str(folder))
        lock.add(record(n, f"img{n}".encode()), f"img{n}".encode())
        lock.save()
        git("add", "-A")
        git("commit", "-qm", branch)
    git("checkout", "-q", "one")
    merged = git("merge", "-q", "--no-edit", "two")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    lock = ImageLock(str(folder))
    assert {r.key for r in lock.records()} == {key_of(10), key_of(11), key_of(12)}
    assert all(lock.get(r.key) is not None for r in lock.records())
    assert manifest_text(lock.records()) == manifest_text(
        lockmod.choose(parse_manifest((folder / "imagegen.lock").read_text())).values()
    )
