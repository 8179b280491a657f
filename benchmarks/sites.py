"""The synthetic site: N pages of realistic Markdown with M directives, and its plain twin."""

from __future__ import annotations

import importlib.util
import posixpath
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SECTIONS = ("Overview", "Usage", "Details", "Reference")

PROSE = (
    "the harbour lantern keeper builds a small site from pages and every page tells the reader how "
    "to configure deploy and test the tool with care while the light turns slowly over the water "
    "plugins read markdown files render templates copy assets and write html for the browser each "
    "option has a default value that works for most projects yet teams often change the theme the "
    "navigation or the search index when the documentation grows beyond a few dozen pages"
)
WORDS = tuple(PROSE.split())
CODE_SNIPPETS = (
    (
        "python",
        "def build(config):\n    pages = load(config)\n    for page in pages:\n"
        "        page.render()\n    return pages\n",
    ),
    ("yaml", "site_name: Harbour\nnav:\n  - Home: index.md\ntheme:\n  name: mkdocs\n"),
    ("bash", "pip install mkdocs\nmkdocs new harbour\ncd harbour\nmkdocs serve\n"),
    ("json", '{\n  "name": "harbour",\n  "pages": 42,\n  "draft": false\n}\n'),
)
SUBJECTS = (
    "a lighthouse on a rocky cape",
    "a fishing boat at dawn",
    "a keeper climbing a spiral staircase",
    "a Fresnel lens catching the sun",
    "a harbour map drawn in ink",
    "seagulls over a stone pier",
    "a storm rolling over the bay",
    "a lantern room at night",
    "a tide table pinned to a wall",
    "a foghorn on a wooden deck",
)
STYLES = ("flat vector illustration", "watercolour sketch", "isometric diagram", "pencil drawing")
DECOYS = (
    "The syntax is easy to show without running it:\n\n"
    "```markdown\n![x](imagegen:not real)\n```\n\n"
    "A fenced directive shown as an example:\n\n"
    "````markdown\n```imagegen\nprompt: not real either\nalt: Example only\n```\n````\n\n"
    "Inline code stays code too: `![y](imagegen:not real inline)`.\n"
)


@dataclass
class Directive:
    index: int  # position among the M directives of the site
    image: int  # the unique image it shows (duplicates share one)
    prompt: str
    alt: str
    size: str | None  # None: the plugin's default size
    fenced: bool
    admonition: bool
    attrs: str = ""  # an attribute list after an inline image, e.g. `{ width="320" }`


@dataclass
class Page:
    number: int
    path: str  # posix path under docs/
    title: str
    directives: list[Directive] = field(default_factory=list)


@dataclass
class SiteModel:
    pages: list[Page]
    directives: list[Directive]

    @property
    def unique_images(self) -> int:
        return len({d.image for d in self.directives})


def make_model(n_pages: int, n_directives: int, seed: int = 6) -> SiteModel:
    """N pages in nested folders and M directives spread over them, about 10 % of them duplicates."""
    rng = random.Random(seed)
    pages = []
    for i in range(n_pages):
        if i == 0:
            path, title = "index.md", "Harbour Lights"
        else:
            path = f"section-{i % 10:02d}/topic-{(i // 10) % 5}/page-{i:04d}.md"
            title = f"{rng.choice(SUBJECTS).capitalize()} ({i})"
        pages.append(Page(i, path, title))
    directives: list[Directive] = []
    uniques: list[Directive] = []
    for j in range(n_directives):
        if j % 10 == 9 and uniques:  # a duplicate: the same image again, on another page
            original = uniques[rng.randrange(len(uniques))]
            fenced = original.fenced if original.size or original.attrs else j % 2 == 0
            directive = Directive(
                j,
                original.image,
                original.prompt,
                f"{original.alt} (again)",
                original.size,
                fenced,
                j % 5 == 3,
                "" if fenced else original.attrs,
            )
        else:
            u = len(uniques)
            subject = SUBJECTS[u % len(SUBJECTS)]
            fenced = j % 2 == 0
            directive = Directive(
                j,
                u,
                f"{subject}, {STYLES[(u // len(SUBJECTS)) % len(STYLES)]}, plate {u}",
                f"{subject.capitalize()}, plate {u}",
                "800x400" if fenced and u % 3 == 0 else None,
                fenced,
                j % 5 == 3,
                '{ width="320" }' if not fenced and u % 4 == 1 else "",
            )
            uniques.append(directive)
        directives.append(directive)
        pages[j % n_pages].directives.append(directive)
    return SiteModel(pages, directives)


