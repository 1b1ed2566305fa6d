"""Shot detection: where the video's segments may begin.

A detector is registered under `shots.detector` (stages/registry.py) and fills
`record.shots` in pass 2. Detectors that look at every decoded frame also name a pass-1
`scorer`: a window stage that turns the window's tiny decoded frames into a few numbers
per frame (`shot_signal`), so pass 2 decides cuts from the whole video's signals without
the pixels.

- `content` (CPU, the local default): colour change between consecutive frames with an
  adaptive threshold (PySceneDetect's AdaptiveDetector family) for hard cuts, and change
  over `SHOT_CONTEXT` frames for gradual transitions (dissolves, fades), one boundary each.
- `kts`: kernel temporal segmentation on the sampled frames' CNN features; not a cut
  detector, but the segmentation the SumMe/TVSum protocol prescribes.

Segments follow the shots: a segment never crosses a boundary, and a shot longer than
`max_segment_s` is split by KTS inside it, where its content changes most.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from stages import kts
from stages.base import VideoStage, WindowStage
from stages.records import SHOT_CONTEXT, Segments, VideoRecord, Windows
from stages.settings import ShotsConfig


def segments_from_change_points(cps: np.ndarray, time_s: np.ndarray, duration_s: float) -> Segments:
    """Segments starting at step 0 and at each change point; a boundary lies half way
    between the two sampled frames beside it."""
    n = len(time_s)
    first = np.concatenate([[0], cps]).astype(np.int64)
    last = np.concatenate([cps, [n]]).astype(np.int64)
    mids = [(time_s[c - 1] + time_s[c]) / 2 for c in cps]
    return Segments(first, last, np.array([0.0, *mids]), np.array([*mids, duration_s]), duration_s)


class KTSShots(VideoStage):
    """Stage (`shots.detector=kts`): KTS change points of the visual (and optionally audio)
    features. Its boundaries are content changes, not detected cuts: kind 'split'."""

    name = "shots"
    config = ShotsConfig

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
        record.shots = self.segments(
            record.features.time_s, _kernel_features(record, self.cfg), record.probe.duration_s
        )
        return record


def _kernel_features(record: VideoRecord, cfg: ShotsConfig) -> np.ndarray:
    f = record.features
    if cfg.use_audio:
        return np.concatenate([kts.unit_rows(f.visual), kts.unit_rows(f.audio)], axis=1)
    return f.visual


# ---------------------------------------------------------------- content detector


def _hsv(rgb: np.ndarray) -> np.ndarray:
    """[..., 3] uint8 RGB -> [3, ...] float32 H, S, V planes on OpenCV's scales (H 0-180,
    S and V 0-255). Planes, not a last axis of 3: numpy's reductions and elementwise ops
    over a 3-wide last axis cost ~3x more for these 48x27 frames."""
    r, g, b = np.moveaxis(rgb, -1, 0).astype(np.float32)
    v = np.maximum(np.maximum(r, g), b)
    c = v - np.minimum(np.minimum(r, g), b)
    s = 255.0 * c / np.maximum(v, 1e-6)  # c is 0 where v is
    safe = np.maximum(c, 1e-6)
    h = np.where(
        v == r, (g - b) / safe, np.where(v == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe)
    )
    h = np.where(c > 0, (h * 30.0) % 180.0, 0.0)
    return np.stack([h, s, v])


def _change(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean absolute HSV difference per frame pair of two [3, m, ...] plane stacks (hue
    taken round its circle)."""
    d = np.abs(a - b)
    d[0] = np.minimum(d[0], 180.0 - d[0])
    return d.reshape(3, d.shape[1], -1).mean(-1).mean(0)


class ContentScorer(WindowStage):
    """Pass-1 part of `content`: per decoded frame, its HSV change from the frame before
    (hard cuts) and from the frame SHOT_CONTEXT frames before (gradual transitions).
    Drops the tiny frames, so only two numbers per frame leave the decode task."""

    name = "shots"
    config = ShotsConfig

    def signal(self, lead: np.ndarray, tiny: np.ndarray, tail: np.ndarray) -> np.ndarray:
        """[m, 2] float32: (change from the previous frame, from SHOT_CONTEXT before)."""
        m = len(tiny)
        if not m:
            return np.zeros((0, 2), np.float32)
        frames = _hsv(np.concatenate([lead, tiny]))  # [3, frames, h, w]
        first = len(lead)  # index of the window's first frame in `frames`
        if not first:  # the video's first frame: nothing before it changed
            frames = np.concatenate([frames[:, :1], frames], axis=1)
            first = 1
        idx = np.arange(first, first + m)
        short = _change(frames[:, idx], frames[:, idx - 1])
        far = _change(frames[:, idx], frames[:, np.maximum(idx - SHOT_CONTEXT, 0)])
        return np.stack([short, far], -1).astype(np.float32)

    def __call__(self, windows: Windows) -> Windows:
        return score_windows(windows, self.signal)


