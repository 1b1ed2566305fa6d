"""The features table: pass 1 writes it window by window, pass 2 reads one video back.

It is also a cache: rows carry the encoder version and the source fingerprint, so a new
fusion or text model can re-run pass 2 without decoding again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.schemas import FEATURES
from pipeline.store import Store

# Per-frame columns: (name in a pass-1 batch, name in the table, trailing shape is 2-D?)
_PER_FRAME = [
    ("visual", "visual", True),
    ("audio_feat", "audio", True),
    ("audio_mask", "audio_mask", False),
    ("label_ids", "label_ids", True),
    ("label_probs", "label_probs", True),
    ("colour_hist", "colour_hist", True),
    ("motion", "motion", False),
    ("loudness_db", "loudness_db", False),
    ("pitch_hz", "pitch_hz", False),
    ("flatness", "flatness", False),
]


def _lists(rows: list[np.ndarray], value_type: pa.DataType) -> pa.Array:
    """Per-row 1-D arrays -> list<value>."""
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int32)
    flat = np.concatenate(rows) if rows else np.zeros(0)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, type=value_type))


def _lists_of_lists(rows: list[np.ndarray], value_type: pa.DataType) -> pa.Array:
    """Per-row [n_i, d] arrays -> list<list<value>>."""
    d = rows[0].shape[1] if rows else 0
    flat = np.concatenate([r.reshape(-1) for r in rows]) if rows else np.zeros(0)
    inner_offsets = np.arange(0, len(flat) + 1, max(d, 1), dtype=np.int32)
    inner = pa.ListArray.from_arrays(pa.array(inner_offsets), pa.array(flat, type=value_type))
    outer_offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(outer_offsets), inner)


class FeatureWriter:
    """Pass-1 sink: writes a batch's good windows to the run's staging, returns what it saw.

    One row comes back per input window (error rows included) so the driver can tell,
    per video, whether every window arrived and where its features are.
    """

    def __init__(self, out: str, run_id: str, encoder_version: str, visual_trained: bool):
        self.store = Store(out)
        self.run_id = run_id
        self.encoder_version = encoder_version
        self.visual_trained = visual_trained

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n_rows = len(batch["video_id"])
        good = [i for i in range(n_rows) if not batch["error"][i] and batch["n_frames"][i] > 0]
        good.sort(key=lambda i: (batch["video_id"][i], batch["window_index"][i]))
        path, written = "", set(good)
        if good:
            first = good[0]
            name = (
                f"{self.run_id}-{batch['video_id'][first]}-{int(batch['window_index'][first]):05d}"
            )
            path = str(self.store.stage(self.run_id, "features", name, self._table(batch, good)))
        return {
            "video_id": batch["video_id"],
            "uri": batch["uri"],
            "error": batch["error"],
            "window_index": batch["window_index"],
            "is_last": batch["is_last"],
            "n_frames": batch["n_frames"],
            "file": np.array([path if i in written else "" for i in range(n_rows)], dtype=object),
            **{
                k: batch[k]
                for k in ("duration_s", "fps", "width", "height", "video_codec", "has_audio")
            },
        }

    def _table(self, batch: dict[str, np.ndarray], rows: list[int]) -> pa.Table:
        n = [int(batch["n_frames"][i]) for i in rows]
        cols: dict[str, pa.Array] = {
            "video_id": pa.array([str(batch["video_id"][i]) for i in rows]),
            "fingerprint": pa.array([str(batch["fingerprint"][i]) for i in rows]),
            "run_id": pa.array([self.run_id] * len(rows)),
            "encoder_version": pa.array([self.encoder_version] * len(rows)),
            "visual_trained": pa.array([self.visual_trained] * len(rows)),
            "window_index": pa.array([int(batch["window_index"][i]) for i in rows], pa.int32()),
            "time_s": _lists(
                [batch["time_s"][i][:k] for i, k in zip(rows, n, strict=True)], pa.float64()
            ),
        }
        for src, dst, nested in _PER_FRAME:
            field_type = FEATURES.field(dst).type
            values = [np.asarray(batch[src][i][:k]) for i, k in zip(rows, n, strict=True)]
            if nested:
                cols[dst] = _lists_of_lists(values, field_type.value_type.value_type)
            else:
                cols[dst] = _lists(values, field_type.value_type)
        return pa.table(cols, schema=FEATURES)


def _flat(column: pa.ChunkedArray, dtype: np.dtype, depth: int) -> np.ndarray:
    arr = column.combine_chunks()
    for _ in range(depth):
        arr = pc.list_flatten(arr)
    return arr.to_numpy(zero_copy_only=False).astype(dtype, copy=False)


def arrays_from_table(table: pa.Table) -> dict:
    """One video's feature rows -> per-sampled-frame arrays, in window order."""
    table = table.sort_by("window_index")
    out: dict = {"time_s": _flat(table["time_s"], np.float64, 1)}
    t = len(out["time_s"])
    for src, dst, nested in _PER_FRAME:
        dtype = FEATURES.field(dst).type
        inner = dtype.value_type.value_type if nested else dtype.value_type
        values = _flat(table[dst], inner.to_pandas_dtype(), 2 if nested else 1)
        out[src] = values.reshape(t, -1) if nested else values
    out["audio_mask"] = out["audio_mask"].astype(bool)
    out["visual_trained"] = bool(table["visual_trained"][0].as_py()) if len(table) else False
    return out


class FeatureLoader:
    """Pass-2 source: one video's windows from its feature files, as per-frame arrays."""

    def __call__(self, state: dict) -> dict:
        files = sorted(set(state["feature_files"]))
        tables = [pq.read_table(f, filters=[("video_id", "=", state["video_id"])]) for f in files]
        return {**state, **arrays_from_table(pa.concat_tables(tables))}


def feature_dims(files: list[str | Path]) -> tuple[int, int]:
    """(visual, audio) feature widths stored in the given files."""
    table = pq.read_table(files[0], columns=["visual", "audio"]).slice(0, 1)
    visual = table["visual"][0].as_py()[0]
    audio = table["audio"][0].as_py()[0]
    return len(visual), len(audio)
