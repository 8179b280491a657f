"""What `mkdocs serve` needs beyond a build: the reload trigger and the bookkeeping of a session.

MkDocs's live-reload server rebuilds and reloads the browsers when a watched file changes, and
offers plugins no other public way in. So the plugin watches a folder of its own (through
`server.watch` in `on_serve`) and writes a file there when a background image is ready: the
server rebuilds, the rebuild finds the image in the cache, and the browser reloads.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from typing import TYPE_CHECKING, Any

from . import render

if TYPE_CHECKING:
    from .directives import Images

SERVE_MODES = ("background", "blocking", "placeholder")
# The server's file watcher polls every 0.5 s and takes its first look when the server starts,
# after `on_serve`; a change made before that look would go unseen, so it is made again later.
ARM_DELAY = 1.0
ARM_TIMEOUT = 60.0


class ReloadTrigger:
    """A watched folder; `fire()` changes a file in it, which makes the server rebuild and reload."""

    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="mkdocs-imagegen-reload-")
        self._stamp = os.path.join(self.folder, "ready")
        self._lock = threading.Lock()
        self._armed = False  # the server's watcher has taken its first look at the folder
        self._missed = False  # fired before that: fire again once armed
        self._fired = False  # fired since the last rebuild started
        self._closed = False
        self._count = 0

    def watch(self, server: Any) -> None:
        """Register the folder with MkDocs's LiveReloadServer (from `on_serve`)."""
        server.watch(self.folder, recursive=False)
        observer = getattr(server, "observer", None)
        thread = threading.Thread(target=self._arm, args=(observer,), name="imagegen-reload", daemon=True)
        thread.start()

    def _arm(self, observer: Any) -> None:
        deadline = time.monotonic() + ARM_TIMEOUT
        while observer is not None and not observer.is_alive() and time.monotonic() < deadline:
            if self._closed:
                return
            time.sleep(0.05)
        time.sleep(ARM_DELAY)
        with self._lock:
            self._armed = True
            missed, self._missed = self._missed, False
        if missed:
            self.fire()

    def fire(self) -> None:
        """Ask for a rebuild and a reload; safe from any thread, a no-op once closed."""
        with self._lock:
            if self._closed:
                return
            self._fired = True
            if not self._armed:
                self._missed = True
                return
            self._count += 1
            count = self._count
        # The folder went away: nothing to reload for.
        with contextlib.suppress(OSError), open(self._stamp, "w", encoding="ascii") as fh:
            fh.write(f"{count}\n")

    def consume(self) -> bool:
        """Whether the trigger fired since the last call: the rebuild starting now is (also) ours."""
        with self._lock:
            fired, self._fired = self._fired, False
            return fired

    def close(self) -> None:
        with self._lock:
            self._closed = True
        shutil.rmtree(self.folder, ignore_errors=True)


class ServeSession:
    """The plugin's side of one `mkdocs serve`: the trigger, and the images pages showed as pending."""

    def __init__(self) -> None:
        self.trigger: ReloadTrigger | None = None
        self.opened_with: str | None = None  # the options the session's engine was opened with
        self._shown: set[str] = set()
        self._early = False  # an image a page showed as pending was ready before the server was
        self._lock = threading.Lock()
        self.serving = False  # the command is `mkdocs serve`
        self.dirty = False

    def mode(self, serve_mode: str, *, planning: bool) -> str:
        """`build` (wait for every image), or the serve_mode of a `mkdocs serve` session."""
        if not self.serving or planning:
            return "build"
        # `serve --dirty` rebuilds only the pages that changed: a page showing a placeholder would
        # never be rebuilt to show its image, so it waits for the image instead.
        if self.dirty and serve_mode == "background":
            return "blocking"
        return serve_mode

    def pending_src(self, images: Images, key: str) -> str | None:
        """The stand-in for an image on its way (or, with serve_mode placeholder, not made).

        None for an image that failed: the caller shows its error.
        """
        occurrence = images.occurrence(key)
        outcome = images.outcome(key)
        if occurrence is None or occurrence.spec is None or (outcome is not None and outcome.entry is None):
            return None
        waiting = key not in images.missing
        if waiting:
            self.showed_pending(key)  # first: from now on, the image's arrival reloads the page
            if outcome is not None or images.outcome(key) is not None:
                # It arrived while this page was written (after the page looked for its file):
                # its own reload may have gone by before the page was marked as showing it.
                self.image_ready(key, wanted=True)
        width, height = occurrence.spec.dimensions or (1024, 1024)
        return render.pending_src(prompt=occurrence.spec.prompt, width=width, height=height, waiting=waiting)

    def watch(self, server: Any) -> None:
        """From `on_serve`, which MkDocs calls after the first build: images may be ready already."""
        with self._lock:
            if self.trigger is not None:
                return
            self.trigger = ReloadTrigger()
            early, self._early = self._early, False
        self.trigger.watch(server)
        if early:
            self.trigger.fire()

    def after_save(self) -> bool:
        """Whether the rebuild starting now is a save's, not only the one the trigger asked for."""
        return self.trigger is None or not self.trigger.consume()

    def showed_pending(self, key: str) -> None:
        with self._lock:
            self._shown.add(key)

    def image_ready(self, key: str, *, wanted: bool) -> None:
        """An image finished (engine thread): reload if a page showed it as pending and still uses it."""
        with self._lock:
            if key not in self._shown:
                return
            self._shown.discard(key)
            trigger = self.trigger
            if wanted and trigger is None:  # the first build's page: reload once the server is up
                self._early = True
        if wanted and trigger is not None:
            trigger.fire()

    def close(self) -> None:
        trigger, self.trigger = self.trigger, None
        if trigger is not None:
            trigger.close()
