"""One run: list inputs, skip what is done, encode, summarize, commit, report."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.adapters import pack
from pipeline.config import VidgistConfig, to_dict
from pipeline.encode import encode_plan
from pipeline.features import feature_dims
from pipeline.outputs import video_row
from pipeline.ray_runtime import ensure_ray
from pipeline.schemas import VIDEOS
from pipeline.sources import Source, list_inputs, make_sources, split_done
from pipeline.store import Store
from pipeline.summarize import summarize_plan
from pipeline.versions import (
    check_fusion_matches_encoder,
    code_version,
    encoder_version,
    model_version,
)

PROBE_KEYS = ("duration_s", "fps", "width", "height", "video_codec", "has_audio")


@dataclass
class RunResult:
    run_id: str
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


def new_run_id(now: datetime) -> str:
    # Sortable by time; the random tail keeps two runs started in one second apart.
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def _collect_pass1(sources: list[Source], batches) -> dict[str, dict]:
    """Per video: probe, feature files, sampled-frame count, error (incl. lost windows)."""
    seen: dict[str, dict] = {
        s.video_id: {"windows": {}, "last": None, "files": set(), "n_sampled": 0, "error": ""}
        for s in sources
    }
    for b in batches:
        for i, vid in enumerate(b["video_id"]):
            v = seen[vid]
            if b["error"][i]:
                v["error"] = v["error"] or str(b["error"][i])
            else:
                # Keyed by window: a window delivered twice (a retried task) counts once.
                v["windows"][int(b["window_index"][i])] = int(b["n_frames"][i])
                if b["is_last"][i]:
                    v["last"] = int(b["window_index"][i])
                if b["file"][i]:
                    v["files"].add(str(b["file"][i]))
            for k in PROBE_KEYS:
                if k not in v or (not v[k] and b[k][i]):
                    v[k] = b[k][i].item() if hasattr(b[k][i], "item") else b[k][i]
    for v in seen.values():
        v["n_sampled"] = sum(v["windows"].values())
        if v["error"]:
            continue
        if not v["windows"]:
            v["error"] = "no output: its decode task failed repeatedly (worker crash?)"
        elif v["last"] is None or set(v["windows"]) != set(range(v["last"] + 1)):
            v["error"] = "incomplete: windows were lost to a failed task"
    return seen


def run_pipeline(
    cfg: VidgistConfig,
    inputs: str,
    out: str,
    log: Callable[[str], None] = print,
    encode_only: bool = False,
) -> RunResult:
    """Process `inputs` into `out` and commit; `encode_only` stops after the features.

    Holds OUT/.lock throughout, so two runs never share (or clean up) one output folder.
    """
    store = Store(out)
    with store.lock():
        return _run(cfg, inputs, store, log, encode_only)


def _run(
    cfg: VidgistConfig, inputs: str, store: Store, log: Callable[[str], None], encode_only: bool
) -> RunResult:
    t0 = time.monotonic()
    for note in store.recover():
        log(note)
    started = datetime.now(timezone.utc)
    run_id = new_run_id(started)
    enc_version, visual_trained = encoder_version(cfg)
    mversion = model_version(cfg)
    if not encode_only:
        check_fusion_matches_encoder(cfg)
    if not visual_trained:
        log("note: visual.weights=none: the CNN is untrained and its labels are not used")

    sources = make_sources(list_inputs(inputs), cfg.run.content_hash)
    fresh = cfg.run.force or encode_only
    done = set() if fresh else store.video_status(mversion, "ok")
    failed = set() if fresh else store.video_status(mversion, "error")
    todo, skipped = split_done(sources, done)
    # Videos never tried go before ones that failed before: broken files that sort first
    # must not take every slot of run.limit, run after run.
    todo.sort(key=lambda s: (s.video_id, s.fingerprint) in failed)
    if cfg.run.limit and len(todo) > cfg.run.limit:
        log(f"{len(todo)} videos to do; this run takes the first {cfg.run.limit} (run.limit)")
        todo = todo[: cfg.run.limit]
    log(f"run {run_id}: {len(sources)} inputs, {len(todo)} to process, {len(skipped)} already done")

    report = pd.DataFrame(columns=REPORT_COLUMNS)
    keep: set[str] = set()  # the staged files this run publishes
    if todo:
        ensure_ray(cfg.ray)
        items = [{"video_id": s.video_id, "uri": s.uri, "fingerprint": s.fingerprint} for s in todo]
        log("pass 1/2: decode + encode")
        ds1 = encode_plan(items, cfg, str(store.root), run_id, enc_version, visual_trained)
        per_video = _collect_pass1(todo, ds1.iter_batches(batch_size=None, batch_format="numpy"))
        states = [_state(s, per_video[s.video_id], cfg.decode.fps) for s in todo]
        keep |= {f for v in per_video.values() for f in v["files"]}
        if encode_only:
            report = _write_video_rows(store, run_id, states, "features", keep)
        else:
            log("pass 2/2: fuse + select + keyframes + text")
            report = _summarize(cfg, store, run_id, mversion, states, keep, log)
        report = report.sort_values("uri", kind="stable").reset_index(drop=True)

    n_ok = int((report["status"] == "ok").sum())
    run_row = {
        "run_id": run_id,
        "started_at": started,
        "finished_at": datetime.now(timezone.utc),
        "status": "committed (features only)" if encode_only else "committed",
        "config": _config_json(cfg),
        "n_videos": len(report),
        "n_ok": n_ok,
        "n_error": len(report) - n_ok,
        "n_skipped": len(skipped),
        "code_version": code_version(),
        "model_version": mversion,
    }
    store.commit(run_id, run_row, keep)
    return RunResult(run_id, str(store.root), report, len(skipped), time.monotonic() - t0, mversion)


def _state(source: Source, seen: dict, fps: float) -> dict:
    """A video's pass-2 state from what pass 1 saw of it."""
    state = {
        "video_id": source.video_id,
        "uri": source.uri,
        "fingerprint": source.fingerprint,
        "error": seen["error"],
        "n_sampled": seen["n_sampled"],
        "feature_files": sorted(seen["files"]),
        **{k: seen.get(k) for k in PROBE_KEYS},
    }
    # Some containers state no duration (browser-recorded WebM), or less than they hold:
    # then the decoded length counts (its last sample is at (n - 1) / fps).
    n = seen["n_sampled"]
    if (state.get("duration_s") or 0.0) < (n - 1) / fps:
        state["duration_s"] = n / fps
    return state


