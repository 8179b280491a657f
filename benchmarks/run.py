#!/usr/bin/env python
"""Build-time benchmark of mkdocs-imagegen (issue 6): one command, a table and a JSON file.

    python benchmarks/run.py                      # the issue's sizes (N = 500 pages, M = 500 directives)
    python benchmarks/run.py --smoke              # tiny sizes, well under a minute
    python benchmarks/run.py --only warm,cold --repeat 3 --output /tmp/r.json

It writes synthetic but realistic sites into a temporary folder and times real
`python -m mkdocs build` subprocesses (one fresh process and a clean site dir per build):

* warm overhead: plugin build with every image cached / the same site with plain Markdown images;
* placeholder cold build: plugin build with an empty cache (placeholder provider) / the plain site;
* generation efficiency: plugin build against the loopback fake OpenAI API (tests/fakeapi.py),
  the generation time the plugin reports divided by the ideal ceil(M_unique / C) x L;
* growth: warm overhead, linearity of build time and peak memory of a cold build as M grows.

Every figure is the median of `--repeat` repetitions; builds of the two sides of a ratio are
interleaved, odd rounds in reverse (A B, B A, ...), so that drift of the machine hits both. Peak
memory and CPU time come from a tiny launcher process per build (see LAUNCHER). Nothing here
asserts a timing: figures are compared with their targets and reported as met or not met.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import posixpath
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "latest.json"
SECTIONS = ("Overview", "Usage", "Details", "Reference")

# The plugin's summary line, logged at INFO at the end of every build.
SUMMARY = re.compile(r"(\d+) images? in use: (\d+) from cache, (\d+) generated, (\d+) failed, in ([0-9.]+) s")

TARGETS = {
    "warm_overhead": 1.05,
    "cold_placeholder_ratio": 1.5,
    "generation_efficiency": 1.10,
    "growth_time_linearity": 1.10,
    "growth_cold_rss_ratio": 1.10,
}


class BenchmarkError(RuntimeError):
    """A build failed or a site did not come out as expected: the figures would mean nothing."""


# ------------------------------------------------------------------------------------------------
# The synthetic site
# ------------------------------------------------------------------------------------------------

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


# ------------------------------------------------------------------------------------------------
# Builds
# ------------------------------------------------------------------------------------------------


@dataclass
class Build:
    seconds: float  # wall time of the subprocess, time.perf_counter around it
    max_rss: int  # bytes: ru_maxrss of the child, from wait4
    cpu: float  # user + system seconds of the child
    output: str

    def summary(self) -> dict[str, float] | None:
        match = SUMMARY.search(self.output)
        if match is None:
            return None
        used, cached, generated, failed, seconds = match.groups()
        return {
            "in_use": int(used),
            "cached": int(cached),
            "generated": int(generated),
            "failed": int(failed),
            "seconds": float(seconds),
        }


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "IMAGEGEN_FROZEN")}
    env.update(extra)
    return env


# A tiny stdlib-only launcher between us and each build. Linux carries a process's peak RSS over
# fork and exec, so a build started straight from this (big) process would report at least our own
# peak; started from the launcher, its ru_maxrss floor is the launcher's few MB.
LAUNCHER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[2:])\n"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "with open(sys.argv[1], 'w') as fh:\n"
    "    fh.write(f'{code} {u.ru_maxrss} {u.ru_utime} {u.ru_stime}')\n"
    "sys.exit(code)\n"
)


def build(config: Path, out: Path, *, quiet: bool = True, env: dict[str, str] | None = None) -> Build:
    """One real `python -m mkdocs build` in a fresh process, into a clean site dir."""
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "mkdocs", "build", *(["-q"] if quiet else []), "-f", str(config)]
    cmd += ["-d", str(out)]
    log = out.with_name(out.name + ".log")
    usage = out.with_name(out.name + ".rusage")
    usage.unlink(missing_ok=True)
    with open(log, "w+b") as fh:
        start = time.perf_counter()
        code = subprocess.call(
            [sys.executable, "-S", "-c", LAUNCHER, str(usage), *cmd],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env or clean_env(),
            cwd=config.parent,
        )
        seconds = time.perf_counter() - start
    output = log.read_text(encoding="utf-8", errors="replace")
    if code != 0:
        raise BenchmarkError(f"{' '.join(cmd)} exited {code}:\n{output[-4000:]}")
    _, maxrss, utime, stime = usage.read_text(encoding="utf-8").split()
    # ru_maxrss is in KB on Linux, in bytes on macOS.
    rss = int(maxrss) * (1 if sys.platform == "darwin" else 1024)
    return Build(seconds, rss, float(utime) + float(stime), output)


def median(values: list[float]) -> float:
    return statistics.median(values)


@dataclass
class Pair:
    """Interleaved builds of two or more variants: A B A B ..."""

    samples: dict[str, list[Build]] = field(default_factory=dict)

    def add(self, name: str, result: Build) -> None:
        self.samples.setdefault(name, []).append(result)

    def run(self, label: str, repeat: int, builds: dict[str, Callable[[], Build]]) -> None:
        """`repeat` rounds of every build; odd rounds run in reverse (A B, B A, ...) to cancel drift."""
        for r in range(repeat):
            names = list(builds) if r % 2 == 0 else list(reversed(builds))
            for name in names:
                self.add(name, builds[name]())
            times = ", ".join(f"{name} {self.seconds(name)[-1]:.2f} s" for name in builds)
            progress(f"  {label} {r + 1}/{repeat}: {times}")

    def seconds(self, name: str) -> list[float]:
        return [b.seconds for b in self.samples[name]]

    def ratio(self, a: str, b: str, *, cpu: bool = False) -> float:
        """Median of the per-repetition ratios a / b (each repetition's builds ran next to each other)."""
        if cpu:
            xs, ys = [r.cpu for r in self.samples[a]], [r.cpu for r in self.samples[b]]
        else:
            xs, ys = self.seconds(a), self.seconds(b)
        return median([x / y for x, y in zip(xs, ys, strict=True)])

    def describe(self, name: str) -> dict[str, Any]:
        builds = self.samples[name]
        return {
            "seconds": [round(b.seconds, 4) for b in builds],
            "median_seconds": round(median([b.seconds for b in builds]), 4),
            "cpu_seconds": [round(b.cpu, 3) for b in builds],
            "max_rss_mb": [round(b.max_rss / 2**20, 1) for b in builds],
        }


# ------------------------------------------------------------------------------------------------
# Sites with their plain twins
# ------------------------------------------------------------------------------------------------


@dataclass
class Bench:
    """A plugin site (warm and cold configs over one docs/) and its plain twin, ready to build."""

    root: Path
    model: SiteModel
    prime: Build | None = None

    @property
    def site(self) -> Path:
        return self.root / "imagegen"

    @property
    def plain(self) -> Path:
        return self.root / "plain"

    def out(self, name: str) -> Path:
        return self.root / "out" / name

    def setup(self) -> None:
        """Write the plugin site, fill the warm cache with a first build, write the plain twin."""
        write_site(
            self.site,
            self.model,
            plugin={
                "mkdocs.yml": {"cache_dir": ".cache/warm"},
                "mkdocs-cold.yml": {"cache_dir": ".cache/cold"},
            },
        )
        (self.root / "out").mkdir(parents=True, exist_ok=True)
        self.prime = build(self.site / "mkdocs.yml", self.out("prime"), quiet=False)
        unique = self.model.unique_images
        expect_summary(self.prime, generated=unique, in_use=unique, what="first (priming) build")
        keys = keys_by_prompt(self.site / "mkdocs.yml")
        assets = self.out("prime") / "assets" / "imagegen"
        files: dict[int, Path] = {}
        for d in self.model.directives:
            matches = list(assets.glob(f"{keys[d.prompt]}.*"))
            if len(matches) != 1:
                raise BenchmarkError(f"no image file for key {keys[d.prompt]} in {assets}")
            files[d.image] = matches[0]
        check_site(self.out("prime"), self.model)
        write_site(self.plain, self.model, plugin=None, image_files=files)

    def warm(self) -> Build:
        return build(self.site / "mkdocs.yml", self.out("warm"))

    def cold(self) -> Build:
        shutil.rmtree(self.site / ".cache" / "cold", ignore_errors=True)
        return build(self.site / "mkdocs-cold.yml", self.out("cold"))

    def plain_build(self) -> Build:
        return build(self.plain / "mkdocs.yml", self.out("plain"))

    def warmup(self) -> None:
        """Untimed builds of both sides (imports, file system caches); checks the warm cache is full."""
        self.plain_build()
        warm = build(self.site / "mkdocs.yml", self.out("warm"), quiet=False)
        expect_summary(warm, generated=0, in_use=self.model.unique_images, what="warm build")


def expect_summary(result: Build, *, generated: int, in_use: int, what: str) -> dict[str, float]:
    summary = result.summary()
    if summary is None:
        raise BenchmarkError(
            f"{what}: no imagegen summary line in the build output:\n{result.output[-2000:]}"
        )
    if summary["failed"] or summary["generated"] != generated or summary["in_use"] != in_use:
        raise BenchmarkError(
            f"{what}: expected {in_use} images in use and {generated} generated, got {summary}:\n"
            f"{result.output[-2000:]}"
        )
    return summary


STATUS = "from mkdocs_imagegen.cli import main; main()"


def keys_by_prompt(config: Path) -> dict[str, str]:
    """prompt -> key, from `mkdocs-imagegen status --json` (the plugin's own key path)."""
    proc = subprocess.run(
        [sys.executable, "-c", STATUS, "status", "--json", "-f", str(config)],
        capture_output=True,
        text=True,
        cwd=config.parent,
        env=clean_env(),
    )
    if proc.returncode != 0:
        raise BenchmarkError(f"mkdocs-imagegen status failed:\n{proc.stdout}{proc.stderr}")
    rows = json.loads(proc.stdout)["directives"]
    return {row["prompt"]: row["key"] for row in rows if row.get("key")}


def check_site(out: Path, model: SiteModel) -> None:
    """Every directive became an image; directive-like text in code stayed text."""
    images = 0
    for page in model.pages:
        rel = page.path[:-3]
        html_path = out / ("index.html" if rel == "index" else f"{rel}/index.html")
        html = html_path.read_text(encoding="utf-8")
        images += html.count('class="imagegen"')
        text = re.sub(r"<[^>]*>", "", html)  # code may be highlighted: compare the text only
        if page.number % 4 == 0 and (
            "![x](imagegen:not real)" not in text
            or "```imagegen\nprompt: not real either\n" not in text
            or "![y](imagegen:not real inline)" not in text
        ):
            raise BenchmarkError(f"directive-like text in code was changed on {page.path}")
    if images != len(model.directives):
        raise BenchmarkError(f"expected {len(model.directives)} generated <img> tags, found {images}")


@contextlib.contextmanager
def workdir(args: argparse.Namespace) -> Iterator[Path]:
    if args.workdir:
        path = Path(args.workdir).resolve()
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        yield path
        return
    path = Path(tempfile.mkdtemp(prefix="imagegen-bench-"))
    try:
        yield path
    finally:
        if args.keep:
            print(f"kept the benchmark sites in {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


# ------------------------------------------------------------------------------------------------
# The figures
# ------------------------------------------------------------------------------------------------


@dataclass
class Figure:
    name: str
    value: float
    target: float | None  # None: reported for information
    unit: str = "x"
    note: str = ""

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.value <= self.target

    def as_json(self) -> dict[str, Any]:
        return {
            "value": round(self.value, 4),
            "target": self.target,
            "met": self.met,
            "unit": self.unit,
            "note": self.note,
        }


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def run_warm_cold(bench: Bench, repeat: int, only: set[str]) -> tuple[list[Figure], dict[str, Any]]:
    figures, details = [], {}
    bench.warmup()
    sides = {
        "warm": (
            "warm overhead",
            bench.warm,
            "warm_overhead",
            "warm_overhead_cpu",
            "warm plugin build / plain build",
        ),
        "cold": (
            "cold build",
            bench.cold,
            "cold_placeholder_ratio",
            "cold_placeholder_cpu_ratio",
            "first build, empty cache, placeholder provider / plain build",
        ),
    }
    for side, (label, build, figure, cpu_figure, note) in sides.items():
        if side not in only:
            continue
        pair = Pair()
        pair.run(label, repeat, {side: build, "plain": bench.plain_build})
        figures.append(Figure(figure, pair.ratio(side, "plain"), TARGETS[figure], note=note))
        figures.append(
            Figure(
                cpu_figure,
                pair.ratio(side, "plain", cpu=True),
                None,
                note="the same in CPU seconds (user + system) of the build processes",
            )
        )
        details[side] = {f"plugin_{side}": pair.describe(side), "plain": pair.describe("plain")}
    return figures, details


def run_generation(
    root: Path, pages: int, directives: int, repeat: int, latency: float, concurrency: int
) -> tuple[list[Figure], dict[str, Any]]:
    sys.path.insert(0, str(ROOT / "tests"))
    from fakeapi import FakeImageAPI

    model = make_model(pages, directives)
    unique = model.unique_images
    ideal = math.ceil(unique / concurrency) * latency
    site = root / "generation"
    runs = []
    for r in range(repeat):
        shutil.rmtree(site / ".cache", ignore_errors=True)
        with FakeImageAPI(latency=latency) as api:
            options = {
                "provider": "openai",
                "base_url": api.base_url,
                "concurrency": concurrency,
                "max_new_images": directives * 2 + 10,
                "cache_dir": ".cache/gen",
            }
            write_site(site, model, plugin={"mkdocs.yml": options})
            # Not -q: the plugin's summary line (with its generation time) is logged at INFO.
            result = build(
                site / "mkdocs.yml",
                root / "out" / "generation",
                quiet=False,
                env=clean_env(OPENAI_API_KEY="bench"),
            )
            summary = expect_summary(result, generated=unique, in_use=unique, what="generation build")
            recorded = api.generation_requests()
            requests = len(recorded)
            arrivals = sorted(r.time for r in recorded)
            # Server side: first request in to last answer out (each answer takes `latency`).
            span = arrivals[-1] - arrivals[0] + latency if arrivals else 0.0
            runs.append(
                {
                    "plugin_seconds": summary["seconds"],
                    "wall_seconds": round(result.seconds, 4),
                    "cpu_seconds": round(result.cpu, 3),
                    "max_rss_mb": round(result.max_rss / 2**20, 1),
                    "requests": requests,
                    "server_span_seconds": round(span, 4),
                    "max_in_flight": api.max_in_flight,
                }
            )
        progress(
            f"  generation {r + 1}/{repeat}: plugin {summary['seconds']:.1f} s, wall {result.seconds:.2f} s, "
            f"server span {span:.2f} s, ideal {ideal:.2f} s, {requests} requests, "
            f"max in flight {api.max_in_flight}"
        )
        if requests != unique:
            raise BenchmarkError(f"generation build sent {requests} requests for {unique} unique images")
    plugin_ratio = median([run["plugin_seconds"] / ideal for run in runs])
    wall_ratio = median([run["wall_seconds"] / ideal for run in runs])
    span_ratio = median([run["server_span_seconds"] / ideal for run in runs])
    figures = [
        Figure(
            "generation_efficiency",
            plugin_ratio,
            TARGETS["generation_efficiency"],
            note=f"plugin-reported generation time / ideal ceil({unique}/{concurrency}) x {latency:g} s",
        ),
        Figure(
            "generation_wall_ratio",
            wall_ratio,
            None,
            note="whole build wall time (process start to exit) / the same ideal",
        ),
        Figure(
            "generation_server_span_ratio",
            span_ratio,
            None,
            note="fake API's first request in to last answer out / the same ideal",
        ),
    ]
    details = {
        "pages": pages,
        "directives": directives,
        "unique_images": unique,
        "concurrency": concurrency,
        "latency": latency,
        "ideal_seconds": ideal,
        "runs": runs,
    }
    return figures, details


def run_growth(root: Path, pages: int, sizes: list[int], repeat: int) -> tuple[list[Figure], dict[str, Any]]:
    benches: dict[int, Bench] = {}
    for m in sizes:
        progress(f"growth: N = {pages}, M = {m}: writing the site and priming the cache")
        benches[m] = Bench(root / f"growth-{m}", make_model(pages, m))
        benches[m].setup()
        benches[m].warmup()
    # Every round builds every size, so drift of the machine hits all sizes alike.
    pair = Pair()
    builds: dict[str, Callable[[], Build]] = {}
    for m, bench in benches.items():
        builds.update({f"warm@{m}": bench.warm, f"plain@{m}": bench.plain_build, f"cold@{m}": bench.cold})
    pair.run("growth", repeat, builds)
    per_m: dict[int, dict[str, Any]] = {}
    for m, bench in benches.items():
        warm, plain, cold = f"warm@{m}", f"plain@{m}", f"cold@{m}"
        per_m[m] = {
            "directives": m,
            "unique_images": bench.model.unique_images,
            "warm_overhead": pair.ratio(warm, plain),
            "cold_ratio": pair.ratio(cold, plain),
            "warm_seconds": median(pair.seconds(warm)),
            "plain_seconds": median(pair.seconds(plain)),
            "cold_seconds": median(pair.seconds(cold)),
            "warm_max_rss_mb": median([b.max_rss for b in pair.samples[warm]]) / 2**20,
            "cold_max_rss_mb": median([b.max_rss for b in pair.samples[cold]]) / 2**20,
            "plain_max_rss_mb": median([b.max_rss for b in pair.samples[plain]]) / 2**20,
            "warm": pair.describe(warm),
            "plain": pair.describe(plain),
            "cold": pair.describe(cold),
        }
    lo, mid, hi = sizes[0], sizes[len(sizes) // 2], sizes[-1]
    # Linearity per round (the three sizes of a round ran minutes apart at most), then the median.
    linearity, predictions = [], []
    for r in range(repeat):
        t = {m: pair.seconds(f"warm@{m}")[r] for m in sizes}
        predicted = t[lo] + (t[mid] - t[lo]) / (mid - lo) * (hi - lo)
        predictions.append(predicted)
        linearity.append(t[hi] / predicted)
    for bench in benches.values():
        shutil.rmtree(bench.root, ignore_errors=True)  # thousands of images: free the disk
    figures = []
    for m in sizes:
        figures.append(
            Figure(f"growth_warm_overhead@M={m}", per_m[m]["warm_overhead"], None, note="warm / plain")
        )
    for m in sizes:
        figures.append(
            Figure(
                f"growth_cold_peak_rss@M={m}",
                per_m[m]["cold_max_rss_mb"],
                None,
                unit="MB",
                note=f"plain build {per_m[m]['plain_max_rss_mb']:.1f} MB, "
                f"warm build {per_m[m]['warm_max_rss_mb']:.1f} MB",
            )
        )
    figures.append(
        Figure(
            "growth_time_linearity",
            median(linearity),
            TARGETS["growth_time_linearity"],
            note=f"warm build at M={hi} / linear extrapolation from M={lo} and M={mid} "
            f"(median prediction {median(predictions):.2f} s)",
        )
    )
    figures.append(
        Figure(
            "growth_cold_rss_ratio",
            per_m[hi]["cold_max_rss_mb"] / per_m[lo]["cold_max_rss_mb"],
            TARGETS["growth_cold_rss_ratio"],
            note=f"cold build peak RSS at M={hi} / at M={lo}",
        )
    )
    figures.append(
        Figure(
            "growth_plain_rss_ratio",
            per_m[hi]["plain_max_rss_mb"] / per_m[lo]["plain_max_rss_mb"],
            None,
            note=f"plain build peak RSS at M={hi} / at M={lo}, for comparison",
        )
    )
    excess = {m: (per_m[m]["warm_seconds"] - per_m[m]["plain_seconds"]) / m * 1000 for m in sizes}
    rss_per_directive = (per_m[hi]["cold_max_rss_mb"] - per_m[lo]["cold_max_rss_mb"]) * 1024 / (hi - lo)
    details = {
        "pages": pages,
        "sizes": sizes,
        "per_m": {str(m): v for m, v in per_m.items()},
        "linearity_per_round": [round(x, 4) for x in linearity],
        "warm_excess_ms_per_directive": {str(m): round(v, 3) for m, v in excess.items()},
        "cold_rss_kb_per_added_directive": round(rss_per_directive, 2),
    }
    return figures, details


# ------------------------------------------------------------------------------------------------
# Reporting
# ------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = platform.processor() or "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break

    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    def git(*args: str) -> str:
        try:
            proc = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return ""
        return proc.stdout.strip() if proc.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    if git("status", "--porcelain", "--", "mkdocs_imagegen"):
        commit += " (mkdocs_imagegen/ modified)"
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "mkdocs": version("mkdocs"),
        "mkdocs_imagegen": version("mkdocs-imagegen"),
        "commit": commit,
        "pymdown_extensions": version("pymdown-extensions"),
    }


def format_value(f: Figure) -> str:
    return f"{f.value:.1f} {f.unit}" if f.unit == "MB" else f"{f.value:.3f}"


def table(figures: list[Figure]) -> str:
    rows = [("figure", "value", "target", "result")]
    for f in figures:
        target = "-" if f.target is None else f"<= {f.target:g}"
        result = "info" if f.met is None else ("met" if f.met else "NOT MET")
        rows.append((f.name, format_value(f), target, result))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"  {f.name}: {f.note}" for f in figures if f.note]
    return "\n".join([*lines, "", *notes])


# ------------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------------

PARTS = ("warm", "cold", "generation", "growth")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--pages", type=int, help="N, pages of the site (default 500; smoke 10)")
    parser.add_argument("--directives", type=int, help="M for warm/cold (default 500; smoke 10)")
    parser.add_argument("--generation-directives", type=int, help="M for generation (default 200; smoke 10)")
    parser.add_argument(
        "--growth", help="comma-separated M for growth (default 100,1000,5000; smoke 5,10,20)"
    )
    parser.add_argument("--repeat", type=int, help="repetitions per figure (default 5; smoke 1)")
    parser.add_argument(
        "--growth-repeat", type=int, help="repetitions per size for growth (default --repeat)"
    )
    parser.add_argument("--latency", type=float, help="fake API latency in s (default 0.25; smoke 0.05)")
    parser.add_argument("--concurrency", type=int, default=8, help="plugin concurrency for generation")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a quick check that it all runs")
    parser.add_argument(
        "--only", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}"
    )
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="JSON results file")
    parser.add_argument("--workdir", help="build the sites here (emptied first, kept afterwards)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary sites (for profiling)")
    args = parser.parse_args(argv)
    defaults: dict[str, Any] = (
        {"pages": 10, "directives": 10, "generation_directives": 10, "growth": "5,10,20", "repeat": 1}
        | {"latency": 0.05}
        if args.smoke
        else {"pages": 500, "directives": 500, "generation_directives": 200, "growth": "100,1000,5000"}
        | {"repeat": 5, "latency": 0.25}
    )
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.growth_repeat is None:
        args.growth_repeat = args.repeat
    args.only = {part.strip() for part in args.only.split(",") if part.strip()}
    unknown = args.only - set(PARTS)
    if unknown:
        parser.error(f"--only: unknown part(s) {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}")
    args.growth = sorted({int(m) for m in args.growth.split(",")})
    if len(args.growth) < 3:
        parser.error("--growth needs at least three sizes")
    if min(args.pages, args.directives, args.generation_directives, args.repeat, args.growth_repeat) < 1:
        parser.error("sizes and repetitions must be at least 1")
    if min(args.growth) < 1:
        parser.error("growth sizes must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine()
    print(
        f"machine: {info['cpu_count']} CPUs, {info['cpu_model']}, Python {info['python']}, "
        f"MkDocs {info['mkdocs']}, mkdocs-imagegen {info['mkdocs_imagegen']} at {info['commit']}",
        flush=True,
    )
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    if load[0] > 0.5:
        print(
            f"warning: the machine is busy (load average {load[0]:.2f}); other work skews the timings",
            flush=True,
        )
    started = time.perf_counter()
    figures: list[Figure] = []
    details: dict[str, Any] = {}
    steps: list[tuple[str, Callable[[Path], tuple[list[Figure], dict[str, Any]]]]] = []
    if args.only & {"warm", "cold"}:

        def warm_cold(root: Path) -> tuple[list[Figure], dict[str, Any]]:
            progress(
                f"warm/cold: N = {args.pages}, M = {args.directives}: writing the site, priming the cache"
            )
            bench = Bench(root / "main", make_model(args.pages, args.directives))
            bench.setup()
            found, more = run_warm_cold(bench, args.repeat, args.only)
            more.update(pages=args.pages, directives=args.directives, unique_images=bench.model.unique_images)
            return found, more

        steps.append(("warm_cold", warm_cold))
    if "generation" in args.only:

        def generation(root: Path) -> tuple[list[Figure], dict[str, Any]]:
            progress(
                f"generation: N = {args.pages}, M = {args.generation_directives}, "
                f"C = {args.concurrency}, L = {args.latency:g} s"
            )
            return run_generation(
                root, args.pages, args.generation_directives, args.repeat, args.latency, args.concurrency
            )

        steps.append(("generation", generation))
    if "growth" in args.only:
        steps.append(("growth", lambda root: run_growth(root, args.pages, args.growth, args.growth_repeat)))
    try:
        with workdir(args) as root:
            for name, step in steps:
                found, more = step(root)
                figures.extend(found)
                details[name] = more
    except BenchmarkError as exc:
        error = str(exc)
        print(f"benchmark failed: {error}", file=sys.stderr)
    else:
        error = None
    elapsed = time.perf_counter() - started
    print()
    print(table(figures))
    print(
        f"\n{len(figures)} figures in {elapsed:.0f} s; N = {args.pages}, M = {args.directives}, "
        f"generation M = {args.generation_directives}, growth M = {args.growth}, "
        f"repeat = {args.repeat}, growth repeat = {args.growth_repeat}; load average before "
        f"{load[0]:.2f}, after {os.getloadavg()[0] if hasattr(os, 'getloadavg') else 0.0:.2f}"
    )
    result = {
        "machine": info,
        "parameters": {
            "pages": args.pages,
            "directives": args.directives,
            "generation_directives": args.generation_directives,
            "growth": args.growth,
            "repeat": args.repeat,
            "growth_repeat": args.growth_repeat,
            "latency": args.latency,
            "concurrency": args.concurrency,
            "smoke": args.smoke,
            "only": sorted(args.only),
            "superfences": superfences(),
        },
        "error": error,  # None, or why the run stopped (the figures are those measured until then)
        "figures": {f.name: f.as_json() for f in figures},
        "details": details,
        "elapsed_seconds": round(elapsed, 1),
        "load_average_before": [round(x, 2) for x in load],
        "load_average_after": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {output}")
    if error is not None:
        print("the run stopped early: the table holds only the figures measured before", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
