"""Alt text is what a screen reader says: a build warns (so --strict fails) when an image has none.

A prompt is an instruction to an image model ("flat vector illustration, soft pastel palette"),
not a description for a reader, so alt text that only fell back to the prompt counts as missing.
"""

from __future__ import annotations

import re
from pathlib import Path

from conftest import run_mkdocs, write_site
from test_build import imgs

from mkdocs_imagegen.spec import PageInfo, RawDirective, Settings, resolve

PAGE = (
    "# Home\n"  # 1
    "\n"
    "```imagegen\nprompt: a block without alt\n```\n"  # 3
    "\n"
    "![](imagegen:an inline image with empty brackets)\n"  # 7
    "\n"
    '```imagegen\nprompt: a block with empty alt\nalt: "  "\n```\n'  # 9
    "\n"
    "```imagegen\nprompt: a described block\nalt: A lighthouse\n```\n"  # 14
    "\n"
    "![A harbour at night](imagegen:a described inline image)\n"  # 19
)
BAD = {3: "no alt text", 7: "no alt text", 9: "empty alt text"}


def warnings(output: str) -> dict[int, str]:
    return {
        int(m[1]): m[2] for m in re.finditer(r"WARNING\s+-\s+mkdocs_imagegen: index\.md:(\d+): (.*)", output)
    }


def test_missing_empty_and_defaulted_alt_fail_a_strict_build(tmp_path: Path) -> None:
    write_site(tmp_path, {"index.md": PAGE})
    strict = run_mkdocs(tmp_path, "--strict")
    assert strict.returncode == 1, strict.output
    found = warnings(strict.output)
    assert set(found) == set(BAD), strict.output  # the described images are not named
    for line, problem in BAD.items():
        assert problem in found[line] and "alt_required: false" in found[line]
    assert "describe the image as 'alt: ...' in the block" in found[3]
    assert "describe the image inside the [brackets]" in found[7]
    assert "Traceback" not in strict.output

    # Without --strict the warnings do not stop the site: every image is made and shown.
    lenient = run_mkdocs(tmp_path)
    assert lenient.returncode == 0, lenient.output
    assert set(warnings(lenient.output)) == set(BAD)
    alts = [img["alt"] for img in imgs(lenient.page())]
    assert alts == [
        "a block without alt",
        "an inline image with empty brackets",
        "  ",
        "A lighthouse",
        "A harbour at night",
    ]


def test_alt_required_false_turns_the_warning_off(tmp_path: Path) -> None:
    write_site(tmp_path, {"index.md": PAGE}, plugin={"alt_required": False})
    build = run_mkdocs(tmp_path, "--strict")
    assert build.returncode == 0, build.output
    assert "alt text" not in build.output
    assert len(imgs(build.page())) == 5


def test_a_described_site_builds_strict_without_a_word(tmp_path: Path) -> None:
    write_site(
        tmp_path,
        {"index.md": "# Home\n\n![A kite](imagegen:a red kite)\n\n```imagegen\nprompt: x\nalt: y\n```\n"},
    )
    build = run_mkdocs(tmp_path, "--strict")
    assert build.returncode == 0, build.output
    assert "WARNING" not in build.output


def test_the_decision_is_made_on_the_key_path_and_leaves_the_key_alone(tmp_path: Path) -> None:
    """`Occurrence.alt_defaulted` is decided in spec.resolve; alt never changes the key."""
    settings = Settings(docs_dir=str(tmp_path), provider="placeholder", defaults={})
    page = PageInfo(src_uri="index.md", abs_path=None, title="Home", meta={}, defaults={})
    raws = [
        RawDirective(kind="block", line=1, body="prompt: same"),
        RawDirective(kind="block", line=5, body="prompt: same\nalt: Described"),
        RawDirective(kind="inline", line=9, body="same", alt=""),
    ]
    bare, described, inline = (resolve(raw, page, settings) for raw in raws)
    assert (bare.alt_defaulted, described.alt_defaulted, inline.alt_defaulted) == (True, False, True)
    assert bare.alt == "same" and described.alt_problem is None
    assert bare.spec is not None and bare.spec.key == described.spec.key == inline.spec.key
    broken = resolve(RawDirective(kind="block", line=1, body="size: 10x10"), page, settings)
    assert broken.spec is None and broken.alt_problem is None  # the error is reported instead
