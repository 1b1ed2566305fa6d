"""Keyframe stage: decode the chosen frames again from the source, at full display size.

Sampled frames were shrunk for the encoder; a keyframe is the same moment (the frame on
screen at the sampled time) re-decoded at the source's display resolution, turned the
way a player shows it, and JPEG-encoded.
"""

from __future__ import annotations

import io

import av
import numpy as np
from PIL import Image

from stages.base import VideoStage
from stages.decode import display_size, rotate_for_display, rotation_of, stream_origin
from stages.files import open_container
from stages.records import Keyframes, VideoRecord
from stages.settings import KeyframeConfig


def frames_at(uri: str, times: list[float]) -> list[np.ndarray]:
    """RGB images (display size and orientation) on screen at each time (s)."""
    out: dict[float, np.ndarray] = {}
    with open_container(uri) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        tb = stream.time_base
        origin = stream_origin(stream)
        for t in sorted(set(times)):
            container.seek(int((t + origin) / tb), stream=stream, backward=True)
            chosen = None
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                if frame.time - origin > t + 1e-6 and chosen is not None:
                    break
                chosen = frame
            if chosen is None:
                raise ValueError(f"no frame at {t:.3f} s")
            rotation = rotation_of(chosen)
            out[t] = _display(chosen, *display_size(stream, rotation), rotation)
    return [out[t] for t in times]


def _display(frame: av.VideoFrame, width: int, height: int, rotation: int) -> np.ndarray:
    # Scale before turning: width/height are display (post-rotation) sizes.
    w, h = (height, width) if rotation % 180 == 90 else (width, height)
    rgb = frame.to_ndarray(format="rgb24", width=w, height=h)
    return rotate_for_display(rgb, rotation)


class KeyframeExtractor(VideoStage):
    """Stage: a video's keyframe steps in, JPEG bytes at display size out."""

    name = "keyframes"
    config = KeyframeConfig

    def encode(self, image: np.ndarray) -> bytes:
        # Pillow (libjpeg-turbo), not torchvision: this stage runs in pass 2's workers,
        # which then need not import torch (2.8 s and ~0.5 GB each).
        out = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(image)).save(
            out, format="JPEG", quality=self.cfg.jpeg_quality
        )
        return out.getvalue()

    def __call__(self, record: VideoRecord) -> VideoRecord:
        sel = record.selection
        steps, segs = sel.keyframe_steps, sel.keyframe_segments
        if self.cfg.max_keyframes:
            steps, segs = steps[: self.cfg.max_keyframes], segs[: self.cfg.max_keyframes]
        times = [float(record.features.time_s[s]) for s in steps]
        images = frames_at(record.ref.uri, times) if times else []
        record.keyframes = Keyframes(
            steps=steps,
            segments=segs,
            time_s=np.array(times, dtype=np.float64),
            jpeg=[self.encode(img) for img in images],
            width=np.array([img.shape[1] for img in images], dtype=np.int32),
            height=np.array([img.shape[0] for img in images], dtype=np.int32),
        )
        return record
