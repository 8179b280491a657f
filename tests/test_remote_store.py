"""The remote tier against a real S3-compatible server on loopback (moto), without a build."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from s3server import S3, s3_server

from mkdocs_imagegen.remote import ROOT, RemoteConfigError, RemoteStore, check_url

KEY = "0123456789abcdef0123456789abcdef"
OTHER = "fedcba9876543210fedcba9876543210"


def png(colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 16), colour).save(out, "PNG")
    return out.getvalue()


META = {"format": "png", "width": 32, "height": 16, "provider": "openai", "model": "gpt-image-1-mini"}


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3]:
    with s3_server() as server:
        for name, value in server.env.items():
            monkeypatch.setenv(name, value)
        yield server


def store(s3: S3, **kwargs: object) -> RemoteStore:
    return RemoteStore(f"s3://{s3.bucket}/site-a", timeout=5, **kwargs)  # type: ignore[arg-type]


def test_round_trip_and_create_only(s3: S3) -> None:
    remote = store(s3)
    assert remote.get(KEY) is None
    assert remote.put(KEY, png(), META) is True
    # A second upload of the same key (another runner, or a poisoner) never replaces the entry.
    assert remote.put(KEY, png((0, 0, 255)), {**META, "prompt": "evil"}) is False
    entry = remote.get(KEY)
    assert entry is not None and entry.data == png() and entry.meta["model"] == "gpt-image-1-mini"
    assert sorted(s3.objects()) == [f"site-a/{ROOT}/entries/{KEY}.json", f"site-a/{ROOT}/images/{KEY}"]


def test_an_image_without_its_record_or_cut_short_is_never_read(s3: S3) -> None:
    remote = store(s3)
    client = s3.client()
    # An upload killed after the image and before the record: no entry.
    client.put_object(Bucket=s3.bucket, Key=f"site-a/{ROOT}/images/{KEY}", Body=png())
    assert remote.get(KEY) is None
    # A record whose image was cut short: refused by size and digest, not read as an image.
    data = png()
    record = {
        "schema": 1,
        "key": OTHER,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "meta": META,
    }
    client.put_object(Bucket=s3.bucket, Key=f"site-a/{ROOT}/images/{OTHER}", Body=data[: len(data) // 2])
    client.put_object(Bucket=s3.bucket, Key=f"site-a/{ROOT}/entries/{OTHER}.json", Body=json.dumps(record))
    assert remote.get(OTHER) is None
    assert remote.counts["refused"] == 1


@pytest.mark.parametrize(
    "record",
    [
        b"\x80\x04\x95 pickled",
        b"[1, 2, 3]",
        b'{"schema": 1, "key": "fedcba9876543210fedcba9876543210", "bytes": 10, "sha256": "x", "meta": {}}',
        b'{"schema": 1, "key": "0123456789abcdef0123456789abcdef", "bytes": 99999999999, "sha256": "'
        + b"a" * 64
        + b'", "meta": {}}',
        b"[" * 100_000,
        b'{"a": "' + b"x" * 70_000 + b'"}',
    ],
    ids=["pickle", "list", "wrong-key", "huge-size", "deep", "over-64k"],
)
def test_hostile_records_are_refused_as_data(s3: S3, record: bytes) -> None:
    s3.client().put_object(Bucket=s3.bucket, Key=f"site-a/{ROOT}/entries/{KEY}.json", Body=record)
    s3.client().put_object(Bucket=s3.bucket, Key=f"site-a/{ROOT}/images/{KEY}", Body=png())
    assert store(s3).get(KEY) is None


def test_signing_refuses_unsigned_and_mis_signed_entries(s3: S3) -> None:
    unsigned = store(s3)
    assert unsigned.put(KEY, png(), META)
    signer = store(s3, signing_key=b"team-secret")
    assert signer.get(KEY) is None  # unsigned: refused when a secret is set
    assert signer.put(OTHER, png((1, 2, 3)), META)
    assert signer.get(OTHER) is not None
    assert store(s3, signing_key=b"another-secret").get(OTHER) is None  # mis-signed
    # A poisoner who rewrites the record (metadata changed, signature kept) is refused too.
    client = s3.client()
    path = f"site-a/{ROOT}/entries/{OTHER}.json"
    record = json.loads(client.get_object(Bucket=s3.bucket, Key=path)["Body"].read())
    record["meta"]["prompt"] = "something else"
    client.put_object(Bucket=s3.bucket, Key=path, Body=json.dumps(record))
    assert signer.get(OTHER) is None


def test_read_only_never_writes_and_never_claims(s3: S3) -> None:
    reader = store(s3, mode="read-only")
    assert reader.put(KEY, png(), META) is False
    assert reader.claim(KEY) is None
    assert s3.objects() == {}


def test_leases_exclude_until_released_or_expired(s3: S3) -> None:
    a, b = store(s3, lease_seconds=1.5), store(s3, lease_seconds=1.5)
    lease = a.claim(KEY)
    assert lease is not None
    assert b.claim(KEY) is None  # held
    a.release(lease)
    again = b.claim(KEY)
    assert again is not None  # released: free
    # b "dies" holding the lease: a can take it over only once it has expired.
    assert a.claim(KEY) is None
    time.sleep(1.7)
    assert a.claim(KEY) is not None


def test_a_waiting_runner_takes_the_lease_holders_image(s3: S3, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import asyncio
    import threading

    from mkdocs_imagegen.cache import ImageCache
    from mkdocs_imagegen.remote import RemoteTier
    from mkdocs_imagegen.spec import ImageSpec

    spec = ImageSpec(
        provider="openai", model="gpt-image-1-mini", prompt="a red box", size="32x16", format="png"
    )
    a, b = store(s3, lease_seconds=10), RemoteTier(store(s3, lease_seconds=10))
    lease = a.claim(spec.key)
    assert lease is not None and b.store.claim(spec.key) is None

    def finish() -> None:
        time.sleep(0.5)
        a.put(spec.key, png(), META)
        a.release(lease)

    thread = threading.Thread(target=finish)
    thread.start()
    with ImageCache(str(tmp_path / "cache")) as local:
        entry = asyncio.run(b.wait(spec, local, poll=0.1))
        assert entry is not None and Path(entry.path).read_bytes() == png()
        assert local.get(spec.key) is not None  # the local cache is filled on the way
    thread.join()


def test_an_entry_that_is_not_what_the_key_asks_is_refused(s3: S3, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from mkdocs_imagegen.cache import ImageCache
    from mkdocs_imagegen.remote import RemoteTier
    from mkdocs_imagegen.spec import ImageSpec

    spec = ImageSpec(provider="openai", model="gpt-image-1-mini", prompt="a box", size="64x64", format="png")
    tier = RemoteTier(store(s3))
    tier.store.put(spec.key, png(), META)  # a valid image, but 32x16, not the 64x64 the key asks
    with ImageCache(str(tmp_path / "cache")) as local:
        assert tier.fetch(spec, local) is None
        assert local.get(spec.key) is None


def test_a_stopped_store_degrades_with_one_warning(s3: S3, caplog: pytest.LogCaptureFixture) -> None:
    remote = store(s3)
    assert remote.put(KEY, png(), META)
    s3.server.stop()
    caplog.set_level(logging.WARNING)
    started = time.monotonic()
    assert remote.get(OTHER) is None
    assert remote.put(OTHER, png(), META) is False
    assert remote.claim(OTHER) is None
    assert time.monotonic() - started < 60  # bounded: no hang (generous: retries with backoff)
    warnings = [r for r in caplog.records if "remote cache" in r.getMessage()]
    assert len(warnings) == 1 and "local" in warnings[0].getMessage()
    assert "s3-secret" not in caplog.text


def test_file_urls_work_as_a_shared_folder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    remote = RemoteStore(f"file://{tmp_path}/shared")
    assert remote.put(KEY, png(), META)
    assert remote.put(KEY, png((9, 9, 9)), META) is False
    entry = remote.get(KEY)
    assert entry is not None and entry.data == png()
    assert dict(remote.entries()) == {KEY: len(png())}


@pytest.mark.parametrize(
    "url", ["https://bucket/x", "s3://AKIA:secret@bucket/x", "file://relative/path", "s3://a/x"]
)
def test_bad_urls_are_config_errors(url: str) -> None:
    with pytest.raises(RemoteConfigError) as info:
        check_url(url)
    assert "secret" not in str(info.value)