def _summarize(cfg, store, run_id, mversion, states, keep, log) -> pd.DataFrame:
    """Pass 2; any video whose result never came back becomes an error row."""
    files = sorted({f for s in states if not s["error"] for f in s["feature_files"]})
    visual_dim, audio_dim = feature_dims(files) if files else (0, 0)
    items = [{"video_id": s["video_id"], "state": pack(s)} for s in states]
    ds2 = summarize_plan(items, cfg, str(store.root), run_id, mversion, visual_dim, audio_dim)
    batches = [pd.DataFrame(b) for b in ds2.iter_batches(batch_size=None, batch_format="numpy")]
    report = (
        pd.concat(batches, ignore_index=True) if batches else pd.DataFrame(columns=REPORT_COLUMNS)
    )
    for listed in report.pop("files") if "files" in report else []:
        keep.update(f for f in str(listed).split("\n") if f)
    returned = set(report["video_id"])
    lost = [dict(s, error=LOST_IN_PASS2) for s in states if s["video_id"] not in returned]
    if lost:
        log(f"{len(lost)} videos lost in pass 2 are reported as errors")
        report = pd.concat(
            [report, _write_video_rows(store, run_id, lost, "lost", keep)], ignore_index=True
        )
    return report


LOST_IN_PASS2 = "no output: its summarize task failed repeatedly (worker crash?)"
REPORT_COLUMNS = [
    "video_id",
    "uri",
    "status",
    "error",
    "duration_s",
    "n_segments",
    "n_keyframes",
    "summary_s",
]


def _write_video_rows(
    store: Store, run_id: str, states: list[dict], tag: str, keep: set[str]
) -> pd.DataFrame:
    """Stage `videos` rows for states written by the driver; returns their report rows."""
    rows = [video_row(s, run_id, datetime.now(timezone.utc)) for s in states]
    path = store.stage(
        run_id, "videos", f"{run_id}-{tag}", pa.Table.from_pylist(rows, schema=VIDEOS)
    )
    keep.add(str(path))
    return pd.DataFrame(
        {
            "video_id": [s["video_id"] for s in states],
            "uri": [s["uri"] for s in states],
            "status": ["error" if s["error"] else "ok" for s in states],
            "error": [s["error"] for s in states],
            "duration_s": [s.get("duration_s") or 0.0 for s in states],
            "n_segments": 0,
            "n_keyframes": 0,
            "summary_s": 0.0,
        }
    )


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
