"""What a new user meets in their first hour, through the real `mkdocs-imagegen` command and builds.

Every command here is the installed `mkdocs-imagegen` script in a subprocess, against the fake
image API on loopback; every build is a real `mkdocs build`.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import openai_site as gateway_site
from conftest import run_mkdocs, write_site

from mkdocs_imagegen.cache import ImageCache
from mkdocs_imagegen.testing import Behaviour, FakeImageAPI

KEY = "sk-test-first-hour-4f1c9a7e2b6d8c0e"
SCRIPT = Path(sys.executable).parent / "mkdocs-imagegen"


def command_env(key: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "IMAGEGEN_FROZEN")}
    if key:
        env["OPENAI_API_KEY"] = KEY
    return env


def imagegen(root: Path, *args: str, key: bool = True) -> subprocess.CompletedProcess[str]:
    """The real `mkdocs-imagegen COMMAND -f ROOT/mkdocs.yml ARGS`, as a user runs it."""
    command, *rest = args
    proc = subprocess.run(
        [str(SCRIPT), command, "-f", str(root / "mkdocs.yml"), *rest],
        capture_output=True,
        text=True,
        env=command_env(key),
        timeout=120,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert KEY not in proc.stdout + proc.stderr
    return proc


def openai_site(root: Path, api: FakeImageAPI, pages: dict[str, str], **plugin: Any) -> Path:
    """conftest's gateway site, asking each image once (no retries)."""
    return gateway_site(root, api, pages, **{"max_retries": 0, **plugin})


def prompts_page(*prompts: str) -> dict[str, str]:
    return {"index.md": "# Home\n\n" + "".join(f"![{p}](imagegen:{p})\n\n" for p in prompts)}


def line_of(page: str, prompt: str) -> int:
    return next(n for n, text in enumerate(page.splitlines(), 1) if prompt in text)


# -- generate tries every image -----------------------------------------------------------------------


