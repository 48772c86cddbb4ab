"""The minimum versions pyproject.toml declares are versions the code works with: the readers', the store's and the
access tests run in an environment holding the lowest declared version of every direct dependency (uv's
``lowest-direct`` resolution; their own dependencies at their newest), built from the package registry."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
# The readers' tests, and those of the store and of access that exercise the libraries' APIs (the core tier, which
# this runs in the fast tier's subset: the whole core at the lowest versions took 95 s of a 20-minute suite).
TESTS = ["tests/test_read_cdf.py", "tests/test_read_cef.py", "tests/test_read_fits.py", "tests/test_access.py",
         "tests/test_versions.py", "tests/test_fetch.py",
         *(f"tests/test_any_file.py::test_{name}" for name in (
             "fill_values_given_per_component_are_masked_per_component",
             "solar_instruments_are_recognised_as_sunpy_recognises_them",
             "a_header_astropy_cannot_fix_is_read_with_a_warning_naming_the_card",
             "text_comes_back_from_the_store_as_the_reader_gives_it",
             "every_real_file_reads_into_what_xarrays_constructor_builds",
             "what_the_fast_construction_does_not_handle_is_left_to_xarrays_constructor")),
         *(f"tests/test_store.py::test_{name}" for name in (
             "consecutive_files_are_written_chunk_by_chunk_from_their_own_arrays",
             "a_newer_version_replaces_the_older_records", "whole_chunks_are_stored_as_zarr_stores_them",
             "a_damaged_table_is_named_and_other_datasets_are_unaffected"))]


def declared() -> dict[str, Version]:
    """Each dependency of heliohub and of its ``solar`` extra with its declared minimum."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    minimums = {}
    for requirement in [*project["dependencies"], *project["optional-dependencies"]["solar"]]:
        match = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^]]*\])?>=([^,;]+)", requirement)
        assert match, f"{requirement}: every dependency declares its minimum"
        minimums[match[1].lower()] = Version(match[2])
    return minimums


INSPECT = """
import importlib.metadata as m, json, re, sys
names = sys.argv[1:]
required = {}
for dist in m.distributions():
    if dist.metadata["Name"].lower() == "heliohub":
        continue
    for requirement in dist.requires or []:
        found = re.match(r"^([A-Za-z0-9_.-]+)(?:\\[[^]]*\\])?\\s*\\(?>=\\s*([^,;)\\s]+)", requirement)
        if found and found[1].lower() in names and "extra ==" not in requirement:
            required.setdefault(found[1].lower(), []).append(found[2])
print(json.dumps([{n: m.version(n) for n in names}, required]))
"""


@pytest.mark.slow
def test_the_declared_minimum_versions_are_enough(tmp_path):
    uv = Path(sys.executable).with_name("uv")
    python = tmp_path / "lowest" / "bin" / "python"
    subprocess.run([uv, "venv", "-q", python.parents[1], "--python", sys.executable], check=True, timeout=120)
    subprocess.run([uv, "pip", "install", "-q", "--python", python, "--resolution", "lowest-direct",
                    "--no-build", "-e", f"{ROOT}[solar]"], check=True, timeout=900)
    # the tests' own tools at their newest (they pin none of heliohub's dependencies)
    subprocess.run([uv, "pip", "install", "-q", "--python", python, "pytest>=8", "cdflib>=1.3", "boto3"], check=True,
                   timeout=900)
    minimums = declared()
    installed, required = json.loads(subprocess.run([python, "-c", INSPECT, *minimums], capture_output=True,
                                                     text=True, check=True).stdout)
    for name, minimum in minimums.items():
        # the declared minimum, unless another dependency asks for more (sunpy asks requests >= 2.32)
        others = [Version(v) for v in required.get(name, [])]
        at = Version(installed[name])
        assert at == minimum or (at > minimum and max(others, default=minimum) > minimum), (name, at, others)
    result = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "core", *TESTS], cwd=ROOT,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"at {installed}:\n{result.stdout[-6000:]}{result.stderr[-2000:]}"