def _prose(rng: random.Random, words: int, indent: str = "") -> str:
    out = []
    for _ in range(words):
        word = rng.choice(WORDS)
        r = rng.random()
        if r < 0.03:
            word = f"**{word}**"
        elif r < 0.06:
            word = f"`{word}`"
        out.append(word)
    text = " ".join(out).capitalize() + "."
    # Wrap at about 100 columns like hand-written Markdown.
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + len(word) > 100:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "".join(f"{indent}{ln}\n" for ln in lines)


def _directive_text(d: Directive, indent: str, image_url: str | None) -> str:
    """The directive as written (`image_url` None) or the plain Markdown image that replaces it."""
    lead = "" if d.fenced else f"{indent}The picture shows it:\n"
    if image_url is not None:
        return f"{lead}{indent}![{d.alt}]({image_url}){d.attrs}\n"
    if d.fenced:
        size = f"{indent}size: {d.size}\n" if d.size else ""
        return f"{indent}```imagegen\n{indent}prompt: {d.prompt}\n{indent}alt: {d.alt}\n{size}{indent}```\n"
    return f"{lead}{indent}![{d.alt}](imagegen:{d.prompt}){d.attrs}\n"


def page_text(page: Page, model: SiteModel, image_urls: dict[int, str] | None) -> str:
    """The Markdown of a page: directives (image_urls None) or plain images pointing at image_urls."""
    rng = random.Random(page.number)
    here = posixpath.dirname(page.path)

    def image(d: Directive, indent: str) -> str:
        url = None
        if image_urls is not None:
            url = posixpath.relpath(image_urls[d.image], here or ".")
        return "\n" + _directive_text(d, indent, url)

    slots: dict[int, list[Directive]] = {k: [] for k in range(len(SECTIONS))}
    boxed = [d for d in page.directives if d.admonition]
    for k, d in enumerate(d for d in page.directives if not d.admonition):
        slots[k % len(SECTIONS)].append(d)
    following = model.pages[(page.number + 1) % len(model.pages)]
    link = posixpath.relpath(following.path, here or ".")
    parts = [f"# {page.title}\n\n", _prose(rng, 70)]
    for k, section in enumerate(SECTIONS):
        parts.append(f"\n## {section}\n\n")
        parts.append(_prose(rng, 60))
        parts.append("\n")
        parts.append(_prose(rng, 50))
        if k == 0:
            parts.append(f"\nSee also [the next page]({link}).\n")
        if k == 1:
            lang, code = CODE_SNIPPETS[(page.number + k) % len(CODE_SNIPPETS)]
            parts.append(f"\n```{lang}\n{code}```\n")
            parts.append(f'\n!!! note "Keep in mind"\n\n{_prose(rng, 40, "    ")}')
            parts.extend(image(d, "    ") for d in boxed)
        if k == 2:
            parts.append("\n" + "".join(f"- {_prose(rng, 8)}" for _ in range(4)))
            if page.number % 4 == 0:
                parts.append("\n" + DECOYS)
        parts.extend(image(d, "") for d in slots[k])
    return "".join(parts)


def superfences() -> bool:
    return importlib.util.find_spec("pymdownx") is not None


def write_site(
    root: Path,
    model: SiteModel,
    *,
    plugin: dict[str, dict[str, Any]] | None,
    image_files: dict[int, Path] | None = None,
) -> None:
    """A site in `root`: docs/ from the model and one mkdocs config per entry of `plugin`.

    With `plugin` None the site is the plain twin: each directive is a Markdown image pointing at
    docs/images/<n>.<ext>, a copy of the image the plugin made for it (so sizes match).
    """
    docs = root / "docs"
    shutil.rmtree(docs, ignore_errors=True)  # no page of an earlier model may linger
    urls: dict[int, str] | None = None
    if image_files is not None:
        urls = {}
        (docs / "images").mkdir(parents=True, exist_ok=True)
        for image, source in image_files.items():
            name = f"images/figure-{image:05d}{source.suffix}"
            shutil.copyfile(source, docs / name)
            urls[image] = name
    for page in model.pages:
        target = docs / page.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(page_text(page, model, urls), encoding="utf-8")
    extensions: list[Any] = ["admonition", "attr_list"]
    extensions.append("pymdownx.superfences" if superfences() else "fenced_code")
    configs = plugin if plugin is not None else {"mkdocs.yml": None}
    for name, options in configs.items():
        settings: dict[str, Any] = {
            "site_name": "Harbour Lights benchmark",
            "docs_dir": "docs",
            "markdown_extensions": extensions,
            "plugins": [{"imagegen": options}] if options is not None else [],
        }
        (root / name).write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
