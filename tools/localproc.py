"""What the benchmarks and the abuse suite need to know of a local server process: a free port
and the process's memory and CPU from /proc. Imported by bench/*.py and tests/abuse/run.py
(each puts this folder on sys.path)."""

import os
import socket
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_kb(pid: int) -> dict:
    """VmRSS, VmHWM (peak RSS) in KiB and Threads, from /proc/PID/status."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM", "Threads"):
            out[k] = int(v.split()[0])
    return out


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    return status_kb(pid).get(field, 0) / 1024


def cpu_seconds(pid: int) -> float:
    # Fields after the parenthesised command name; utime and stime are 14 and 15 overall.
    rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK
