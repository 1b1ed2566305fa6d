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
from contextlib import ExitStack

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from stages.base import SourceStage
from stages.errors import BadInput, one_line
from stages.files import open_container
from stages.records import PROBE_COLUMNS, SHOT_CONTEXT, SHOT_FRAME, Probe, VideoRef, Windows
from stages.settings import DecodeConfig, Shared


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
    with open_container(uri) as container:
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


class Deadline:
    """Raises BadInput once `seconds` have passed: long native decodes check it per frame."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds
        self.seconds = seconds

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise BadInput(f"decoding took longer than {self.seconds:.0f} s")


def _decoded_frames(
    uri: str, cfg: DecodeConfig, rotation: int, deadline: Deadline, shot_frames: bool
) -> Iterator[tuple[str, float, np.ndarray]]:
    """("sample", time, RGB frame_size^2 image) for the frame on screen at each k / fps,
    and, when `shot_frames`, ("frame", time, RGB 48x27) for every decoded frame, in time
    order (a sample is yielded before the decoded frame that ends its time on screen)."""
    size = cfg.frame_size
    step = 1.0 / cfg.fps
    with open_container(uri) as container:
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

        # One scaler per output size for the whole stream, on the decode task's own thread:
        # `frame.to_ndarray(width=, height=)` builds a new scaler with a thread pool per
        # frame, which cost more than the decoding itself (`bench.decode --shot-frames`:
        # 0.39x the ffmpeg CLI's speed that way, 0.84x this way).
        samples, tiny = VideoReformatter(), VideoReformatter()

        def sample(frame: av.VideoFrame) -> np.ndarray:
            rgb = _scaled(samples, frame, size, size)
            return rotate_for_display(rgb, rotation)

        for frame in container.decode(stream):
            deadline.check()
            if frame.time is None:
                continue
            t = frame.time - origin
            # Targets before this frame's time were on screen during the previous frame.
            while k * step < t - 1e-6:
                yield "sample", k * step, sample(prev if prev is not None else frame)
                k += 1
            if shot_frames:
                w, h = SHOT_FRAME
                yield "frame", t, _scaled(tiny, frame, w, h)
            if prev is not None and t > prev_t:
                prev_dt = t - prev_t
            prev, prev_t = frame, t
        if prev is None:
            raise BadInput("no video frames could be decoded")
        end = prev_t + (float(prev.duration * prev.time_base) if prev.duration else prev_dt)
        while k * step < end - 1e-6:
            yield "sample", k * step, sample(prev)
            k += 1


def _scaled(scaler: VideoReformatter, frame: av.VideoFrame, width: int, height: int) -> np.ndarray:
    return scaler.reformat(
        frame, format="rgb24", width=width, height=height, threads=1
    ).to_ndarray()


class AudioCursor:
    """Serves [i0, i1) sample spans of a file's first audio stream, resampled to mono
    float32 at `sample_rate` and counted from the video's origin, decoding only as far as
    asked (memory stays bounded however long the file is)."""

    def __init__(self, uri: str, sample_rate: int, origin: float, deadline: Deadline):
        self.sr = sample_rate
        self.deadline = deadline
        self._files = ExitStack()  # the container and, for an object, its byte stream
        self._container = self._files.enter_context(open_container(uri))
        stream = self._container.streams.audio[0]
        stream.thread_type = "AUTO"
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=self.sr)
        self._frames = self._container.decode(stream)
        self._origin = origin
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0  # sample index (at sr, from the video origin) of _buffer[0]
        # Decoded pieces not yet joined to _buffer: joined once per `take`, not once per
        # audio frame, which copied the whole buffer for every ~20 ms frame (quadratic in
        # the span asked for: a 60 s speech chunk is ~2,800 frames).
        self._pieces: list[np.ndarray] = []
        self._pieces_len = 0
        self._started = False
        self._done = False

    def close(self) -> None:
        self._files.close()

    def _pull(self) -> bool:
        for frame in self._frames:
            self.deadline.check()
            if not self._started:
                if frame.time is None:
                    continue  # cannot place audio without a timestamp; wait for one
                self._buffer_start = int(round((frame.time - self._origin) * self.sr))
                self._started = True
            if self._keep(self._resampler.resample(frame)):
                return True
        if not self._done:
            self._done = True
            return self._keep(self._resampler.resample(None))
        return False

    def _keep(self, frames: list[av.AudioFrame]) -> bool:
        pieces = [f.to_ndarray().reshape(-1) for f in frames]
        self._pieces += pieces
        self._pieces_len += sum(len(p) for p in pieces)
        return bool(pieces)

    def take(self, i0: int, i1: int) -> tuple[np.ndarray, int, int]:
        """Samples [i0, i1), zeros where the stream has none, and the [from, to) offsets
        within the span that hold real audio (from == to when there is none)."""
        while self._buffer_start + len(self._buffer) + self._pieces_len < i1 and self._pull():
            pass
        if self._pieces:
            self._buffer = np.concatenate([self._buffer, *self._pieces])
            self._pieces, self._pieces_len = [], 0
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


def _column_of_one(value, dtype=None) -> np.ndarray:
    return np.array([value], dtype=dtype)


def _ragged_of_one(array: np.ndarray) -> np.ndarray:
    """A column of one row whose value is an array of its own length (decoded frames per
    window vary with the source's frame rate)."""
    column = np.empty(1, dtype=object)
    column[0] = array
    return column


class Decoder(SourceStage):
    """Stage: one video in, its windows out (one `Windows` of length 1 each, or one error
    row for a bad video). Containers are closed whatever happens."""

    name = "decode"
    config = DecodeConfig

    def __init__(self, cfg: DecodeConfig | None = None, shared: Shared | None = None):
        super().__init__(cfg, shared)
        if shared is None:  # its own section states the shared facts
            self.shared = self.cfg.shared()
        self.samples_per_frame = self.shared.samples_per_frame

    def windows(self, ref: VideoRef, meta: Probe | None = None) -> Iterator[Windows]:
        """The video's windows in order; the last one is not yet marked `is_last`, and
        `tiny_tail` is left for `__call__` to fill from the next window."""
        cfg = self.cfg
        meta = meta or probe(ref.uri)
        deadline = Deadline(cfg.timeout_s)
        W = cfg.window
        shot_frames = self.shared.shot_frames
        audio = (
            AudioCursor(ref.uri, cfg.sample_rate, meta.start_s, deadline)
            if meta.has_audio
            else None
        )
        try:
            index = 0
            times: list[float] = []
            frames: list[np.ndarray] = []
            decoded: list[tuple[float, np.ndarray]] = []  # not yet given to a window
            context = np.zeros((0, *SHOT_FRAME[::-1], 3), np.uint8)  # decoded frames before
            last_t = -1.0
            lead = None
            events = _decoded_frames(ref.uri, cfg, meta.rotation, deadline, shot_frames)
            for kind, t, img in events:
                if kind == "frame":
                    decoded.append((t, img))
                    continue
                if len(frames) == W:
                    # The next window's first sample: every decoded frame of this window
                    # (those before its end) has been seen.
                    end = (index + 1) * W / cfg.fps
                    mine = [d for d in decoded if d[0] < end - 1e-6]
                    decoded = [d for d in decoded if d[0] >= end - 1e-6]
                    w = self._window(ref, meta, index, times, frames, audio, lead, mine, context)
                    yield w
                    if shot_frames:  # the lead of the next window: its last frames
                        context = np.concatenate([context, w.tiny[0]])[-SHOT_CONTEXT:]
                    index += 1
                    lead = frames[-1]
                    times, frames = [], []
                times.append(t)
                frames.append(img)
                last_t = t
            if frames:
                yield self._window(ref, meta, index, times, frames, audio, lead, decoded, context)
            decoded_s = last_t + 1.0 / cfg.fps
            if meta.duration_s > 2.0 and decoded_s < cfg.min_decoded_fraction * meta.duration_s:
                raise BadInput(f"truncated: decoded {decoded_s:.1f} s of {meta.duration_s:.1f} s")
        finally:
            if audio is not None:
                audio.close()

    def _window(self, ref, meta, index, times, frames, audio, lead, decoded, context) -> Windows:
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
        w = self._row(ref, meta, "", index, n, time_s, batch, samples, a, b, lead)
        if self.shared.shot_frames:
            tiny = np.stack([d[1] for d in decoded]) if decoded else context[:0]
            w.decoded_time_s = _ragged_of_one(np.array([d[0] for d in decoded], np.float64))
            w.tiny = _ragged_of_one(tiny)
            w.tiny_lead = _ragged_of_one(context)
            w.tiny_tail = _ragged_of_one(context[:0])
        return w

    def __call__(self, ref: VideoRef) -> Iterator[Windows]:
        try:
            meta = probe(ref.uri)
        except Exception as exc:  # any failure to open is the input's fault
            yield self.error_row(ref, one_line(exc))
            return
        # Windows are held back until the next one arrives, so the last can say it is the
        # last (a consumer then tells a complete video from one whose windows were lost),
        # and, with shot frames, until SHOT_CONTEXT decoded frames after each have been
        # seen (its `tiny_tail`, for detectors that look past the window's end).
        held: list[Windows] = []
        try:
            for w in self.windows(ref, meta):
                for h in held if self.shared.shot_frames else []:
                    missing = SHOT_CONTEXT - len(h.tiny_tail[0])
                    if missing > 0:
                        h.tiny_tail[0] = np.concatenate([h.tiny_tail[0], w.tiny[0][:missing]])
                held.append(w)
                while len(held) > 1 and self._complete(held[0]):
                    yield held.pop(0)
        except Exception as exc:
            yield from held
            yield self.error_row(ref, one_line(exc), meta)
            return
        if held:
            held[-1].is_last[0] = True
            yield from held

    def _complete(self, w: Windows) -> bool:
        return not self.shared.shot_frames or len(w.tiny_tail[0]) >= SHOT_CONTEXT

    def error_row(self, ref: VideoRef, reason: str, meta: Probe | None = None) -> Windows:
        """A window-shaped row that carries only the reason (so batches keep one schema)."""
        meta = meta or Probe()
        W, S = self.cfg.window, self.cfg.frame_size
        row = self._row(
            ref,
            meta,
            reason,
            -1,
            0,
            np.full(W, -1.0),
            np.zeros((W, S, S, 3), dtype=np.uint8),
            np.zeros(W * self.samples_per_frame, dtype=np.float32),
            0,
            0,
            None,
            is_last=True,
        )
        if self.shared.shot_frames:
            none = np.zeros((0, *SHOT_FRAME[::-1], 3), np.uint8)
            row.decoded_time_s = _ragged_of_one(np.zeros(0))
            row.tiny, row.tiny_lead, row.tiny_tail = (_ragged_of_one(none) for _ in range(3))
        return row

    def _row(
        self, ref, meta, error, index, n, time_s, frames, wave, a, b, lead, is_last=False
    ) -> Windows:
        S = self.cfg.frame_size
        one = _column_of_one
        return Windows(
            video_id=one(ref.video_id, object),
            uri=one(ref.uri, object),
            fingerprint=one(ref.fingerprint, object),
            error=one(error, object),
            window_index=one(index, np.int64),
            is_last=one(is_last, bool),
            n_frames=one(n, np.int64),
            time_s=time_s[None],
            **{
                k: one(getattr(meta, k), object if k == "video_codec" else None)
                for k in PROBE_COLUMNS
            },
            frames=frames[None],
            lead_frame=(lead if lead is not None else np.zeros((S, S, 3), np.uint8))[None],
            has_lead=one(lead is not None, bool),
            wave=wave[None],
            wave_from=one(a, np.int64),
            wave_to=one(b, np.int64),
        )
