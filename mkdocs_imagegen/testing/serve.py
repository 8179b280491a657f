"""A real `mkdocs serve` in a subprocess, on a free loopback port, every wait bounded in time:
for this project's tests and benchmark, and for a site's own tests of its preview.

Pages are fetched over HTTP as a browser would; `wait_for_reload` is what the live-reload script
in every served page does (a long poll of `/livereload/<epoch>/<id>` that answers once the server
has rebuilt), so "the browser reloaded" is observed, not assumed.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

WATCHER_SETTLE = 1.5
LIVERELOAD = re.compile(r"livereload\((\d+), (\d+)\);")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServeError(AssertionError):
    """The server did not do what the test waited for; the message holds its output."""


# `python -m mkdocs`, but hearing Ctrl-C: a non-interactive shell starts background jobs with
# SIGINT ignored, and Python leaves an ignored SIGINT ignored, so `interrupt()` would go unheard
# (tests run from CI or with `&`). Set in the child's own code: no pre-exec hook in a threaded parent.
MKDOCS_HEARING_CTRL_C = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'mkdocs'; runpy.run_module('mkdocs', run_name='__main__', alter_sys=True)"
)


class MkdocsServe:
    """`python -m mkdocs serve` for the site in `root` (see MKDOCS_HEARING_CTRL_C); a context manager."""

    def __init__(self, root: Path, *, env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        full_env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "IMAGEGEN_FROZEN")}
        full_env.update(env or {})
        full_env["PYTHONUNBUFFERED"] = "1"
        self._cmd = [
            sys.executable,
            "-c",
            MKDOCS_HEARING_CTRL_C,
            "serve",
            "-f",
            str(root / "mkdocs.yml"),
            "-a",
            f"127.0.0.1:{self.port}",
            *args,
        ]
        self._env = full_env
        self.proc: subprocess.Popen[str] | None = None
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self._reader: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, timeout: float = 60) -> MkdocsServe:
        self.proc = subprocess.Popen(
            self._cmd,
            cwd=self.root,
            env=self._env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_for_log(r"Serving on http://127\.0\.0\.1", timeout=timeout)
        # The server's file watcher takes its first look at the files just as it starts serving;
        # a file saved before that look would go unseen. Its polls are 0.5 s apart.
        time.sleep(WATCHER_SETTLE)
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self._lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def interrupt(self, timeout: float = 20) -> tuple[int, float]:
        """Ctrl-C: SIGINT, then (exit code, seconds until the process had exited)."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise ServeError(f"mkdocs serve still running {timeout} s after SIGINT\n{self.output}") from None
        return code, time.monotonic() - started

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self._reader is not None:
            self._reader.join(5)

    def __enter__(self) -> MkdocsServe:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- the log ---------------------------------------------------------------------------------
    @property
    def output(self) -> str:
        with self._cond:
            return "\n".join(self._lines)

    def mark(self) -> int:
        """A position in the log; `wait_for_log(after=mark)` looks only at later lines."""
        with self._cond:
            return len(self._lines)

    def wait_for_log(self, pattern: str, *, timeout: float = 30, after: int = 0) -> str:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self._lines[after:]:
                    if regex.search(line):
                        return line
                if self.proc is not None and self.proc.poll() is not None and not self._reader_alive():
                    raise ServeError(
                        f"mkdocs serve exited before logging {pattern!r}\n{self.output_locked()}"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ServeError(
                        f"no log line matching {pattern!r} in {timeout} s\n{self.output_locked()}"
                    )
                self._cond.wait(min(left, 0.2))

    def count(self, pattern: str, *, after: int = 0) -> int:
        regex = re.compile(pattern)
        with self._cond:
            return sum(1 for line in self._lines[after:] if regex.search(line))

    def output_locked(self) -> str:
        return "\n".join(self._lines)

    def _reader_alive(self) -> bool:
        return self._reader is not None and self._reader.is_alive()

    # -- HTTP ------------------------------------------------------------------------------------
    def get(self, path: str = "", timeout: float = 30) -> bytes:
        try:
            with urllib.request.urlopen(self.url + path.lstrip("/"), timeout=timeout) as answer:
                return bytes(answer.read())
        except (urllib.error.URLError, TimeoutError) as exc:
            raise ServeError(f"GET /{path}: {exc}\n{self.output}") from None

    def page(self, path: str = "", timeout: float = 30) -> str:
        return self.get(path, timeout).decode("utf-8")

    def wait_for_reload(self, page_html: str, timeout: float = 60) -> None:
        """Wait as the page's live-reload script does, until the server says: reload now."""
        found = LIVERELOAD.search(page_html)
        if not found:
            raise ServeError("the page has no live-reload script")
        epoch = int(found[1])
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ServeError(f"no reload within {timeout} s\n{self.output}")
            # The server answers at once when there is something new, else after up to a minute.
            answer = self.get(f"livereload/{epoch}/{found[2]}", timeout=left + 5).decode()
            if answer.strip().isdigit() and int(answer) > epoch:
                return
