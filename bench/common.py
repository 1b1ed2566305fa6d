"""Shared bench helpers: timing, process-tree memory, sample clips, result files."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def timed(fn, repeat: int = 3):
    """(best wall seconds of `repeat` calls, last result): best-of damps a busy machine."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            kids.append(int(entry))
    return kids


def _name(pid: int) -> str:
    """A process's name for a memory table: Ray's worker title, else its command."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return "?"
    if not args:
        return "?"
    if args[0].startswith("ray::"):
        return args[0].split()[0]  # ray::IDLE, ray::MapWorker(MapBatches(_WindowsCall)), ...
    words = [os.path.basename(a) for a in args[:3]]
    return " ".join(w for w in words if not w.startswith("-"))[:60]


def tree_pss(pid: int) -> dict[int, tuple[str, dict[str, float]]]:
    """PSS of a process and all its descendants (shared pages split among their users):
    pid -> (name, {"pss_mb", "shmem_mb": the part in shared memory, e.g. Ray's object
    store})."""
    out, stack = {}, [pid]
    while stack:
        p = stack.pop()
        stack.extend(_children(p))
        fields = {}
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    key, _, rest = line.partition(":")
                    if key in ("Pss", "Pss_Shmem"):
                        fields[key] = int(rest.split()[0]) / 1024
        except OSError:
            continue
        if "Pss" in fields:
            out[p] = (_name(p), {"pss_mb": fields["Pss"], "shmem_mb": fields.get("Pss_Shmem", 0.0)})
    return out


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def by_name(per_pid: dict[int, tuple[str, dict[str, float]]], largest: str) -> list[dict]:
    """Per-process figures summed per process name, with how many processes had that
    name, the largest `largest` first."""
    groups: dict[str, dict] = {}
    for name, figures in per_pid.values():
        g = groups.setdefault(name, {"name": name, "processes": 0})
        g["processes"] += 1
        for key, value in figures.items():
            g[key] = g.get(key, 0.0) + value
    return sorted(groups.values(), key=lambda g: -g[largest])


def run_measured(cmd: list[str], env: dict | None = None, interval: float = 0.25) -> dict:
    """Run a command; return its wall time, exit code, output (each line with when it came),
    peak tree PSS (MB) and the processes that made up that peak."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    peak, at_peak = 0.0, {}
    cpu: dict[int, tuple[str, dict[str, float]]] = {}  # pid -> CPU seconds when last seen
    lines: list[tuple[float, str]] = []  # (seconds since start, line) as each arrives

    def read() -> None:
        for line in proc.stdout:
            lines.append((time.perf_counter() - t0, line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    while proc.poll() is None:
        snapshot = tree_pss(proc.pid)
        total = sum(figures["pss_mb"] for _, figures in snapshot.values())
        if total > peak:
            peak, at_peak = total, snapshot
        for p, (name, _) in snapshot.items():
            seconds = cpu_seconds(p)
            if seconds:  # 0: it ended since the snapshot, keep what it had
                cpu[p] = (name, {"cpu_s": seconds})
        time.sleep(interval)
    reader.join()
    return {
        "wall_s": time.perf_counter() - t0,
        "rc": proc.returncode,
        "peak_pss_mb": peak,
        "peak_processes": by_name(at_peak, "pss_mb"),
        # CPU seconds per process name, as last seen every `interval` (a process that
        # ended between two looks loses its last moments): where the cores went.
        "cpu_by_process": by_name(cpu, "cpu_s"),
        "output": "".join(line for _, line in lines),
        "timed_lines": lines,
    }


def ensure_samples(folder: Path, count: int = 8, seed: int = 0) -> list[Path]:
    from jobs.samples import generate_samples

    videos = [folder / f"sample-{i:03d}.mp4" for i in range(count)]
    if not all(v.exists() for v in videos):
        generate_samples(folder, count=count, seed=seed)
    return videos


def save(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, default=str))
    return path
