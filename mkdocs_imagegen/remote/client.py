"""The object store under one URL, through obstore: opened on first use, off after its first failure.

Opening lazily keeps a build whose images are all in the local cache from ever touching the
store; switching off after one warning keeps a failing store (timeouts, 5xx, no credentials)
from failing, or slowing, a build that can succeed without it.
"""

from __future__ import annotations

import datetime
import os
import threading
from typing import TYPE_CHECKING, Any

from ..logs import log
from .record import Damaged
from .urls import clean, redact

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig

Errors = tuple[type[BaseException], ...]


def errors() -> tuple[Errors, Errors]:
    """(missing, exists-or-changed) exception types, imported only when the store is used."""
    from obstore import exceptions as e

    return (FileNotFoundError, e.NotFoundError), (FileExistsError, e.AlreadyExistsError, e.PreconditionError)


class StoreClient:
    """One store for one run; safe to call from several threads."""

    def __init__(self, url: str, *, timeout: float, store: Any = None) -> None:
        self.url = url
        self._timeout = timeout
        self._store = store
        self._lock = threading.Lock()
        self._disabled: str | None = None

    @property
    def available(self) -> bool:
        return self._disabled is None

    def store(self) -> Any:
        """The obstore store, built on first use."""
        with self._lock:
            if self._store is None:
                from obstore.store import from_url

                if self.url.startswith("file://"):
                    os.makedirs(self.url[7:], exist_ok=True)
                    self._store = from_url(self.url)
                else:
                    options, retry = self._options(), self._retry()
                    self._store = from_url(self.url, client_options=options, retry_config=retry)
            return self._store

    def _options(self) -> ClientConfig:
        options: ClientConfig = {
            "timeout": f"{max(1, int(self._timeout))}s",
            "connect_timeout": f"{max(1, int(min(self._timeout, 5)))}s",
        }
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL", "")
        if endpoint.startswith("http://"):
            options["allow_http"] = True  # a local MinIO or test server named by the user
        return options

    def _retry(self) -> RetryConfig:
        """Few, short retries: a store that does not answer soon is worth less than the time lost."""
        return {
            "max_retries": 2,
            "retry_timeout": datetime.timedelta(seconds=self._timeout * 2),
            "backoff": {
                "init_backoff": datetime.timedelta(milliseconds=100),
                "max_backoff": datetime.timedelta(seconds=2),
                "base": 2,
            },
        }

    def fail(self, action: str, exc: BaseException) -> None:
        """Switch the store off for the rest of the run, saying so once."""
        reason = clean(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        with self._lock:
            first = self._disabled is None
            self._disabled = self._disabled or reason
        if first:
            log.warning(
                f"remote cache {redact(self.url)} cannot be used ({action}: {reason}); "
                "this run goes on with the local cache and generates what it lacks"
            )

    def get_bytes(self, path: str, limit: int) -> tuple[bytes, str | None]:
        """An object's bytes and e-tag, refused as Damaged before it is read when over `limit`."""
        import obstore

        result = obstore.get(self.store(), path)
        size = int(result.meta.get("size") or 0)
        if size > limit:
            raise Damaged(f"{path} is {size} bytes, over the {limit}-byte limit")
        data = result.bytes().to_bytes()
        if len(data) > limit:
            raise Damaged(f"{path} is over the {limit}-byte limit")
        return data, result.meta.get("e_tag")
