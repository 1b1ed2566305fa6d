"""One run: list inputs, skip what is done, encode, summarize, commit, report."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.adapters import crash_reason
from pipeline.adapters import video_row as pass2_row
from pipeline.config import RunConfig, VidgistConfig, to_dict
from pipeline.encode import encode_plan, watchdog_folder
from pipeline.features import feature_dims
from pipeline.outputs import REPORT_COLUMNS, report_row, video_row
from pipeline.progress import Progress, for_logs
from pipeline.schemas import VIDEOS
from pipeline.sources import list_inputs, make_sources, split_done
from pipeline.store import Store
from pipeline.summarize import summarize_plan
from pipeline.timings import StageTimer, format_totals
from pipeline.versions import (
    check_fusion_matches_encoder,
    code_version,
    encoder_version,
    features_version,
    model_version,
)
from stages import registry
from stages.records import PROBE_COLUMNS, Probe, VideoRecord, VideoRef, effective_duration


@dataclass
class RunResult:
    run_ids: list[str]  # one per committed batch, in order
    out: str
    report: pd.DataFrame  # one row per processed video
    n_skipped: int
    wall_s: float
    model_version: str

    @property
    def n_ok(self) -> int:
        return int((self.report["status"] == "ok").sum()) if len(self.report) else 0

    @property
    def n_error(self) -> int:
        return int((self.report["status"] == "error").sum()) if len(self.report) else 0


class SystemicFault(RuntimeError):
    """Most of a batch failed the same way: the fault is the run's, not the videos'."""


class Interrupted(BaseException):
    """SIGTERM or SIGINT reached the driver; `signum` says which."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def new_run_id(now: datetime) -> str:
    # Sortable by time; the random tail keeps two runs started in one second apart.
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


@dataclass
class _Seen:
    """What pass 1's receipts told the driver about one video."""

    windows: dict[int, int] = field(default_factory=dict)  # window index -> sampled frames
    last: int | None = None  # index of the window marked last
    files: set[str] = field(default_factory=set)
    probe: dict = field(default_factory=dict)
    error: str = ""


def _collect_pass1(
    sources: list[VideoRef], batches, fps: float, crashes: str | None = None
) -> dict[str, VideoRecord]:
    """A pass-2 record per video from pass 1's receipts (errors for lost windows too;
    `crashes`: the folder where dead workers left how they died)."""
    seen = {s.video_id: _Seen() for s in sources}
    for b in batches:
        for i, vid in enumerate(b["video_id"]):
            v = seen[vid]
            if b["error"][i]:
                v.error = v.error or str(b["error"][i])
            else:
                # Keyed by window: a window delivered twice (a retried task) counts once.
                v.windows[int(b["window_index"][i])] = int(b["n_frames"][i])
                if b["is_last"][i]:
                    v.last = int(b["window_index"][i])
                if b["file"][i]:
                    v.files.add(str(b["file"][i]))
            for k in PROBE_COLUMNS:
                if not v.probe.get(k) and b[k][i]:
                    v.probe[k] = b[k][i].item() if hasattr(b[k][i], "item") else b[k][i]
    return {s.video_id: _record(s, seen[s.video_id], fps, crashes) for s in sources}


def _record(source: VideoRef, v: _Seen, fps: float, crashes: str | None = None) -> VideoRecord:
    n = sum(v.windows.values())
    error = v.error
    if not error and not v.windows:
        died = crash_reason(crashes, source.video_id) if crashes else None
        error = (
            f"no output: {died}"
            if died
            else "no output: its decode task failed repeatedly (worker crash?)"
        )
    elif not error and (v.last is None or set(v.windows) != set(range(v.last + 1))):
        error = "incomplete: windows were lost to a failed task"
    probe = Probe(**v.probe)
    if n:
        probe.duration_s = effective_duration(probe.duration_s, n, fps)
    return VideoRecord(
        ref=source,
        probe=probe,
        n_sampled=n,
        feature_files=sorted(v.files),
        errors={"decode": error} if error else {},
    )


def run_pipeline(
    cfg: VidgistConfig,
    inputs: str,
    out: str,
    log: Callable[[str], None] = print,
    encode_only: bool = False,
) -> RunResult:
    """Process `inputs` into `out`, committing batch by batch; `encode_only` stops after
    the features.

    OUT is checked before anything is created, and OUT/.lock is held throughout, so two
    runs never share (or clean up) one output folder.
    """
    store = Store(out)
    store.check_usable()
    with store.lock():
        return _run(cfg, inputs, store, log, encode_only)


