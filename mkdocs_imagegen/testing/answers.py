"""How the fake API answers `POST /images/generations` and `/images/edits`, as scripted.

`api` is the `FakeImageAPI` (typed `Any`: its module imports this one, through the handler).
"""

from __future__ import annotations

import base64
import time
from typing import Any

from .images import (
    HTML_ERROR_PAGE,
    INVALID_BASE64,
    INVALID_JSON_BODY,
    NOT_IMAGE_BYTES,
    _ImageSpec,
    bomb_png,
    colour_for,
    encode_image,
)
from .reply import Reply
from .script import _ERROR_DEFAULTS, Behaviour, RecordedRequest, _BadRequest
from .validate import validate_request

_OUTPUT_TOKENS = {"low": 272, "medium": 1056, "high": 4160}


def answer_image(
    api: Any, reply: Reply, record: RecordedRequest, endpoint: str, parse_error: _BadRequest | None
) -> None:
    """The next scripted behaviour answers; the slow ones hold the request open first."""
    with api._in_flight_counter():
        behaviour = api._next_behaviour(record)
        record.behaviour = behaviour.name
        if behaviour.name == "hang":
            api._stopping.wait(max(0.0, behaviour.seconds))
            reply.hang_up()
            return
        if behaviour.name == "drip":
            reply.drip(behaviour.seconds)
            return
        if api.latency > 0:
            api._stopping.wait(api.latency)
        if behaviour.name in ("ok", "url") and (
            api.api_key is not None and record.headers.get("authorization") != f"Bearer {api.api_key}"
        ):
            behaviour = Behaviour("401")
            record.behaviour = "401"
        if not _answer_scripted(api, reply, record, behaviour):
            _answer_images(api, reply, record, endpoint, behaviour, parse_error)


def _answer_scripted(api: Any, reply: Reply, record: RecordedRequest, behaviour: Behaviour) -> bool:
    """Answers built from the Behaviour alone, whatever was asked; False for the image answers."""
    name = behaviour.name
    extra = dict(behaviour.headers)
    if name in _ERROR_DEFAULTS:
        _answer_error(reply, behaviour, record.params, extra)
    elif name == "raw_error":
        reply.send(
            behaviour.status or 422, (behaviour.message or "").encode("utf-8"), behaviour.content_type, extra
        )
    elif name == "invalid_json":
        reply.send(200, INVALID_JSON_BODY, "application/json", extra)
    elif name == "html_200":
        reply.send(200, HTML_ERROR_PAGE, "text/html; charset=utf-8", extra)
    elif name == "raw":
        reply.send(behaviour.status or 200, behaviour.body, behaviour.content_type, extra)
    elif name == "b64_huge":
        reply.huge_b64(behaviour.size, behaviour.content_length)
    elif name in ("b64_data", "url_to", "redirect_to"):
        reply.json(200, _hostile_payload(api, behaviour), extra)
    elif name == "echo_auth":
        echoed = f"<html>{record.headers.get('authorization', '')}</html>".encode()
        reply.send(200, echoed, "text/html; charset=utf-8", extra)
    else:
        return False
    return True


def _answer_error(reply: Reply, behaviour: Behaviour, params: dict[str, Any], extra: dict[str, str]) -> None:
    name = behaviour.name
    status, error_type, code, message = _ERROR_DEFAULTS[name]
    if name == "429":
        if behaviour.retry_after is not None:
            value = behaviour.retry_after
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            extra.setdefault("Retry-After", str(value))
        if behaviour.retry_after_ms is not None:
            extra.setdefault("retry-after-ms", str(behaviour.retry_after_ms))
    message = behaviour.message or message.format(model=params.get("model", ""))
    reply.error(
        behaviour.status or status,
        behaviour.error_type or error_type,
        behaviour.code if behaviour.code is not None else code,
        message,
        behaviour.param,
        extra,
    )


