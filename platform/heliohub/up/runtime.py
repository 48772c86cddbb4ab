"""The Python environment that users' servers, kernels and Dask Gateway run from when each user has an account.

The accounts ``heliohub up`` makes must be able to execute the interpreter and read every package, which the
development environment often forbids (a pyenv or conda Python in root's home). So a runtime environment is built
from a Python the accounts can reach (this one or the system's, of the same minor version), with exactly the
development lock's distributions (the hub and the servers run the same JupyterHub) plus heliohub and its kernel,
installed by uv and compiled to bytecode (the accounts cannot write ``__pycache__`` there, and a kernel would
otherwise compile xarray, dask and the rest from source at every start). It is shared by every ``heliohub up`` on
the machine, one per lock, built once and then reused; heliohub itself is reinstalled when its source changed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from .accounts import unreachable_for_others

ROOT = Path(__file__).resolve().parents[3]
LOCK = ROOT / "requirements" / "dev.lock"
KERNEL = ROOT / "kernels" / "heliohub"
_SOURCE_STAMP = ".heliohub-source"
_LOCK_STAMP = ".heliohub-lock"


def reachable_python() -> Path:
    """A Python of this version that other accounts can execute (this one, else the system's), or SystemExit."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [Path(os.path.realpath(sys.executable)), *(Path(p) / f"python{version}" for p in
                                                             ("/usr/bin", "/usr/local/bin", "/opt/python/bin"))]
    for python in candidates:
        if python.exists() and os.access(python, os.X_OK) and unreachable_for_others(python) is None \
                and python.stat().st_mode & 0o001:
            return python
    raise SystemExit(f"heliohub up: the users' accounts need a Python {version} they can run, and there is none: "
                     f"{os.path.realpath(sys.executable)} is closed to them; install one system-wide (Debian: apt "
                     "install python3-venv), or set --UpSettings.isolate_users=False")


def package_folder(bin_dir: Path) -> Path:
    """The heliohub package of the environment whose programs are in ``bin_dir`` (this one's, or a runtime's)."""
    if Path(bin_dir) == Path(sys.executable).parent:
        return Path(__file__).resolve().parents[1]
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return Path(bin_dir).parent / "lib" / version / "site-packages" / "heliohub"


def _source_digest() -> str:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes())
    for path in sorted(p for p in (ROOT / "platform" / "heliohub").rglob("*") if p.suffix in (".py", ".html")):
        digest.update(str(path.relative_to(ROOT)).encode() + path.read_bytes())
    for path in sorted(KERNEL.rglob("*")):
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _uv() -> str:
    found = Path(sys.executable).parent / "uv"
    return str(found) if found.exists() else (shutil.which("uv") or "")


def _install(uv: str, python: str, *what: str) -> None:
    subprocess.run([uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", python, "--no-deps", *what],
                   check=True)


def ensure(root: Path, say: Callable[[str], None]) -> Path:
    """The ``bin`` folder of the runtime environment under ``root``, built or brought up to date first."""
    uv = _uv()
    if not uv:
        raise SystemExit("heliohub up: building the users' environment needs uv (pip install uv), or set "
                         "--UpSettings.isolate_users=False")
    lock = LOCK.read_bytes()
    python = reachable_python()
    name = hashlib.sha256(lock + str(python).encode() + sys.version.encode()).hexdigest()[:16]
    runtime = root / name
    interpreter = str(runtime / "bin" / "python")
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    changed = False
    if not (runtime / _LOCK_STAMP).exists():  # absent, or an earlier build was interrupted: (re)build it
        say(f"  users' environment: building {runtime} from {python} (first start only)")
        shutil.rmtree(runtime, ignore_errors=True)
        # a venv's paths are fixed when it is made, so it is made where it lives; the stamp marks it complete
        subprocess.run([str(python), "-m", "venv", "--without-pip", str(runtime)], check=True)
        _install(uv, interpreter, "-r", str(LOCK))
        (runtime / _LOCK_STAMP).write_text(hashlib.sha256(lock).hexdigest())
        changed = True
    source = _source_digest()
    stamp = runtime / _SOURCE_STAMP
    if not stamp.exists() or stamp.read_text() != source:
        _install(uv, interpreter, "--reinstall-package", "heliohub", str(ROOT))
        kernels = runtime / "share" / "jupyter" / "kernels" / "heliohub"
        shutil.rmtree(kernels, ignore_errors=True)
        shutil.copytree(KERNEL, kernels)
        stamp.write_text(source)
        changed = True
    if changed:
        for path in (runtime, *runtime.rglob("*")):  # readable (folders and programs passable) by every account
            if not path.is_symlink():
                mode = path.stat().st_mode
                path.chmod(mode | 0o044 | (0o011 if path.is_dir() or mode & 0o100 else 0))
    return runtime / "bin"
