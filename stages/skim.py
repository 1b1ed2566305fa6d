"""Summary videos: the selected segments of a video, in time order, as one MP4 (H.264 +
AAC, which browsers play), cut frame-accurately.

FFmpeg does the work, driven by ffmpeg-python and run from the static build that
imageio-ffmpeg ships (it has libx264 and the native AAC encoder; no system FFmpeg is
needed). Each segment is its own input opened with `-ss` before `-i`: FFmpeg seeks to the
keyframe before the cut and decodes, without output, up to the exact start, so a cut
never starts on the wrong frame; a stream copy could only start on a keyframe. The
concat filter joins the segments and everything is encoded once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import ffmpeg
import imageio_ffmpeg
import numpy as np

from stages.base import VideoStage
from stages.devices import worker_threads
from stages.files import filesystem, in_object_store
from stages.records import VideoRecord
from stages.settings import SkimConfig


def spans_of(record: VideoRecord) -> list[tuple[float, float]]:
    """(start, end) seconds of each selected segment's kept part, in time order."""
    sel = record.selection
    chosen = np.flatnonzero(sel.selected)
    order = chosen[np.argsort(sel.excerpt_start[chosen], kind="stable")]
    return [(float(sel.excerpt_start[i]), float(sel.excerpt_end[i])) for i in order]


def render_skim(
    path: str,
    spans: list[tuple[float, float]],
    has_audio: bool,
    height: int,
    cfg: SkimConfig,
) -> bytes:
    """The MP4 bytes of `spans` of the file at `path`, `height` pixels high."""
    parts = []
    for start, end in spans:
        clip = ffmpeg.input(path, ss=f"{start:.3f}", t=f"{end - start:.3f}")
        # Even sizes: yuv420p (the pixel format every browser decodes) needs them.
        parts.append(clip.video.filter("scale", -2, height).filter("setsar", 1))
        if has_audio:
            parts.append(clip.audio)
    joined = ffmpeg.concat(*parts, v=1, a=1 if has_audio else 0).node
    streams = [joined[0], joined[1]] if has_audio else [joined[0]]
    with tempfile.TemporaryDirectory(prefix="vidgist-skim-") as tmp:
        target = os.path.join(tmp, "skim.mp4")
        audio = {"acodec": "aac", "audio_bitrate": "96k"} if has_audio else {}
        out = ffmpeg.output(
            *streams,
            target,
            vcodec="libx264",
            crf=cfg.crf,
            preset=cfg.preset,
            pix_fmt="yuv420p",
            movflags="+faststart",  # the index first: a browser starts playing at once
            threads=worker_threads(cfg.threads),
            **audio,
        ).global_args("-hide_banner", "-loglevel", "error", "-nostdin")
        cmd = out.compile(cmd=imageio_ffmpeg.get_ffmpeg_exe(), overwrite_output=True)
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=cfg.timeout_s)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"ffmpeg took over {cfg.timeout_s:.0f} s") from None
        if done.returncode != 0:
            said = done.stderr.decode(errors="replace").strip().splitlines()
            raise RuntimeError(f"ffmpeg: {said[-1] if said else f'exit {done.returncode}'}")
        with open(target, "rb") as f:
            return f.read()


@contextmanager
def local_path(uri: str) -> Iterator[str]:
    """A path FFmpeg can open: the file itself, or a temporary copy of an object (FFmpeg
    does not speak S3)."""
    if not in_object_store(uri):
        yield uri
        return
    fs, path = filesystem(uri)
    with tempfile.TemporaryDirectory(prefix="vidgist-skim-") as tmp:
        local = os.path.join(tmp, os.path.basename(path))
        with fs.open_input_stream(path) as src, open(local, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        yield local


class SkimWriter(VideoStage):
    """Fills `record.skim` with the summary video's MP4 bytes (None when disabled)."""

    name = "skim"
    config = SkimConfig

    def __call__(self, record: VideoRecord) -> VideoRecord:
        spans = spans_of(record)
        if not self.cfg.enabled or not spans:
            return record
        height = min(self.cfg.max_height, record.probe.height or self.cfg.max_height)
        height -= height % 2
        with local_path(record.ref.uri) as path:
            record.skim = render_skim(path, spans, record.probe.has_audio, height, self.cfg)
        return record
