"""The measuring harness: one real `mkdocs build` per fresh process, timed, with its peak memory
and CPU time, interleaved repetitions, figures and the printed table."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
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

from sites import SiteModel

ROOT = Path(__file__).resolve().parent.parent

# The plugin's summary line, logged at INFO at the end of every build.
SUMMARY = re.compile(
    r"(\d+) images? in use: (\d+) from cache(?: \(\d+ from the remote cache\))?, (\d+) generated, "
    r"(\d+) failed.*?, in ([0-9.]+) s"
)


class BenchmarkError(RuntimeError):
    """A build failed or a site did not come out as expected: the figures would mean nothing."""


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
def workdir(where: str | None, keep: bool) -> Iterator[Path]:
    if where:
        path = Path(where).resolve()
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        yield path
        return
    path = Path(tempfile.mkdtemp(prefix="imagegen-bench-"))
    try:
        yield path
    finally:
        if keep:
            print(f"kept the benchmark sites in {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


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
