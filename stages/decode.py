"""Decode a video into fixed windows of sampled frames and their audio (PyAV).

Frames are sampled by timestamp, not by index: the frame on screen at t = k / fps for
k = 0, 1, ... is kept, so variable-frame-rate sources sample evenly. A window holds
`window` sampled frames (padded to that size, with `n_frames` valid) and the audio of
the same span at `sample_rate` Hz mono, so memory is bounded by the window and not by
the video's length. Times are seconds from the first video frame.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np

from stages.errors import BadInput, one_line


@dataclass
class DecodeConfig:
    fps: float = 2.0  # sampled frames per second of video
    frame_size: int = 224  # sampled frames are resized (squashed) to frame_size x frame_size
    window: int = 32  # sampled frames per window
    sample_rate: int = 16000  # audio resampled to this rate, mono float32
    threads: int = 0  # decoder threads; 0 lets FFmpeg choose
    timeout_s: float = 900.0  # a video that takes longer to decode is reported as an error
    min_decoded_fraction: float = 0.9  # decoding less of the stated duration means truncated


def samples_per_frame(sample_rate: int, fps: float) -> int:
    """Audio samples per sampled frame; must be whole, or audio drifts from the frames."""
    spf = sample_rate / fps
    if abs(spf - round(spf)) > 1e-9:
        raise ValueError(
            f"decode.sample_rate / decode.fps must be whole, got {sample_rate} / {fps:g}"
        )
    return int(round(spf))


@dataclass
class Probe:
    duration_s: float
    fps: float
    width: int  # display width, after rotation and pixel aspect ratio
    height: int
    video_codec: str
    has_audio: bool
    rotation: int  # degrees counter-clockwise that the frames are turned for display
    start_s: float = 0.0  # the video stream's first timestamp; vidgist's times count from it


def display_size(stream: av.video.stream.VideoStream, rotation: int) -> tuple[int, int]:
    """(width, height) as a player shows the stream: pixel aspect ratio and rotation applied."""
    w, h = stream.codec_context.width, stream.codec_context.height
    sar = stream.sample_aspect_ratio
    if sar and sar.numerator and sar != 1:
        w = int(round(w * float(sar)))
    if rotation % 180 == 90:
        w, h = h, w
    return w, h


def rotation_of(frame: av.VideoFrame) -> int:
    """Display rotation from a frame's display matrix, to the nearest quarter turn."""
    return int(round((frame.rotation or 0) / 90.0)) * 90 % 360


def stream_origin(stream: av.video.stream.VideoStream) -> float:
    """The stream's first timestamp (s): vidgist's times count from it."""
    return float(stream.start_time * stream.time_base) if stream.start_time else 0.0


def probe(uri: str) -> Probe:
    """Read duration, frame rate, display size, codec and audio presence."""
    with av.open(uri) as container:
        if not container.streams.video:
            raise BadInput("no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        duration = 0.0
        if container.duration:
            duration = container.duration / av.time_base
        elif stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        has_audio = bool(container.streams.audio)
        codec = stream.codec_context.name
        rotation = next((rotation_of(f) for f in container.decode(stream)), 0)
        width, height = display_size(stream, rotation)
        origin = stream_origin(stream)
    rate = float(rate) if rate else 0.0
    return Probe(duration, rate, width, height, codec, has_audio, rotation, origin)


def rotate_for_display(image: np.ndarray, rotation: int) -> np.ndarray:
    """Turn an HxWxC image the way a player shows it (rotation: degrees counter-clockwise)."""
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(image, k=k)) if k else image


class _Deadline:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds
        self.seconds = seconds

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise BadInput(f"decoding took longer than {self.seconds:.0f} s")


