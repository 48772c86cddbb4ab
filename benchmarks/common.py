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


RELEASE_0_1 = "cb43aa1"
"""heliohub 0.1.0: the store's layout before issue 19 (JSON attributes for provenance, time index and catalog;
``tests/fixtures/store-0.1.0`` was written by it), measured beside this one in the same run."""


def release_sources(commit: str = RELEASE_0_1) -> Path:
    """The package of ``commit`` (``git archive`` of this repository's history) under the data folder; put its
    ``platform`` folder first on ``PYTHONPATH`` to run it with this environment's libraries."""
    import subprocess
    import tarfile
    import tempfile

    target = DATA / f"heliohub-{commit}"
    if not (target / "platform" / "heliohub" / "__init__.py").exists():
        DATA.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=DATA) as scratch:
            archive = Path(scratch) / "sources.tar"
            subprocess.run(["git", "-C", str(ROOT.parent), "archive", "-o", str(archive), commit, "platform"],
                           check=True)
            with tarfile.open(archive) as tar:
                tar.extractall(Path(scratch) / "out", filter="data")
            os.replace(Path(scratch) / "out", target)
    return target / "platform"


def run_with_release(arguments: list[str], commit: str = RELEASE_0_1) -> str:
    """Run ``python ARGUMENTS`` with the package of ``commit`` in place of this one; its standard output."""
    import subprocess
    import sys

    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(release_sources(commit)), *filter(None, [os.environ.get("PYTHONPATH")])])}
    result = subprocess.run([sys.executable, *arguments], env=environment, capture_output=True, text=True,
                            cwd=DATA)
    if result.returncode:
        raise RuntimeError(f"{arguments} with heliohub {commit} failed:\n{result.stderr[-3000:]}")
    return result.stdout
