"""A fake OpenAI Images API served over real HTTP on loopback: for this project's tests and
benchmark, and for anyone who wants to test a site's docs build offline.

The plugin's tests must never talk to a real image service.  ``FakeImageAPI``
runs a threaded HTTP server on ``127.0.0.1`` (ephemeral port) that speaks the
subset of the OpenAI Images API used by the plugin:

* ``POST /v1/images/generations`` (JSON body)
* ``POST /v1/images/edits`` (``multipart/form-data`` body)
* ``GET /files/<id>.<ext>`` (images handed out in URL mode)

Answers are scripted with :meth:`FakeImageAPI.enqueue` (one behaviour per
generation/edit request, FIFO); when nothing is queued the answer is a success
in the server's ``mode`` (``"b64"`` or ``"url"``).  Every request is recorded
in :attr:`FakeImageAPI.requests`.

Typical use::

    with FakeImageAPI(latency=0.0) as api:
        api.enqueue("429", Behaviour("hang", seconds=2), "ok")
        ...  # point the plugin at api.base_url
        assert len(api.generation_requests()) == 3

For pytest, wrap :func:`serve_fake_api` in a fixture::

    @pytest.fixture
    def fake_api():
        yield from serve_fake_api()
"""

from __future__ import annotations

from .images import bomb_png, colour_for, encode_image
from .script import BEHAVIOURS, Behaviour, FilePart, RecordedRequest
from .server import FakeImageAPI, serve_fake_api

__all__ = [
    "BEHAVIOURS",
    "Behaviour",
    "FakeImageAPI",
    "FilePart",
    "RecordedRequest",
    "bomb_png",
    "colour_for",
    "encode_image",
    "serve_fake_api",
]