def _hostile_payload(api: Any, behaviour: Behaviour) -> dict[str, Any]:
    """A success whose one image is what the trust-boundary test put in the Behaviour."""
    one: dict[str, Any] = {}
    if behaviour.name == "b64_data":
        one["b64_json"] = base64.b64encode(behaviour.data).decode("ascii")
    elif behaviour.name == "url_to":
        one["url"] = behaviour.url
    else:
        file_id = api._files.store(("redirect", behaviour.url))
        one["url"] = f"{api.root_url}/files/{file_id}.png"
    if behaviour.revised_prompt is not None:
        one["revised_prompt"] = behaviour.revised_prompt
    payload: dict[str, Any] = {"created": int(time.time()), "data": [one]}
    if behaviour.usage is not None:
        payload["usage"] = behaviour.usage
    return payload


def _answer_images(
    api: Any,
    reply: Reply,
    record: RecordedRequest,
    endpoint: str,
    behaviour: Behaviour,
    parse_error: _BadRequest | None,
) -> None:
    """An answer with the `n` images asked for (or broken stand-ins), once the request is valid."""
    if parse_error is not None:
        reply.error(parse_error.status, "invalid_request_error", None, parse_error.message, parse_error.param)
        return
    params = record.params
    try:
        if api.validate:
            validate_request(params, endpoint, record.file_parts, api.flavour)
        spec = _ImageSpec.from_params(params, endpoint, record)
    except _BadRequest as exc:
        api.rejections.append(exc.message)
        reply.error(exc.status, "invalid_request_error", "invalid_value", exc.message, exc.param)
        return
    items = []
    for index in range(spec.n):
        item = _item(api, behaviour, spec, colour_for(spec.prompt, index))
        item["revised_prompt"] = spec.prompt
        items.append(item)
    payload = {
        "created": int(time.time()),
        "data": items,
        "background": spec.background,
        "output_format": spec.fmt,
        "quality": spec.quality,
        "size": f"{spec.width}x{spec.height}",
        "usage": _usage(record, spec),
    }
    if api.reported_cost is not None:
        payload["metadata"] = {"cost": api.reported_cost}
    reply.json(200, payload, dict(behaviour.headers))


def _item(api: Any, behaviour: Behaviour, spec: _ImageSpec, rgb: tuple[int, int, int]) -> dict[str, Any]:
    """One entry of `data`: the image, by value or by URL, or what the behaviour breaks it into."""
    name = behaviour.name
    if name == "ok":
        return {"b64_json": _b64(spec.encode(rgb))}
    if name == "url":
        return {"url": _file_url(api, ("bytes", spec.encode(rgb), spec.fmt), spec.fmt)}
    if name == "not_image":
        return {"b64_json": _b64(NOT_IMAGE_BYTES)}
    if name == "invalid_base64":
        return {"b64_json": INVALID_BASE64}
    if name == "truncated_png":
        png = encode_image(spec.width, spec.height, "png", rgb)
        return {"b64_json": _b64(png[: len(png) // 2])}
    if name == "bomb":
        return {"b64_json": _b64(bomb_png(behaviour.bomb_width, behaviour.bomb_height))}
    if name == "url_file_scheme":
        return {"url": "file:///etc/passwd"}
    if name == "url_big":
        return {"url": _file_url(api, ("big", behaviour.size, behaviour.content_length), "png")}
    if name == "url_fail_once":
        return {"url": _file_url(api, ("fail_once", spec.encode(rgb), spec.fmt), spec.fmt)}
    if name == "url_redirect_loop":
        return {"url": _file_url(api, ("loop",), "png")}
    raise AssertionError(f"unhandled behaviour {name!r}")  # pragma: no cover - kept in sync with BEHAVIOURS


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _file_url(api: Any, entry: tuple[Any, ...], ext: str) -> str:
    return f"{api.root_url}/files/{api._files.store(entry)}.{ext}"


def _usage(record: RecordedRequest, spec: _ImageSpec) -> dict[str, Any]:
    """Token counts shaped like the real API's, so cost code has numbers to read."""
    input_tokens = max(1, len(spec.prompt.split()))
    image_tokens = sum(len(part.data) // 4096 + 65 for part in record.file_parts)
    output_tokens = _OUTPUT_TOKENS.get(spec.quality, 1056) * spec.n
    return {
        "input_tokens": input_tokens + image_tokens,
        "input_tokens_details": {
            "text_tokens": input_tokens,
            "image_tokens": image_tokens,
        },
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + image_tokens + output_tokens,
    }
