"""The notebook image's checks on itself: run at the end of its build, and by the tests in a fresh virtualenv.

    python check_image.py --lock requirements.lock --jupyterhub 5.4.4 --dask-gateway 2026.3.0 --tutorials DIR

Checks that the environment is exactly the lock, that the hub and gateway clients match the chart's servers, that
heliohub's xarray engine is registered, that the heliohub kernel is listed and starts (and imports heliohub), and that
the tutorials are there. Prints one line per check; exits 1 on the first failure.
"""

from __future__ import annotations

import argparse
import re
import sys
from importlib import metadata
from pathlib import Path

KERNEL = "heliohub"


def check_lock(lock: Path) -> str:
    """Every pinned distribution is installed at its pinned version, on the Python the lock was resolved for."""
    text = lock.read_text()
    wanted = re.search(r"resolved for Python (\d+)\.(\d+)", text)
    if wanted and tuple(map(int, wanted.groups())) != sys.version_info[:2]:
        raise SystemExit(f"{lock}: resolved for Python {wanted[1]}.{wanted[2]}, this is {sys.version.split()[0]}")
    wrong = []
    pins = re.findall(r"^([\w.-]+)==([^\s;\\]+)", text, re.M)  # `name==version`, maybe followed by ` \` and hashes
    for name, version in pins:
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "missing"
        if installed != version:
            wrong.append(f"{name} {installed} (lock: {version})")
    if wrong:
        raise SystemExit(f"{lock}: the environment differs from the lock: " + ", ".join(wrong))
    return f"{len(pins)} distributions as locked"


def check_version(name: str, expected: str) -> str:
    installed = metadata.version(name)
    if installed != expected:
        raise SystemExit(f"{name} {installed} is installed, the chart runs {expected}: regenerate the lock from "
                         "images/notebook/constraints.txt")
    return f"{name} {installed}"


def check_engine() -> str:
    import xarray as xr

    if KERNEL not in xr.backends.list_engines():
        raise SystemExit("the heliohub xarray engine is not registered: heliohub is not installed in this environment")
    return "xarray engine 'heliohub' registered"


def check_kernel() -> str:
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import start_new_kernel

    specs = KernelSpecManager().find_kernel_specs()
    if KERNEL not in specs:
        raise SystemExit(f"kernel {KERNEL!r} is not listed (found {sorted(specs)}): install kernels/heliohub")
    manager, client = start_new_kernel(kernel_name=KERNEL, startup_timeout=120)
    try:
        reply = client.execute_interactive("print(heliohub.__name__, xr.__version__)", timeout=120)
        if reply["content"]["status"] != "ok":
            raise SystemExit(f"kernel {KERNEL!r} started but failed: {reply['content']}")
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    return f"kernel {KERNEL!r} listed ({specs[KERNEL]}) and starts"


def check_tutorials(folder: Path) -> str:
    notebooks = sorted(folder.glob("*.ipynb"))
    if not notebooks:
        raise SystemExit(f"no tutorials in {folder}")
    return f"{len(notebooks)} tutorials in {folder}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lock", type=Path, required=True)
    parser.add_argument("--jupyterhub", required=True, help="the JupyterHub version the chart's hub runs")
    parser.add_argument("--dask-gateway", required=True, help="the dask-gateway-server version the chart runs")
    parser.add_argument("--tutorials", type=Path, required=True)
    args = parser.parse_args(argv)
    for check in (lambda: check_lock(args.lock), lambda: check_version("jupyterhub", args.jupyterhub),
                  lambda: check_version("dask-gateway", args.dask_gateway), check_engine, check_kernel,
                  lambda: check_tutorials(args.tutorials)):
        print("ok:", check(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
