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


def tree_pss_mb(pid: int) -> float:
    """Proportional set size of a process and all its descendants (shared pages split)."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        stack.extend(_children(p))
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total / 1024


def run_measured(cmd: list[str], env: dict | None = None, interval: float = 0.25) -> dict:
    """Run a command; return its wall time, exit code, output and peak tree PSS (MB)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    peak = 0.0
    lines: list[tuple[float, str]] = []  # (seconds since start, line) as each arrives

    def read() -> None:
        for line in proc.stdout:
            lines.append((time.perf_counter() - t0, line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    while proc.poll() is None:
        peak = max(peak, tree_pss_mb(proc.pid))
        time.sleep(interval)
    reader.join()
    return {
        "wall_s": time.perf_counter() - t0,
        "rc": proc.returncode,
        "peak_pss_mb": peak,
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
