"""The model table, prices and the retry rules: fast unit tests of pure logic."""

from __future__ import annotations

import email.utils
import time

import pytest

from mkdocs_imagegen import models, pricing
from mkdocs_imagegen.options import OptionError
from mkdocs_imagegen.providers.retry import decide, parse_retry_after
from mkdocs_imagegen.spec import ImageSpec


def spec(model: str, size: str = "1024x1024", quality: str | None = None) -> ImageSpec:
    return ImageSpec(provider="openai", model=model, prompt="p", size=size, format="png", quality=quality)


# -- the table ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "entry"),
    [
        ("gpt-image-1-mini", "gpt-image-1-mini"),
        ("openai/gpt-image-1-mini", "gpt-image-1-mini"),
        ("OpenAI/GPT-Image-1", "gpt-image-1"),
        ("gpt-image-2-2026-04-21", "gpt-image-2"),
        ("gpt-image-1-mini-2025-10-06", "gpt-image-1-mini"),
        ("gpt-image-2.6-flare", "gpt-image-2.6-flare"),
        ("dall-e-3", "dall-e-3"),
    ],
)
def test_gateway_names_and_snapshots_find_their_model(name: str, entry: str) -> None:
    found = models.find(name)
    assert found is not None and found.name == entry


def test_unknown_models_are_not_guessed() -> None:
    assert models.find("acme/flux") is None
    assert models.find("gpt-image-20") is None
    assert pricing.estimate(spec("acme/flux")) is None


def test_every_required_model_is_in_the_table() -> None:
    for name in (
        "gpt-image-1-mini",
        "gpt-image-1",
        "gpt-image-1.5",
        "gpt-image-2",
        "gpt-image-2.6-sunburst",
        "gpt-image-2.6-flare",
        "chatgpt-image-latest",
        "dall-e-2",
        "dall-e-3",
    ):
        assert name in models.MODELS


def test_gpt_image_2_takes_any_valid_size_as_written() -> None:
    model = models.MODELS["gpt-image-2"]
    assert model.api_size("800x400") == "800x400"
    assert model.api_size("3840x2160") == "3840x2160"
    assert model.api_size("2160x3840") == "2160x3840"
    # Not a multiple of 16, or beyond 3:1: the nearest size the rule takes, then a crop.
    for asked in ("801x400", "1600x400", "4096x4096", "16x16"):
        w, h = map(int, model.api_size(asked).split("x"))
        assert model.free_size is not None and model.free_size.accepts(w, h), asked


def test_fixed_size_models_ask_the_nearest_aspect() -> None:
    assert models.MODELS["chatgpt-image-latest"].api_size("800x400") == "1536x1024"
    assert models.MODELS["gpt-image-1-mini"].api_size("800x1000") == "1024x1536"
    assert models.MODELS["dall-e-3"].api_size("1920x1080") == "1792x1024"
    assert models.MODELS["dall-e-2"].api_size("300x300") == "1024x1024"


def test_prices_use_the_size_actually_asked() -> None:
    # 800x1000 is asked as 1024x1536: priced so, not as a square.
    assert pricing.estimate(spec("gpt-image-1-mini", "800x1000", "low")) == 0.006
    assert pricing.estimate(spec("openai/gpt-image-1-mini", "1024x1024", "low")) == 0.005
    # Unset quality: the dearest tier.
    assert pricing.estimate(spec("gpt-image-1-mini")) == 0.036
    # gpt-image-2 scales by area, never below its 1024x1024 price.
    assert pricing.estimate(spec("gpt-image-2", "800x400", "low")) == 0.006
    assert pricing.estimate(spec("gpt-image-2", "2048x2048", "low")) == pytest.approx(0.024)


def test_every_estimate_is_at_least_the_table_price() -> None:
    sizes = ["auto", "256x256", "512x512", "800x400", "800x1000", "1024x1024", "1536x1024", "1024x1536"]
    sizes += ["1792x1024", "1024x1792", "2048x1152", "3840x2160", "1000x3000"]
    checked = 0
    for model in models.MODELS.values():
        for quality, table in model.prices.items():
            for size in sizes:
                if size == "auto" and not model.size_auto:
                    continue
                estimate = pricing.estimate(spec(model.name, size, quality))
                asked = model.api_size(size)
                listed = table.get(asked) if asked in table else min(table.values())
                assert estimate is not None and estimate >= listed, (model.name, quality, size)
                # An unset quality never costs less than any set one.
                assert pricing.estimate(spec(model.name, size)) >= estimate  # type: ignore[operator]
                checked += 1
    assert checked > 100


