"""Pass-2 sink: turns finished per-video states into rows of the output tables."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pyarrow as pa

from pipeline.adapters import unpack
from pipeline.schemas import TABLES
from pipeline.store import Store


def video_row(state: dict, run_id: str, now: datetime) -> dict:
    return {
        "video_id": state["video_id"],
        "uri": state["uri"],
        "fingerprint": state.get("fingerprint", ""),
        "run_id": run_id,
        "status": "error" if state.get("error") else "ok",
        "error": state.get("error") or None,
        "duration_s": state.get("duration_s"),
        "fps": state.get("fps"),
        "width": state.get("width"),
        "height": state.get("height"),
        "video_codec": state.get("video_codec") or None,
        "has_audio": state.get("has_audio"),
        "n_sampled": state.get("n_sampled", 0),
        "processed_at": now,
    }


def result_rows(state: dict, run_id: str, model_version: str) -> dict[str, list[dict]]:
    """Rows of segments, scores, keyframes and summaries for one finished video."""
    vid = state["video_id"]
    segments = [
        {
            "video_id": vid,
            "run_id": run_id,
            "seg_index": i,
            "start_s": float(state["seg_start_s"][i]),
            "end_s": float(state["seg_end_s"][i]),
            "score": float(state["seg_score"][i]),
            "selected": bool(state["seg_selected"][i]),
        }
        for i in range(len(state["seg_start_s"]))
    ]
    scores = [
        {
            "video_id": vid,
            "run_id": run_id,
            "time_s": np.asarray(state["time_s"], dtype=np.float64),
            "score": np.asarray(state["importance"], dtype=np.float32),
        }
    ]
    keyframes = [
        {
            "video_id": vid,
            "run_id": run_id,
            "rank": rank,
            "seg_index": int(state["keyframe_segments"][rank]),
            "time_s": float(state["keyframe_time_s"][rank]),
            "score": float(state["importance"][state["keyframe_steps"][rank]]),
            "width": int(state["keyframe_width"][rank]),
            "height": int(state["keyframe_height"][rank]),
            "jpeg": state["keyframe_jpeg"][rank],
        }
        for rank in range(len(state["keyframe_jpeg"]))
    ]
    summaries = [
        {
            "video_id": vid,
            "run_id": run_id,
            "text": state["text"],
            "captions": state["captions"],
            "summary_duration_s": float(state["summary_duration_s"]),
            "model_version": model_version,
        }
    ]
    return {"segments": segments, "scores": scores, "keyframes": keyframes, "summaries": summaries}


class OutputWriter:
    """Writes one staged file per table for a batch of videos; returns a report row each."""

    def __init__(self, out: str, run_id: str, model_version: str):
        self.store = Store(out)
        self.run_id = run_id
        self.model_version = model_version

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        states = sorted((unpack(b) for b in batch["state"]), key=lambda s: s["video_id"])
        now = datetime.now(timezone.utc)
        tables: dict[str, list[dict]] = {
            t: [] for t in ("videos", "segments", "scores", "keyframes", "summaries")
        }
        for s in states:
            tables["videos"].append(video_row(s, self.run_id, now))
            if not s.get("error"):
                for name, rows in result_rows(s, self.run_id, self.model_version).items():
                    tables[name].extend(rows)
        name = f"{self.run_id}-{states[0]['video_id']}"
        written = []
        # videos last: a task that dies half-way never leaves an 'ok' row without results.
        for table in ("segments", "scores", "keyframes", "summaries", "videos"):
            if tables[table]:
                rows = pa.Table.from_pylist(tables[table], schema=TABLES[table])
                written.append(str(self.store.stage(self.run_id, table, name, rows)))
        files = "\n".join(written)
        return {
            "video_id": np.array([s["video_id"] for s in states], dtype=object),
            "uri": np.array([s["uri"] for s in states], dtype=object),
            "status": np.array(["error" if s.get("error") else "ok" for s in states], dtype=object),
            "error": np.array([s.get("error") or "" for s in states], dtype=object),
            "duration_s": np.array([s.get("duration_s") or 0.0 for s in states], dtype=np.float64),
            "n_segments": np.array([len(s.get("seg_start_s", [])) for s in states], dtype=np.int32),
            "n_keyframes": np.array(
                [len(s.get("keyframe_jpeg", [])) for s in states], dtype=np.int32
            ),
            "summary_s": np.array(
                [s.get("summary_duration_s", 0.0) for s in states], dtype=np.float64
            ),
            # Every row of the batch names the batch's files; the driver publishes only these.
            "files": np.array([files] * len(states), dtype=object),
        }
