"""The experiments: warm and cold builds against the plain twin, generation against the ideal,
and growth with M; each returns its figures and the details behind them."""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import (
    BenchmarkError,
    Build,
    Figure,
    Pair,
    build,
    check_site,
    clean_env,
    expect_summary,
    keys_by_prompt,
    median,
    progress,
)
from sites import SiteModel, make_model, write_site

from mkdocs_imagegen.testing import FakeImageAPI

TARGETS = {
    "warm_overhead": 1.05,
    "cold_placeholder_ratio": 1.5,
    "generation_efficiency": 1.10,
    "growth_time_linearity": 1.10,
    "growth_cold_rss_ratio": 1.10,
}


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
                # The remote experiment's store is a loopback S3 server named by AWS_ENDPOINT_URL.
                "mkdocs-remote.yml": {
                    "cache_dir": ".cache/remote-local",
                    "remote_cache": "s3://bench-images/bench",
                },
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
    for side, (label, run, figure, cpu_figure, note) in sides.items():
        if side not in only:
            continue
        pair = Pair()
        pair.run(label, repeat, {side: run, "plain": bench.plain_build})
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
