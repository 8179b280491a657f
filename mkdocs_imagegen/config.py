"""The plugin's options in mkdocs.yml, validated by MkDocs's own schema classes.

A wrong value becomes MkDocs's usual "Config value 'plugins': ..." error before any page is read.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from jinja2 import TemplateError
from mkdocs.config import base
from mkdocs.config import config_options as c

from . import options
from .files import within

T = TypeVar("T")


class Checked(Generic[T], base.BaseConfigOption[T]):
    """Wraps a check from `options` so mkdocs.yml is validated by the same rules as directives."""

    def __init__(self, check: Callable[[Any], T], default: T | None = None) -> None:
        super().__init__()
        self.check = check
        self.default = default

    def run_validation(self, value: object) -> T:
        if value is None:
            return value  # type: ignore[return-value]
        try:
            return self.check(value)
        except options.OptionError as exc:
            raise base.ValidationError(str(exc)) from None


class PositiveInt(base.BaseConfigOption[int]):
    def __init__(self, default: int, *, minimum: int = 1) -> None:
        super().__init__()
        self.default = default
        self.minimum = minimum

    def run_validation(self, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < self.minimum:
            raise base.ValidationError(f"expected a whole number >= {self.minimum}, got {value!r}")
        return value


class PositiveFloat(base.BaseConfigOption[float]):
    def __init__(self, default: float) -> None:
        super().__init__()
        self.default = default

    def run_validation(self, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise base.ValidationError(f"expected a number of seconds > 0, got {value!r}")
        return float(value)


class Template(base.BaseConfigOption[str]):
    """A Jinja2 prompt template, compiled now so a syntax error is a config error, not a page error."""

    def run_validation(self, value: object) -> str:
        if value is None:
            return value  # type: ignore[return-value]
        if not isinstance(value, str):
            raise base.ValidationError(f"expected a Jinja2 template string, got {type(value).__name__}")
        from .spec import compile_template

        try:
            compile_template(value)
        except TemplateError as exc:
            raise base.ValidationError(f"prompt_template is not a valid Jinja2 template: {exc}") from None
        return value


class SitePath(c.Type[str]):
    """A folder inside the built site: no absolute path, no `..`."""

    def __init__(self, default: str) -> None:
        super().__init__(str, default=default)

    def run_validation(self, value: object) -> str:
        raw = super().run_validation(value)
        text = raw.strip().replace("\\", "/").strip("/")
        bad = any(ord(ch) < 32 or ord(ch) == 127 for ch in text)  # a NUL makes every file call fail
        if bad or not text or raw.startswith(("/", "\\")) or ".." in text.split("/") or ":" in text:
            raise base.ValidationError(
                f"must be a folder inside the site, such as assets/imagegen, not {raw[:60]!r}"
            )
        return text


def redact_userinfo(url: str) -> str:
    """The URL with any `user:password@` replaced by `***@`, safe to show."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    host, slash, path = rest.partition("/")
    if "@" in host:
        host = "***@" + host.rsplit("@", 1)[1]
    return (scheme + sep if sep else "") + host + slash + path


class BaseUrl(c.Type[str]):
    """The API's address, checked now: a typo here would otherwise cost three retries per image. A
    user name or password in it is refused: httpx would send them as Basic auth instead of the
    Bearer key, and the URL (with its secret) would show in logs and placeholders."""

    def __init__(self, default: str | None = None) -> None:
        super().__init__(str, default=default)

    def run_validation(self, value: object) -> str:
        text = super().run_validation(value).strip()
        if "@" in text.partition("://")[2].partition("/")[0] or "@" in text.partition("/")[0]:
            # Checked first: no later message may show the secret.
            raise base.ValidationError(
                f"base_url must not hold a user name or password ({redact_userinfo(text)}): remove the "
                "part before '@' and pass the key through the environment variable named by api_key_env"
            )
        parts = urllib.parse.urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            fix = f"https://{text.lstrip('/')}" if "://" not in text else "https://api.openai.com/v1"
            raise base.ValidationError(
                f"base_url must start with https:// (or http://) and name a host, not {text!r}; "
                f"for example base_url: {fix}"
            )
        return text


class RemoteURL(base.BaseConfigOption[str]):
    """`s3://bucket/prefix` or `file:///path`; credentials come from the environment, never here."""

    def run_validation(self, value: object) -> str:
        if value is None:
            return value  # type: ignore[return-value]
        if not isinstance(value, str):
            raise base.ValidationError(
                f"expected s3://bucket/prefix or file:///path, got {type(value).__name__}"
            )
        from .remote import RemoteConfigError, check_url

        try:
            url = check_url(value)
        except RemoteConfigError as exc:
            raise base.ValidationError(str(exc)) from None
        import importlib.util

        if importlib.util.find_spec("obstore") is None:
            raise base.ValidationError(
                "remote_cache needs the obstore library: pip install 'mkdocs-imagegen[remote]'"
            )
        return url


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class EnvName(c.Type[str]):
    """The NAME of an environment variable holding a secret (the API key, a signing key). A value
    that looks like the secret itself is refused without being shown: the commonest way to leak a
    key into a log is to paste it where its variable's name belongs."""

    def __init__(self, default: str | None = None) -> None:
        super().__init__(str, default=default)

    def run_validation(self, value: object) -> str:
        text = super().run_validation(value)
        mixed = any(ch.islower() for ch in text) and any(ch.isdigit() for ch in text)
        looks_like_key = len(text) >= 24 and mixed
        if not _ENV_NAME.match(text) or looks_like_key:
            raise base.ValidationError(
                "expected the NAME of an environment variable holding the secret (letters, digits and "
                "'_', such as OPENAI_API_KEY), not the secret itself; what is there is not shown. Never "
                "put a key in mkdocs.yml: export it (export OPENAI_API_KEY=...) before the build"
            )
        return text