def _sampled_frames(
    uri: str, cfg: DecodeConfig, rotation: int, deadline: _Deadline
) -> Iterator[tuple[float, np.ndarray]]:
    """(time, RGB frame_size^2 image) for the frame on screen at each k / fps."""
    size = cfg.frame_size
    step = 1.0 / cfg.fps
    with av.open(uri) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if cfg.threads:
            stream.codec_context.thread_count = cfg.threads
        origin = stream_origin(stream)
        rate = stream.average_rate or stream.guessed_rate
        default_dt = 1.0 / float(rate) if rate else step
        k = 0
        prev = None
        prev_t = 0.0
        prev_dt = default_dt

        def sample(frame: av.VideoFrame) -> np.ndarray:
            rgb = frame.to_ndarray(format="rgb24", width=size, height=size)
            return rotate_for_display(rgb, rotation)

        for frame in container.decode(stream):
            deadline.check()
            if frame.time is None:
                continue
            t = frame.time - origin
            # Targets before this frame's time were on screen during the previous frame.
            while k * step < t - 1e-6:
                yield k * step, sample(prev if prev is not None else frame)
                k += 1
            if prev is not None and t > prev_t:
                prev_dt = t - prev_t
            prev, prev_t = frame, t
        if prev is None:
            raise BadInput("no video frames could be decoded")
        end = prev_t + (float(prev.duration * prev.time_base) if prev.duration else prev_dt)
        while k * step < end - 1e-6:
            yield k * step, sample(prev)
            k += 1


class _AudioCursor:
    """Serves [t0, t1) spans of a stream's audio, resampled, decoding only as far as asked."""

    def __init__(self, uri: str, cfg: DecodeConfig, origin: float, deadline: _Deadline):
        self.sr = cfg.sample_rate
        self.deadline = deadline
        self._container = av.open(uri)
        stream = self._container.streams.audio[0]
        stream.thread_type = "AUTO"
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=self.sr)
        self._frames = self._container.decode(stream)
        self._origin = origin
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0  # sample index (at sr, from the video origin) of _buffer[0]
        self._started = False
        self._done = False

    def close(self) -> None:
        self._container.close()

    def _pull(self) -> bool:
        for frame in self._frames:
            self.deadline.check()
            if not self._started:
                if frame.time is None:
                    continue  # cannot place audio without a timestamp; wait for one
                self._buffer_start = int(round((frame.time - self._origin) * self.sr))
                self._started = True
            chunks = [o.to_ndarray().reshape(-1) for o in self._resampler.resample(frame)]
            if chunks:
                self._buffer = np.concatenate([self._buffer, *chunks])
                return True
        if not self._done:
            self._done = True
            tail = [o.to_ndarray().reshape(-1) for o in self._resampler.resample(None)]
            if tail:
                self._buffer = np.concatenate([self._buffer, *tail])
                return True
        return False

    def take(self, i0: int, i1: int) -> tuple[np.ndarray, int, int]:
        """Samples [i0, i1), zeros where the stream has none, and the [from, to) offsets
        within the span that hold real audio (from == to when there is none)."""
        while self._buffer_start + len(self._buffer) < i1 and self._pull():
            pass
        out = np.zeros(i1 - i0, dtype=np.float32)
        a = max(i0, self._buffer_start)
        b = min(i1, self._buffer_start + len(self._buffer))
        if b > a:
            out[a - i0 : b - i0] = self._buffer[a - self._buffer_start : b - self._buffer_start]
        # Drop what no later window needs.
        keep_from = max(0, i1 - self._buffer_start)
        self._buffer = self._buffer[keep_from:]
        self._buffer_start += keep_from
        if b <= a:
            return out, 0, 0
        return out, a - i0, b - i0


@dataclass
class Window:
    index: int
    n_frames: int
    time_s: np.ndarray  # [window] float64, -1 in padding
    frames: np.ndarray  # [window, S, S, 3] uint8
    audio: np.ndarray  # [window * samples_per_frame] float32
    audio_from: int  # real audio lies in audio[audio_from:audio_to]; zeros elsewhere
    audio_to: int
    lead_frame: np.ndarray | None  # the sampled frame just before this window (for motion)


