"""Shared benchmark plumbing: a data folder outside git, alternating timed runs, and the results file."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DATA = Path(os.environ.get("HELIOHUB_BENCH_DATA", ROOT / ".data"))
RESULTS = ROOT / "results"


def timed_runs(*functions: Callable[[], object], repeat: int = 5) -> list[list[tuple[float, float]]]:
    """The wall and CPU seconds (this process's, all its threads) of every run of each function, run in
    alternation so that machine noise hits them alike."""
    runs: list[list[tuple[float, float]]] = [[] for _ in functions]
    for _ in range(repeat):
        for index, function in enumerate(functions):
            cpu, start = time.process_time(), time.perf_counter()
            function()
            runs[index].append((time.perf_counter() - start, time.process_time() - cpu))
    return runs


def median_seconds(*functions: Callable[[], object], repeat: int = 5) -> list[float]:
    """Median wall time of each function, run in alternation so that machine noise hits them alike."""
    return [statistics.median(wall for wall, _ in runs) for runs in timed_runs(*functions, repeat=repeat)]


def machine() -> dict[str, object]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}


def write_results(name: str, results: dict[str, object]) -> Path:
    """Write results/<name>.json (with the machine and date) and print it."""
    RESULTS.mkdir(exist_ok=True)
    payload = {"benchmark": name, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "machine": machine(), **results}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload, indent=2))
    return path
