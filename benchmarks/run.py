#!/usr/bin/env python
"""Build-time benchmark of mkdocs-imagegen (issue 6): one command, a table and a JSON file.

    python benchmarks/run.py                      # the issue's sizes (N = 500 pages, M = 500 directives)
    python benchmarks/run.py --smoke              # tiny sizes, well under a minute
    python benchmarks/run.py --only warm,cold --repeat 3 --output /tmp/r.json

It writes synthetic but realistic sites into a temporary folder and times real
`python -m mkdocs build` subprocesses (one fresh process and a clean site dir per build):

* warm overhead: plugin build with every image cached / the same site with plain Markdown images;
* placeholder cold build: plugin build with an empty cache (placeholder provider) / the plain site;
* generation efficiency: plugin build against the loopback fake OpenAI API (mkdocs_imagegen.testing),
  the generation time the plugin reports divided by the ideal ceil(M_unique / C) x L;
* growth: warm overhead, linearity of build time and peak memory of a cold build as M grows.

Every figure is the median of `--repeat` repetitions; builds of the two sides of a ratio are
interleaved, odd rounds in reverse (A B, B A, ...), so that drift of the machine hits both. Peak
memory and CPU time come from a tiny launcher process per build (see LAUNCHER). Nothing here
asserts a timing: figures are compared with their targets and reported as met or not met.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from experiments import Bench, run_generation, run_growth, run_warm_cold
from harness import ROOT, BenchmarkError, Figure, machine, progress, table, workdir
from sites import make_model, superfences

DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "latest.json"


PARTS = ("warm", "cold", "generation", "growth", "remote")


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
    if "remote" in args.only:

        def remote(root: Path) -> tuple[list[Figure], dict[str, Any]]:
            from remote import run_remote

            progress(f"remote: N = {args.pages}, M = {args.directives}: writing the site, priming the cache")
            bench = Bench(root / "remote", make_model(args.pages, args.directives))
            bench.setup()
            bench.warmup()
            return run_remote(bench, args.repeat)

        steps.append(("remote", remote))
    try:
        with workdir(args.workdir, args.keep) as root:
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
