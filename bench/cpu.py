"""Where the CPU went during a scenario, from /proc (Linux): the bench's own worker
processes, the PostgreSQL backends serving the scenario's databases (plus the
server's shared background processes), RabbitMQ (one process: it also serves anyone
else's vhosts), and everything else on the machine — other people's work shares
these cores; it is reported, not subtracted."""
from __future__ import annotations

import os
import time
from pathlib import Path

_HZ = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[float, str, str]]:
    """pid -> (cpu seconds so far, command name, command line)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                "utf-8", "replace")
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(entry.name)] = ((int(fields[11]) + int(fields[12])) / _HZ, name, cmdline)
    return out


def _busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores, /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)   # idle + iowait
    return (sum(fields[:8]) - idle) / _HZ


def _group(name: str, cmdline: str, db_prefix: str | None) -> str:
    if name.startswith("postgres"):
        # backends are titled "postgres: 15/main: user database host(port) state"
        parts = cmdline.split()
        if len(parts) >= 4 and parts[0] == "postgres:" and "(" in cmdline:
            return "postgres" if db_prefix and parts[3].startswith(db_prefix) else "other"
        return "postgres"                 # checkpointer, WAL writer, ...: shared
    if name.startswith(("beam", "erl_child", "epmd", "inet_gethost")):
        return "rabbitmq"
    return "other"


class CpuMeter:
    """``start()`` then ``stop(own_pids)`` -> CPU seconds per group over the interval
    and the machine's busy CPU seconds (so 'other' includes what /proc/<pid> misses:
    processes that came and went, kernel threads)."""

    def __init__(self, db_prefix: str | None = None):
        self.db_prefix = db_prefix

    def start(self) -> None:
        self.t0, self.busy0, self.before = time.monotonic(), _busy_seconds(), _processes()

    def stop(self, own: dict[int, str]) -> dict:
        after, seconds = _processes(), time.monotonic() - self.t0
        busy = _busy_seconds() - self.busy0
        used: dict[str, float] = {}
        for pid, (cpu, name, cmdline) in after.items():
            spent = cpu - self.before.get(pid, (0.0,))[0]
            if spent <= 0:
                continue
            group = own.get(pid) or _group(name, cmdline, self.db_prefix)
            if group != "other":
                used[group] = used.get(group, 0.0) + spent
        used["other"] = max(0.0, busy - sum(used.values()))
        return {"seconds": seconds, "busy": busy, "cores": os.cpu_count(),
                "cpu_seconds": used}
