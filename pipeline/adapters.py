"""One adapter turns any stage (stages/base.py) into its Ray Data call, without the stage
knowing: the plans list stages and the resources they run with, nothing else.

- `source` stages (the decoder), optionally followed by `windows` stages that then run in
  the same task on each window as it is decoded: `map_batches` over one video per call,
  yielding one window at a time so memory is bounded by the window.
- `windows` stages: `map_batches` over `resources.batch_size` windows, as columns that
  `Windows.from_columns` / `to_columns` turn into the typed batch and back.
- `video` stages: `map` over one row per video that carries its pickled `VideoRecord`
  (arrays differ in length per video, which a columnar block cannot hold). Stages given
  together share one unpickle; an exception becomes the record's error for that stage,
  and a failed record skips the stages after it.

`resources.pool` picks a task pool (stages built on first use in each worker process,
kept for the next tasks of the same plan) or an actor pool (built once per actor).
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import pickle
import sys
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import in_process
from pipeline.config import StageResources
from pipeline.timings import StageTimer, timed
from stages.base import Stage
from stages.errors import one_line
from stages.records import VideoRecord, VideoRef, Windows
from stages.settings import Shared

if TYPE_CHECKING:
    from ray.data import Dataset


@dataclass
class Bound:
    """A stage class with what builds it: its config section and the shared facts."""

    cls: type[Stage]
    cfg: Any
    shared: Shared

    def build(self) -> Stage:
        return self.cls(self.cfg, self.shared)


# Stages built by task workers, per group, most recent last. Bounded, so a long-lived
# worker that runs many plans does not keep every stage it ever built.
_BUILT: OrderedDict[str, list[Stage]] = OrderedDict()
_KEEP = 8


class _Call:
    def __init__(
        self, stages: Sequence[Bound], eager: bool = False, timer: StageTimer | None = None
    ):
        self.bound = list(stages)
        self.token = uuid.uuid4().hex
        self.timer = timer
        # Actors build at once (their constructor is the per-worker set-up); task
        # functions are pickled per task, so they build on first use in each worker.
        self._stages = self._build() if eager else None

    def _build(self) -> list[Stage]:
        built = []
        for b in self.bound:
            with timed(self.timer, f"{b.cls.name} (build)"):
                built.append(b.build())
        return built

    def stages(self) -> list[Stage]:
        if self._stages is not None:
            return self._stages
        built = _BUILT.get(self.token)
        if built is None:
            built = _BUILT[self.token] = self._build()
            while len(_BUILT) > _KEEP:
                _BUILT.popitem(last=False)
        _BUILT.move_to_end(self.token)
        return built


@dataclass(frozen=True)
class Watchdog:
    """A hard time limit for a source stage, for hangs no Python check can interrupt (a
    decoder blocked inside one native call).

    When one window of a video takes longer than `seconds` to make, a timer thread writes
    the reason into
    `folder/<video_id>` and ends the worker process; Ray retries the task, and the retry
    finds the reason and reports the video as an error row instead of decoding it again.
    """

    folder: str
    seconds: float

    def reason_file(self, video_id: str) -> Path:
        return Path(self.folder) / video_id

    def reason(self, video_id: str) -> str | None:
        path = self.reason_file(video_id)
        return path.read_text() if path.exists() else None

    @contextlib.contextmanager
    def attempt(self, ref: VideoRef) -> Iterator[None]:
        """Record a fatal signal of the worker while it works on this video: Python's
        fault handler writes into `folder/<video_id>.crash.<n>` if the process dies of
        SIGSEGV, SIGBUS, SIGABRT, SIGFPE or SIGILL; a file left empty means the process
        was killed outright (SIGKILL: the out-of-memory killer, say). The file is removed
        when the video is done, so only a death leaves one behind."""
        folder = Path(self.folder)
        folder.mkdir(parents=True, exist_ok=True)
        n = len(list(folder.glob(f"{ref.video_id}.crash.*")))
        path = folder / f"{ref.video_id}.crash.{n}"
        with open(path, "w") as record:
            faulthandler.enable(file=record)
            try:
                yield
            finally:
                faulthandler.enable(file=sys.__stderr__)  # back to the worker's log
        path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def guard(self, ref: VideoRef) -> Iterator[None]:
        def expire() -> None:
            path = self.reason_file(ref.video_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.part")
            tmp.write_text(
                f"watchdog: no progress within {self.seconds:.0f} s (a hang inside the "
                "decoder); its worker was ended"
            )
            os.replace(tmp, path)
            os._exit(WATCHDOG_EXIT)  # no Python code can interrupt a native call

        timer = threading.Timer(self.seconds, expire)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()


WATCHDOG_EXIT = 70


class _SourceCall(_Call):
    def __init__(
        self,
        stages: Sequence[Bound],
        eager: bool = False,
        timer: StageTimer | None = None,
        watchdog: Watchdog | None = None,
    ):
        super().__init__(stages, eager, timer)
        self.watchdog = watchdog

    def __call__(self, batch: dict[str, Any]) -> Iterator[dict[str, Any]]:
        source, *then = self.stages()
        for i in range(len(batch["uri"])):
            ref = VideoRef(*(str(batch[k][i]) for k in ("video_id", "uri", "fingerprint")))
            if self.watchdog is None:
                for windows in _source_windows(source, then, ref, self.timer):
                    yield windows.to_columns()
                continue
            reason = self.watchdog.reason(ref.video_id)
            if reason is not None:
                # An earlier attempt hung on this video: report it, do not try again.
                yield _error_windows(source, then, ref, reason).to_columns()
                continue
            # The guard times the making of each window, not the pauses while Ray holds
            # the generator (backpressure is not a hang).
            with self.watchdog.attempt(ref):
                stream = _source_windows(source, then, ref, self.timer)
                while True:
                    with self.watchdog.guard(ref):
                        windows = next(stream, None)
                    if windows is None:
                        break
                    yield windows.to_columns()


_FATAL = {
    "Segmentation fault": "SIGSEGV (segmentation fault)",
    "Bus error": "SIGBUS (bus error)",
    "Aborted": "SIGABRT (abort)",
    "Floating-point exception": "SIGFPE (floating-point exception)",
    "Illegal instruction": "SIGILL (illegal instruction)",
}


def crash_reason(folder: str | Path, video_id: str) -> str | None:
    """How the workers that died on this video died (from `Watchdog.attempt`'s records),
    or None when none did."""
    records = sorted(Path(folder).glob(f"{video_id}.crash.*"))
    if not records:
        return None
    causes = []
    for record in records:
        text = record.read_text()
        cause = next((name for key, name in _FATAL.items() if key in text), None)
        causes.append(cause or "a kill it could not report (SIGKILL, e.g. out of memory)")
    times = "" if len(causes) == 1 else f" ({len(causes)} attempts)"
    return f"its worker died of {' then '.join(dict.fromkeys(causes))} while decoding it{times}"


def _source_windows(
    source: Any, then: list[Stage], ref: VideoRef, timer: StageTimer | None = None
) -> Iterator[Windows]:
    """The source's windows of one video through the window stages that share its task;
    a stage that fails on this video's data ends the video with an error row naming it,
    and the task goes on with the next video."""
    stream = source(ref)
    while True:
        with timed(timer, source.name):
            windows = next(stream, None)
        if windows is None:
            return
        try:
            for stage in then:
                with timed(timer, stage.name):
                    windows = stage(windows)
        except Exception as exc:
            stream.close()
            yield _error_windows(source, then, ref, f"{stage.name}: {one_line(exc)}")
            return
        yield windows


def _error_windows(source: Any, then: list[Stage], ref: VideoRef, reason: str) -> Windows:
    """The source's error row for a video, through the window stages that share its task
    (so it has the same columns as every other row)."""
    error = source.error_row(ref, reason)
    for later in then:
        error = later(error)
    return error


class _WindowsCall(_Call):
    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        windows = Windows.from_columns(batch)
        for stage in self.stages():
            with timed(self.timer, stage.name, len(windows)):
                windows = stage(windows)
        return windows.to_columns()


class _VideoCall(_Call):
    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        record = unpack(row["record"])
        for stage in self.stages():
            if not record.ok:
                break
            try:
                with timed(self.timer, stage.name):
                    record = stage(record)
            except Exception as exc:  # a bad video must never stop the others
                record.errors[stage.name] = one_line(exc)
        return video_row(record)


_CALLS = {"source": _SourceCall, "windows": _WindowsCall, "video": _VideoCall}


def apply(
    ds: Dataset | in_process.Dataset,
    stages: Sequence[Bound],
    res: StageResources,
    watchdog: Watchdog | None = None,
    timer: StageTimer | None = None,
    light: bool = False,
) -> Dataset | in_process.Dataset:
    """`ds` with `stages` applied in turn, in one Ray Data call run as `res` says
    (`watchdog`: a hard time limit per video, for a source stage in a task pool;
    `timer`: where each stage call's time goes, when the run is timed); or, on an
    in-process dataset, the same call in this process (a source in a child process, a
    task pool's stages in one per core unless `light`: work so small that a child would
    add only its start-up and memory; an actor pool of several on as many threads)."""
    kinds = [b.cls.kind for b in stages]
    head = kinds[0]
    if any(k != ("windows" if head == "source" else head) for k in kinds[1:]):
        raise ValueError(f"cannot run {kinds} in one call: a source or one kind of stage first")
    call = _CALLS[head]
    local = isinstance(ds, in_process.Dataset)
    if res.pool == "actors":
        udf: Any = call
        args: dict[str, Any] = {"fn_constructor_args": (list(stages), True, timer)}
        if not local:
            from ray.data import ActorPoolStrategy  # not imported by in-process runs

            args["compute"] = ActorPoolStrategy(min_size=res.min_size, max_size=res.max_size)
    else:
        extra = {"watchdog": watchdog} if watchdog is not None else {}
        udf = call(stages, timer=timer, **extra)
        args = {"max_calls": res.max_calls or None, "max_retries": res.max_retries}
    args.update(num_cpus=res.num_cpus)
    if res.num_gpus:
        args.update(num_gpus=res.num_gpus)
    if local and head == "source":
        args.update(processes=1)  # a decoder that hangs or crashes must not take the run
    elif local and res.pool == "tasks" and not light:
        args.update(processes=os.cpu_count() or 1)  # one video per core, as Ray's tasks
    elif local and res.pool == "actors" and res.max_size > 1:
        # A pool of several actors: as many instances on threads here, at most one a core.
        args.update(threads=min(res.max_size, os.cpu_count() or 1))
    if head == "video":
        return ds.map(udf, **args)
    # A source call takes one video (its windows stream out); window stages take batches.
    return ds.map_batches(udf, batch_size=1 if head == "source" else res.batch_size, **args)


def video_row(record: VideoRecord) -> dict[str, Any]:
    """A pass-2 row: the id in the clear (for sorting and debugging), the record pickled."""
    return {"video_id": record.video_id, "record": pack(record)}


def pack(record: VideoRecord) -> bytes:
    return pickle.dumps(record, protocol=5)


def unpack(blob: bytes) -> VideoRecord:
    return pickle.loads(blob)
