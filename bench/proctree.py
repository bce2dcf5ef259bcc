"""A process and its descendants, read from /proc: CPU time, RSS and PSS of a server and its workers (and of PostgreSQL)."""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Iterable


def process_tree(root: int) -> list[int]:
    """``root`` and every descendant (``/proc/<pid>/task/*/children``); processes that vanish are skipped."""
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except OSError:
            pass
    return out


def postgres_pids() -> list[int]:
    """Every PostgreSQL server process on the box (its CPU is reported apart from the servers')."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/comm") as fh:
                    if fh.read().strip() == "postgres":
                        out.append(int(name))
            except OSError:
                pass
    return out


def cpu_seconds(pids: Iterable[int]) -> float:
    """utime + stime of the given processes, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            pass
    return total


def pss_mib(pids: Iterable[int]) -> float:
    """Proportional set size (shared pages split between the processes that map them), MiB."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def stop_group(proc: subprocess.Popen, grace: float = 30) -> None:
    """SIGTERM a server started with ``start_new_session=True`` (its whole process group), SIGKILL after ``grace``."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