def test_generate_tries_every_image_and_names_each_failure(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    prompts = ("a fine cat", "a refused cat", "a flaky cat", "a broken cat", "a last cat")
    pages = prompts_page(*prompts)
    openai_site(tmp_path, fake_api, pages, max_retries=1)
    fake_api.enqueue_for("a refused cat", "moderation")
    fake_api.enqueue_for("a flaky cat", "500", "500")
    fake_api.enqueue_for("a broken cat", "not_image")
    result = imagegen(tmp_path, "generate")
    assert result.returncode == 1, result.stdout + result.stderr
    # Every image was asked for (the 5xx one twice: one retry), not only the first two.
    asked = sorted(r.json["prompt"] for r in fake_api.generation_requests())
    assert asked == sorted([*prompts, "a flaky cat"])
    page = pages["index.md"]
    reasons = {
        "a refused cat": "safety system",
        "a flaky cat": "gave up after 2 attempts",
        "a broken cat": "not an acceptable image",
    }
    for prompt, reason in reasons.items():
        where = f"index.md:{line_of(page, prompt)}"
        assert re.search(rf"^failed\s+{where}: .*{reason}", result.stderr, re.M), result.stderr
    assert "2 generated, 0 already cached, 3 failed" in result.stdout
    assert "not tried" not in result.stdout + result.stderr
    # The failures were not cached; the next run asks for those three only.
    again = imagegen(tmp_path, "generate")
    assert again.returncode == 0, again.stderr
    assert "3 generated, 0 already cached, 0 failed" in again.stdout
    assert sorted(r.json["prompt"] for r in fake_api.generation_requests()[6:]) == sorted(reasons)


@pytest.mark.parametrize(
    ("behaviour", "why"),
    [
        (Behaviour("401"), "the API rejected the key"),
        (
            Behaviour("error", status=429, code="insufficient_quota", message="You exceeded your quota."),
            "quota",
        ),
    ],
)
def test_a_rejected_key_or_no_credit_stops_early_and_says_why(
    tmp_path: Path, fake_api: FakeImageAPI, behaviour: Behaviour, why: str
) -> None:
    prompts = ("first dog", "second dog", "third dog", "fourth dog")
    pages = prompts_page(*prompts)
    # One request at a time, so that nothing else is in flight when the refusal arrives.
    openai_site(tmp_path, fake_api, pages, concurrency=1)
    fake_api.enqueue("ok", behaviour)
    result = imagegen(tmp_path, "generate")
    assert result.returncode == 1
    assert len(fake_api.generation_requests()) == 2  # nothing more was sent
    page = pages["index.md"]
    first, second = fake_api.generation_requests()
    assert re.search(
        rf"^failed\s+index.md:{line_of(page, second.json['prompt'])}: .*{why}", result.stderr, re.M
    )
    for prompt in set(prompts) - {first.json["prompt"], second.json["prompt"]}:
        where = f"index.md:{line_of(page, prompt)}"
        assert re.search(rf"^untried\s+{where}: not tried: .*{why}", result.stderr, re.M), result.stderr
    assert "1 generated, 0 already cached, 1 failed, 2 not tried" in result.stdout


# -- dry runs agree with real runs --------------------------------------------------------------------


def test_generate_dry_run_exits_as_the_real_run_does(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    pages = {"index.md": "# Home\n\n![a](imagegen:a dry cat)\n\n```imagegen\nprompt: x\nsize: big\n```\n"}
    openai_site(tmp_path, fake_api, pages)
    # No key: both refuse; the dry run still shows what it would do and what it would cost.
    dry, real = (
        imagegen(tmp_path, "generate", "--dry-run", key=False),
        imagegen(tmp_path, "generate", key=False),
    )
    assert dry.returncode == real.returncode == 1
    assert "would generate 1 image(s), estimated cost $0.036, 1 broken directive(s)" in dry.stdout
    assert "no API key" in dry.stderr and "no API key" in real.stderr
    assert fake_api.requests == []
    # A broken directive: the real run generates the rest and exits 1, and so does the dry run.
    dry, real = imagegen(tmp_path, "generate", "--dry-run"), imagegen(tmp_path, "generate")
    assert dry.returncode == real.returncode == 1
    assert re.search(r"^error\s+index.md:5: size", dry.stderr, re.M)
    assert "1 generated" in real.stdout and len(fake_api.generation_requests()) == 1
    # Fixed: both exit 0.
    (tmp_path / "docs" / "index.md").write_text("# Home\n\n![a](imagegen:a dry cat)\n")
    dry, real = imagegen(tmp_path, "generate", "--dry-run"), imagegen(tmp_path, "generate")
    assert dry.returncode == real.returncode == 0, dry.stderr + real.stderr


def test_prune_and_its_dry_run_agree_and_list_what_they_remove(tmp_path: Path) -> None:
    pages = {"index.md": "# Home\n\n![a](imagegen:kept lamp)\n\n![b](imagegen:an old unused lamp)\n"}
    write_site(tmp_path, pages)
    assert imagegen(tmp_path, "generate").returncode == 0
    (tmp_path / "docs" / "index.md").write_text(
        "# Home\n\n![a](imagegen:kept lamp)\n\n```imagegen\nsize: 1x\n```\n"
    )
    # Broken directive: both refuse, with the same message and exit code, and remove nothing.
    dry, real = imagegen(tmp_path, "prune", "--dry-run"), imagegen(tmp_path, "prune")
    assert dry.returncode == real.returncode == 1
    for proc in (dry, real):
        assert "1 broken directive(s): fix them first" in proc.stderr
    with ImageCache(str(tmp_path / ".cache/plugin/imagegen")) as cache:
        entries = {key: meta for key, _fb, meta in cache.entries()}
    assert len(entries) == 2
    (tmp_path / "docs" / "index.md").write_text("# Home\n\n![a](imagegen:kept lamp)\n")
    orphan = next(key for key, meta in entries.items() if meta["prompt"] == "an old unused lamp")
    meta = entries[orphan]
    listed = rf"{orphan}  1024x1024  [\d.]+ kB  {meta['created'][:10]}\S*  an old unused lamp$"
    dry = imagegen(tmp_path, "prune", "--dry-run")
    assert dry.returncode == 0
    assert re.search(rf"^would remove {listed}", dry.stdout, re.M), dry.stdout
    assert "would remove 1 unused image(s)" in dry.stdout and "kept lamp" not in dry.stdout
    real = imagegen(tmp_path, "prune")
    assert real.returncode == 0
    assert re.search(rf"^removed\s+{listed}", real.stdout, re.M), real.stdout
    assert "removed 1 unused image(s)" in real.stdout


# -- progress -----------------------------------------------------------------------------------------


def test_generate_progress_lines_in_a_log(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    openai_site(tmp_path, fake_api, prompts_page("log one", "log two", "log three"))
    fake_api.enqueue_for("log two", "moderation")
    result = imagegen(tmp_path, "generate")
    lines = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert len(lines) == 3
    generated = failed = 0
    for n, text in enumerate(lines, 1):
        row = re.match(
            r"\[(\d)/3\] (generated|failed) +[0-9a-f]{12}  index.md:\d+  "
            r"\((\d) failed, \$(\S+) so far(, about \d+ s left)?\)$",
            text,
        )
        assert row, text
        generated += row[2] == "generated"
        failed += row[2] == "failed"
        assert (int(row[1]), int(row[3]), row[4]) == (n, failed, f"{0.036 * generated:.3f}")
        assert bool(row[5]) == (n < 3)  # the time left, until the end
    assert (generated, failed) == (2, 1)


def test_generate_progress_on_a_terminal(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    openai_site(tmp_path, fake_api, prompts_page("tty one", "tty two"))
    fake_api.enqueue_for("tty one", "moderation")
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [str(SCRIPT), "generate", "-f", str(tmp_path / "mkdocs.yml")],
        stdout=child,
        stderr=child,
        stdin=subprocess.DEVNULL,
        env={**command_env(True), "COLUMNS": "160"},
    )
    os.close(child)
    chunks = []
    while True:
        ready, _, _ = select.select([main], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(main, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    assert proc.wait(timeout=60) == 1
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert "Generating images" in screen and "[1/2]" not in screen
    assert re.search(r"2/2.*1 failed, \$0\.036 so far", screen), screen
    assert "1 generated, 0 already cached, 1 failed" in screen


def test_a_build_waiting_on_generation_says_so(tmp_path: Path) -> None:
    with FakeImageAPI(latency=6.0) as api:
        openai_site(tmp_path, api, prompts_page("slow owl"))
        result = run_mkdocs(tmp_path, env={"OPENAI_API_KEY": KEY})
    assert result.returncode == 0, result.output
    waiting = r"INFO\s+-\s+mkdocs_imagegen: waiting for images: 0 of 1 done, 0 failed, \$0\.000 so far"
    assert re.search(waiting, result.output), result.output


# -- capped is not failed -----------------------------------------------------------------------------


def test_held_back_by_max_new_images_is_not_failed(tmp_path: Path, fake_api: FakeImageAPI) -> None:
    prompts = [f"capped owl {n}" for n in range(6)]
    openai_site(tmp_path, fake_api, prompts_page(*prompts), max_new_images=2)
    built = run_mkdocs(tmp_path, env={"OPENAI_API_KEY": KEY})
    assert built.returncode == 0, built.output
    assert (
        "6 images in use: 0 from cache, 2 generated, 0 failed, 4 held back by max_new_images" in built.output
    )
    fake_api.enqueue("moderation")  # the first of the three asked for
    generated = imagegen(tmp_path, "generate", "--max-new-images", "3")
    assert generated.returncode == 1
    assert "2 generated, 0 already cached, 1 failed, 1 held back by max_new_images (3)" in generated.stdout
    assert re.search(r"^held back [0-9a-f]{12}  index.md:\d+  capped owl \d", generated.stdout, re.M)


# -- config mistakes ----------------------------------------------------------------------------------


def test_base_url_without_a_scheme_is_a_config_error_naming_the_fix(tmp_path: Path) -> None:
    write_site(
        tmp_path,
        prompts_page("a lamp"),
        plugin={"provider": "openai", "base_url": "api.lumenfall.ai/openai/v1"},
    )
    built = run_mkdocs(tmp_path, env={"OPENAI_API_KEY": KEY})
    assert built.returncode == 1
    assert "Aborted with a configuration error" in built.output
    assert "option 'base_url': base_url must start with https://" in built.output
    assert "for example base_url: https://api.lumenfall.ai/openai/v1" in built.output
    assert "retry" not in built.output  # nothing was sent
    status = imagegen(tmp_path, "status")
    assert status.returncode == 1 and "base_url must start with https://" in status.stderr


def test_misspelt_options_are_errors_with_a_suggestion(tmp_path: Path) -> None:
    plugin = {"provder": "openai", "max_new_image": 5}
    write_site(tmp_path, prompts_page("a lamp"), plugin=plugin)
    built = run_mkdocs(tmp_path)
    assert built.returncode == 1, built.output
    assert "option 'provder': unknown option 'provder'; did you mean 'provider'?" in built.output
    assert (
        "option 'max_new_image': unknown option 'max_new_image'; did you mean 'max_new_images'?"
        in built.output
    )
    assert "Unrecognised configuration name" not in built.output
    assert not (tmp_path / "site" / "index.html").exists()


def test_an_api_key_in_mkdocs_yml_says_to_use_the_environment(tmp_path: Path) -> None:
    secret = "sk-in-the-yaml-9f8e7d6c5b4a"
    write_site(tmp_path, prompts_page("a lamp"), plugin={"provider": "openai", "api_key": secret})
    built = run_mkdocs(tmp_path)
    assert built.returncode == 1
    assert "option 'api_key': never put an API key in mkdocs.yml" in built.output
    assert "export OPENAI_API_KEY=..." in built.output and "api_key_env" in built.output
    assert secret not in built.output


# -- edits --------------------------------------------------------------------------------------------


def two_halves(path: Path, size: tuple[int, int] = (256, 256)) -> None:
    """A source image: red on the left, blue on the right."""
    from PIL import Image

    image = Image.new("RGB", size, (220, 30, 30))
    image.paste((30, 30, 220), (size[0] // 2, 0, size[0], size[1]))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def built_image(build: Any, page: str = "index.html") -> Any:
    from PIL import Image

    src = re.search(r'<img [^>]*src="([^"]+)"', build.page(page))
    assert src, build.page(page)
    return Image.open(build.site / Path(page).parent / src[1]).convert("RGB")


def test_the_site_template_styles_pictures_not_edit_instructions(
    tmp_path: Path, fake_api: FakeImageAPI
) -> None:
    two_halves(tmp_path / "docs" / "img" / "lamp.png")
    page = (
        "# Home\n\n![a](imagegen:a lamp)\n\n"
        "```imagegen\nprompt: Make the lamp yellow\nalt: A yellow lamp\nsource: img/lamp.png\n```\n\n"
        "```imagegen\nprompt: Make the lamp green, keep the style\nalt: A green lamp\nsource: img/lamp.png\n```\n"
    )
    openai_site(
        tmp_path, fake_api, {"index.md": page}, prompt_template="{{ prompt }}, flat vector illustration"
    )
    built = run_mkdocs(tmp_path, "--strict", env={"OPENAI_API_KEY": KEY})
    assert built.returncode == 0, built.output
    prompts = sorted(r.params["prompt"] for r in fake_api.generation_requests())
    assert prompts == [
        "Make the lamp green, keep the style",  # an edit says what it wants in its own words
        "Make the lamp yellow",  # the site's template is not applied to an instruction
        "a lamp, flat vector illustration",
    ]


def test_an_edit_placeholder_shows_its_source_dimmed(tmp_path: Path) -> None:
    two_halves(tmp_path / "docs" / "img" / "lamp.png")
    page = "# Home\n\n```imagegen\nprompt: Make it glow\nsource: img/lamp.png\nsize: 512x256\n```\n"
    write_site(tmp_path, {"index.md": page})
    built = run_mkdocs(tmp_path)
    assert built.returncode == 0, built.output
    image = built_image(built)
    assert image.size == (512, 256)
    # Cover-cropped to 2:1 the source is still red left, blue right; dimmed, not shown as is.
    left, right = image.getpixel((30, 50)), image.getpixel((482, 50))
    assert left[0] > left[2] + 40 and right[2] > right[0] + 40, (left, right)
    assert left != (220, 30, 30) and right != (30, 30, 220)
    # A plain placeholder of the same prompt has no such halves.
    (tmp_path / "docs" / "index.md").write_text(
        "# Home\n\n```imagegen\nprompt: Make it glow\nsize: 512x256\n```\n"
    )
    plain = built_image(run_mkdocs(tmp_path))
    a, b = plain.getpixel((30, 50)), plain.getpixel((482, 50))
    assert abs(a[0] - b[0]) < 10 and abs(a[2] - b[2]) < 10


def test_a_source_starting_with_a_slash_is_in_docs_dir(tmp_path: Path) -> None:
    two_halves(tmp_path / "docs" / "img" / "lamp.png")
    page = "# Deep\n\n```imagegen\nprompt: Make it glow\nalt: A glowing lamp\nsource: /img/lamp.png\n```\n"
    write_site(tmp_path, {"guide/deep/page.md": page, "index.md": "# Home\n"})
    built = run_mkdocs(tmp_path, "--strict")
    assert built.returncode == 0, built.output
    built_image(built, "guide/deep/page/index.html")
    (tmp_path / "docs" / "guide" / "deep" / "page.md").write_text(page.replace("/img/lamp", "/img/nope"))
    missing = run_mkdocs(tmp_path)
    assert "guide/deep/page.md:3: source '/img/nope.png' not found in docs_dir" in missing.output, (
        missing.output
    )


# -- the docs say what the product does ---------------------------------------------------------------


def test_the_example_syntax_page_and_the_readme_list_every_directive_key() -> None:
    from conftest import ROOT

    from mkdocs_imagegen import options

    syntax = (ROOT / "example-site" / "docs" / "syntax.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Directive syntax", 1)[1].split("\n## ", 1)[0]
    for key in options.DIRECTIVE_KEYS:
        rows = [line.split("|")[1] for line in syntax.splitlines() if line.startswith("| `")]
        assert any(f"`{key}`" in row for row in rows), f"{key} missing from example-site/docs/syntax.md"
        assert f"`{key}`" in table, f"{key} missing from the README's directive table"


def test_the_readme_answers_a_new_users_questions() -> None:
    from conftest import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "first 32 hexadecimal characters (128 bits) of the SHA-256" in readme
    assert "python -m http.server -d example-site/site" in readme  # not from disk
    tests = readme.split("### Run the tests", 1)[1].split("\n## ", 1)[0]
    assert "../shared/corpora" in tests and "skipped" in tests
    five = readme.split("### Real images in five minutes", 1)[1].split("\n## ", 1)[0]
    for needed in (
        "platform.openai.com/api-keys",
        "lumenfall.ai",
        "export LUMENFALL_API_KEY=",
        "export OPENAI_API_KEY=",
    ):
        assert needed in five, needed
    assert (
        "gpt-image-1-mini" in five and "gpt-image-2" in five and "mkdocs-imagegen generate --dry-run" in five
    )
    pr = readme.split("### When `check` fails on your pull request", 1)[1].split("\n## ", 1)[0]
    assert "mkdocs-imagegen generate" in pr and "workflow_dispatch" in pr


# -- directives ---------------------------------------------------------------------------------------

SUPERFENCES = {"markdown_extensions": ["attr_list", "pymdownx.superfences"]}


def img_tags(html: str) -> list[dict[str, str]]:
    from html.parser import HTMLParser

    found: list[dict[str, str]] = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "img":
                found.append({k: v or "" for k, v in attrs})

    Parser().feed(html)
    return found


@pytest.mark.parametrize(
    ("fence", "config"),
    [
        ('```imagegen { .center #lamp data-x="1" }', SUPERFENCES),
        ('``` { .imagegen .center #lamp data-x="1" }', {}),
        ('```imagegen { .center #lamp data-x="1" }', {}),
    ],
    ids=["superfences", "fenced_code", "fenced_code-after-the-name"],
)
def test_a_fenced_block_sets_display_size_class_id_and_attributes(
    tmp_path: Path, fence: str, config: dict[str, Any]
) -> None:
    block = (
        f"{fence}\nprompt: a lamp\nalt: A lamp\nsize: 1024x512\nwidth: 300\nclass: wide\n"
        "attrs:\n  loading: eager\n```\n"
    )
    write_site(tmp_path, {"index.md": "# Home\n\n" + block}, **config)
    built = run_mkdocs(tmp_path, "--strict")
    assert built.returncode == 0, built.output
    (img,) = img_tags(built.page())
    assert (img["width"], img["height"]) == ("300", "150")  # the height follows the aspect ratio
    assert img["class"].split() == ["imagegen", "center", "wide"]
    assert (img["id"], img["data-x"], img["loading"]) == ("lamp", "1", "eager")
    # Display attributes are not part of the key: the same image as without them.
    plain = "```imagegen\nprompt: a lamp\nsize: 1024x512\n```\n"
    (tmp_path / "docs" / "index.md").write_text("# Home\n\n" + plain)
    (bare,) = img_tags(run_mkdocs(tmp_path).page())
    assert bare["src"] == img["src"] and (bare["width"], bare["height"]) == ("1024", "512")


def test_a_caption_is_inline_markdown_and_escapes_html(tmp_path: Path) -> None:
    caption = (
        "'The lamp, *lit*: see [the guide](guide.md), `a<b`, "
        "<script>alert(1)</script> and [a trap](javascript:alert(2))'"
    )
    block = f"```imagegen\nprompt: a lamp\nalt: A lamp\ncaption: {caption}\n```\n"
    write_site(tmp_path, {"index.md": "# Home\n\n" + block, "guide.md": "# Guide\n"})
    built = run_mkdocs(tmp_path, "--strict")
    assert built.returncode == 0, built.output
    figcaption = re.search(r"<figcaption>(.*?)</figcaption>", built.page(), re.S)
    assert figcaption, built.page()
    text = figcaption[1]
    assert "The lamp, <em>lit</em>: see " in text
    assert '<a href="guide/">the guide</a>' in text  # links resolve as the page's own do
    assert "<code>a&lt;b</code>" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "<script>alert" not in built.page()
    assert "javascript:" not in text and "a trap" in text


def test_yaml_errors_name_the_page_line(tmp_path: Path) -> None:
    pages = {
        "alias.md": "# A\n\n```imagegen\nprompt: &p a lamp\nalt: *p\n```\n",
        "indent.md": "# B\n\nText.\n\n```imagegen\nprompt: a lamp\nsize: 1024x1024\n  alt: nope\n```\n",
        "unclosed.md": "# C\n\n```imagegen\nprompt: [a lamp\n```\n",
    }
    write_site(tmp_path, pages)
    built = run_mkdocs(tmp_path)
    assert built.returncode == 0, built.output
    out = built.output
    assert "alias.md:3: the imagegen block is not valid YAML (line 5): YAML aliases are not allowed" in out, (
        out
    )
    assert "indent.md:5: the imagegen block is not valid YAML (line 8): " in out, out
    assert re.search(r"unclosed\.md:3: the imagegen block is not valid YAML \(line [45]\)", out), out


def test_one_bad_front_matter_is_one_message_listing_every_problem(tmp_path: Path) -> None:
    page = "---\ntitle: Lamps\nimagegen:\n  sise: 1536x1024\n  quality: best\n---\n\n# Lamps\n\n" + "".join(
        f"![lamp {n}](imagegen:lamp {n})\n\n" for n in range(3)
    )
    write_site(tmp_path, {"index.md": page})
    built = run_mkdocs(tmp_path)
    warnings = [line for line in built.output.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1, built.output
    assert "index.md:3: front matter 'imagegen': unknown key 'sise'; did you mean 'size'?" in warnings[0]
    assert "quality must be one of" in warnings[0]
    assert list((tmp_path / "site").rglob("assets/imagegen/*.png")) == []  # nothing generated wrongly
    status = imagegen(tmp_path, "check")
    assert status.returncode == 1
    assert "error    index.md:3: front matter 'imagegen': unknown key 'sise'" in status.stdout
    assert "not generated until the page's front matter is fixed (index.md:3)" in status.stdout


def test_an_empty_prompt_says_so(tmp_path: Path) -> None:
    write_site(tmp_path, {"index.md": "# Home\n\n```imagegen\nprompt:\nsize: 1024x1024\n```\n"})
    built = run_mkdocs(tmp_path)
    assert "index.md:3: the prompt is empty" in built.output, built.output
    assert "has no 'prompt'" not in built.output


def test_an_unbalanced_inline_directive_warns_with_page_and_line(tmp_path: Path) -> None:
    write_site(tmp_path, {"index.md": "# Home\n\nText.\n\n![x](imagegen:a cat (tabby on a mat)\n\nMore.\n"})
    built = run_mkdocs(tmp_path)
    assert "index.md:5: the inline imagegen directive never closes" in built.output, built.output
    assert "imagegen:a cat" not in built.page()  # not shipped as text
    assert run_mkdocs(tmp_path, "--strict").returncode == 1
