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
from stages.base import VideoStage
from stages.files import filesystem
from stages.records import PER_FRAME, PROBE_COLUMNS, Features, VideoRecord, Windows


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


def _nested(column: str) -> bool:
    """Is the table column a list of per-frame vectors (not of per-frame scalars)?"""
    return pa.types.is_list(FEATURES.field(column).type.value_type)


# What a pass-1 sink returns per window: enough for the driver to tell, per video, whether
# every window arrived, where its features are, and what the probe said.
RECEIPT_COLUMNS = (
    "video_id",
    "uri",
    "error",
    "window_index",
    "is_last",
    "n_frames",
    *PROBE_COLUMNS,
)


class FeatureWriter:
    """Pass-1 sink: writes a batch's good windows to the run's staging, returns receipts
    (one per input window, error rows included) with the file each went to."""

    def __init__(self, out: str, run_id: str, encoder_version: str, visual_trained: bool):
        self.store = Store(out)
        self.run_id = run_id
        self.encoder_version = encoder_version
        self.visual_trained = visual_trained

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        w = Windows.from_columns(batch)
        n_rows = len(w)
        good = [i for i in range(n_rows) if not w.error[i] and w.n_frames[i] > 0]
        good.sort(key=lambda i: (w.video_id[i], w.window_index[i]))
        path, written = "", set(good)
        if good:
            first = good[0]
            name = f"{self.run_id}-{w.video_id[first]}-{int(w.window_index[first]):05d}"
            path = str(self.store.stage(self.run_id, "features", name, self._table(w, good)))
        receipts = {k: getattr(w, k) for k in RECEIPT_COLUMNS}
        receipts["file"] = np.array([path if i in written else "" for i in range(n_rows)], object)
        return receipts

    def _table(self, w: Windows, rows: list[int]) -> pa.Table:
        n = [int(w.n_frames[i]) for i in rows]
        cols: dict[str, pa.Array] = {
            "video_id": pa.array([str(w.video_id[i]) for i in rows]),
            "fingerprint": pa.array([str(w.fingerprint[i]) for i in rows]),
            "run_id": pa.array([self.run_id] * len(rows)),
            "encoder_version": pa.array([self.encoder_version] * len(rows)),
            "visual_trained": pa.array([self.visual_trained] * len(rows)),
            "window_index": pa.array([int(w.window_index[i]) for i in rows], pa.int32()),
            "time_s": _lists([w.time_s[i][:k] for i, k in zip(rows, n, strict=True)], pa.float64()),
        }
        if w.shot_signal is not None:  # every decoded frame's time and detector signals
            cols["decoded_time_s"] = _lists([w.decoded_time_s[i] for i in rows], pa.float64())
            signal = [np.asarray(w.shot_signal[i], np.float32) for i in rows]
            width = max((s.shape[1] for s in signal if s.ndim == 2 and len(s)), default=0)
            signal = [s.reshape(len(s), width) for s in signal]
            cols["shot_signal"] = _lists_of_lists(signal, pa.float32())
        else:
            cols["decoded_time_s"] = pa.array([[]] * len(rows), pa.list_(pa.float64()))
            cols["shot_signal"] = pa.array([[]] * len(rows), pa.list_(pa.list_(pa.float32())))
        for name in PER_FRAME:
            field_type = FEATURES.field(name).type
            column = getattr(w, name)
            values = [np.asarray(column[i][:k]) for i, k in zip(rows, n, strict=True)]
            if _nested(name):
                cols[name] = _lists_of_lists(values, field_type.value_type.value_type)
            else:
                cols[name] = _lists(values, field_type.value_type)
        return pa.table(cols, schema=FEATURES)


def _flat(column: pa.ChunkedArray, dtype: np.dtype, depth: int) -> np.ndarray:
    arr = column.combine_chunks()
    for _ in range(depth):
        arr = pc.list_flatten(arr)
    return arr.to_numpy(zero_copy_only=False).astype(dtype, copy=False)


def features_from_table(table: pa.Table) -> Features:
    """One video's feature rows -> per-sampled-frame arrays, in window order."""
    table = table.sort_by("window_index")
    time_s = _flat(table["time_s"], np.float64, 1)
    per_frame = {}
    for name in PER_FRAME:
        nested = _nested(name)
        value_type = FEATURES.field(name).type.value_type
        inner = value_type.value_type if nested else value_type
        values = _flat(table[name], inner.to_pandas_dtype(), 2 if nested else 1)
        per_frame[name] = values.reshape(len(time_s), -1) if nested else values
    per_frame["audio_mask"] = per_frame["audio_mask"].astype(bool)
    trained = bool(table["visual_trained"][0].as_py()) if len(table) else False
    decoded_time_s = _flat(table["decoded_time_s"], np.float64, 1)
    signal = _flat(table["shot_signal"], np.float32, 2)
    signal = signal.reshape(len(decoded_time_s), -1) if len(decoded_time_s) else signal[:0, None]
    return Features(
        time_s=time_s,
        visual_trained=trained,
        decoded_time_s=decoded_time_s,
        shot_signal=signal,
        **per_frame,
    )


class FeatureLoader(VideoStage):
    """Pass-2 source: one video's windows read back from its feature files."""

    name = "features"

    def __call__(self, record: VideoRecord) -> VideoRecord:
        files = sorted(set(record.feature_files))
        vid = record.video_id
        tables = [_read(f, filters=[("video_id", "=", vid)]) for f in files]
        record.features = features_from_table(pa.concat_tables(tables))
        return record


def _read(uri: str, **kwargs) -> pa.Table:
    """A feature file by its path or object-store URI."""
    fs, path = filesystem(uri)
    return pq.read_table(path, filesystem=fs, **kwargs)


def feature_dims(files: list[str | Path]) -> tuple[int, int]:
    """(visual, audio) feature widths stored in the given files."""
    table = _read(str(files[0]), columns=["visual", "audio"]).slice(0, 1)
    visual = table["visual"][0].as_py()[0]
    audio = table["audio"][0].as_py()[0]
    return len(visual), len(audio)