def batches(todo: list[VideoRef], cfg: RunConfig) -> Iterator[list[VideoRef]]:
    """Commit batches of `todo` in order: at most `batch_videos` videos and (when
    `batch_minutes` is set) about `batch_minutes` minutes of video, by container duration,
    probed only as each batch is formed."""
    batch: list[VideoRef] = []
    minutes = 0.0
    for ref in todo:
        batch.append(ref)
        if cfg.batch_minutes:
            minutes += probe_minutes(ref.uri)
        if (cfg.batch_videos and len(batch) >= cfg.batch_videos) or (
            cfg.batch_minutes and minutes >= cfg.batch_minutes
        ):
            yield batch
            batch, minutes = [], 0.0
    if batch:
        yield batch


def probe_minutes(uri: str) -> float:
    """A video's stated duration in minutes (0 for a file that cannot be probed: its
    failure is reported when the batch decodes it)."""
    from stages.decode import probe

    try:
        return probe(uri).duration_s / 60.0
    except Exception:
        return 0.0


def _run(
    cfg: VidgistConfig, inputs: str, store: Store, log: Callable[[str], None], encode_only: bool
) -> RunResult:
    t0 = time.monotonic()
    for note in store.recover():
        log(note)
    store.check_committed()
    # Versions hash the weights files: once per run, not per batch.
    _, visual_trained = encoder_version(cfg)
    mversion = model_version(cfg)
    versions = _Versions(mversion, (features_version(cfg), visual_trained))
    if not encode_only:
        check_fusion_matches_encoder(cfg)
    if not visual_trained:
        log("note: visual.weights=none: the CNN is untrained and its labels are not used")

    sources = make_sources(list_inputs(inputs), cfg.run.content_hash)
    fresh = cfg.run.force or encode_only
    done, failed = (set(), set()) if fresh else store.video_states(mversion)
    todo, skipped = split_done(sources, done)
    # Videos never tried go before ones that failed before: broken files that sort first
    # must not take every slot of run.limit, run after run.
    todo.sort(key=lambda s: (s.video_id, s.fingerprint) in failed)
    if cfg.run.limit and len(todo) > cfg.run.limit:
        log(f"{len(todo)} videos to do; this run takes the first {cfg.run.limit} (run.limit)")
        todo = todo[: cfg.run.limit]
    log(f"{len(sources)} inputs, {len(todo)} to process, {len(skipped)} already done")

    reports, run_ids = [], []
    progress = Progress(len(todo), log, cfg.run.progress_s if for_logs() else 0.0)
    if todo:
        data = _executor(cfg, len(todo), log)
        n_batches = -(-len(todo) // cfg.run.batch_videos) if cfg.run.batch_videos else None
        with _signals_raise():
            for k, batch in enumerate(batches(todo, cfg.run)):
                run_id = new_run_id(datetime.now(timezone.utc))
                of = f"/{n_batches}" if n_batches and not cfg.run.batch_minutes else ""
                log(f"batch {k + 1}{of}: {len(batch)} videos, run {run_id}")
                started = datetime.now(timezone.utc)
                try:
                    report, keep = _batch(
                        cfg, data, store, run_id, versions, batch, encode_only, log, progress
                    )
                    _check_systemic(report, cfg.run.max_same_error)
                except BaseException:
                    # Nothing of a batch that did not finish is published.
                    store.discard(run_id)
                    raise
                skipped_here = len(skipped) if k == 0 else 0
                row = _run_row(cfg, run_id, started, report, mversion, encode_only, skipped_here)
                store.commit(run_id, row, keep)
                reports.append(report)
                run_ids.append(run_id)
                log(f"batch {k + 1}{of} committed: {_counts(report)}")
    if not run_ids and not encode_only:
        # Nothing to do still leaves a record that the run happened.
        now = datetime.now(timezone.utc)
        run_id = new_run_id(now)
        empty = pd.DataFrame(columns=list(REPORT_COLUMNS))
        row = _run_row(cfg, run_id, now, empty, mversion, encode_only, len(skipped))
        store.commit(run_id, row, set())
        run_ids.append(run_id)
    report = (
        pd.concat(reports, ignore_index=True)
        if reports
        else pd.DataFrame(columns=list(REPORT_COLUMNS))
    )
    report = report.sort_values("uri", kind="stable").reset_index(drop=True)
    return RunResult(run_ids, store.root, report, len(skipped), time.monotonic() - t0, mversion)


def _executor(cfg: VidgistConfig, n_todo: int, log: Callable[[str], None]) -> ModuleType:
    """What runs the passes (`run.executor`): `ray.data` on a started or joined Ray, or
    `pipeline.in_process`; both give the plans the same few Dataset calls."""
    choice, why = cfg.run.executor, "run.executor=in_process"
    if choice == "auto":
        address = cfg.ray.address or os.environ.get("RAY_ADDRESS")
        small = n_todo <= cfg.run.in_process_max
        choice = "in_process" if small and not address else "ray"
        why = f"{n_todo} to do, run.in_process_max={cfg.run.in_process_max}"
    if choice == "in_process":
        log(f"running in this process, without Ray ({why})")
        from pipeline import in_process

        return in_process
    import ray.data

    from pipeline.ray_runtime import check_fits, ensure_ray

    ensure_ray(cfg.ray)
    scorer = registry.pass1_part(registry.resolve("shots.detector", cfg.shots.detector))
    check_fits(cfg.resources, scorer is not None and cfg.resources.shots.pool == "actors")
    return ray.data


def _items(data: ModuleType, rows: list[dict[str, Any]]) -> Any:
    """A dataset of `rows`, one block per row, so that tasks spread over the cluster."""
    return data.from_items(rows, override_num_blocks=max(1, len(rows)))


@dataclass(frozen=True)
class _Versions:
    model: str
    features: tuple[str, bool]  # (features version, is the visual encoder trained?)


def _counts(report: pd.DataFrame) -> str:
    ok = int((report["status"] == "ok").sum())
    return f"{ok} ok, {len(report) - ok} error"


def _batch(
    cfg: VidgistConfig,
    data: ModuleType,
    store: Store,
    run_id: str,
    versions: _Versions,
    batch: list[VideoRef],
    encode_only: bool,
    log: Callable[[str], None],
    progress: Progress,
) -> tuple[pd.DataFrame, set[str]]:
    """Both passes over one batch into the run's staging: its report, and the staged
    files to publish."""
    keep: set[str] = set()  # the staged files this batch publishes
    items = [{"video_id": s.video_id, "uri": s.uri, "fingerprint": s.fingerprint} for s in batch]
    with _stage_times(cfg.run.stage_times, "pass 1", log) as timer:
        log("pass 1/2: decode + encode")
        ds1 = encode_plan(_items(data, items), cfg, store.root, run_id, *versions.features, timer)
        receipts = progress.windows(ds1.iter_batches(**_BATCHES), cfg.decode.fps)
        crashes = watchdog_folder(store.root, run_id)
        try:
            records = list(_collect_pass1(batch, receipts, cfg.decode.fps, crashes).values())
        finally:
            if store.folder.remote:  # outside OUT: the commit does not clear it
                shutil.rmtree(crashes, ignore_errors=True)
    keep |= {f for r in records for f in r.feature_files}
    if encode_only:
        report = _write_video_rows(store, run_id, records, "features", keep)
        ok = int((report["status"] == "ok").sum())
        progress.finished(ok, len(report) - ok)
        return report, keep
    with _stage_times(cfg.run.stage_times, "pass 2", log) as timer:
        log("pass 2/2: fuse + shots + select + tags + keyframes + OCR + speech + text + skim")
        report = _summarize(
            cfg, data, store, run_id, versions.model, records, keep, log, progress, timer
        )
    return report, keep


@contextlib.contextmanager
def _stage_times(on: bool, title: str, log: Callable[[str], None]) -> Iterator[StageTimer | None]:
    """A timer for one pass when `run.stage_times` is on; its table is logged after the
    pass (not when the pass fails: the error matters then)."""
    if not on:
        yield None
        return
    folder = tempfile.mkdtemp(prefix="vidgist-stage-times-")
    try:
        timer = StageTimer(folder, time.time())
        yield timer
        log(format_totals(title, timer.totals(), time.time() - timer.t0))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _check_systemic(report: pd.DataFrame, max_same: float, min_videos: int = 4) -> None:
    """Stop the run when most of a batch failed with one and the same error."""
    failed = report[report["status"] == "error"]
    if len(report) < min_videos or failed.empty:
        return
    # The same fault names each video's own file: compare the errors without it.
    errors = [
        str(e).replace(str(u), "<video>").replace(str(u).rsplit("/", 1)[-1], "<video>")
        for e, u in zip(failed["error"], failed["uri"], strict=True)
    ]
    error, count = Counter(errors).most_common(1)[0]
    if count >= max_same * len(report):
        # One of the files by name: a path that is not where the user thought shows here.
        first = failed["uri"].iloc[errors.index(error)]
        raise SystemicFault(
            f"{count} of {len(report)} videos of a batch failed the same way, so the fault "
            f"is most likely the run's (a setting, the output folder, the install), not the "
            f"videos': {error} (the first: {first}). Nothing of this batch was committed."
        )


def _run_row(
    cfg: VidgistConfig,
    run_id: str,
    started: datetime,
    report: pd.DataFrame,
    mversion: str,
    encode_only: bool,
    n_skipped: int = 0,
) -> dict:
    n_ok = int((report["status"] == "ok").sum())
    now = datetime.now(timezone.utc)
    return {
        "run_id": run_id,
        "started_at": started,
        "finished_at": now,
        "status": "committed (features only)" if encode_only else "committed",
        "config": _config_json(cfg),
        "n_videos": len(report),
        "n_ok": n_ok,
        "n_error": len(report) - n_ok,
        "n_skipped": n_skipped,
        "code_version": code_version(),
        "model_version": mversion,
    }


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """Turn SIGTERM (what a scheduler sends at its time limit) and SIGINT into
    `Interrupted` in the driver, so the batch in flight is discarded cleanly."""

    def handler(signum, _frame):
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


_BATCHES = {"batch_size": None, "batch_format": "numpy"}


def _summarize(
    cfg: VidgistConfig,
    data: ModuleType,
    store: Store,
    run_id: str,
    mversion: str,
    records: list[VideoRecord],
    keep: set[str],
    log: Callable[[str], None],
    progress: Progress,
    timer: StageTimer | None = None,
) -> pd.DataFrame:
    """Pass 2; any video whose result never came back becomes an error row."""
    files = sorted({f for r in records if r.ok for f in r.feature_files})
    visual_dim, audio_dim = feature_dims(files) if files else (0, 0)
    shared = replace(cfg.decode.shared(), visual_dim=visual_dim, audio_dim=audio_dim)
    ds = _items(data, [pass2_row(r) for r in records])
    ds2 = summarize_plan(ds, cfg, store.root, run_id, mversion, shared, timer)
    batches = []
    for b in ds2.iter_batches(**_BATCHES):
        batches.append(pd.DataFrame(b))
        ok = int((batches[-1]["status"] == "ok").sum())
        progress.finished(ok, len(batches[-1]) - ok)
    report = (
        pd.concat(batches, ignore_index=True)
        if batches
        else pd.DataFrame(columns=list(REPORT_COLUMNS))
    )
    for listed in report.pop("files") if "files" in report else []:
        keep.update(f for f in str(listed).split("\n") if f)
    returned = set(report["video_id"])
    lost = [r for r in records if r.video_id not in returned]
    for r in lost:
        r.errors["summarize"] = LOST_IN_PASS2
    if lost:
        progress.finished(0, len(lost))
        log(f"{len(lost)} videos lost in pass 2 are reported as errors")
        report = pd.concat(
            [report, _write_video_rows(store, run_id, lost, "lost", keep)], ignore_index=True
        )
    return report


LOST_IN_PASS2 = "no output: its summarize task failed repeatedly (worker crash?)"


def _write_video_rows(
    store: Store, run_id: str, records: list[VideoRecord], tag: str, keep: set[str]
) -> pd.DataFrame:
    """Stage `videos` rows for records written by the driver; returns their report rows."""
    now = datetime.now(timezone.utc)
    rows = [video_row(r, run_id, now) for r in records]
    path = store.stage(
        run_id, "videos", f"{run_id}-{tag}", pa.Table.from_pylist(rows, schema=VIDEOS)
    )
    keep.add(str(path))
    return pd.DataFrame([report_row(r) for r in records], columns=list(REPORT_COLUMNS))


def _config_json(cfg: VidgistConfig) -> str:
    return json.dumps(to_dict(cfg), sort_keys=True, default=str)


def format_report(result: RunResult, width: int = 60) -> str:
    """A short per-video table for the end of a run."""
    if not len(result.report):
        if result.n_skipped:
            return f"nothing to do: all {result.n_skipped} inputs are done with this model version"
        return "no videos found in the input"
    lines = [f"{'status':<6} {'duration':>8} {'segs':>4} {'keyfr':>5} {'summary':>7}  video"]
    for r in result.report.itertuples():
        name = str(r.uri).rsplit("/", 1)[-1]
        if r.status == "ok":
            lines.append(
                f"{'ok':<6} {r.duration_s:>7.1f}s {int(r.n_segments):>4} {int(r.n_keyframes):>5} "
                f"{r.summary_s:>6.1f}s  {name}"
            )
        else:
            lines.append(
                f"{'ERROR':<6} {'':>8} {'':>4} {'':>5} {'':>7}  {name}: {str(r.error)[:width]}"
            )
    total = float(np.nansum(result.report["duration_s"].astype(float)))
    lines.append(
        f"{result.n_ok} ok, {result.n_error} error, {result.n_skipped} skipped; "
        f"{total:.0f} s of video in {result.wall_s:.0f} s wall"
    )
    return "\n".join(lines)
