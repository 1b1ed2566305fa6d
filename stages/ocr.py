"""On-screen text stage: RapidOCR (PP-OCR detection + recognition, ONNX Runtime) on every
keyframe and on one frame of each still shot that has none (title cards, slides).

The models ship inside the `rapidocr` wheel (Apache-2.0), so nothing is fetched at run
time. Lines come back in reading order: top to bottom, and left to right within a line.
"""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from stages.base import VideoStage
from stages.devices import worker_threads
from stages.keyframes import frames_at
from stages.records import ScreenLine, ScreenText, VideoRecord
from stages.settings import OcrConfig, Shared

if TYPE_CHECKING:
    from onnxruntime import SessionOptions

# ONNX Runtime's switch that treats subnormal floats (below ~1e-38) as zero. PP-OCR's text
# detector computes on subnormal activations, which x86 cores take a slow path for: on a
# 2-core Xeon the detector took 0.20-0.27 s instead of 0.72-0.99 s on a 960x736 frame, and
# 57 sample and real frames read the same lines at the same confidences with it.
SUBNORMALS_AS_ZERO = "session.set_denormal_as_zero"


def reading_order(boxes: np.ndarray) -> list[list[int]]:
    """Box indices grouped into lines (top to bottom), each left to right.

    `boxes`: [n, 4, 2] corner points. Two boxes share a line when their vertical centres
    are closer than half the smaller box's height.
    """
    if len(boxes) == 0:
        return []
    top, bottom = boxes[:, :, 1].min(1), boxes[:, :, 1].max(1)
    centre, height, left = (top + bottom) / 2, bottom - top, boxes[:, :, 0].min(1)
    lines: list[list[int]] = []
    for i in np.argsort(centre, kind="stable"):
        last = lines[-1] if lines else None
        if last is not None:
            j = last[-1]
            if abs(centre[i] - centre[j]) < 0.5 * min(height[i], height[j]):
                last.append(int(i))
                continue
        lines.append([int(i)])
    return [sorted(line, key=lambda k: left[k]) for line in lines]


def _sessions_flush_subnormals() -> None:
    """Have RapidOCR create its ONNX Runtime sessions with SUBNORMALS_AS_ZERO. It takes
    no session options of ours, so the one function of the pinned rapidocr that makes
    them is wrapped, once per process."""
    from rapidocr.inference_engine.onnxruntime.main import OrtInferSession

    make = OrtInferSession._init_sess_opts
    if getattr(make, "flushes_subnormals", False):
        return

    def options(cfg: Any) -> SessionOptions:  # cfg: RapidOCR's engine section
        opts = make(cfg)
        opts.add_session_config_entry(SUBNORMALS_AS_ZERO, "1")
        return opts

    options.flushes_subnormals = True  # type: ignore[attr-defined]
    OrtInferSession._init_sess_opts = staticmethod(options)


def strongest_edge(image: np.ndarray) -> int:
    """The largest difference, in levels, between two pixels side by side or one above
    the other, over every channel of an [h, w, c] uint8 image (0 for a flat frame)."""
    pixels = image.astype(np.int16)
    across = np.abs(np.diff(pixels, axis=1)).max(initial=0)
    down = np.abs(np.diff(pixels, axis=0)).max(initial=0)
    return int(max(across, down))


class ScreenReader(VideoStage):
    """Stage: a video's keyframes (and still shots) in, their on-screen text out."""

    name = "ocr"
    config = OcrConfig

    def __init__(self, cfg: OcrConfig | None = None, shared: Shared | None = None):
        super().__init__(cfg, shared)
        self.engine = None
        if not self.cfg.enabled:
            return
        from rapidocr import RapidOCR  # heavy; only where the stage runs

        _sessions_flush_subnormals()
        threads = worker_threads(self.cfg.threads)
        self.engine = RapidOCR(
            params={
                "Global.log_level": "error",
                "Global.text_score": self.cfg.min_confidence,
                "Det.limit_type": "max",
                "Det.limit_side_len": self.cfg.detect_max_side,
                "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            }
        )
        # It logs a warning for every image without text.
        logging.getLogger("RapidOCR").setLevel(logging.ERROR)
        # The switch reaches a session's own pool threads, but the thread that calls the
        # model (all of it at one thread) only from the first session made in the process
        # (ONNX Runtime's rule). So the detector's session is made now, at build, before
        # a later stage (the speech stage's voice filter) makes one of its own.
        self.engine(np.zeros((32, 32, 3), np.uint8))

    @classmethod
    def describe(cls, cfg: OcrConfig) -> tuple[str, bool]:
        if not cfg.enabled:
            return "ocr-off", False
        from importlib.metadata import version

        return f"rapidocr-{version('rapidocr')}", True

    def read(self, image: np.ndarray) -> list[tuple[str, float]]:
        """(line, confidence) in reading order; words on one line are joined by spaces."""
        if strongest_edge(image) <= self.cfg.min_edge:
            return []  # flat: costs the model ~0.1-0.5 s of a core, gives nothing
        result = self.engine(np.ascontiguousarray(image))
        if result.boxes is None or result.txts is None:
            return []
        boxes = np.asarray(result.boxes, dtype=np.float32)
        lines = []
        for line in reading_order(boxes):
            words = [(result.txts[k].strip(), float(result.scores[k])) for k in line]
            words = [(t, s) for t, s in words if t and s >= self.cfg.min_confidence]
            text = " ".join(t for t, _ in words)
            if len(text) >= self.cfg.min_chars:
                lines.append((text, float(np.mean([s for _, s in words]))))
        return lines

    def still_shot_times(self, record: VideoRecord) -> list[tuple[float, int]]:
        """(time, segment) of the middle sampled frame of each still shot with no keyframe."""
        seg, f = record.selection.segments, record.features
        with_keyframe = {int(seg.shot_index[s]) for s in record.keyframes.segments}
        picks = []
        for shot in np.unique(seg.shot_index):
            if int(shot) in with_keyframe:
                continue
            members = np.flatnonzero(seg.shot_index == shot)
            a, b = int(seg.first_step[members[0]]), int(seg.last_step[members[-1]])
            if b <= a or float(np.median(f.motion[a:b])) >= self.cfg.still_motion:
                continue
            mid = (a + b - 1) // 2
            s = members[np.searchsorted(seg.last_step[members], mid, side="right")]
            picks.append((float(f.time_s[mid]), int(s)))
        return picks

    def __call__(self, record: VideoRecord) -> VideoRecord:
        kf = record.keyframes
        if self.engine is None:
            record.screen_text = ScreenText([""] * len(kf), np.full(len(kf), np.nan), [])
            return record
        found: list[ScreenLine] = []
        texts, confidences = [], []
        for jpeg, t, s in zip(kf.jpeg, kf.time_s, kf.segments, strict=True):
            # Pillow, not torchvision: pass 2's workers need not import torch.
            lines = self.read(np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")))
            texts.append("\n".join(text for text, _ in lines))
            confidences.append(np.mean([c for _, c in lines]) if lines else np.nan)
            found += [ScreenLine(float(t), text, c, int(s)) for text, c in lines]
        if self.cfg.still_shots:
            picks = self.still_shot_times(record)
            images = frames_at(record.ref.uri, [t for t, _ in picks]) if picks else []
            for (t, s), image in zip(picks, images, strict=True):
                found += [ScreenLine(t, text, c, s) for text, c in self.read(image)]
        found.sort(key=lambda line: line.time_s)  # stable: reading order within a frame
        record.screen_text = ScreenText(texts, np.array(confidences, np.float64), found)
        return record
