"""The remote store's record format and URL rules, without a store."""

from __future__ import annotations

import json

import pytest

from mkdocs_imagegen.remote import record, urls

KEY = "0123456789abcdef0123456789abcdef"


def test_a_record_round_trips_and_binds_its_image() -> None:
    made = record.new_record(KEY, b"pixels", {"model": "m", "n": 1}, None)
    parsed = record.parse_record(record.dumps(made), KEY)
    assert parsed["meta"] == {"model": "m", "n": 1} and "signature" not in parsed
    record.check_image(parsed, b"pixels")
    with pytest.raises(record.Damaged, match="recorded size and digest"):
        record.check_image(parsed, b"pixelz")


def test_signatures_cover_the_metadata() -> None:
    signed = record.new_record(KEY, b"pixels", {"prompt": "a"}, b"secret")
    record.check_signature(signed, KEY, b"secret")
    record.check_signature(signed, KEY, None)  # no secret: nothing to check
    with pytest.raises(record.Damaged, match="does not match"):
        record.check_signature({**signed, "meta": {"prompt": "b"}}, KEY, b"secret")
    with pytest.raises(record.Damaged, match="not signed"):
        record.check_signature(record.new_record(KEY, b"pixels", {}, None), KEY, b"secret")


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"not json", "not JSON"),
        (b"[]", "not a JSON object"),
        (json.dumps({"schema": 2, "key": KEY}).encode(), "another key or schema"),
        (json.dumps({"schema": 1, "key": KEY, "bytes": True}).encode(), "no valid size"),
        (json.dumps({"schema": 1, "key": KEY, "bytes": 1, "sha256": "x"}).encode(), "no valid digest"),
    ],
)
def test_hostile_records_say_what_is_wrong(data: bytes, why: str) -> None:
    with pytest.raises(record.Damaged, match=why):
        record.parse_record(data, KEY)


def test_metadata_is_flattened_to_plain_data() -> None:
    meta = {"ok": "x" * 50_000, "nested": {"a": [1], "b": "y"}, "obj": object(), 1: "bad name"}
    assert record.plain(meta) == {"ok": "x" * 40_000, "nested": {"b": "y"}}


def test_urls_and_messages() -> None:
    assert urls.check_url(" s3://bucket/prefix/ ") == "s3://bucket/prefix"
    assert urls.check_url("file:///tmp/a/../b") == "file:///tmp/b"
    with pytest.raises(urls.RemoteConfigError, match="credentials"):
        urls.check_url("s3://key:secret@bucket")
    with pytest.raises(urls.RemoteConfigError, match="remote_cache_mode"):
        urls.check_mode("write")
    assert urls.redact("s3://b/p?x=1") == "s3://b/p"
    assert urls.clean("GET /a?X-Amz-Signature=abc&b=1\n") == "GET /a?X-Amz-Signature=[redacted]&b=1 "
