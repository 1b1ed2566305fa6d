"""Explicit pyarrow schemas of every output table (documented column by column in README)."""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")

VIDEOS = pa.schema(
    [
        ("video_id", pa.string()),
        ("uri", pa.string()),
        ("fingerprint", pa.string()),
        ("run_id", pa.string()),
        ("status", pa.string()),
        ("error", pa.string()),
        ("duration_s", pa.float64()),
        ("fps", pa.float64()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("video_codec", pa.string()),
        ("has_audio", pa.bool_()),
        ("n_sampled", pa.int32()),
        ("n_shots", pa.int32()),
        ("processed_at", TS),
    ]
)

SEGMENTS = pa.schema(
    [
        ("video_id", pa.string()),
        ("run_id", pa.string()),
        ("seg_index", pa.int32()),
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
        ("score", pa.float32()),
        ("selected", pa.bool_()),
        ("shot_index", pa.int32()),
        ("boundary", pa.string()),
        ("confidence", pa.float32()),
        ("summary_start_s", pa.float64()),
        ("summary_end_s", pa.float64()),
    ]
)

SCORES = pa.schema(
    [
        ("video_id", pa.string()),
        ("run_id", pa.string()),
        ("time_s", pa.list_(pa.float64())),
        ("score", pa.list_(pa.float32())),
    ]
)

KEYFRAMES = pa.schema(
    [
        ("video_id", pa.string()),
        ("run_id", pa.string()),
        ("rank", pa.int32()),
        ("seg_index", pa.int32()),
        ("time_s", pa.float64()),
        ("score", pa.float32()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("jpeg", pa.binary()),
        ("ocr_text", pa.string()),
        ("ocr_confidence", pa.float32()),
    ]
)

CAPTION = pa.struct([("start_s", pa.float64()), ("end_s", pa.float64()), ("text", pa.string())])

SUMMARIES = pa.schema(
    [
        ("video_id", pa.string()),
        ("run_id", pa.string()),
        ("text", pa.string()),
        ("captions", pa.list_(CAPTION)),
        ("summary_duration_s", pa.float64()),
        ("model_version", pa.string()),
        ("transcript_excerpt", pa.string()),
        ("tags", pa.list_(pa.string())),
        ("skim_path", pa.string()),  # the summary video, relative to OUT; null when none
    ]
)

TRANSCRIPTS = pa.schema(
    [
        ("video_id", pa.string()),
        ("run_id", pa.string()),
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
        ("text", pa.string()),
        ("confidence", pa.float32()),
        ("kind", pa.string()),
    ]
)

FEATURES = pa.schema(
    [
        ("video_id", pa.string()),
        ("fingerprint", pa.string()),
        ("run_id", pa.string()),
        ("encoder_version", pa.string()),
        ("visual_trained", pa.bool_()),
        ("window_index", pa.int32()),
        ("time_s", pa.list_(pa.float64())),
        ("visual", pa.list_(pa.list_(pa.float32()))),
        ("audio", pa.list_(pa.list_(pa.float32()))),
        ("audio_mask", pa.list_(pa.bool_())),
        ("label_ids", pa.list_(pa.list_(pa.int16()))),
        ("label_probs", pa.list_(pa.list_(pa.float32()))),
        ("colour_hist", pa.list_(pa.list_(pa.float32()))),
        ("motion", pa.list_(pa.float32())),
        ("loudness_db", pa.list_(pa.float32())),
        ("pitch_hz", pa.list_(pa.float32())),
        ("flatness", pa.list_(pa.float32())),
        ("decoded_time_s", pa.list_(pa.float64())),
        ("shot_signal", pa.list_(pa.list_(pa.float32()))),
    ]
)

RUNS = pa.schema(
    [
        ("run_id", pa.string()),
        ("started_at", TS),
        ("finished_at", TS),
        ("status", pa.string()),
        ("config", pa.string()),
        ("n_videos", pa.int32()),
        ("n_ok", pa.int32()),
        ("n_error", pa.int32()),
        ("n_skipped", pa.int32()),
        ("code_version", pa.string()),
        ("model_version", pa.string()),
    ]
)

TABLES: dict[str, pa.Schema] = {
    "videos": VIDEOS,
    "segments": SEGMENTS,
    "scores": SCORES,
    "keyframes": KEYFRAMES,
    "summaries": SUMMARIES,
    "transcripts": TRANSCRIPTS,
    "features": FEATURES,
    "runs": RUNS,
}
