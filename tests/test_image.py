"""The notebook image's environment, tested inside the environment it describes (as pangeo-docker-images do).

There is no Docker engine here: the image's locked environment is installed the way its Dockerfile installs it
(uv of the Dockerfile's version makes the virtual environment and installs the lock with --no-deps and its hashes,
then heliohub, then the kernel; only the byte compilation is left out), on this machine's Python of the lock's
version (the image's is uv's build of PYTHON_VERSION, which cannot be downloaded here), and the image's own checks
(images/notebook/check_image.py, the last step of its build) run there.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IMAGE = ROOT / "images" / "notebook"


def build_arguments() -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=(\S+)$", (IMAGE / "Dockerfile").read_text(), re.M))


def test_locked_environment_passes_the_image_checks(tmp_path):
    lock = IMAGE / "requirements.lock"
    resolved = re.search(r"resolved for Python (\d+\.\d+)", lock.read_text())[1]
    if resolved != f"{sys.version_info.major}.{sys.version_info.minor}":
        pytest.skip(f"the image's lock is resolved for Python {resolved}; this is {sys.version.split()[0]}")
    arguments = build_arguments()
    uv = Path(sys.executable).parent / "uv"
    if not uv.exists():
        pytest.skip(f"uv is not installed at {uv} (the test extra's uv)")
    installed_uv = subprocess.run([uv, "--version"], capture_output=True, text=True, check=True).stdout.split()[1]
    assert installed_uv == arguments["UV_VERSION"], "the Dockerfile's UV_VERSION and requirements/dev.lock's uv differ"
    assert arguments["PYTHON_VERSION"].startswith(f"{resolved}."), "the Dockerfile's Python is not the lock's"
    env = tmp_path / "env"
    python = env / "bin" / "python"
    run = {"check": True, "capture_output": True, "text": True, "timeout": 900}
    # PIP_*, UV_* and the user's site must not leak in: the image is what the Dockerfile says
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("PIP_", "UV_", "PYTHON", "JUPYTER", "VIRTUAL_ENV"))}
    clean["PATH"] = f"{env / 'bin'}:{clean.get('PATH', '')}"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, "--no-python-downloads", env], env=clean, **run)
    for target in (["--require-hashes", "-r", lock], [ROOT]):
        subprocess.run([uv, "pip", "install", "--quiet", "--python", python, "--no-deps", *target], env=clean, **run)
    subprocess.run([uv, "pip", "check", "--python", python], env=clean, **run)
    subprocess.run([env / "bin" / "jupyter", "kernelspec", "install", "--sys-prefix", ROOT / "kernels" / "heliohub"],
                   env=clean, **run)

    result = subprocess.run([python, IMAGE / "check_image.py", "--lock", lock,
                             "--jupyterhub", arguments["JUPYTERHUB_VERSION"],
                             "--dask-gateway", arguments["DASK_GATEWAY_VERSION"],
                             "--tutorials", ROOT / "examples"], env=clean, cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len([line for line in lines if line.startswith("ok:")]) == 6, result.stdout
    assert f"ok: jupyterhub {arguments['JUPYTERHUB_VERSION']}" in lines


def test_image_checks_catch_a_drifted_environment(tmp_path):
    """The checks fail, naming the distribution, when the environment is not the lock (here: the dev environment)."""
    lock = tmp_path / "requirements.lock"
    lock.write_text("# a lock that pins a version nobody has\nxarray==0.0.1\n")
    result = subprocess.run([sys.executable, IMAGE / "check_image.py", "--lock", lock, "--jupyterhub", "0",
                             "--dask-gateway", "0", "--tutorials", ROOT / "examples"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "xarray" in result.stderr and "(lock: 0.0.1)" in result.stderr
