"""Shot detection stage: where the video's segments may begin.

`kts` (kernel temporal segmentation over the sampled frames' CNN features) is the
detector today; it is also the segmentation the SumMe/TVSum protocol prescribes. Other
detectors register under `shots.detector` in stages/registry.py and fill the same part,
`record.shots`: a partition of the sampled frames into segments.
"""

from __future__ import annotations

import math

import numpy as np

from stages import kts
from stages.base import VideoStage
from stages.records import Segments, VideoRecord
from stages.settings import Shared, ShotsConfig


def segments_from_change_points(cps: np.ndarray, time_s: np.ndarray, duration_s: float) -> Segments:
    """Segments starting at step 0 and at each change point; a boundary lies half way
    between the two sampled frames beside it."""
    n = len(time_s)
    first = np.concatenate([[0], cps]).astype(np.int64)
    last = np.concatenate([cps, [n]]).astype(np.int64)
    mids = [(time_s[c - 1] + time_s[c]) / 2 for c in cps]
    return Segments(first, last, np.array([0.0, *mids]), np.array([*mids, duration_s]), duration_s)


class KTSShots(VideoStage):
    """Stage: KTS change points of the visual (and optionally audio) features."""

    name = "shots"

    def __init__(self, cfg: ShotsConfig | None = None, shared: Shared | None = None):
        super().__init__(cfg or ShotsConfig(), shared or Shared())

    def change_points(self, features: np.ndarray, duration_s: float) -> np.ndarray:
        cfg, fps = self.cfg, self.shared.fps
        n = len(features)
        min_len = max(1, int(round(cfg.min_segment_s * fps)))
        max_len = max(min_len + 1, int(round(cfg.max_segment_s * fps)))
        max_cps = min(cfg.max_change_points, n // min_len - 1)
        min_cps = math.ceil(duration_s / cfg.max_mean_segment_s) - 1
        fallback = max(0, round(duration_s / cfg.fallback_segment_s) - 1)
        return kts.segment(features, max_cps, min_len, max_len, cfg.max_steps, min_cps, fallback)

    def segments(self, time_s: np.ndarray, features: np.ndarray, duration_s: float) -> Segments:
        return segments_from_change_points(
            self.change_points(features, duration_s), time_s, duration_s
        )

    def __call__(self, record: VideoRecord) -> VideoRecord:
        f = record.features
        features = f.visual
        if self.cfg.use_audio:
            features = np.concatenate([kts.unit_rows(f.visual), kts.unit_rows(f.audio)], axis=1)
        record.shots = self.segments(f.time_s, features, record.probe.duration_s)
        return record