def score_windows(windows: Windows, signal) -> Windows:
    """Fill `shot_signal` per window from `signal(lead, tiny, tail)`, then drop the tiny
    frames: only a few numbers per frame travel on."""
    signals = np.empty(len(windows), dtype=object)
    for i in range(len(windows)):
        signals[i] = signal(windows.tiny_lead[i], windows.tiny[i], windows.tiny_tail[i])
    windows.shot_signal = signals
    windows.tiny = windows.tiny_lead = windows.tiny_tail = None
    return windows


class FrameShots(VideoStage):
    """Base of the detectors that decide on every decoded frame: subclasses give the
    boundaries; this class turns them into segments over the sampled frames."""

    name = "shots"
    config = ShotsConfig
    scorer: ClassVar[type[WindowStage] | None] = None

    def boundaries(
        self, time_s: np.ndarray, signal: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(frame index of each new shot's first frame, kind, confidence)."""
        raise NotImplementedError

    def __call__(self, record: VideoRecord) -> VideoRecord:
        f = record.features
        idx, kinds, conf = self.boundaries(f.decoded_time_s, f.shot_signal)
        record.shots = segments_from_boundaries(
            f.decoded_time_s[idx],
            kinds,
            conf,
            f.time_s,
            _kernel_features(record, self.cfg),
            record.probe.duration_s,
            self.cfg,
            self.shared.fps,
        )
        return record


def _min_gap(frames: np.ndarray, strength: np.ndarray, min_gap: int) -> np.ndarray:
    """Keep the strongest of boundaries closer than `min_gap` frames (greedy by strength)."""
    kept: list[int] = []
    for i in np.argsort(-strength, kind="stable"):
        if all(abs(int(frames[i]) - int(frames[j])) >= min_gap for j in kept):
            kept.append(int(i))
    return np.array(sorted(kept, key=lambda j: frames[j]), dtype=np.int64)


class ContentShots(FrameShots):
    """Stage (`shots.detector=content`): hard cuts where a frame's colour change is both
    large (`min_cut_change`) and `cut_ratio` times its neighbours' (an adaptive threshold,
    so steady motion does not cut); gradual transitions where the change across
    SHOT_CONTEXT frames peaks well above its surroundings with no hard cut inside."""

    scorer = ContentScorer

    def boundaries(self, time_s, signal):
        cfg = self.cfg
        n = len(time_s)
        if n < 3:
            return np.zeros(0, np.int64), np.zeros(0, object), np.zeros(0)
        short, far = signal[:, 0].astype(np.float64), signal[:, 1].astype(np.float64)
        rate = (n - 1) / max(time_s[-1] - time_s[0], 1e-6)  # decoded frames per second
        min_gap = max(1, int(round(cfg.min_shot_s * rate)))
        w = 2  # neighbours each side for the adaptive average (PySceneDetect's default)
        padded = np.pad(short, w, mode="edge")
        windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * w + 1)
        neighbours = (windows.sum(1) - short) / (2 * w)
        ratio = short / np.maximum(neighbours, 1.0)
        # A hard cut changes the picture in one frame: most of the change across the last
        # SHOT_CONTEXT frames happens at it. A spike at the end of a dissolve does not.
        sudden = short >= 0.4 * far
        is_cut = (short >= cfg.min_cut_change) & (ratio >= cfg.cut_ratio) & sudden
        is_cut[0] = False
        cuts = np.flatnonzero(is_cut)
        cut_conf = ratio[cuts] / (ratio[cuts] + cfg.cut_ratio)

        # Gradual: across a dissolve or fade, `far` (change across SHOT_CONTEXT frames) is
        # raised from the transition's first frame until SHOT_CONTEXT frames after its
        # last. A hard cut raises it too: a raised run with a cut in it is that cut's.
        k = SHOT_CONTEXT
        raised = far >= cfg.min_gradual_change
        raised[0] = False
        edges = np.flatnonzero(np.diff(np.concatenate([[0], raised.astype(np.int8), [0]])))
        runs: list[list[int]] = []
        for a, b in edges.reshape(-1, 2):
            if ((cuts >= a - 1) & (cuts < b)).any():
                continue  # a hard cut's own raised change
            # Half-blended frames can differ from both shots more than the shots differ
            # (hue goes round a circle), which dips `far` mid-transition: runs less than
            # SHOT_CONTEXT frames apart are one transition.
            if runs and a - runs[-1][1] < k:
                runs[-1][1] = int(b)
            else:
                runs.append([int(a), int(b)])
        longest = cfg.max_gradual_s * rate + k  # longer raised runs are motion, not a transition
        gradual = []
        for a, b in runs:
            if b - a > longest:
                continue
            peak = float(far[a:b].max())
            flanks = np.concatenate([far[max(0, a - 2 * k) : a], far[b : b + 2 * k]])
            base = max(float(np.median(flanks)) if len(flanks) else 0.0, 1.0)
            if peak >= cfg.cut_ratio * base:
                middle = min(max(1, (a + b - k) // 2), n - 1)
                gradual.append((middle, peak / (peak + cfg.cut_ratio * base)))
        frames = np.concatenate([cuts, [g[0] for g in gradual]]).astype(np.int64)
        kinds = np.array(["cut"] * len(cuts) + ["gradual"] * len(gradual), dtype=object)
        conf = np.concatenate([cut_conf, [g[1] for g in gradual]])
        keep = _min_gap(frames, conf + (kinds == "cut"), min_gap)
        return frames[keep], kinds[keep], conf[keep]


def segments_from_boundaries(
    starts_s: np.ndarray,
    kinds: np.ndarray,
    confidence: np.ndarray,
    time_s: np.ndarray,
    features: np.ndarray,
    duration_s: float,
    cfg: ShotsConfig,
    fps: float,
) -> Segments:
    """Segments over the sampled frames: one per shot (a sampled frame belongs to the shot
    on screen at its time), and shots longer than `max_segment_s` split by KTS inside."""
    n = len(time_s)
    order = np.argsort(starts_s, kind="stable")
    starts_s, kinds, confidence = starts_s[order], kinds[order], confidence[order]
    steps = np.searchsorted(time_s, starts_s - 1e-9, side="left")
    # A shot with no sampled frame (shorter than 1 / fps, or starting after the last one)
    # joins the shot before it: every segment needs a frame to be scored.
    keep = [
        i
        for i in range(len(steps))
        if 0 < steps[i] < n and not (i + 1 < len(steps) and steps[i + 1] == steps[i])
    ]
    starts_s, kinds, confidence, steps = starts_s[keep], kinds[keep], confidence[keep], steps[keep]

    first, start_s, kind, conf, shot = [], [], [], [], []
    edges = [0, *steps.tolist(), n]
    shot_start = [0.0, *starts_s.tolist()]
    shot_kind = [None, *kinds.tolist()]
    shot_conf = [np.nan, *confidence.tolist()]
    max_len = max(2, int(round(cfg.max_segment_s * fps)))
    min_len = max(1, int(round(cfg.min_segment_s * fps)))
    for j in range(len(edges) - 1):
        a, b = edges[j], edges[j + 1]
        first.append(a)
        start_s.append(shot_start[j])
        kind.append(shot_kind[j])
        conf.append(shot_conf[j])
        shot.append(j)
        if b - a > max_len:
            length = b - a
            max_cps = min(cfg.max_change_points, max(1, length // min_len - 1))
            min_cps = math.ceil(length / max_len) - 1
            cps = kts.segment(
                features[a:b], max_cps, min_len, max_len, cfg.max_steps, min_cps, min_cps
            )
            for c in cps:
                first.append(a + int(c))
                start_s.append(float(time_s[a + int(c)]))
                kind.append("split")
                conf.append(np.nan)
                shot.append(j)
    first_a = np.array(first, np.int64)
    last_a = np.concatenate([first_a[1:], [n]]).astype(np.int64)
    starts = np.array(start_s, np.float64)
    ends = np.concatenate([starts[1:], [duration_s]])
    return Segments(
        first_a,
        last_a,
        starts,
        ends,
        duration_s,
        np.array(shot, np.int64),
        np.array(kind, dtype=object),
        np.array(conf, np.float64),
    )
