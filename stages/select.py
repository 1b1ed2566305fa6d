"""Selection stage: segment scores, 0/1 knapsack under the budget, one keyframe per pick.

Definitions follow the SumMe/TVSum reference code: a segment's score is the mean
importance of its frames, the knapsack maximises the summed segment scores under a
capacity of floor(budget x duration), and summaries are compared at frame level.
"""

from __future__ import annotations

import math

import numpy as np

from stages.base import VideoStage
from stages.records import Segments, Selection, VideoRecord
from stages.settings import SelectConfig


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


class Selector(VideoStage):
    """Stage: a video's shots and importance in; its selection and keyframe steps out."""

    name = "select"
    config = SelectConfig

    def _weights(self, seg: Segments) -> np.ndarray:
        return self._piece_weights(seg.starts, seg.ends)

    def _capacity(self, duration_s: float) -> int:
        return int(math.floor(self.cfg.budget * duration_s / self.cfg.resolution_s + 1e-9))

    def _excerpts(self, seg: Segments, importance: np.ndarray, time_s: np.ndarray):
        """Per segment, the part the summary would keep: the whole segment when it fits the
        budget, else the budget-long run of sampled frames with the most importance."""
        fps = self.shared.fps
        capacity_s = self._capacity(seg.duration_s) * self.cfg.resolution_s
        k = max(1, int(math.floor(capacity_s * fps + 1e-9)))  # sampled frames that fit
        first, last = seg.first_step.copy(), seg.last_step.copy()
        start, end = seg.starts.astype(float).copy(), seg.ends.astype(float).copy()
        for s in np.flatnonzero(self._weights(seg) > self._capacity(seg.duration_s)):
            a, b = int(seg.first_step[s]), int(seg.last_step[s])
            n = min(k, b - a)
            sums = np.convolve(importance[a:b], np.ones(n), mode="valid")
            j = a + int(np.argmax(sums))
            first[s], last[s] = j, j + n
            start[s] = max(float(seg.starts[s]), float(time_s[j]))
            end[s] = min(float(seg.ends[s]), float(time_s[j]) + n / fps)
        return first, last, start, end

    def choose(self, seg: Segments, importance: np.ndarray, time_s: np.ndarray) -> Selection:
        """Score the segments and pick them (or their best excerpts) under the budget; one
        keyframe per pick, the best sampled frame of what the summary keeps."""
        scores = np.array(
            [importance[a:b].mean() for a, b in zip(seg.first_step, seg.last_step, strict=True)]
        )
        first, last, start, end = self._excerpts(seg, importance, time_s)
        values = np.array([importance[a:b].mean() for a, b in zip(first, last, strict=True)])
        weights = self._piece_weights(start, end)
        selected = knapsack(values, weights, self._capacity(seg.duration_s))
        if not selected.any():
            # Too short for any piece to fit: keep the best shortest piece (at most one
            # sampled frame over budget) so that every video has a summary.
            shortest = np.flatnonzero(weights == weights.min())
            selected[shortest[np.argmax(values[shortest])]] = True
        segs = np.flatnonzero(selected)
        best = [int(first[s] + np.argmax(importance[first[s] : last[s]])) for s in segs]
        order = np.argsort([-importance[b] for b in best], kind="stable")
        return Selection(
            seg,
            scores.astype(np.float32),
            selected,
            np.array(best, dtype=np.int64)[order],
            segs[order].astype(np.int64),
            first,
            last,
            start,
            end,
        )

    def _piece_weights(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        return np.ceil((end - start) / self.cfg.resolution_s - 1e-9).astype(np.int64)

    def __call__(self, record: VideoRecord) -> VideoRecord:
        record.selection = self.choose(record.shots, record.importance, record.features.time_s)
        return record
