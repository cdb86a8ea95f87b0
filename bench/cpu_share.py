"""CPU bookkeeping for the benchmarks: a per-process CPU quota and CPU-time readings.

Why a quota: two mailgate instances are meant to run on two hosts. On one machine
the second instance takes its CPU from the first one, from PostgreSQL and from the
client, so a scale-out figure measured there is a figure of the machine. Giving
each instance the same fixed CPU share (a cgroup quota, as if each had a host of
that size) leaves the rest of the machine to PostgreSQL and the client, and what the
ratio then measures is whether mailgate's instances get in each other's way.

Linux only; cgroup v1 (``/sys/fs/cgroup/cpu``) or v2 (``cpu.max``), writable (root).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

V1_ROOT = Path("/sys/fs/cgroup/cpu")
V2_ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 100_000
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class CpuQuota:
    """A cgroup that holds processes to ``cores`` CPUs' worth of time."""

    def __init__(self, cores: float) -> None:
        self.cores = cores
        name = f"mailgate-bench-{uuid.uuid4().hex[:8]}"
        quota = int(cores * PERIOD_US)
        if (V1_ROOT / "cpu.cfs_quota_us").exists():
            self.path = V1_ROOT / name
            self.path.mkdir()
            (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (self.path / "cpu.cfs_quota_us").write_text(str(quota))
        elif "cpu" in (V2_ROOT / "cgroup.subtree_control").read_text().split():
            self.path = V2_ROOT / name
            self.path.mkdir()
            (self.path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        else:
            raise OSError("no cgroup CPU controller to write to")

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    def remove(self) -> None:
        """Delete the cgroup (its processes must have ended)."""
        try:
            self.path.rmdir()
        except OSError:
            pass


def make_quotas(cores: float, count: int) -> list[CpuQuota] | str:
    """``count`` quotas of ``cores`` each, or the reason none can be made here."""
    if cores <= 0:
        return "no quota asked for"
    quotas: list[CpuQuota] = []
    try:
        for _ in range(count):
            quotas.append(CpuQuota(cores))
    except OSError as exc:
        for quota in quotas:
            quota.remove()
        return f"no CPU quota possible here ({exc})"
    return quotas


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def named_cpu_seconds(prefix: str) -> float:
    """CPU seconds of every process whose name starts with ``prefix`` (e.g. PostgreSQL's)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm.startswith(prefix):
            total += process_cpu_seconds(int(entry.name))
    return total


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent not idle (all cores), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS
