"""The ffmpeg command line as a reference decoder, through ffmpeg-python.

Tests compare vidgist's frames against what ffmpeg shows; benchmarks time vidgist's
decode stage against ffmpeg doing the same work. The binary is the one on PATH, or the
static build that imageio-ffmpeg ships when there is none.
"""

from __future__ import annotations

import shutil

import ffmpeg
import numpy as np


def ffmpeg_exe() -> str:
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def frame_at(uri: str, t: float, width: int, height: int) -> np.ndarray:
    """The frame on screen at t seconds, autorotated, RGB [height, width, 3]."""
    raw, _ = (
        ffmpeg.input(str(uri), ss=t)
        .output("pipe:", vframes=1, format="rawvideo", pix_fmt="rgb24")
        .run(cmd=ffmpeg_exe(), capture_stdout=True, capture_stderr=True)
    )
    return np.frombuffer(raw, np.uint8).reshape(height, width, 3)


def sampled_frames(uri: str, fps: float, size: int, threads: int = 0) -> np.ndarray:
    """All frames resampled to `fps` and squashed to size x size, as [n, size, size, 3]."""
    raw, _ = (
        ffmpeg.input(str(uri), threads=threads)
        .filter("fps", fps=fps)
        .filter("scale", size, size)
        .output("pipe:", format="rawvideo", pix_fmt="rgb24")
        .run(cmd=ffmpeg_exe(), capture_stdout=True, capture_stderr=True)
    )
    return np.frombuffer(raw, np.uint8).reshape(-1, size, size, 3)


def audio_mono(uri: str, sample_rate: int) -> np.ndarray:
    """The first audio track, resampled to mono float32 at sample_rate."""
    raw, _ = (
        ffmpeg.input(str(uri))
        .output("pipe:", format="f32le", ac=1, ar=sample_rate)
        .run(cmd=ffmpeg_exe(), capture_stdout=True, capture_stderr=True)
    )
    return np.frombuffer(raw, np.float32)
