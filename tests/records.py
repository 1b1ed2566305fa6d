"""Hand-made records for stage tests: a video's pass-1 features with chosen values."""

from __future__ import annotations

import numpy as np

from stages.records import Features


def features_at_2fps(n: int, visual_trained: bool = True, **per_frame: np.ndarray) -> Features:
    """`n` sampled frames at 2 fps, every per-frame field zero unless given."""
    fields = {
        "label_ids": np.zeros((n, 5), np.int16),
        "label_probs": np.zeros((n, 5), np.float32),
        "colour_hist": np.zeros((n, 12), np.float32),
        "motion": np.zeros(n, np.float32),
        "loudness_db": np.zeros(n, np.float32),
        "pitch_hz": np.zeros(n, np.float32),
        "flatness": np.zeros(n, np.float32),
        **per_frame,
    }
    return Features(
        time_s=np.arange(n) / 2.0,
        visual=np.zeros((n, 4), np.float32),
        audio=np.zeros((n, 2), np.float32),
        audio_mask=np.ones(n, bool),
        visual_trained=visual_trained,
        **fields,
    )
