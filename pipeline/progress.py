"""Progress for logs: when stdout is not a terminal (a scheduled job's log), one compact
line every few seconds instead of Ray Data's multi-line progress blocks."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator


def for_logs() -> bool:
    """Is this run's output going to a log rather than a person's terminal?"""
    return not sys.stdout.isatty()


class Progress:
    """Counts decoded seconds of video (pass 1) and finished videos (pass 2); `tick`
    logs one line when `every_s` has passed since the last (never when `every_s` is 0)."""

    def __init__(
        self,
        total: int,
        log: Callable[[str], None],
        every_s: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.total, self.log, self.every_s, self.clock = total, log, every_s, clock
        self.t0 = self.last = clock()
        self.decoded_s = 0.0
        self.done = self.errors = 0

    def decoded(self, seconds: float) -> None:
        self.decoded_s += seconds
        self.tick()

    def finished(self, ok: int, errors: int) -> None:
        self.done += ok + errors
        self.errors += errors
        self.tick()

    def tick(self) -> None:
        now = self.clock()
        if self.every_s and now - self.last >= self.every_s:
            self.last = now
            self.log(self.line(now))

    def line(self, now: float) -> str:
        took = max(now - self.t0, 1e-9)
        eta = "-"
        if 0 < self.done < self.total:
            eta = _clock(took * (self.total - self.done) / self.done)
        return (
            f"progress: {self.done}/{self.total} videos done, {self.errors} errors; "
            f"{self.decoded_s:.0f} s of video decoded at {self.decoded_s / took:.1f} s/s; "
            f"ETA {eta}"
        )

    def windows(self, batches: Iterator[dict], fps: float) -> Iterator[dict]:
        """Pass 1's receipt batches, counted as they go by."""
        for b in batches:
            frames = sum(int(n) for n, e in zip(b["n_frames"], b["error"], strict=True) if not e)
            self.decoded(frames / fps)
            yield b


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}h{m % 60:02d}m" if m >= 60 else f"{m}m{s:02d}s"