def mkdocs_folder_holding(path: str, *, site_dir: str | None, docs_dir: str | None) -> str | None:
    """'site_dir' or 'docs_dir' when `path` is that folder or inside it (real paths), else None.

    MkDocs empties site_dir on every build and publishes docs_dir: neither may hold a store.
    """
    real = os.path.realpath(path)
    for name, folder in (("site_dir", site_dir), ("docs_dir", docs_dir)):
        if folder and within(os.path.realpath(folder), real):
            return name
    return None


def check_cache_dir(cache_dir: str, docs_dir: str, site_dir: str) -> str | None:
    """Why `cache_dir` cannot be used, or None. MkDocs wipes site_dir and publishes docs_dir."""
    name = mkdocs_folder_holding(cache_dir, site_dir=site_dir, docs_dir=docs_dir)
    if name is None:
        return None
    folder = site_dir if name == "site_dir" else docs_dir
    consequence = (
        "MkDocs empties site_dir on every build, so paid images would be made (and billed) again"
        if name == "site_dir"
        else "MkDocs would publish the cache (prompts, usage) as part of the site"
    )
    return (
        f"cache_dir {cache_dir} is inside {name} ({folder}): {consequence}. Set cache_dir to a "
        "folder outside both, such as the default .cache/plugin/imagegen"
    )


class Dollars(base.BaseConfigOption[float]):
    """An amount of US dollars, 0 or more."""

    def run_validation(self, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e9:
            raise base.ValidationError(f"expected an amount of US dollars such as 2.50, got {value!r}")
        return float(value)


class ImagegenConfig(base.Config):
    enabled = c.Type(bool, default=True)
    provider = c.Choice(("placeholder", "openai", "lumenfall"), default="placeholder")
    model = c.Optional(Checked(options.check_model))
    size = Checked(options.check_size, default="1024x1024")
    quality = c.Optional(Checked(options.check_quality))
    background = c.Optional(Checked(options.check_background))
    format = Checked(options.check_format, default="png")
    output_compression = c.Optional(Checked(options.check_compression))
    moderation = c.Optional(Checked(options.check_moderation))
    prompt_template = c.Optional(Template())
    cache_dir = c.Type(str, default=".cache/plugin/imagegen")
    output_dir = SitePath("assets/imagegen")
    concurrency = PositiveInt(4)
    on_error = c.Choice(("placeholder", "fail"), default="placeholder")
    frozen = c.Type(bool, default=False)
    # Warn (so --strict fails) for an image without alt text of its own: a prompt is not a description.
    alt_required = c.Type(bool, default=True)
    # The OpenAI-compatible provider.
    # Unset: the provider's own (providers.ENDPOINTS).
    base_url = c.Optional(BaseUrl())
    api_key_env = c.Optional(EnvName())
    timeout = PositiveFloat(120.0)
    max_retries = PositiveInt(3, minimum=0)
    extra_body = c.Type(dict, default={})
    max_new_images = PositiveInt(50, minimum=0)
    # The remote tier: a store shared by many runners (credentials from the AWS environment).
    remote_cache = c.Optional(RemoteURL())
    remote_cache_mode = c.Choice(("read-write", "read-only"), default="read-write")
    remote_cache_lease = PositiveInt(300)
    remote_cache_signing_key_env = c.Optional(EnvName())
    max_cost: c.Optional[float] = c.Optional(Dollars())
    # The image lock: real images committed beside the docs (a folder relative to mkdocs.yml).
    lock = c.Optional(c.Type(str))
    outdated = c.Choice(("keep", "regenerate"), default="keep")
    # `mkdocs serve` only: generate in the background, wait as a build does, or never generate.
    serve_mode = c.Choice(("background", "blocking", "placeholder"), default="background")

    def _validate(self) -> tuple[list[tuple[str, Exception]], list[tuple[str, str]]]:
        """An unknown option is an error naming the nearest known one, not a warning lost in the log.

        A misspelt `provder: openai` would otherwise build with placeholders, and a misspelt
        `max_new_image` would leave the spending cap at its default, without a word.
        """
        failed, warnings = super()._validate()
        known = dict(self._schema)
        warnings = [(k, w) for k, w in warnings if not (k not in known and w.startswith("Unrecognised"))]
        for key in sorted(set(self.keys()) - set(known)):
            # The providers' own variables (providers.ENDPOINTS), named here without importing it.
            default_env = "LUMENFALL_API_KEY" if self.get("provider") == "lumenfall" else "OPENAI_API_KEY"
            env = self.get("api_key_env") or default_env
            failed.append((key, base.ValidationError(unknown_option_message(key, known, env))))
        return failed, warnings


def unknown_option_message(key: str, known: dict[str, Any], env: str) -> str:
    if key.lower().replace("-", "_") in ("api_key", "apikey", "key", "openai_api_key", "token"):
        return (
            "never put an API key in mkdocs.yml (it would be committed and published). "
            f"Remove it and pass the key through the environment: export {env}=... "
            "before `mkdocs build`, or name another variable with api_key_env"
        )
    return options.unknown_key_message(key, known).replace("unknown key", "unknown option", 1)