class Decoder:
    """Stage: one video in, its windows out. Containers are closed whatever happens."""

    def __init__(self, cfg: DecodeConfig | None = None):
        self.cfg = cfg or DecodeConfig()
        self.samples_per_frame = samples_per_frame(self.cfg.sample_rate, self.cfg.fps)

    def windows(self, uri: str, meta: Probe | None = None) -> Iterator[Window]:
        cfg = self.cfg
        meta = meta or probe(uri)
        deadline = _Deadline(cfg.timeout_s)
        W = cfg.window
        audio = _AudioCursor(uri, cfg, meta.start_s, deadline) if meta.has_audio else None
        try:
            index = 0
            times: list[float] = []
            frames: list[np.ndarray] = []
            last_t = -1.0
            lead = None
            for t, img in _sampled_frames(uri, cfg, meta.rotation, deadline):
                times.append(t)
                frames.append(img)
                last_t = t
                if len(frames) == W:
                    yield self._window(index, times, frames, audio, lead)
                    index += 1
                    lead = frames[-1]
                    times, frames = [], []
            if frames:
                yield self._window(index, times, frames, audio, lead)
            decoded = last_t + 1.0 / cfg.fps
            if meta.duration_s > 2.0 and decoded < cfg.min_decoded_fraction * meta.duration_s:
                raise BadInput(f"truncated: decoded {decoded:.1f} s of {meta.duration_s:.1f} s")
        finally:
            if audio is not None:
                audio.close()

    def _window(self, index, times, frames, audio, lead) -> Window:
        S, W = self.cfg.frame_size, self.cfg.window
        n = len(frames)
        time_s = np.full(W, -1.0)
        time_s[:n] = times
        batch = np.zeros((W, S, S, 3), dtype=np.uint8)
        batch[:n] = np.stack(frames)
        spf = self.samples_per_frame
        i0 = index * W * spf
        samples, a, b = np.zeros(W * spf, dtype=np.float32), 0, 0
        if audio is not None:
            samples, a, b = audio.take(i0, i0 + W * spf)
            b = min(b, n * spf)  # nothing past the last sampled frame
            a = min(a, b)
            samples[b:] = 0.0
        return Window(index, n, time_s, batch, samples, a, b, lead)

    def __call__(self, row: dict) -> Iterator[dict]:
        """Rows for Ray Data's flat_map: one per window, or one error row for a bad video."""
        uri = row["uri"]
        # Identity travels with every window, so sinks need no lookup table of videos.
        base = {"video_id": row["video_id"], "uri": uri, "fingerprint": row.get("fingerprint", "")}
        try:
            meta = probe(uri)
        except Exception as exc:  # any failure to open is the input's fault
            yield self.error_row(base, exc)
            return
        info = {
            "duration_s": meta.duration_s,
            "fps": meta.fps,
            "width": meta.width,
            "height": meta.height,
            "video_codec": meta.video_codec,
            "has_audio": meta.has_audio,
        }
        # One window of look-ahead so that the last window can say it is the last: a
        # consumer can then tell a complete video from one whose windows were lost.
        held = None
        try:
            for w in self.windows(uri, meta):
                if held is not None:
                    yield held
                held = {
                    **base,
                    **info,
                    "error": "",
                    "window_index": w.index,
                    "is_last": False,
                    "n_frames": w.n_frames,
                    "time_s": w.time_s,
                    "frames": w.frames,
                    "audio": w.audio,
                    "audio_from": w.audio_from,
                    "audio_to": w.audio_to,
                    "lead_frame": self._lead(w.lead_frame),
                    "has_lead": w.lead_frame is not None,
                }
        except Exception as exc:
            if held is not None:
                yield held
            yield self.error_row({**base, **info}, exc)
            return
        if held is not None:
            yield {**held, "is_last": True}

    def error_row(self, base: dict, exc: BaseException) -> dict:
        """A window-shaped row that carries only the reason (so batches keep one schema)."""
        W, S = self.cfg.window, self.cfg.frame_size
        return {
            "duration_s": 0.0,
            "fps": 0.0,
            "width": 0,
            "height": 0,
            "video_codec": "",
            "has_audio": False,
            **base,
            "error": one_line(exc),
            "window_index": -1,
            "is_last": True,
            "n_frames": 0,
            "time_s": np.full(W, -1.0),
            "frames": np.zeros((W, S, S, 3), dtype=np.uint8),
            "audio": np.zeros(W * self.samples_per_frame, dtype=np.float32),
            "audio_from": 0,
            "audio_to": 0,
            "lead_frame": self._lead(None),
            "has_lead": False,
        }

    def _lead(self, frame: np.ndarray | None) -> np.ndarray:
        S = self.cfg.frame_size
        return frame if frame is not None else np.zeros((S, S, 3), dtype=np.uint8)
