"""Memory, CPU, process and file-size limits for the processes users start: their servers and their Dask workers.

A process is confined just before it runs the user's program (in the child, still as root, before the switch to the
user's account): it joins a control group of its own under ``heliohub/<account>/`` with the memory, CPU and process
limits, where the machine's control groups can be written (cgroup v2, or the v1 ``memory``, ``cpu`` and ``pids``
hierarchies); otherwise the same limits are set as resource limits (``RLIMIT_DATA`` for memory, ``RLIMIT_NPROC`` for
processes, and a lower priority instead of a CPU share, which resource limits cannot express). ``RLIMIT_FSIZE``
bounds every file a user's process writes, either way.

Control groups left empty by processes that ended are removed by :func:`sweep`, which ``heliohub up`` runs every
minute and at stop. systemd is not asked (``systemd-run --scope``): it needs a running systemd, which the machines
this was built on do not have, and writing the control group files is what it would do.
"""

from __future__ import annotations

import contextlib
import os
import resource
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
GROUP = "heliohub"
CPU_PERIOD_US = 100_000
# What a process without its own control group gets instead of a CPU share (resource limits have none).
NICENESS = 10


@dataclass(frozen=True)
class Limits:
    """What one process (with its children) may use; None: no limit."""

    memory_bytes: int | None = None
    cpus: float | None = None
    processes: int | None = None
    file_bytes: int | None = None


def parse_bytes(text: str | int | None) -> int | None:
    """``"4G"``, ``"512 MiB"``, ``"2 G"`` or a number of bytes; empty or 0: no limit."""
    if text is None or text == "" or text == 0:
        return None
    if isinstance(text, int):
        return text
    value = text.strip().upper().replace(" ", "").removesuffix("B").removesuffix("I")
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    try:
        if value and value[-1] in units:
            return int(float(value[:-1]) * units[value[-1]])
        return int(value)
    except ValueError:
        raise ValueError(f"{text!r} is not a size: give a number of bytes or one with K, M, G or T") from None


def mechanism(root: Path = CGROUP_ROOT) -> str:
    """How limits are applied here: ``cgroup2``, ``cgroup1`` or ``rlimit`` (control groups not writable)."""
    if os.geteuid() != 0:
        return "rlimit"
    if (root / "cgroup.controllers").exists() and os.access(root, os.W_OK):
        return "cgroup2"
    if all(os.access(root / c, os.W_OK) for c in ("memory", "cpu")):
        return "cgroup1"
    return "rlimit"


def confine(limits: Limits, account: str, name: str, root: Path = CGROUP_ROOT) -> None:
    """Put the calling process under ``limits``: call it in the child, as root, before changing to ``account``.
    ``name`` tells the process apart in its control group's name (``<name>-<pid>``)."""
    if limits.file_bytes is not None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
    how = mechanism(root)
    leaf = f"{GROUP}/{account}/{name}-{os.getpid()}"
    if how == "cgroup2":
        _join_v2(root, leaf, limits)
    elif how == "cgroup1":
        _join_v1(root, leaf, limits)
    else:
        _rlimits(limits)


def _write(path: Path, value: str) -> None:
    with open(path, "w") as handle:
        handle.write(value)


def _join_v2(root: Path, leaf: str, limits: Limits) -> None:
    parts = leaf.split("/")
    for depth in range(len(parts)):  # every level above the leaf hands its controllers down
        folder = root.joinpath(*parts[:depth])
        folder.joinpath(parts[depth]).mkdir(exist_ok=True)
        with contextlib.suppress(OSError):
            _write(folder / "cgroup.subtree_control", "+memory +cpu +pids")
    group = root / leaf
    if limits.memory_bytes is not None:
        _write(group / "memory.max", str(limits.memory_bytes))
        _write(group / "memory.swap.max", "0")
    if limits.cpus is not None:
        _write(group / "cpu.max", f"{int(limits.cpus * CPU_PERIOD_US)} {CPU_PERIOD_US}")
    if limits.processes is not None:
        _write(group / "pids.max", str(limits.processes))
    _write(group / "cgroup.procs", str(os.getpid()))


def _join_v1(root: Path, leaf: str, limits: Limits) -> None:
    settings = {
        "memory": [("memory.limit_in_bytes", limits.memory_bytes)],
        "cpu": [("cpu.cfs_period_us", CPU_PERIOD_US),
                ("cpu.cfs_quota_us", int(limits.cpus * CPU_PERIOD_US) if limits.cpus is not None else None)],
        "pids": [("pids.max", limits.processes)],
    }
    for controller, values in settings.items():
        if not os.access(root / controller, os.W_OK):
            if controller == "pids" and limits.processes is not None:
                resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
            continue
        group = root / controller / leaf
        group.mkdir(parents=True, exist_ok=True)
        for name, value in values:
            if value is not None:
                _write(group / name, str(value))
        _write(group / "cgroup.procs", str(os.getpid()))


def _rlimits(limits: Limits) -> None:
    if limits.memory_bytes is not None:
        resource.setrlimit(resource.RLIMIT_DATA, (limits.memory_bytes, limits.memory_bytes))
    if limits.processes is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
    if limits.cpus is not None:
        os.nice(NICENESS)


def sweep(root: Path = CGROUP_ROOT) -> int:
    """Remove the control groups under ``heliohub/`` whose processes have all ended; returns how many."""
    if mechanism(root) == "rlimit":
        return 0
    tops = [root / GROUP] if (root / "cgroup.controllers").exists() else \
        [root / c / GROUP for c in ("memory", "cpu", "pids")]
    removed = 0
    for top in tops:
        if not top.is_dir():
            continue
        for folder in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):  # still has processes, or a group below it
                if not (folder / "cgroup.procs").read_text().strip():
                    folder.rmdir()
                    removed += 1
    return removed


def of_process(pid: int, root: Path = CGROUP_ROOT) -> dict[str, str]:
    """The limits the kernel applies to a process: its control group's memory, CPU and process limits by
    file name (for ``heliohub status`` and the tests), or its resource limits."""
    found: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if f"/{GROUP}/" not in f"{path}/":
            continue
        folders = [root / path.lstrip("/")] if controllers == "" else \
            [root / c / path.lstrip("/") for c in controllers.split(",") if (root / c).is_dir()]
        for folder in folders:
            for name in ("memory.max", "memory.limit_in_bytes", "cpu.max", "cpu.cfs_quota_us", "pids.max"):
                if (folder / name).exists():
                    found[name] = (folder / name).read_text().strip()
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines()[1:]:
        for label, key in (("Max data size", "RLIMIT_DATA"), ("Max processes", "RLIMIT_NPROC"),
                           ("Max file size", "RLIMIT_FSIZE")):
            if line.startswith(label):
                found[key] = line[len(label):].split()[0]
    return found
