"""The build's images as files of the site: MkDocs copies them and validates links against them."""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files, InclusionLevel
from mkdocs.structure.pages import Page

from . import render
from .directives import REF_RE
from .lock import EXTENSIONS
from .summary import raise_for

if TYPE_CHECKING:
    from .directives import Images


class Published:
    """key -> the image's `File` in this build's site files."""

    def __init__(self, images: Images, files: Files, output_dir: str, on_error: str) -> None:
        self.images = images
        self.site_files = files
        self.output_dir = output_dir
        self.on_error = on_error
        self.files: dict[str, File] = {}

    def resolve(
        self, output: str, page: Page, config: MkDocsConfig, pending: Callable[[str], str | None]
    ) -> str:
        """Every `imagegen-ref:` of a written page as a URL relative to it (else a stand-in)."""

        def url(match: Any) -> str:
            key = match.group(1)
            file = self.files.get(key) or self.late(key, config)
            if file is None:
                return pending(key) or self._error_src(key)
            return file.url_relative_to(page.file)

        return REF_RE.sub(url, output)

    def add(self, key: str, files: Files, config: MkDocsConfig) -> File | None:
        entry = self.images.entry(key)
        if entry is None:
            return None
        name = self.images.filenames[key]
        ext = EXTENSIONS.get(str(entry.meta.get("format")))
        if ext is not None and not name.endswith(f".{ext}"):  # a pinned image of another format
            name = f"{key}.{ext}"
        uri = posixpath.join(self.output_dir, name)
        file = File.generated(config, uri, abs_src_path=entry.path, inclusion=InclusionLevel.INCLUDED)
        existing = files.get_file_from_path(uri)
        if existing is not None:
            files.remove(existing)
        files.append(file)
        self.files[key] = file
        return file

    def late(self, key: str, config: MkDocsConfig) -> File | None:
        """An image first met after on_env (a view rendered late): copy it into the site now."""
        outcome = self.images.outcome(key)
        if outcome is not None:
            raise_for([outcome], self.images, self.on_error)
        file = self.add(key, self.site_files, config)
        if file is not None:
            file.copy_file()
        return file

    def _error_src(self, key: str) -> str:
        outcome = self.images.outcome(key)
        message = (outcome.error if outcome else None) or "no image"
        return render.error_attributes(message, key[:12])[0][1]