def check(model: str, **kw: object) -> None:
    args: dict[str, object] = {
        "prompt": "p",
        "size": "1024x1024",
        "quality": None,
        "background": None,
        "fmt": "png",
        "output_compression": None,
        "edit": False,
    }
    args.update(kw)
    models.check(model, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("model", "kw", "says"),
    [
        ("gpt-image-1-mini", {"background": "transparent", "fmt": "jpeg"}, "png or webp"),
        ("gpt-image-1-mini", {"output_compression": 80}, "webp and jpeg only"),
        ("dall-e-3", {"size": "auto"}, "1024x1024, 1792x1024, 1024x1792"),
        ("dall-e-2", {"size": "auto"}, "256x256, 512x512, 1024x1024"),
        ("dall-e-3", {"edit": True}, "cannot edit"),
        ("dall-e-2", {"prompt": "x" * 1001}, "at most 1000"),
        ("dall-e-3", {"prompt": "x" * 4001}, "at most 4000"),
        ("gpt-image-1", {"quality": "hd", "edit": True}, "low, medium, high, auto on edits"),
        ("gpt-image-1-mini", {"quality": "hd"}, "low, medium, high, auto"),
        ("dall-e-3", {"quality": "low"}, "standard, hd"),
        ("gpt-image-2", {"background": "transparent"}, "opaque, auto"),
        ("dall-e-3", {"background": "opaque"}, "background none"),
        ("gpt-image-1-mini", {"edit": True, "input_fidelity": "high"}, "takes no input_fidelity"),
        ("gpt-image-1", {"input_fidelity": "high"}, "edits only"),
    ],
)
def test_what_a_model_cannot_do_is_an_error_naming_what_it_can(model: str, kw: dict, says: str) -> None:
    with pytest.raises(OptionError, match=says.replace("(", r"\(")):
        check(model, **kw)


def test_unknown_models_pass_unchecked() -> None:
    check("acme/flux", quality="ultra-hd", size="auto", prompt="x" * 5000)


def test_request_fields_carry_only_what_the_model_accepts() -> None:
    dalle = models.request_fields(
        models.MODELS["dall-e-3"],
        size="1024x1024",
        quality="hd",
        background=None,
        fmt="webp",
        output_compression=70,
        moderation="low",
        edit=False,
    )
    assert dalle == {"size": "1024x1024", "quality": "hd", "response_format": "b64_json"}
    edit = models.request_fields(
        models.MODELS["gpt-image-1"],
        size="800x400",
        quality="low",
        background="opaque",
        fmt="png",
        output_compression=None,
        moderation="low",
        edit=True,
    )
    assert edit == {"size": "1536x1024", "quality": "low", "background": "opaque", "output_format": "png"}


# -- retries, as openai-python decides them -----------------------------------------------------


def test_x_should_retry_wins() -> None:
    assert decide(500, {"x-should-retry": "false"}).retry is False
    assert decide(400, {"x-should-retry": "true"}).retry is True
    assert decide(500, {}).retry is True and decide(400, {}).retry is False


@pytest.mark.parametrize(("value", "delay"), [("1", 1.0), ("90", 90.0), ("120", 120.0), ("0.5", 0.5)])
def test_retry_after_within_two_minutes_is_honoured(value: str, delay: float) -> None:
    decision = decide(429, {"Retry-After": value})
    assert decision.retry and decision.delay == delay


def test_retry_after_over_two_minutes_means_no_retry() -> None:
    assert decide(429, {"Retry-After": "300"}).retry is False
    assert decide(503, {"retry-after-ms": "121000", "x-should-retry": "true"}).retry is False


@pytest.mark.parametrize("value", ["0", "-5", "soon", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_zero_negative_unparsable_or_past_values_back_off(value: str) -> None:
    decision = decide(429, {"Retry-After": value})
    assert decision.retry and decision.delay is None


def test_retry_after_ms_first_then_seconds_then_a_date() -> None:
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < (parse_retry_after({"Retry-After": future}) or 0) <= 31


def test_lumenfall_codes_decide_where_the_status_does_not() -> None:
    assert decide(400, {}, retryable_code=True).retry is True  # RATE_LIMITED on any status
    assert decide(503, {}, retryable_code=False).retry is False
