"""Parts cut out of the placeholder renderer and the fake API, on their own: text fitting,
request reading and the answer script."""

from __future__ import annotations

import io
from email.message import Message

import pytest
from PIL import ImageFont

from mkdocs_imagegen.testing.request import new_record, parse_body, read_body
from mkdocs_imagegen.testing.script import Behaviour, Script, _BadRequest
from mkdocs_imagegen.wireframe.layout import Face, ellipsize, fit_stack, wrap


def face(size: int = 20) -> Face:
    return Face(ImageFont.load_default(size=size), size)


def test_wrap_breaks_a_word_longer_than_a_line() -> None:
    f = face()
    lines, truncated = wrap("a " + "x" * 200, f, 100, 50)
    assert not truncated and lines[0] == "a" and all(f.length(line) <= 100 for line in lines)
    assert "".join(lines[1:]) == "x" * 200


def test_wrap_stops_at_max_lines_and_ellipsize_fits() -> None:
    f = face()
    lines, truncated = wrap("word " * 100, f, 120, 2)
    assert truncated and len(lines) == 2
    last = ellipsize(lines[-1], f, 120)
    assert last.endswith("\u2026") and f.length(last) <= 120


def test_the_prompt_takes_the_labels_room_when_it_needs_it() -> None:
    small = face(12)
    label, body = fit_stack(
        "a prompt",
        "a label of several words",
        small,
        face,
        (200, small.step + 2),  # room for one line only
        gap=2,
        size_line=False,
        prompt_sizes=(12, 12),
    )
    assert label.lines == [] and body is not None and body.lines == ["a prompt"]


def headers(**values: str) -> Message:
    message = Message()
    for key, value in values.items():
        message[key.replace("_", "-")] = value
    return message


def test_read_body_chunked_and_by_length() -> None:
    chunked = io.BytesIO(b"3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n")
    assert read_body(chunked, headers(Transfer_Encoding="chunked"), 100) == b"abcde"
    plain = io.BytesIO(b"hello")
    assert read_body(plain, headers(Content_Length="5"), 100) == b"hello"
    with pytest.raises(_BadRequest) as refused:
        read_body(io.BytesIO(b""), headers(Content_Length="500"), 100)
    assert refused.value.status == 413


def test_parse_body_keeps_a_json_error_for_the_route() -> None:
    record = new_record(
        "POST", "/v1/images/generations?dryRun=true", [("Content-Type", "application/json")], 0.0
    )
    record.body = b"{not json"
    error = parse_body(record)
    assert error is not None and record.json is None and record.query == "dryRun=true"
    record.body = b'{"prompt": "p"}'
    assert parse_body(record) is None and record.params == {"prompt": "p"}


def test_script_serves_a_prompts_own_answers_first_then_the_fifo_then_the_default() -> None:
    script = Script()
    script.add(("500", Behaviour("429")))
    script.add(("moderation",), "a fox")
    assert script.next("a fox", "ok").name == "moderation"
    assert [script.next("a fox", "ok").name for _ in range(3)] == ["500", "429", "ok"]
    assert script.pending() == []
