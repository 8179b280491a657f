"""The OpenAI-compatible provider against a real HTTP server on loopback, through real builds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import KEY, generated_images, imgs, openai_site, resolve_src
from conftest import openai_build as build
from PIL import Image

from mkdocs_imagegen.testing import Behaviour, FakeImageAPI, colour_for, encode_image


def test_request_body_headers_and_result(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    openai_site(
        tmp_path,
        fake_api,
        {
            "index.md": (
                "# Home\n\n```imagegen\nprompt: A lighthouse icon\nalt: Lighthouse\nsize: 1536x1024\nquality: low\n"
                "background: transparent\nformat: webp\noutput_compression: 80\nmoderation: low\n```\n"
            )
        },
        extra_body={"seed": 7},
    )
    result = build(tmp_path, "--strict")
    assert result.returncode == 0, result.output
    (request,) = fake_api.generation_requests()
    assert request.path == "/v1/images/generations"
    assert request.json == {
        "seed": 7,
        "model": "gpt-image-1-mini",
        "prompt": "A lighthouse icon",
        "n": 1,
        "size": "1536x1024",
        "quality": "low",
        "background": "transparent",
        "output_format": "webp",
        "output_compression": 80,
        "moderation": "low",
    }
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["user-agent"].startswith("mkdocs-imagegen/")
    (img,) = imgs(result.page())
    served = resolve_src(result, "index.html", img["src"])
    assert served.suffix == ".webp" and Image.open(served).size == (1536, 1024)
    # What the API encoded is what is served: no re-encoding when nothing must change.
    assert served.read_bytes() == encode_image(1536, 1024, "webp", colour_for("A lighthouse icon"), 80)
    assert "1 generated" in result.output and "estimated cost $0.006" in result.output
    # The API's revised prompt and usage are kept with the cached image.
    from mkdocs_imagegen.cache import ImageCache

    with ImageCache(str(tmp_path / ".cache/plugin/imagegen")) as cache:
        ((_, fallback, meta),) = list(cache.entries())
    assert not fallback and meta["revised_prompt"] and meta["usage"]["total_tokens"] > 0
    assert (meta["model"], meta["width"], meta["height"], meta["cost"]) == (
        "gpt-image-1-mini",
        1536,
        1024,
        0.006,
    )


def test_only_set_parameters_are_sent(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    openai_site(tmp_path, fake_api, {"index.md": "# Home\n\n![a](imagegen:plain)\n"})
    assert build(tmp_path, "--strict").returncode == 0
    (request,) = fake_api.generation_requests()
    assert request.json == {
        "model": "gpt-image-1-mini",
        "prompt": "plain",
        "n": 1,
        "size": "1024x1024",
        "output_format": "png",
    }


def test_unsupported_size_is_generated_close_then_cropped(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    openai_site(
        tmp_path,
        fake_api,
        {"index.md": "# Home\n\n```imagegen\nprompt: wide banner\nalt: banner\nsize: 800x400\n```\n"},
    )
    result = build(tmp_path, "--strict")
    assert result.returncode == 0, result.output
    assert fake_api.generation_requests()[0].json["size"] == "1536x1024"
    (img,) = imgs(result.page())
    assert (img["width"], img["height"]) == ("800", "400")
    assert Image.open(resolve_src(result, "index.html", img["src"])).size == (800, 400)


def test_url_answers_are_downloaded_without_the_key(tmp_path: Path) -> None:
    with FakeImageAPI(mode="url") as api:
        openai_site(tmp_path, api, {"index.md": "# Home\n\n![a](imagegen:from a url)\n"})
        result = build(tmp_path, "--strict")
        assert result.returncode == 0, result.output
        downloads = [r for r in api.requests if r.path.startswith("/files/")]
        assert len(downloads) == 1
        assert "authorization" not in downloads[0].headers
    assert len(generated_images(result)) == 1


def test_rebuild_makes_zero_requests(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    openai_site(tmp_path, fake_api, {"index.md": "# Home\n\n![a](imagegen:one)\n\n![b](imagegen:two)\n"})
    assert build(tmp_path, "--strict").returncode == 0
    assert len(fake_api.generation_requests()) == 2
    before = len(fake_api.requests)  # the images, and the build's once-a-day GET /models
    again = build(tmp_path, "--strict")
    assert again.returncode == 0
    assert len(fake_api.requests) == before
    assert "2 from cache, 0 generated" in again.output


def test_retry_after_is_honoured(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    fake_api.enqueue(
        Behaviour("429", retry_after=1), Behaviour("429", retry_after=None, retry_after_ms=300), "ok"
    )
    openai_site(tmp_path, fake_api, {"index.md": "# Home\n\n![a](imagegen:rate limited)\n"})
    result = build(tmp_path, "--strict")
    assert result.returncode == 0, result.output
    first, second, third = fake_api.generation_requests()
    assert second.time - first.time >= 1.0
    assert third.time - second.time >= 0.3
    assert third.time - second.time < 1.0


def test_server_error_then_success(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    fake_api.enqueue("500", "ok")
    openai_site(tmp_path, fake_api, {"index.md": "# Home\n\n![a](imagegen:flaky)\n"})
    result = build(tmp_path, "--strict")
    assert result.returncode == 0, result.output
    assert len(fake_api.generation_requests()) == 2
    assert "1 generated" in result.output


def test_gives_up_after_max_retries(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    fake_api.enqueue("503", "503", "503")
    openai_site(tmp_path, fake_api, {"index.md": "# Home\n\n![a](imagegen:down)\n"}, max_retries=2)
    result = build(tmp_path)
    assert len(fake_api.generation_requests()) == 3
    assert "index.md:3:" in result.output and "gave up after 3 attempts" in result.output


CASES = {
    "hang": (Behaviour("hang", seconds=4), "did not answer within 1 s"),
    "invalid_json": ("invalid_json", "not an image answer"),
    "not_image": ("not_image", "not an image"),
    "moderation": ("moderation", "refused by the provider's safety system"),
    "401": ("401", "Set OPENAI_API_KEY to a valid key"),
    "404_model": ("404_model", "model 'gpt-image-1-mini' is not served at"),
    "400": ("400", "HTTP 400"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_failures_name_page_and_line_and_cache_nothing(
    tmp_path: Path, fake_api: FakeImageAPI, case: str
) -> None:
    behaviour, message = CASES[case]
    fake_api.enqueue(behaviour)
    openai_site(
        tmp_path,
        fake_api,
        {"guide/page.md": "# Page\n\nText.\n\n![a](imagegen:fails once)\n"},
        max_retries=0,
        timeout=1,
    )
    result = build(tmp_path)
    assert result.returncode == 0, result.output
    line = next(ln for ln in result.output.splitlines() if "guide/page.md:5:" in ln)
    assert "WARNING" in line and message in line, result.output
    assert "Traceback" not in result.output
    # A placeholder is shown, but it is not the image of that key: the next build asks again.
    (img,) = imgs(result.page("guide/page/index.html"))
    assert Image.open(resolve_src(result, "guide/page/index.html", img["src"])).size == (1024, 1024)
    again = build(tmp_path, "--strict")
    assert again.returncode == 0, again.output
    assert len(fake_api.generation_requests()) == 2
    assert "1 generated" in again.output


def test_client_errors_are_not_retried(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    fake_api.enqueue("400")
    openai_site(tmp_path, fake_api, {"index.md": "# Home\n\n![a](imagegen:x)\n"})
    build(tmp_path)
    assert len(fake_api.generation_requests()) == 1


def test_a_rejected_key_stops_all_further_requests(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    fake_api.enqueue("401", "401", "401", "401")
    text = "# Home\n\n" + "".join(f"![{n}](imagegen:refused key {n})\n\n" for n in range(4))
    openai_site(tmp_path, fake_api, {"index.md": text}, concurrency=1)
    result = build(tmp_path)
    assert result.returncode == 0, result.output
    assert len(fake_api.generation_requests()) == 1
    assert len(imgs(result.page())) == 4


def test_failed_requests_do_not_count_against_the_spending_cap(
    tmp_path: Path, fake_api: FakeImageAPI
) -> None:
    fake_api.enqueue("400", "400")
    text = "# Home\n\n" + "".join(f"![{n}](imagegen:refund {n})\n\n" for n in range(4))
    openai_site(tmp_path, fake_api, {"index.md": text}, max_new_images=2, concurrency=1)
    result = build(tmp_path)
    assert len(fake_api.generation_requests()) == 4
    assert "2 generated, 2 failed" in result.output
    assert "max_new_images" not in result.output


def test_on_error_fail_stops_the_build(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    fake_api.enqueue("moderation")
    openai_site(tmp_path, fake_api, {"index.md": "# Home\n\n![a](imagegen:refused)\n"}, on_error="fail")
    result = build(tmp_path)
    assert result.returncode == 1
    assert "index.md:3:" in result.output and "safety system" in result.output
    assert "Traceback" not in result.output


def test_missing_key_one_message_then_placeholders(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    openai_site(tmp_path, fake_api, {"index.md": "# Home\n\n![a](imagegen:one)\n\n![b](imagegen:two)\n"})
    result = build(tmp_path, env={})
    assert result.returncode == 0, result.output
    assert result.output.count("OPENAI_API_KEY is not set") == 1
    assert fake_api.requests == []
    assert len(imgs(result.page())) == 2
    # With the key, the placeholders are replaced by real images.
    real = build(tmp_path, "--strict")
    assert real.returncode == 0, real.output
    assert len(fake_api.generation_requests()) == 2
    # The real images supersede the placeholders: none is left behind in the cache.
    from mkdocs_imagegen.cache import ImageCache

    with ImageCache(str(tmp_path / ".cache/plugin/imagegen")) as cache:
        assert sorted(fallback for _, fallback, _ in cache.entries()) == [False, False]


def test_missing_key_with_on_error_fail(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    openai_site(tmp_path, fake_api, {"index.md": "# Home\n\n![a](imagegen:one)\n"}, on_error="fail")
    result = build(tmp_path, env={})
    assert result.returncode == 1
    assert "OPENAI_API_KEY is not set" in result.output


def test_concurrency_limit_across_the_site(tmp_path: Path) -> None:
    with FakeImageAPI(latency=0.3) as api:
        pages = {
            f"p{n}.md": f"# P{n}\n\n![a](imagegen:image {n} a)\n\n![b](imagegen:image {n} b)\n"
            for n in range(5)
        }
        openai_site(tmp_path, api, pages, concurrency=3)
        result = build(tmp_path, "--strict")
        assert result.returncode == 0, result.output
        assert len(api.generation_requests()) == 10
        assert api.max_in_flight == 3  # within the limit, and the limit reached


def test_identical_keys_requested_once(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    pages = {f"p{n}.md": "# P\n\n![a](imagegen:the same)\n" for n in range(4)}
    openai_site(tmp_path, fake_api, pages, concurrency=4)
    assert build(tmp_path, "--strict").returncode == 0
    assert len(fake_api.generation_requests()) == 1


def test_spending_guard(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    text = "# Home\n\n" + "".join(f"![{n}](imagegen:guarded {n})\n\n" for n in range(5))
    openai_site(tmp_path, fake_api, {"index.md": text}, max_new_images=2)
    result = build(tmp_path)
    assert result.returncode == 0, result.output
    assert len(fake_api.generation_requests()) == 2
    warning = [ln for ln in result.output.splitlines() if "WARNING" in ln and "max_new_images" in ln]
    assert len(warning) == 1 and "3 image(s)" in warning[0] and "Raise max_new_images" in warning[0]
    assert "2 generated, 0 failed, 3 held back by max_new_images" in result.output


def test_edit_sends_source_and_mask_and_keys_on_their_bytes(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    docs = tmp_path / "docs"
    (docs / "img").mkdir(parents=True)
    Image.new("RGB", (64, 64), "blue").save(docs / "img" / "base.png")
    Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(docs / "img" / "mask.png")
    page = (
        "# Home\n\n```imagegen\nprompt: add a red hat\nalt: A hat\n"
        "source: ../img/base.png\nmask: img/mask.png\n```\n"
    )
    openai_site(tmp_path, fake_api, {"guide/index.md": page})
    result = build(tmp_path, "--strict")
    assert result.returncode == 0, result.output
    (request,) = fake_api.generation_requests()
    assert request.path == "/v1/images/edits"
    assert request.form["prompt"] == "add a red hat" and request.form["model"] == "gpt-image-1-mini"
    assert request.files["image"] == (docs / "img" / "base.png").read_bytes()
    assert request.files["mask"] == (docs / "img" / "mask.png").read_bytes()
    assert build(tmp_path, "--strict").returncode == 0
    assert len(fake_api.generation_requests()) == 1
    Image.new("RGB", (64, 64), "green").save(docs / "img" / "base.png")
    assert build(tmp_path, "--strict").returncode == 0
    assert len(fake_api.generation_requests()) == 2


@pytest.mark.parametrize("path", ["../../outside.png", "/etc/hostname", "link/outside.png"])
def test_source_outside_docs_dir_is_refused(tmp_path: Path, fake_api: FakeImageAPI, path: str) -> None:
    (tmp_path / "outside.png").write_bytes(b"secret")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "link").symlink_to(tmp_path)
    openai_site(
        tmp_path, fake_api, {"index.md": f"# Home\n\n```imagegen\nprompt: edit\nsource: {path}\n```\n"}
    )
    result = build(tmp_path)
    assert re.search(
        r"index\.md:3: source '.*' (leads outside docs_dir|not found in docs_dir)", result.output
    ), result.output
    assert fake_api.requests == []


def test_key_never_leaks(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    fake_api.enqueue("401", "ok")
    openai_site(tmp_path, fake_api, {"index.md": "# Home\n\n![a](imagegen:one)\n\n![b](imagegen:two)\n"})
    result = build(tmp_path, "-v")
    assert KEY not in result.output
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
