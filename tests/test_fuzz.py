"""Fuzz: every real file of data/ mutated many ways, thousands of times; every read returns a dataset or raises
FileReadError, and no process crashes; an ingest of mutants beside the good files commits every good file.

The reads run in two worker processes (tests/fuzz_reads.py, one per core), so that a crash of a library under a
reader ends a worker, not the tests, and is reported with the mutant that caused it.
"""

from __future__ import annotations

import collections
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

from heliohub.up import demo

from .conftest import DATA
from .store_helpers import ROOT

SUFFIXES = (".cef", ".cef.gz", ".cdf", ".fits", ".fts")
MUTANTS_PER_FILE = 220
# The 1.3 MB FGM file: a damaged record there is located by the exact (slow) pass, seconds a mutant.
FEWER = {"C4_CP_FGM_SPIN__20010706_211607_20010709_062406_V01.cef": 25}
LEAST = 5000
SEED = 20261204


def _files() -> list[Path]:
    return sorted(p for p in DATA.rglob("*") if p.name.lower().endswith(SUFFIXES))


def _run_workers(tmp_path: Path, groups: list[list[Path]], count_of) -> list[dict]:
    workers = []
    for number, group in enumerate(groups):
        out, log = tmp_path / f"worker{number}.jsonl", tmp_path / f"worker{number}.log"
        # one invocation per count, so each file gets its own number of mutants
        script = [(count, [str(p) for p in group if count_of(p) == count]) for count in sorted({count_of(p)
                                                                                              for p in group})]
        with open(log, "w") as handle:  # the child keeps its own copy of the descriptor
            workers.append((out, log, subprocess.Popen(
                [sys.executable, "-c", _CHAIN, str(SEED + number), str(out), json.dumps(script)], cwd=ROOT,
                stdout=subprocess.DEVNULL, stderr=handle)))
    outcomes = []
    for out, log, process in workers:
        code = process.wait(timeout=1200)
        lines = log.read_text(errors="replace").strip().splitlines()
        assert code == 0, f"a fuzz worker died (exit {code}) reading the mutant {lines[-1] if lines else '?'}"
        outcomes += [json.loads(line) for line in out.read_text().splitlines()]
    return outcomes


# Runs fuzz_reads.main once per (count, files), appending to one results file.
_CHAIN = """
import json, sys
from pathlib import Path
sys.path.insert(0, "tests")
import fuzz_reads
seed, out, script = int(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
for index, (count, files) in enumerate(script):
    part = out.with_suffix(f".{index}")
    fuzz_reads.main(seed + index, count, part, [Path(f) for f in files])
    with open(out, "a") as whole:
        whole.write(part.read_text())
"""


def test_thousands_of_mutants_read_or_raise_file_read_error_and_never_crash(tmp_path):
    files = _files()
    assert len(files) >= 20, "data/ holds the real files"
    count_of = lambda path: FEWER.get(path.name, MUTANTS_PER_FILE)  # noqa: E731
    groups = [files[0::2], files[1::2]]
    outcomes = _run_workers(tmp_path, groups, count_of)
    assert len(outcomes) >= LEAST, f"only {len(outcomes)} mutants"
    kinds = collections.Counter(o["outcome"].split(":")[0] for o in outcomes)
    other = [o for o in outcomes if not o["outcome"].startswith(("ok", "FileReadError"))]
    assert not other, f"{len(other)} of {len(outcomes)} mutants raised something else: {other[:5]}"
    assert kinds["ok"] and kinds["FileReadError"]  # the mutations both keep files readable and break them
    assert {o["file"] for o in outcomes} == {p.name for p in files}
    (tmp_path / "summary.json").write_text(json.dumps({"mutants": len(outcomes), **kinds}))
    print(f"fuzz: {len(outcomes)} mutants of {len(files)} files: {dict(kinds)}")


def test_an_ingest_of_mutants_and_good_files_commits_every_good_file(tmp_path):
    """Mutants that do not read, beside every good file: the ingest goes on past each, and commits the rest."""
    sys.path.insert(0, str(Path(__file__).parent))
    import random

    import fuzz_reads
    import heliohub

    rng = random.Random(SEED)
    folder = tmp_path / "files"
    for path in _files():
        target = folder / path.relative_to(DATA)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    headers = [Path(p) for p in demo.include_paths()]
    bad = 0
    for path in [p for p in _files() if p.name not in FEWER]:
        for number, (_what, data, header_folder) in enumerate(fuzz_reads.mutants(path, rng, 8, headers)):
            if header_folder is not None:
                shutil.rmtree(header_folder, ignore_errors=True)
                continue
            candidate = folder / "mutants" / f"m{number}-{path.name}"
            candidate.parent.mkdir(exist_ok=True)
            candidate.write_bytes(data)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # as the ingest reads them: warnings are not errors there
                    heliohub.read_file(candidate, include_paths=[str(p) for p in headers])
                candidate.unlink()  # a mutant that reads is a file of its own, with its own records: not here
            except heliohub.FileReadError:
                bad += 1
    assert bad >= 50
    result = subprocess.run([sys.executable, "-m", "heliohub.cli", "ingest", str(folder), "--archive",
                             str(tmp_path / "store"), "--json", "--batch-mb", "1",
                             *[arg for p in headers for arg in ("--include-path", str(p))]],
                            capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert result.returncode == 1, result.stderr[-3000:]  # files were refused
    report = json.loads(result.stdout)
    statuses = {f["path"]: f for f in report["files"]}
    mutants = {p: f for p, f in statuses.items() if "/mutants/" in p}
    good = {p: f for p, f in statuses.items() if "/mutants/" not in p}
    read = {p: f for p, f in mutants.items() if f["status"] != "refused" or not f["reason"]}
    assert len(mutants) == bad and not read, read
    # the good files: each ingested, or refused for a conflict between two real files (data/README.md: the two
    # down-sampled images cannot join their full-size dataset), exactly as they are without the mutants
    alone = subprocess.run([sys.executable, "-m", "heliohub.cli", "ingest", str(DATA), "--archive",
                            str(tmp_path / "alone"), "--json",
                            *[arg for p in headers for arg in ("--include-path", str(p))]],
                           capture_output=True, text=True, timeout=900, cwd=ROOT)
    expected = {Path(f["path"]).relative_to(DATA).as_posix(): f["status"] for f in json.loads(alone.stdout)["files"]}
    assert {Path(p).relative_to(folder).as_posix(): f["status"] for p, f in good.items()} == expected
    listed = set(heliohub.search(archive=tmp_path / "store")["dataset_id"])
    assert listed == set(heliohub.search(archive=tmp_path / "alone")["dataset_id"])
