#!/usr/bin/env python
"""Serve-rebuild benchmark (issue 17): a save that changes no directive, under `mkdocs serve`.

    python benchmarks/serve_rebuild.py              # N = 500 pages, M = 500 directives, 7 rounds
    python benchmarks/serve_rebuild.py --smoke      # tiny sizes, a few seconds of rebuilds

Two real `mkdocs serve` processes run side by side on loopback: the plugin site with every image
cached (serve_mode: background, one engine kept across rebuilds) and its plain twin (the same
pages with Markdown images of the very same files, benchmarks/experiments.py). Each round saves one
page of each (a sentence of prose added, no directive touched) and reads the rebuild's own time
from MkDocs's "Documentation built in X seconds" line; rounds alternate which side goes first.
The figure is the median of the per-round ratios plugin / plain; the target is 1.10. The plugin's
summary line of every timed rebuild must say 0 generated: a save that changes no directive costs
no generation.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from experiments import Bench
from harness import BenchmarkError, clean_env, machine, progress
from sites import make_model

from mkdocs_imagegen.testing.serve import MkdocsServe

HERE = Path(__file__).resolve().parent

TARGET = 1.10
BUILT = re.compile(r"Documentation built in ([0-9.]+) seconds")


def rebuild(server: MkdocsServe, page: Path, n: int) -> tuple[float, str]:
    """Save `page` with one more sentence; the rebuild's seconds and the log lines it wrote."""
    mark = server.mark()
    with open(page, "a", encoding="utf-8") as fh:
        fh.write(f"\nA sentence added by save {n}.\n")
    line = server.wait_for_log(BUILT.pattern, after=mark, timeout=600)
    match = BUILT.search(line)
    assert match is not None
    return float(match[1]), "\n".join(server.output.splitlines()[mark:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--directives", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--smoke", action="store_true", help="N = 10, M = 10, 3 rounds")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "serve-rebuild.json")
    args = parser.parse_args(argv)
    if args.smoke:
        args.pages, args.directives, args.repeat = 10, 10, 3

    root = Path(tempfile.mkdtemp(prefix="imagegen-serve-bench-"))
    try:
        return measure(args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def measure(args: argparse.Namespace, root: Path) -> int:
    bench = Bench(root, make_model(args.pages, args.directives))
    progress(f"writing and priming the sites in {root}")
    bench.setup()
    # The page saved on each round: one that shows images, so the plugin has work it must skip.
    page = next(p for p in bench.model.pages if p.directives).path
    samples: dict[str, list[float]] = {"plugin": [], "plain": []}
    with (
        MkdocsServe(bench.site, env=clean_env()) as plugin,
        MkdocsServe(bench.plain, env=clean_env()) as plain,
    ):
        servers = {
            "plugin": (plugin, bench.site / "docs" / page),
            "plain": (plain, bench.plain / "docs" / page),
        }
        for server, path in servers.values():  # untimed: imports and file-system caches
            rebuild(server, path, 0)
        for r in range(args.repeat):
            order = list(servers) if r % 2 == 0 else list(reversed(servers))
            for name in order:
                server, path = servers[name]
                seconds, log = rebuild(server, path, r + 1)
                if name == "plugin" and not re.search(
                    r"images? in use: \d+ from cache, 0 generated, 0 failed", log
                ):
                    raise BenchmarkError(f"a save that changes no directive generated something:\n{log}")
                samples[name].append(seconds)
            last = {name: f"{times[-1]:.2f} s" for name, times in samples.items()}
            progress(f"  rebuild {r + 1}/{args.repeat}: plugin {last['plugin']}, plain {last['plain']}")
        plugin.interrupt()
        plain.interrupt()

    ratios = [a / b for a, b in zip(samples["plugin"], samples["plain"], strict=True)]
    ratio = statistics.median(ratios)
    result: dict[str, Any] = {
        "figure": "serve_rebuild_overhead",
        "value": round(ratio, 4),
        "target": TARGET,
        "met": ratio <= TARGET,
        "pages": args.pages,
        "directives": args.directives,
        "unique_images": bench.model.unique_images,
        "plugin_seconds": samples["plugin"],
        "plain_seconds": samples["plain"],
        "ratios": [round(x, 4) for x in ratios],
        "machine": machine(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    verdict = "met" if result["met"] else "NOT MET"
    medians = {name: f"{statistics.median(times):.2f} s" for name, times in samples.items()}
    print(
        f"serve_rebuild_overhead  {ratio:.3f}  (target <= {TARGET}, {verdict}): median rebuild "
        f"plugin {medians['plugin']}, plain {medians['plain']}, N = {args.pages}, M = {args.directives}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
