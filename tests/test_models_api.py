"""Models, Lumenfall and lifecycle against the loopback fake API, through real builds and commands.

The fake validates every request per model as the OpenAPI spec and Lumenfall's docs say
(`mkdocs_imagegen.testing.validate`), so a request the real API would refuse fails these tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Build, run_mkdocs, write_site
from PIL import Image
from test_cli import run

from mkdocs_imagegen.testing import Behaviour, FakeImageAPI

LUMENFALL_KEY = "lmnfl_test_6c1e0b9a2f7d4e3c8b5a"
OPENAI_KEY = "sk-test-models-3e9d1c7b5a2f4e6d"


@pytest.fixture(autouse=True)
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "LUMENFALL_API_KEY", "IMAGEGEN_FROZEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def lumenfall() -> Iterator[FakeImageAPI]:
    with FakeImageAPI(flavour="lumenfall") as api:
        yield api


def lumenfall_site(root: Path, api: FakeImageAPI, pages: dict[str, str], **plugin: Any) -> Path:
    options = {
        "provider": "lumenfall",
        "base_url": api.base_url,
        "timeout": 10,
        "alt_required": False,
        **plugin,
    }
    return write_site(root, pages, plugin=options)


def openai_site(root: Path, api: FakeImageAPI, pages: dict[str, str], **plugin: Any) -> Path:
    # These pages test requests, not alt text (tests/test_alt.py does).
    options = {"provider": "openai", "base_url": api.base_url, "timeout": 10, "alt_required": False, **plugin}
    return write_site(root, pages, plugin=options)


def build(root: Path, *args: str, env: dict[str, str] | None = None) -> Build:
    return run_mkdocs(
        root, *args, env={"LUMENFALL_API_KEY": LUMENFALL_KEY, "OPENAI_API_KEY": OPENAI_KEY, **(env or {})}
    )


def pages_of(n: int) -> dict[str, str]:
    return {"index.md": "# Home\n\n" + "".join(f"![i{i}](imagegen:image number {i})\n\n" for i in range(n))}


# -- Lumenfall, the seed's own route ------------------------------------------------------------


def test_lumenfall_quick_start_is_gpt_image_1_mini_at_low_quality(
    tmp_path: Path, lumenfall: FakeImageAPI
) -> None:
    lumenfall_site(tmp_path, lumenfall, {"index.md": "# Home\n\n![a](imagegen:a lighthouse)\n"})
    result = build(tmp_path, "--strict")
    assert result.returncode == 0, result.output
    (request,) = lumenfall.generation_requests()
    assert request.headers["authorization"] == f"Bearer {LUMENFALL_KEY}"
    assert request.json == {
        "model": "gpt-image-1-mini",
        "prompt": "a lighthouse",
        "n": 1,
        "size": "1024x1024",
        "quality": "low",
        "output_format": "png",
        "response_format": "b64_json",
    }
    # The README's headline: about $0.005 an image.
    assert "estimated cost $0.005" in result.output


def test_the_cost_lumenfall_reports_is_the_cost_recorded(tmp_path: Path, lumenfall: FakeImageAPI) -> None:
    lumenfall.reported_cost = 0.0042
    lumenfall_site(tmp_path, lumenfall, {"index.md": "# Home\n\n![a](imagegen:reported)\n"})
    result = build(tmp_path, "--strict")
    assert result.returncode == 0, result.output
    assert "estimated cost $0.004" in result.output
    from mkdocs_imagegen.cache import ImageCache

    with ImageCache(str(tmp_path / ".cache/plugin/imagegen")) as cache:
        ((_, _, meta),) = list(cache.entries())
    assert meta["cost"] == 0.0042


@pytest.mark.parametrize(
    ("status", "code", "says"),
    [
        (402, "INSUFFICIENT_BALANCE", "no credit left"),
        (401, "AUTHENTICATION_FAILED", "rejected the key in LUMENFALL_API_KEY"),
    ],
)
def test_an_empty_balance_or_a_bad_key_stops_after_one_request(
    tmp_path: Path, lumenfall: FakeImageAPI, status: int, code: str, says: str
) -> None:
    lumenfall.enqueue(*[Behaviour("error", status=status, code=code, message="nope")] * 5)
    lumenfall_site(tmp_path, lumenfall, pages_of(4), concurrency=1)
    result = build(tmp_path)
    assert result.returncode == 0, result.output
    assert len(lumenfall.generation_requests()) == 1
    assert says in result.output and code in result.output


@pytest.mark.parametrize(
    ("status", "code"), [(429, "RATE_LIMITED"), (503, "ALL_PROVIDERS_EXHAUSTED"), (400, "RATE_LIMITED")]
)
def test_rate_limits_and_exhausted_providers_are_retried(
    tmp_path: Path, lumenfall: FakeImageAPI, status: int, code: str
) -> None:
    lumenfall.enqueue(Behaviour("error", status=status, code=code, message="busy"), "ok")
    lumenfall_site(tmp_path, lumenfall, pages_of(1))
    result = build(tmp_path, "--strict")
    assert result.returncode == 0, result.output
    assert len(lumenfall.generation_requests()) == 2


@pytest.mark.parametrize("code", ["MODEL_NOT_FOUND", "MODEL_DISABLED"])
def test_a_gone_model_is_asked_once_and_says_what_to_do(
    tmp_path: Path, lumenfall: FakeImageAPI, code: str
) -> None:
    lumenfall.enqueue(*[Behaviour("error", status=404, code=code, message="gone")] * 4)
    lumenfall_site(tmp_path, lumenfall, pages_of(3), concurrency=1)
    result = build(tmp_path)
    assert result.returncode == 0, result.output
    assert len(lumenfall.generation_requests()) == 1
    assert "model 'gpt-image-1-mini' is not served at" in result.output
    assert "set another model" in result.output and "cached images keep working" in result.output


def test_a_url_whose_download_fails_once_costs_one_generation(
    tmp_path: Path, lumenfall: FakeImageAPI
) -> None:
    lumenfall.enqueue("url_fail_once")
    lumenfall_site(tmp_path, lumenfall, pages_of(1))
    result = build(tmp_path, "--strict")
    assert result.returncode == 0, result.output
    assert len(lumenfall.generation_requests()) == 1
    downloads = [r for r in lumenfall.requests if r.method == "GET" and r.path.startswith("/files/")]
    assert len(downloads) == 2
    assert "1 generated" in result.output


def test_a_download_that_never_works_is_not_generated_again(tmp_path: Path, lumenfall: FakeImageAPI) -> None:
    lumenfall.enqueue(Behaviour("url_redirect_loop"))
    lumenfall_site(tmp_path, lumenfall, pages_of(1), max_retries=3)
    result = build(tmp_path)
    assert len(lumenfall.generation_requests()) == 1
    assert "generated (and billed) but could not be downloaded" in result.output


def test_dry_run_asks_lumenfall_for_its_estimate_and_generates_nothing(
    tmp_path: Path, lumenfall: FakeImageAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    lumenfall.dry_run_cost = 0.0051
    lumenfall_site(tmp_path, lumenfall, pages_of(3))
    monkeypatch.setenv("LUMENFALL_API_KEY", LUMENFALL_KEY)
    result = run(tmp_path, "generate", "--dry-run")
    assert result.exit_code == 0, result.output
    assert lumenfall.generation_requests() == []
    quoted = [r for r in lumenfall.requests if r.query == "dryRun=true"]
    assert len(quoted) == 1  # one question per kind of request, not per image
    assert (
        "would generate 3 image(s), estimated cost $0.015 (Lumenfall's own estimate: $0.015)" in result.output
    )
    assert LUMENFALL_KEY not in result.output


# -- retries as openai-python does them ------------------------------------------------------------


def test_x_should_retry_false_on_a_500_means_one_request(tmp_path: Path, lumenfall: FakeImageAPI) -> None:
    lumenfall.enqueue(Behaviour("500", headers={"x-should-retry": "false"}), "ok")
    lumenfall_site(tmp_path, lumenfall, pages_of(1))
    result = build(tmp_path)
    assert len(lumenfall.generation_requests()) == 1
    assert "HTTP 500" in result.output


def test_retry_after_300_means_no_retry(tmp_path: Path, lumenfall: FakeImageAPI) -> None:
    lumenfall.enqueue(Behaviour("429", retry_after=300), "ok")
    lumenfall_site(tmp_path, lumenfall, pages_of(1))
    result = build(tmp_path)
    assert len(lumenfall.generation_requests()) == 1
    assert "not retried: the server asked to wait 300 s" in result.output


def test_retry_after_zero_backs_off_instead_of_hammering(tmp_path: Path, lumenfall: FakeImageAPI) -> None:
    lumenfall.enqueue(Behaviour("429", retry_after=0), "ok")
    lumenfall_site(tmp_path, lumenfall, pages_of(1))
    result = build(tmp_path, "--strict")
    assert result.returncode == 0, result.output
    first, second = lumenfall.generation_requests()
    assert second.time - first.time > 0.2  # the engine's backoff, not an instant retry


def test_an_error_body_that_is_not_openai_shaped_is_shown(tmp_path: Path, lumenfall: FakeImageAPI) -> None:
    body = json.dumps({"detail": [{"loc": ["body", "size"], "msg": "size must be WIDTHxHEIGHT"}]})
    lumenfall.enqueue(Behaviour("raw_error", status=422, message=body))
    lumenfall_site(tmp_path, lumenfall, pages_of(1))
    result = build(tmp_path)
    assert "HTTP 422" in result.output and "size must be WIDTHxHEIGHT" in result.output


# -- what each model can do ----------------------------------------------------------------------


FORBIDDEN = {
    "transparent-jpeg.md": "model: gpt-image-1.5\nbackground: transparent\nformat: jpeg",
    "compression-png.md": "model: gpt-image-2\noutput_compression: 50",
    "auto-dalle.md": "model: dall-e-3\nsize: auto",
    "hd-gpt.md": "model: gpt-image-1\nquality: hd",
    "transparent-gpt2.md": "model: gpt-image-2\nbackground: transparent",
}


def test_each_forbidden_combination_is_a_page_line_error_with_zero_requests(
    tmp_path: Path, fake_api: FakeImageAPI
) -> None:
    pages = {name: f"# T\n\n```imagegen\nprompt: a thing\n{body}\n```\n" for name, body in FORBIDDEN.items()}
    docs = tmp_path / "docs"
    docs.mkdir()
    Image.new("RGB", (64, 64), "blue").save(docs / "base.png")
    Image.new("RGB", (64, 64), "blue").save(docs / "mask.jpg", "JPEG")
    Image.new("RGBA", (32, 32), (0, 0, 0, 0)).save(docs / "small.png")
    # A prompt over dall-e-2's 1000 characters (written out: a page cannot set prompt_template).
    pages["long-dalle2.md"] = (
        f"# T\n\n```imagegen\nprompt: a thing{'x' * 1000}\nmodel: dall-e-2\nsize: 512x512\n```\n"
    )
    pages["edit-dalle3.md"] = "# T\n\n```imagegen\nprompt: a thing\nmodel: dall-e-3\nsource: base.png\n```\n"
    pages["edit-hd.md"] = (
        "# T\n\n```imagegen\nprompt: a thing\nmodel: gpt-image-1\nquality: hd\nsource: base.png\n```\n"
    )
    pages["mask-jpeg.md"] = (
        "# T\n\n```imagegen\nprompt: a\nmodel: gpt-image-1\nsource: base.png\nmask: mask.jpg\n```\n"
    )
    pages["mask-size.md"] = (
        "# T\n\n```imagegen\nprompt: a\nmodel: gpt-image-1\nsource: base.png\nmask: small.png\n```\n"
    )
    openai_site(tmp_path, fake_api, pages)
    result = build(tmp_path)
    assert fake_api.requests == []
    expected = {
        "transparent-jpeg.md": "png or webp",
        "compression-png.md": "webp and jpeg only",
        "auto-dalle.md": "no size 'auto'; it takes 1024x1024, 1792x1024, 1024x1792",
        "long-dalle2.md": "takes at most 1000",
        "hd-gpt.md": "takes quality low, medium, high, auto, not 'hd'",
        "transparent-gpt2.md": "takes background opaque, auto",
        "edit-dalle3.md": "cannot edit images",
        "edit-hd.md": "on edits, not 'hd'",
        "mask-jpeg.md": "the mask must be a PNG",
        "mask-size.md": "the mask is 32x32 but the source is 64x64",
    }
    for page, says in expected.items():
        assert re.search(rf"WARNING.*{re.escape(page)}:3: .*{re.escape(says)}", result.output), (
            page,
            result.output,
        )
    status = run(tmp_path, "status", "--json")
    rows = json.loads(status.stdout)["directives"]
    assert {r["page"] for r in rows if r["state"] == "error"} == set(expected)


def test_gpt_image_2_receives_800x400_as_written(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    page = "# Home\n\n```imagegen\nprompt: wide\nsize: 800x400\nmodel: gpt-image-2\n```\n"
    page += "\n```imagegen\nprompt: wide too\nsize: 800x400\nmodel: chatgpt-image-latest\n```\n"
    openai_site(tmp_path, fake_api, {"index.md": page})
    result = build(tmp_path, "--strict")
    assert result.returncode == 0, result.output
    sizes = {r.json["model"]: r.json["size"] for r in fake_api.generation_requests()}
    assert sizes == {"gpt-image-2": "800x400", "chatgpt-image-latest": "1536x1024"}
    assert fake_api.rejections == []


def test_dall_e_gets_no_gpt_only_fields_and_edits_no_moderation(
    tmp_path: Path, fake_api: FakeImageAPI
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    Image.new("RGB", (64, 64), "blue").save(docs / "base.png")
    page = "# Home\n\n```imagegen\nprompt: old style\nmodel: dall-e-3\nquality: hd\nformat: webp\n```\n\n"
    page += "```imagegen\nprompt: an edit\nmodel: gpt-image-1\nsource: base.png\nquality: high\n```\n"
    openai_site(tmp_path, fake_api, {"index.md": page}, moderation="low")
    result = build(tmp_path, "--strict")
    assert result.returncode == 0, result.output
    assert fake_api.rejections == []
    by_path = {r.path: r for r in fake_api.generation_requests()}
    dalle = by_path["/v1/images/generations"].json
    assert dalle["response_format"] == "b64_json" and dalle["quality"] == "hd"
    assert not {"output_format", "moderation", "background"} & set(dalle)
    edit = by_path["/v1/images/edits"].form
    assert "moderation" not in edit and edit["quality"] == "high"


def test_input_fidelity_is_sent_on_edits_of_the_models_that_take_it(
    tmp_path: Path, fake_api: FakeImageAPI
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    Image.new("RGB", (64, 64), "blue").save(docs / "face.png")
    page = "# Home\n\n```imagegen\nprompt: same face, smiling\nmodel: gpt-image-1.5\nsource: face.png\n"
    page += "input_fidelity: high\n```\n\n```imagegen\nprompt: x\nmodel: gpt-image-1-mini\nsource: face.png\n"
    page += "input_fidelity: high\n```\n"
    openai_site(tmp_path, fake_api, {"index.md": page})
    result = build(tmp_path)
    (request,) = fake_api.generation_requests()
    assert request.form is not None and request.form["input_fidelity"] == "high"
    assert fake_api.rejections == []
    assert re.search(r"WARNING.*index.md:\d+: model gpt-image-1-mini takes no input_fidelity", result.output)


def test_openai_default_is_gpt_image_2_at_low_quality(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    openai_site(tmp_path, fake_api, {"index.md": "# Home\n\n![a](imagegen:default)\n"})
    result = build(tmp_path, "--strict")
    assert result.returncode == 0, result.output
    (request,) = fake_api.generation_requests()
    assert (request.json["model"], request.json["quality"]) == ("gpt-image-2", "low")
    assert "estimated cost $0.006" in result.output


def test_unknown_models_pass_through_and_say_so_once(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    openai_site(tmp_path, fake_api, pages_of(3), model="acme/flux-pro", quality="high")
    result = build(tmp_path, "--strict")
    assert result.returncode == 0, result.output
    assert len(fake_api.generation_requests()) == 3
    assert result.output.count("not in the model table") == 1 and "cost unknown" in result.output


# -- lifecycle ------------------------------------------------------------------------------------


def test_a_shutdown_date_from_models_shows_in_status(
    tmp_path: Path, lumenfall: FakeImageAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    lumenfall.models = [{"id": "gpt-image-1-mini", "shutdown_date": "2027-03-01"}, {"id": "other"}]
    lumenfall_site(tmp_path, lumenfall, pages_of(1))
    monkeypatch.setenv("LUMENFALL_API_KEY", LUMENFALL_KEY)
    text = run(tmp_path, "status").output
    assert "model gpt-image-1-mini will be shut down on 2027-03-01" in text
    data = json.loads(run(tmp_path, "status", "--json").stdout)
    assert data["lifecycle"][0]["shutdown"] == "2027-03-01" and data["lifecycle"][0]["source"] == "api"
    asked = [r for r in lumenfall.requests if r.path == "/v1/models"]
    assert len(asked) == 1  # cached for a day in cache_dir
    assert asked[0].headers["authorization"] == f"Bearer {LUMENFALL_KEY}"


def test_a_failing_models_call_never_blocks_the_build(tmp_path: Path, lumenfall: FakeImageAPI) -> None:
    lumenfall.models_status = 500
    lumenfall_site(tmp_path, lumenfall, pages_of(1))
    result = build(tmp_path, "--strict")
    assert result.returncode == 0, result.output
    assert len(lumenfall.generation_requests()) == 1


def test_the_table_warns_of_openai_shutdowns(tmp_path: Path) -> None:
    write_site(tmp_path, pages_of(1), plugin={"provider": "openai", "model": "gpt-image-1-mini"})
    text = run(tmp_path, "status").output
    assert "model gpt-image-1-mini was shut down at OpenAI on 2026-12-01" in text
    assert "gpt-image-2.6-sunburst" in text and "provider: lumenfall" in text


def test_a_model_change_says_what_it_re_keys_and_costs(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    openai_site(tmp_path, fake_api, pages_of(2), model="gpt-image-1-mini", quality="low")
    assert build(tmp_path, "--strict").returncode == 0
    openai_site(tmp_path, fake_api, pages_of(2), model="gpt-image-1.5", quality="low", max_new_images=1)
    text = run(tmp_path, "status").output
    assert "2 image(s) are cached for openai/gpt-image-1-mini but not for the configured model" in text
    assert "costs $0.018" in text
    dry = run(tmp_path, "generate", "--dry-run").output
    assert "2 image(s) are cached for openai/gpt-image-1-mini" in dry
    assert len(fake_api.generation_requests()) == 2
    # The build says it too, and the spending guard still holds.
    result = build(tmp_path)
    assert "re-keys them" in result.output and "max_new_images (1)" in result.output
    assert len(fake_api.generation_requests()) == 3


def test_the_build_warns_of_a_listed_shutdown_only_when_it_spends(
    tmp_path: Path, lumenfall: FakeImageAPI
) -> None:
    lumenfall.models = [{"id": "gpt-image-1-mini", "shutdown_date": "2026-11-30"}]
    lumenfall_site(tmp_path, lumenfall, pages_of(1))
    first = build(tmp_path, "--strict")
    assert first.returncode == 1 and "WARNING" in first.output
    assert "model gpt-image-1-mini was shut down on 2026-11-30" in first.output
    # Everything cached now: the same note is information, and a strict build passes.
    again = build(tmp_path, "--strict")
    assert again.returncode == 0, again.output
    assert "INFO    -  mkdocs_imagegen: model gpt-image-1-mini was shut down on 2026-11-30" in again.output
    assert len([r for r in lumenfall.requests if r.path == "/v1/models"]) == 1  # cached for a day
