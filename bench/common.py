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


_TICK = os.sysconf("SC_CLK_TCK")
_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


def _processes() -> dict[int, tuple[int, float, float]]:
    """Every process: pid -> (parent pid, CPU seconds so far, resident MB), from one read
    of each /proc/<pid>/stat (cheap: no page walk)."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu = (int(fields[11]) + int(fields[12])) / _TICK
        out[int(entry)] = (int(fields[1]), cpu, int(fields[21]) * _PAGE_MB)
    return out


def _tree(pid: int, processes: dict[int, tuple[int, float, float]]) -> list[int]:
    """`pid` and all its descendants."""
    kids: dict[int, list[int]] = {}
    for p, (parent, _, _) in processes.items():
        kids.setdefault(parent, []).append(p)
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(kids.get(p, []))
    return [p for p in out if p in processes]


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
    # The first line of each (an in-process worker's `-c` code begins with its name).
    words = [os.path.basename(a.splitlines()[0]) for a in args[:3]]
    return " ".join(w for w in words if not w.startswith("-"))[:60]


def pss(pids: list[int], names: dict[int, str]) -> dict[int, tuple[str, dict[str, float]]]:
    """PSS of each process (shared pages split among their users): pid -> (name,
    {"pss_mb", "shmem_mb": the part in shared memory, e.g. Ray's object store}). Reading
    smaps_rollup walks the process's pages: kernel work the watcher pays for."""
    out = {}
    for p in pids:
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
            out[p] = (names[p], {"pss_mb": fields["Pss"], "shmem_mb": fields.get("Pss_Shmem", 0.0)})
    return out


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


PSS_EVERY_S = 5.0


def run_measured(cmd: list[str], env: dict | None = None, interval: float = 0.25) -> dict:
    """Run a command; return its wall time, exit code, output (each line with when it came),
    peak tree PSS (MB) and the processes that made up that peak.

    Watching must not slow what it watches (2 cores here): every `interval` it reads each
    process's stat once (parents, CPU, resident size); the PSS, which costs a walk of
    every page, only when the tree's resident size reaches a new high, and every
    `PSS_EVERY_S` (a peak of PSS that is not one of resident size, shared pages
    splitting differently, is caught to within that)."""
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
    watching = time.process_time()
    top_rss, last_pss = 0.0, -PSS_EVERY_S
    while proc.poll() is None:
        processes = _processes()
        tree = _tree(proc.pid, processes)
        # Named afresh each look: a Ray worker takes its title after it starts.
        names = {p: _name(p) for p in tree}
        for p in tree:
            cpu[p] = (names[p], {"cpu_s": processes[p][1]})
        rss = sum(processes[p][2] for p in tree)
        now = time.perf_counter()
        if rss > top_rss or now - last_pss >= PSS_EVERY_S:
            top_rss, last_pss = max(top_rss, rss), now
            snapshot = pss(tree, names)
            total = sum(figures["pss_mb"] for _, figures in snapshot.values())
            if total > peak:
                peak, at_peak = total, snapshot
        time.sleep(interval)
    watching = time.process_time() - watching
    reader.join()
    return {
        "wall_s": time.perf_counter() - t0,
        # What watching cost: this process's CPU seconds while the command ran, taken
        # from the command's cores.
        "watch_cpu_s": watching,
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
