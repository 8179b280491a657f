"""Rendering directives into HTML with Jinja2: the image (or figure), and the visible error image."""

from __future__ import annotations

import base64
import textwrap
import urllib.parse
import xml.etree.ElementTree as etree
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, Template, select_autoescape
from markupsafe import Markup, escape


@cache
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("mkdocs_imagegen", "templates"),
        autoescape=select_autoescape(["html", "svg"]),
        keep_trailing_newline=False,
        auto_reload=False,  # packaged templates never change under a running build
    )


@cache
def _image_template() -> Template:
    return environment().get_template("image.html")


def image_attributes(
    *,
    width: int | None,
    height: int | None,
    attrs: tuple[tuple[str, str], ...] = (),
    css_class: str = "imagegen",
) -> list[tuple[str, str]]:
    """The attributes after `src` and `alt`: intrinsic size (no layout shift) and lazy loading."""
    user = dict(attrs)
    # The writer's width or height wins; the other side follows the image's aspect ratio.
    if width and height:
        if "width" in user and "height" not in user and user["width"].isdigit():
            user["height"] = str(round(int(user["width"]) * height / width))
        elif "height" in user and "width" not in user and user["height"].isdigit():
            user["width"] = str(round(int(user["height"]) * width / height))
    classes = " ".join(c for c in (css_class, user.pop("class", "")) if c)
    final: dict[str, str] = {"class": classes}
    if width and height:
        final.update(width=str(width), height=str(height))
    final.update({k: v for k, v in user.items() if k not in ("src", "alt")})
    # width/height reserve the space; this keeps the ratio when a theme narrows the image.
    final["style"] = "; ".join(x for x in ("max-width: 100%; height: auto", user.get("style", "")) if x)
    final.setdefault("loading", "lazy")
    final.setdefault("decoding", "async")
    return list(final.items())


def image_html(
    *,
    src: str,
    alt: str,
    width: int | None,
    height: int | None,
    caption: str | None = None,
    attrs: tuple[tuple[str, str], ...] = (),
    css_class: str = "imagegen",
) -> str:
    """An <img> (a <figure> when captioned), as the template writes it."""
    final = image_attributes(width=width, height=height, attrs=attrs, css_class=css_class)
    return _image_template().render(src=src, alt=alt, caption=caption, attrs=final)


def pending_src(*, prompt: str, width: int, height: int, waiting: bool = True) -> str:
    """While serving: an image of the given size saying that the real one is on its way.

    Inline SVG text, so a rebuild encodes no image for it and writes no file.
    """
    title = "Generating image…" if waiting else "Not generated while serving"
    note = prompt if waiting else "serve_mode is placeholder; mkdocs build generates it"
    size = max(12, min(32, width // 24, height // 6))
    lines = textwrap.wrap(note, width=max(16, int(width / (size * 0.45))))[:3]
    svg = (
        environment()
        .get_template("pending.svg")
        .render(width=width, height=height, title=title, lines=lines, size=size)
    )
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def _error_image(message: str, where: str) -> tuple[str, str, int, int]:
    lines = textwrap.wrap(f"{where}: {message}", width=70)[:8]
    width, height = 720, 96 + 26 * len(lines)
    svg = environment().get_template("error.svg").render(width=width, height=height, lines=lines)
    uri = "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
    return uri, f"imagegen error: {where}: {message}", width, height


def error_attributes(message: str, where: str) -> list[tuple[str, str]]:
    """The attributes of a visible error image, for an inline directive's <img>."""
    src, alt, width, height = _error_image(message, where)
    rest = image_attributes(width=width, height=height, css_class="imagegen-error")
    return [("src", src), ("alt", alt), *rest]


def error_html(message: str, where: str) -> str:
    """A visible error image in place of a broken directive, so a plain build shows the problem."""
    src, alt, width, height = _error_image(message, where)
    return image_html(src=src, alt=alt, width=width, height=height, css_class="imagegen-error")


_SAFE_SCHEMES = ("", "http", "https", "mailto")


def _drop_unsafe_urls(root: etree.Element) -> None:
    """A caption link or image whose URL could run script (javascript:, data:, ...) loses it."""
    for el in root.iter():
        for name in ("href", "src"):
            value = el.get(name)
            if value is not None and urllib.parse.urlsplit(value.strip()).scheme.lower() not in _SAFE_SCHEMES:
                del el.attrib[name]


@cache
def _caption_markdown() -> Any:
    """Markdown without raw HTML: `<b>` in a caption shows as text, never as markup."""
    import markdown
    from markdown.treeprocessors import Treeprocessor

    class SafeUrls(Treeprocessor):
        def run(self, root: etree.Element) -> None:
            _drop_unsafe_urls(root)

    md = markdown.Markdown(extensions=[])
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    md.treeprocessors.register(SafeUrls(md), "imagegen_safe_urls", 0)
    return md


def caption_html(text: str, relpath: Any = None) -> Markup:
    """A caption's inline Markdown (links, emphasis, code) as HTML, with raw HTML escaped.

    `relpath` is the page's own link rewriter (MkDocs's), so `[guide](guide.md)` points where the
    page's own links do. Anything but one paragraph (a list, a heading) is shown as plain text.
    """
    md = _caption_markdown()
    md.reset()
    if relpath is not None:
        md.treeprocessors.register(relpath, "relpath", 0.5)
    try:
        html = md.convert(text)
    finally:
        if relpath is not None:
            md.treeprocessors.deregister("relpath")
    if html.startswith("<p>") and html.endswith("</p>") and html.count("<p>") == 1:
        return Markup(html[3:-4])
    return escape(text)
