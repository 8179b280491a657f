"""The trust-boundary logic on its own: scrubbing, clean images, plain-data records, the money cap."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from mkdocs_imagegen import imaging
from mkdocs_imagegen.cache import validate_meta
from mkdocs_imagegen.config import check_cache_dir, redact_userinfo
from mkdocs_imagegen.engine.spending import CAP_COST, SpendingGuard
from mkdocs_imagegen.providers import clean_text
from mkdocs_imagegen.providers.openai import OpenAIProvider

GOOD = {"format": "png", "width": 4, "height": 4, "bytes": 10, "sha256": "a" * 64}


def provider(monkeypatch: pytest.MonkeyPatch, key: str) -> OpenAIProvider:
    monkeypatch.setenv("TRUST_KEY", key)
    return OpenAIProvider(base_url="https://api.test/v1", api_key_env="TRUST_KEY", timeout=5, concurrency=1)


def test_control_characters_never_survive() -> None:
    text = clean_text("a\r\nINFO - forged\x1b]52;c;ZWNobyBoaQ==\x07\x1b[31mred\x9b2J\u202eevil")
    assert "\n" not in text and "\r" not in text and "\x1b" not in text and "\x07" not in text
    assert "\x9b" not in text and "\u202e" not in text
    assert "forged" in text and "red" in text


def test_a_real_key_is_scrubbed_everywhere_and_a_short_one_only_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = "sk-proj-0123456789abcdefghij"
    assert provider(monkeypatch, key).scrub(f"x{key}y Bearer {key}") == "x[redacted]y Bearer [redacted]"
    # Control characters cannot split the key past the scrubber.
    assert key not in provider(monkeypatch, key).scrub(key[:6] + "\x1b[0m" + key[6:])
    short = provider(monkeypatch, "x")
    assert short.scrub("index.md:3: refused x, key=x") == "index.md:3: refused [redacted], key=[redacted]"


@pytest.mark.parametrize(
    "record",
    [
        "[1, 2]",
        '"text"',
        "{",
        json.dumps({**GOOD, "format": "gif"}),
        json.dumps({**GOOD, "width": True}),
        json.dumps({**GOOD, "width": 10**9}),
        json.dumps({**GOOD, "bytes": -1}),
        json.dumps({**GOOD, "sha256": "../../etc/passwd"}),
        json.dumps({**GOOD, "cost": "free"}),
        '{"format": "png", "width": NaN}',
        "[" * 10_000 + "]" * 10_000,
    ],
)
def test_a_record_that_is_not_plain_valid_data_is_damage(record: str) -> None:
    with pytest.raises(ValueError):
        validate_meta(record)


def test_a_valid_record_is_read_as_plain_data() -> None:
    assert validate_meta(json.dumps({**GOOD, "usage": {"n": 1}, "cost": 0.5})) == {
        **GOOD,
        "usage": {"n": 1},
        "cost": 0.5,
    }


def test_an_unknown_cost_is_over_any_money_cap() -> None:
    guard = SpendingGuard(None, max_cost=0.01)
    assert guard.reserve(0.005) is None and guard.reserve(0.005) is None
    assert guard.reserve(0.005) == CAP_COST
    guard.refund(0.005)
    assert guard.reserve(None) == CAP_COST and guard.reserve(0.005) is None
    assert SpendingGuard(None).reserve(None) is None  # no max_cost: no money cap
    assert "max_cost" in (guard.report() or "")


def _png(**save: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(out, "PNG", **save)
    return out.getvalue()


def test_only_clean_bytes_pass_unchanged() -> None:
    clean = _png()
    assert imaging.is_clean(clean, "png")
    assert not imaging.is_clean(clean + b"<html>", "png")
    data, _ = imaging.finalize(clean + b"<html>", width=8, height=8, fmt="png")
    assert imaging.is_clean(data, "png") and b"<html>" not in data
    same, _ = imaging.finalize(clean, width=8, height=8, fmt="png")
    assert same == clean


def test_declared_pixels_far_beyond_the_ask_are_refused_before_decoding() -> None:
    bomb = bytes.fromhex("524946461a000000574542505650384c0e0000002ffe7fd003071011fd0f4444ff03")
    assert imaging.declared_size(bomb) == (16383, 3906)
    with pytest.raises(imaging.ImageError, match="far more than the 1024x1024 asked for"):
        imaging.check_declared_size(bomb, (1024, 1024))
    imaging.check_declared_size(_png(), (1024, 1024))


def test_config_helpers_never_show_secrets(tmp_path: object) -> None:
    assert redact_userinfo("https://user:sk-secret@host.test/v1") == "https://***@host.test/v1"
    assert check_cache_dir("/s/site/cache", "/s/docs", "/s/site") is not None
    assert check_cache_dir("/s/docs/.c", "/s/docs", "/s/site") is not None
    assert check_cache_dir("/s/.cache/imagegen", "/s/docs", "/s/site") is None
