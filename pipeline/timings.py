"""Where a run's time goes, stage by stage (`run.stage_times=true`).

Every stage call, stage build (model loading) and table write in the workers appends one
line (stage, wall seconds, CPU seconds of its process, items) to a file per process in a
local folder; the driver sums them per pass. CPU seconds are the process's and its
finished children's (`os.times`), so a stage that runs on several threads (the CNN's
intra-op threads) shows more CPU than wall, and one that runs FFmpeg (skims) shows
FFmpeg's; while an in-process actor pool runs, a call counts its own thread's alone.
Workers on other nodes of a cluster write to their own node's disk: the driver sums what
its own node saw.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_POOLS = 0  # in-process actor pools running in this process (`pool_running`)
_POOLS_LOCK = threading.Lock()


@contextlib.contextmanager
def pool_running() -> Iterator[None]:
    """While several instances of a stage run at once on threads of this process (an
    in-process actor pool), every call here counts its own thread's CPU: the process's
    would count the calls beside it too. The pool's instances run one intra-op thread
    each, so their thread is all their work."""
    global _POOLS
    with _POOLS_LOCK:
        _POOLS += 1
    try:
        yield
    finally:
        with _POOLS_LOCK:
            _POOLS -= 1


def _process_cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _cpu_clock():
    """The clock a call is timed on, chosen when it starts (see `pool_running`)."""
    return time.thread_time if _POOLS else _process_cpu


@dataclass(frozen=True)
class StageTimer:
    """Picklable: it travels to task and actor workers inside the plan's callables.
    `t0` (epoch seconds) is when the pass began: each stage's first start and last end
    are counted from it, which shows start-up and tails."""

    folder: str
    t0: float = 0.0

    @contextlib.contextmanager
    def time(self, stage: str, items: int = 1) -> Iterator[None]:
        clock = _cpu_clock()
        start, wall, cpu = time.time(), time.perf_counter(), clock()
        try:
            yield
        finally:
            line = {
                "stage": stage,
                "wall": time.perf_counter() - wall,
                "cpu": clock() - cpu,
                "items": items,
                "start": start - self.t0,
                "end": time.time() - self.t0,
            }
            # One file per process, appended whole lines at a time: no two writers share one.
            with open(Path(self.folder) / f"{os.getpid()}.jsonl", "a") as f:
                f.write(json.dumps(line) + "\n")

    def totals(self) -> dict[str, dict[str, float]]:
        """Per stage: calls, items, wall and CPU seconds, how many processes ran it, and
        its first start and last end (seconds from `t0`)."""
        sums: dict[str, dict[str, Any]] = defaultdict(
            lambda: {
                "calls": 0,
                "items": 0,
                "wall": 0.0,
                "cpu": 0.0,
                "first": float("inf"),
                "last": 0.0,
                "pids": set(),
            }
        )
        for path in Path(self.folder).glob("*.jsonl"):
            for text in path.read_text().splitlines():
                line = json.loads(text)
                s = sums[line["stage"]]
                s["calls"] += 1
                s["items"] += line["items"]
                s["wall"] += line["wall"]
                s["cpu"] += line["cpu"]
                s["first"] = min(s["first"], line["start"])
                s["last"] = max(s["last"], line["end"])
                s["pids"].add(path.stem)
        return {k: {**v, "processes": len(v.pop("pids"))} for k, v in sums.items()}


NAME_WIDTH = 24  # the stage column of the table; `read_table` reads it back by position


def format_totals(title: str, totals: dict[str, dict[str, float]], wall_s: float) -> str:
    """A table of `totals`, costliest first, against the pass's wall time on every core."""
    cores = os.cpu_count() or 1
    cpu_all = sum(t["cpu"] for t in totals.values())
    budget = wall_s * cores
    lines = [
        f"stage times, {title}: {wall_s:.1f} s wall x {cores} cores = {budget:.1f} "
        f"core-seconds, {cpu_all:.1f} of them in stages ({cpu_all / max(budget, 1e-9):.0%})",
        f"  {'stage':<{NAME_WIDTH}} {'calls':>6} {'items':>6} {'procs':>5} {'wall s':>8} "
        f"{'cpu s':>8} {'cpu/wall':>8} {'share':>6} {'first':>6} {'last':>6}",
    ]
    for name, t in sorted(totals.items(), key=lambda kv: -kv[1]["cpu"]):
        lines.append(
            f"  {name:<{NAME_WIDTH}} {t['calls']:>6} {t['items']:>6} {t['processes']:>5} "
            f"{t['wall']:>8.2f} {t['cpu']:>8.2f} {t['cpu'] / max(t['wall'], 1e-9):>8.2f} "
            f"{t['cpu'] / max(cpu_all, 1e-9):>6.0%} {t['first']:>6.1f} {t['last']:>6.1f}"
        )
    return "\n".join(lines)


class Timed:
    """A batch function (a table writer) whose calls are timed as `stage`."""

    def __init__(self, fn: Any, stage: str, timer: StageTimer | None):
        self.fn, self.stage, self.timer = fn, stage, timer

    def __call__(self, batch: dict[str, Any]) -> Any:
        with timed(self.timer, self.stage, len(next(iter(batch.values()), ()))):
            return self.fn(batch)


COLUMNS = ("calls", "items", "processes", "wall", "cpu", "cpu_per_wall", "share", "first", "last")


def read_table(log: str, title: str) -> dict[str, dict[str, float]]:
    """The stage rows of the `format_totals` table `title` found in a run's log text."""
    lines = log.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith(f"stage times, {title}:"))
    rows = {}
    for line in lines[head + 2 :]:
        if not line.startswith("  "):
            break
        cut = 2 + NAME_WIDTH + 1  # indent, name, space
        name, numbers = line[:cut].strip(), line[cut:].split()
        rows[name] = dict(zip(COLUMNS, (float(x.rstrip("%")) for x in numbers), strict=True))
    return rows


def timed(timer: StageTimer | None, stage: str, items: int = 1):
    """`timer.time(...)`, or nothing when the run is not timed."""
    return timer.time(stage, items) if timer else contextlib.nullcontext()
