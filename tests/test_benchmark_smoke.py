"""The benchmark (benchmarks/run.py) runs end to end at tiny sizes and writes every figure.

No thresholds: timings depend on the machine. This only checks that the command works and that
each figure came out as a positive number.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FIGURES = (
    "warm_overhead",
    "cold_placeholder_ratio",
    "generation_efficiency",
    "generation_wall_ratio",
    "generation_server_span_ratio",
    "growth_time_linearity",
    "growth_cold_rss_ratio",
    "growth_plain_rss_ratio",
    "remote_fill_ratio",
)
PER_SIZE = ("growth_warm_overhead@M=", "growth_cold_peak_rss@M=")


@pytest.mark.timeout(300)
def test_benchmark_smoke(tmp_path: Path) -> None:
    output = tmp_path / "r.json"
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "IMAGEGEN_FROZEN")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke", "--output", str(output)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=280,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(output.read_text(encoding="utf-8"))
    figures = result["figures"]
    for name in FIGURES:
        assert name in figures, f"{name} missing from {sorted(figures)}"
    for prefix in PER_SIZE:
        sizes = [name for name in figures if name.startswith(prefix)]
        assert len(sizes) == 3, f"expected three {prefix}* figures, got {sizes}"
    for name, figure in figures.items():
        value = figure["value"]
        assert isinstance(value, (int, float)) and value > 0, f"{name}: {value!r}"
    assert result["machine"]["cpu_count"]
    for name in FIGURES:
        assert name in proc.stdout, f"{name} not in the printed table"
