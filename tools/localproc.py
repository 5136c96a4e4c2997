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


class MemoryCap:
    """A hard memory limit for a child process: a cgroup of its own where this machine lets one
    be made (v2 `memory.max`, else v1 `memory.limit_in_bytes`), else the address-space rlimit
    (`ulimit -v`, which also counts reserved but untouched memory, so it needs more room).
    Pass `preexec_fn=cap.enter` to subprocess.Popen; `cap.how` says which limit applies."""

    def __init__(self, limit_mb: int, name: str):
        self.limit = limit_mb << 20
        self.dir = None
        # Below this process's own cgroup, so the child stays inside whatever limits this one.
        own = {}
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            own[controllers] = path.lstrip("/")
        for root, key, files in (("/sys/fs/cgroup", "", ("memory.max",)),
                                 ("/sys/fs/cgroup/memory", "memory", ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes"))):
            if key not in own:
                continue
            parent = Path(root) / own[key]
            d = parent / f"{name}-{os.getpid()}"
            try:
                if key == "" and "memory" not in (parent / "cgroup.subtree_control").read_text().split():
                    continue
                d.mkdir(exist_ok=True)
                for f in files:
                    if (d / f).exists():
                        (d / f).write_text(str(self.limit))
                self.dir, self.how = d, f"cgroup {d}/{files[0]} = {limit_mb} MiB"
                return
            except OSError:
                try:
                    d.rmdir()
                except OSError:
                    pass
        self.how = f"RLIMIT_AS (ulimit -v) = {2 * limit_mb} MiB"

    def enter(self):
        """Runs in the child before exec."""
        if self.dir is not None:
            (self.dir / "cgroup.procs").write_text(str(os.getpid()))
        else:
            import resource
            resource.setrlimit(resource.RLIMIT_AS, (2 * self.limit, 2 * self.limit))

    def release(self):
        if self.dir is not None:
            try:
                self.dir.rmdir()
            except OSError:
                pass
