"""Pass-2 sink: turns finished `VideoRecord`s into rows of the output tables."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa

from pipeline.adapters import unpack
from pipeline.schemas import TABLES
from pipeline.store import Store
from stages.records import PROBE_COLUMNS, VideoRecord

RESULT_TABLES = ("segments", "scores", "keyframes", "summaries", "transcripts")
# What the driver prints per video at the end of a run.
REPORT_COLUMNS = (
    "video_id",
    "uri",
    "status",
    "error",
    "duration_s",
    "n_segments",
    "n_keyframes",
    "summary_s",
)


def _or_none(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def video_row(record: VideoRecord, run_id: str, now: datetime) -> dict:
    probe = asdict(record.probe)
    return {
        "video_id": record.video_id,
        "uri": record.ref.uri,
        "fingerprint": record.ref.fingerprint,
        "run_id": run_id,
        "status": "ok" if record.ok else "error",
        "error": record.error or None,
        **{k: probe[k] for k in PROBE_COLUMNS},
        "video_codec": record.probe.video_codec or None,
        "n_sampled": record.n_sampled,
        "n_shots": record.shots.n_shots if record.ok and record.shots is not None else None,
        "processed_at": now,
    }


def report_row(record: VideoRecord) -> dict:
    sel, kf = record.selection, record.keyframes
    return {
        "video_id": record.video_id,
        "uri": record.ref.uri,
        "status": "ok" if record.ok else "error",
        "error": record.error,
        "duration_s": record.probe.duration_s or 0.0,
        "n_segments": len(sel.segments) if sel is not None else 0,
        "n_keyframes": len(kf) if kf is not None else 0,
        "summary_s": sel.selected_duration_s if sel is not None else 0.0,
    }


def skim_path(run_id: str, video_id: str) -> str:
    """Where a video's skim is published, relative to OUT."""
    return f"skims/{run_id}-{video_id}.mp4"


def result_rows(record: VideoRecord, run_id: str, model_version: str) -> dict[str, list[dict]]:
    """Rows of segments, scores, keyframes and summaries for one finished video."""
    vid = record.video_id
    sel, kf, importance = record.selection, record.keyframes, record.importance
    screen = record.screen_text
    seg = sel.segments
    segments = [
        {
            "video_id": vid,
            "run_id": run_id,
            "seg_index": i,
            "start_s": float(seg.starts[i]),
            "end_s": float(seg.ends[i]),
            "score": float(sel.scores[i]),
            "selected": bool(sel.selected[i]),
            "shot_index": int(seg.shot_index[i]),
            "boundary": seg.kind[i],
            "confidence": _or_none(seg.confidence[i]),
            "summary_start_s": float(sel.excerpt_start[i]) if sel.selected[i] else None,
            "summary_end_s": float(sel.excerpt_end[i]) if sel.selected[i] else None,
        }
        for i in range(len(seg))
    ]
    scores = [
        {
            "video_id": vid,
            "run_id": run_id,
            "time_s": np.asarray(record.features.time_s, dtype=np.float64),
            "score": np.asarray(importance, dtype=np.float32),
        }
    ]
    keyframes = [
        {
            "video_id": vid,
            "run_id": run_id,
            "rank": rank,
            "seg_index": int(kf.segments[rank]),
            "time_s": float(kf.time_s[rank]),
            "score": float(importance[kf.steps[rank]]),
            "width": int(kf.width[rank]),
            "height": int(kf.height[rank]),
            "jpeg": kf.jpeg[rank],
            "ocr_text": screen.keyframe_text[rank] if screen else None,
            "ocr_confidence": _or_none(screen.keyframe_confidence[rank]) if screen else None,
        }
        for rank in range(len(kf))
    ]
    summaries = [
        {
            "video_id": vid,
            "run_id": run_id,
            "text": record.text.summary,
            "captions": [asdict(c) for c in record.text.captions],
            "summary_duration_s": sel.selected_duration_s,
            "model_version": model_version,
            "transcript_excerpt": record.text.transcript_excerpt,
            "tags": list(record.text.tags),
            "skim_path": skim_path(run_id, vid) if record.skim else None,
        }
    ]
    tr = record.transcript
    transcripts = [
        {
            "video_id": vid,
            "run_id": run_id,
            "start_s": float(tr.start_s[i]),
            "end_s": float(tr.end_s[i]),
            "text": tr.text[i],
            "confidence": float(tr.confidence[i]),
            "kind": tr.kind[i],
        }
        for i in range(len(tr) if tr is not None else 0)
    ]
    return {
        "segments": segments,
        "scores": scores,
        "keyframes": keyframes,
        "summaries": summaries,
        "transcripts": transcripts,
    }


class OutputWriter:
    """Writes one staged file per table for a batch of videos; returns a report row each,
    and the files written (every row of the batch names them: the driver publishes only
    files that a finished task reported)."""

    def __init__(self, out: str, run_id: str, model_version: str):
        self.store = Store(out)
        self.run_id = run_id
        self.model_version = model_version

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        records = sorted((unpack(b) for b in batch["record"]), key=lambda r: r.video_id)
        now = datetime.now(timezone.utc)
        tables: dict[str, list[dict]] = {t: [] for t in ("videos", *RESULT_TABLES)}
        for r in records:
            tables["videos"].append(video_row(r, self.run_id, now))
            if r.ok:
                for name, rows in result_rows(r, self.run_id, self.model_version).items():
                    tables[name].extend(rows)
        name = f"{self.run_id}-{records[0].video_id}"
        written = []
        # videos last: a task that dies half-way never leaves an 'ok' row without results.
        for table in (*RESULT_TABLES, "videos"):
            if tables[table]:
                rows = pa.Table.from_pylist(tables[table], schema=TABLES[table])
                written.append(str(self.store.stage(self.run_id, table, name, rows)))
        for r in records:
            if r.ok and r.skim:
                written.append(
                    self.store.stage_file(
                        self.run_id, "skims", f"{self.run_id}-{r.video_id}", r.skim
                    )
                )
        report = [report_row(r) for r in records]
        columns = {k: np.array([row[k] for row in report]) for k in REPORT_COLUMNS}
        columns["files"] = np.array(["\n".join(written)] * len(records), dtype=object)
        return columns
