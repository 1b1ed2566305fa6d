"""Selection stage: KTS segments, segment scores, 0/1 knapsack, one keyframe per shot.

Definitions follow the SumMe/TVSum reference code: a segment's score is the mean
importance of its frames, the knapsack maximises the summed segment scores under a
capacity of floor(budget x duration), and summaries are compared at frame level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from stages import kts


@dataclass
class SelectConfig:
    budget: float = 0.15  # summary length as a fraction of the video
    min_segment_s: float = 1.0  # KTS never makes a segment shorter than this
    max_segment_s: float = 120.0  # ... nor longer than this
    max_change_points: int = 500  # upper bound for KTS's search over the number of change points
    max_mean_segment_s: float = 30.0  # KTS returning longer segments on average counts as "too few"
    fallback_segment_s: float = 5.0  # then segments of about this length are used instead
    max_steps: int = 1200  # longer sequences are segmented on block-averaged features
    use_audio: bool = False  # add audio features to the KTS kernel
    resolution_s: float = 0.1  # knapsack weight unit


def knapsack(values: np.ndarray, weights: np.ndarray, capacity: int) -> np.ndarray:
    """0/1 knapsack with integer weights: boolean mask of the items taken."""
    n = len(values)
    best = np.zeros(capacity + 1)
    take = np.zeros((n, capacity + 1), dtype=bool)
    for i in range(n):
        w = int(weights[i])
        if w > capacity:
            continue
        cand = best[: capacity + 1 - w] + values[i]
        better = cand > best[w:]
        take[i, w:] = better
        best[w:] = np.where(better, cand, best[w:])
    chosen = np.zeros(n, dtype=bool)
    c = capacity
    for i in range(n - 1, -1, -1):
        if take[i, c]:
            chosen[i] = True
            c -= int(weights[i])
    return chosen


@dataclass
class Segments:
    first_step: np.ndarray  # [n_seg] index of each segment's first sampled frame
    last_step: np.ndarray  # exclusive
    starts: np.ndarray  # [n_seg] start times (s)
    ends: np.ndarray
    duration_s: float


@dataclass
class Selection:
    starts: np.ndarray  # [n_seg] segment start times (s)
    ends: np.ndarray
    first_step: np.ndarray  # [n_seg] index of the segment's first sampled frame
    last_step: np.ndarray  # exclusive
    scores: np.ndarray  # mean importance
    selected: np.ndarray  # bool
    keyframe_steps: np.ndarray  # one sampled-frame index per selected segment, best first
    keyframe_segments: np.ndarray

    @property
    def selected_duration_s(self) -> float:
        return float((self.ends - self.starts)[self.selected].sum())


class Selector:
    """Stage: a video's importance and features in; segments, selection and keyframes out."""

    def __init__(self, cfg: SelectConfig | None = None, fps: float = 2.0):
        self.cfg = cfg or SelectConfig()
        self.fps = fps

    def change_points(self, features: np.ndarray, duration_s: float) -> np.ndarray:
        cfg = self.cfg
        n = len(features)
        min_len = max(1, int(round(cfg.min_segment_s * self.fps)))
        max_len = max(min_len + 1, int(round(cfg.max_segment_s * self.fps)))
        max_cps = min(cfg.max_change_points, n // min_len - 1)
        min_cps = math.ceil(duration_s / cfg.max_mean_segment_s) - 1
        fallback = max(0, round(duration_s / cfg.fallback_segment_s) - 1)
        return kts.segment(features, max_cps, min_len, max_len, cfg.max_steps, min_cps, fallback)

    def segments(self, time_s: np.ndarray, features: np.ndarray, duration_s: float) -> Segments:
        """KTS segments, split until each fits the budget: depends on features, not scores.

        A shot longer than the whole summary could never be chosen; its pieces can.
        """
        # A container that states no duration (or too short a one) must not shrink the budget.
        if duration_s < time_s[-1]:
            duration_s = float(time_s[-1]) + 1.0 / self.fps
        cps = self.change_points(features, duration_s)
        capacity = self._capacity(duration_s)
        while True:
            seg = _segments(cps, time_s, duration_s)
            heavy = (self._weights(seg) > capacity) & (seg.last_step - seg.first_step > 1)
            if not heavy.any():
                return seg
            halves = (seg.first_step[heavy] + seg.last_step[heavy]) // 2
            cps = np.unique(np.concatenate([cps, halves])).astype(np.int64)

    def _weights(self, seg: Segments) -> np.ndarray:
        return np.ceil((seg.ends - seg.starts) / self.cfg.resolution_s - 1e-9).astype(np.int64)

    def _capacity(self, duration_s: float) -> int:
        return int(math.floor(self.cfg.budget * duration_s / self.cfg.resolution_s + 1e-9))

    def choose(self, seg: Segments, importance: np.ndarray) -> Selection:
        """Score the segments and pick them under the budget; one keyframe per pick."""
        first, last = seg.first_step, seg.last_step
        scores = np.array([importance[a:b].mean() for a, b in zip(first, last, strict=True)])
        weights = self._weights(seg)
        selected = knapsack(scores, weights, self._capacity(seg.duration_s))
        if not selected.any():
            # Too short for any piece to fit: keep the best shortest piece (at most one
            # sampled frame over budget) so that every video has a summary.
            shortest = np.flatnonzero(weights == weights.min())
            selected[shortest[np.argmax(scores[shortest])]] = True
        segs = np.flatnonzero(selected)
        best = [int(first[s] + np.argmax(importance[first[s] : last[s]])) for s in segs]
        order = np.argsort([-importance[b] for b in best], kind="stable")
        return Selection(
            seg.starts,
            seg.ends,
            first,
            last,
            scores.astype(np.float32),
            selected,
            np.array(best, dtype=np.int64)[order],
            segs[order].astype(np.int64),
        )

    def select(
        self, time_s: np.ndarray, importance: np.ndarray, features: np.ndarray, duration_s: float
    ) -> Selection:
        return self.choose(self.segments(time_s, features, duration_s), importance)

    def __call__(self, row: dict) -> dict:
        features = row["visual"]
        if self.cfg.use_audio:
            features = np.concatenate([_unit(features), _unit(row["audio_feat"])], axis=1)
        sel = self.select(row["time_s"], row["importance"], features, float(row["duration_s"]))
        return {
            **row,
            "seg_start_s": sel.starts,
            "seg_end_s": sel.ends,
            "seg_first_step": sel.first_step,
            "seg_last_step": sel.last_step,
            "seg_score": sel.scores,
            "seg_selected": sel.selected,
            "keyframe_steps": sel.keyframe_steps,
            "keyframe_segments": sel.keyframe_segments,
            "summary_duration_s": sel.selected_duration_s,
        }


def _segments(cps: np.ndarray, time_s: np.ndarray, duration_s: float) -> Segments:
    n = len(time_s)
    first = np.concatenate([[0], cps]).astype(np.int64)
    last = np.concatenate([cps, [n]]).astype(np.int64)
    # A boundary lies between two sampled frames: put it half way.
    mids = [(time_s[c - 1] + time_s[c]) / 2 for c in cps]
    return Segments(first, last, np.array([0.0, *mids]), np.array([*mids, duration_s]), duration_s)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
