"""Render a ClipSpec to an H.264/AAC MP4 with PyAV.

Pixels and samples are plain numpy; the encoders run single-threaded with fixed options,
so the same spec gives the same pixels, the same sound and almost always the same bytes.
Not always: about once in thirty renders, a second render in the same process (after an
unrelated one) came out of x264 with a few macroblocks decided differently (pixels off by
up to 8 levels over a few hundred pixels; same options in its SEI, same input frames as
far as hashing them could tell, since hashing them made it vanish). valgrind found no
uninitialised read in FFmpeg's libraries; the cause is not known.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from fractions import Fraction
from functools import cache
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from jobs.samples.world import COLOURS, PITCHES, VFR_TIME_BASE, ClipSpec, ObjectSpec, ShotSpec
from jobs.samples.world import frame_times as clip_frame_times


def _background(shot: ShotSpec, width: int, height: int) -> np.ndarray:
    a = np.array(COLOURS[shot.colours[0]], dtype=np.float32)
    b = np.array(COLOURS[shot.colours[1]], dtype=np.float32)
    rng = np.random.default_rng(shot.texture_seed)
    if shot.background == "solid":
        img = np.broadcast_to(a, (height, width, 3))
    elif shot.background == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        ramp = np.cos(angle) * xx / width + np.sin(angle) * yy / height
        ramp = (ramp - ramp.min()) / max(1e-6, float(ramp.max() - ramp.min()))
        img = a * (1 - ramp[..., None]) + b * ramp[..., None]
    else:
        # Low-frequency value noise: a coarse random grid, bilinearly upsampled.
        gh, gw = max(2, height // 40), max(2, width // 40)
        grid = rng.random((gh, gw)).astype(np.float32)
        ys = np.linspace(0, gh - 1, height)
        xs = np.linspace(0, gw - 1, width)
        y0 = np.floor(ys).astype(int).clip(0, gh - 2)
        x0 = np.floor(xs).astype(int).clip(0, gw - 2)
        fy = (ys - y0)[:, None]
        fx = (xs - x0)[None, :]
        g = (
            grid[y0][:, x0] * (1 - fy) * (1 - fx)
            + grid[y0 + 1][:, x0] * fy * (1 - fx)
            + grid[y0][:, x0 + 1] * (1 - fy) * fx
            + grid[y0 + 1][:, x0 + 1] * fy * fx
        )
        img = a * (1 - g[..., None]) + b * g[..., None]
    return np.ascontiguousarray(img, dtype=np.uint8)


def _sprite(obj: ObjectSpec, width: int, height: int) -> np.ndarray:
    side = max(4, int(round(obj.size * min(width, height))))
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) + 0.5
    c = side / 2
    if obj.shape == "circle":
        return (xx - c) ** 2 + (yy - c) ** 2 <= c * c
    if obj.shape == "square":
        return np.ones((side, side), dtype=bool)
    # Upward triangle: apex at the top centre, base along the bottom edge.
    return np.abs(xx - c) <= (yy / side) * c


def _paste(frame: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int], cx: float, cy: float):
    h, w = frame.shape[:2]
    s = mask.shape[0]
    x0, y0 = int(round(cx * w - s / 2)), int(round(cy * h - s / 2))
    fx0, fy0 = max(0, x0), max(0, y0)
    fx1, fy1 = min(w, x0 + s), min(h, y0 + s)
    if fx0 >= fx1 or fy0 >= fy1:
        return
    m = mask[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    frame[fy0:fy1, fx0:fx1][m] = colour


def title_card(text: str, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """(band mask, text mask) of a title: white text on a dark band across the middle.

    Drawn with the font Pillow bundles (no system fonts), so any machine renders the
    same pixels.
    """
    size = max(12, height // 9)
    font = ImageFont.load_default(size=size)
    while size > 12 and font.getlength(text) > 0.9 * width:
        size -= 2
        font = ImageFont.load_default(size=size)
    image = Image.new("L", (width, height), 0)
    ImageDraw.Draw(image).text((width / 2, height / 2), text, fill=255, font=font, anchor="mm")
    band = np.zeros((height, width), dtype=bool)
    band[int(height / 2 - 1.2 * size) : int(height / 2 + 1.2 * size)] = True
    return band, np.asarray(image) > 127


class _ShotPainter:
    def __init__(self, shot: ShotSpec, width: int, height: int):
        self.shot = shot
        self.background = _background(shot, width, height)
        self.sprites = [(_sprite(o, width, height), o) for o in shot.objects]
        self.title = title_card(shot.title, width, height) if shot.title else None

    def paint(self, t: float) -> np.ndarray:
        frame = self.background.copy()
        u = min(1.0, max(0.0, (t - self.shot.start_s) / self.shot.duration_s))
        for mask, obj in self.sprites:
            cx = obj.start[0] + (obj.end[0] - obj.start[0]) * u
            cy = obj.start[1] + (obj.end[1] - obj.start[1]) * u
            _paste(frame, mask, COLOURS[obj.colour], cx, cy)
        if self.title is not None:
            band, text = self.title
            frame[band] = COLOURS["black"]
            frame[text] = COLOURS["white"]
        return frame


def render_frame(painters: list[_ShotPainter], t: float) -> np.ndarray:
    """The frame shown at time t, blending two shots inside a dissolve.

    A dissolve into shot k spans [start_k - d/2, start_k + d/2).
    """
    starts = [p.shot.start_s for p in painters]
    i = max(0, int(np.searchsorted(starts, t, side="right")) - 1)
    for k in (i + 1, i):
        if 0 < k < len(painters) and painters[k].shot.transition == "dissolve":
            shot = painters[k].shot
            begin = shot.start_s - shot.dissolve_s / 2
            if begin <= t < begin + shot.dissolve_s:
                alpha = (t - begin) / shot.dissolve_s
                return _blend(painters[k - 1].paint(t), painters[k].paint(t), alpha)
    return painters[i].paint(t)


def _blend(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    alpha = min(1.0, max(0.0, alpha))
    return (a.astype(np.float32) * (1 - alpha) + b.astype(np.float32) * alpha).astype(np.uint8)


ESPEAK = "espeak-ng"
SPEECH_VOICE, SPEECH_WPM = "en-us", 140


def can_speak() -> bool:
    """Is espeak-ng (Debian's `espeak-ng` package) here to render speech?"""
    return shutil.which(ESPEAK) is not None


@cache
def speak(text: str, sample_rate: int) -> np.ndarray:
    """`text` spoken by espeak-ng, mono float32 at `sample_rate`, peak 1."""
    wav = subprocess.run(
        [ESPEAK, "-v", SPEECH_VOICE, "-s", str(SPEECH_WPM), "--stdout", text],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    with wave.open(io.BytesIO(wav)) as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float64) / 32768
    # Linear interpolation is enough: espeak's voice has little above 5 kHz.
    t = np.arange(int(len(x) * sample_rate / rate)) * rate / sample_rate
    y = np.interp(t, np.arange(len(x)), x)
    return (y / max(1e-9, np.abs(y).max())).astype(np.float32)


def render_audio(spec: ClipSpec) -> np.ndarray:
    """The clip's mono soundtrack as float32 in [-1, 1] at spec.sample_rate."""
    sr = spec.sample_rate
    n = int(round(spec.duration_s * sr))
    out = np.zeros(n, dtype=np.float64)
    for shot_no, shot in enumerate(spec.shots):
        s = shot.sound
        if s.kind == "silence":
            continue
        i0 = int(round((shot.start_s + s.onset_s) * sr))
        i1 = min(n, int(round((shot.start_s + s.onset_s + s.duration_s) * sr)))
        if i1 <= i0:
            continue
        t = np.arange(i1 - i0) / sr
        f0 = PITCHES.get(s.pitch or "mid", 440.0)
        if s.kind == "speech":
            if not can_speak():
                continue  # the sidecar says so: truth["speech_rendered"] is False
            voice = speak(s.text or "", sr)[: i1 - i0]
            x = np.zeros(i1 - i0)
            x[: len(voice)] = voice
        elif s.kind == "tone":
            x = np.sin(2 * np.pi * f0 * t)
        elif s.kind == "chord":
            third = 4 if s.mode == "major" else 3
            x = sum(np.sin(2 * np.pi * f0 * 2 ** (k / 12) * t) for k in (0, third, 7)) / 3
        elif s.kind == "chirp":
            f1 = f0 * 4 if s.direction == "rising" else f0 / 2
            # Linear sweep: the phase is the integral of the instantaneous frequency.
            phase = 2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * max(t[-1], 1e-6)))
            x = np.sin(phase)
        else:
            x = np.random.default_rng([spec.seed, shot_no]).uniform(-1, 1, len(t))
        # 20 ms fades so that onsets and offsets do not click.
        fade = min(len(t) // 2, int(0.02 * sr))
        if fade > 0:
            ramp = np.linspace(0, 1, fade)
            x[:fade] *= ramp
            x[-fade:] *= ramp[::-1]
        out[i0:i1] += x * 10 ** (s.level_db / 20)
    return np.clip(out, -1, 1).astype(np.float32)


def render_clip(spec: ClipSpec, path: Path, rotation: int = 0) -> None:
    """Encode the clip to `path` (MP4, H.264 + AAC stereo, or H.264 only).

    `rotation` (degrees counter-clockwise) stores a display matrix, as phones do.
    """
    times = clip_frame_times(spec)
    painters = [_ShotPainter(s, spec.width, spec.height) for s in spec.shots]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with av.open(str(tmp), mode="w", format="mp4") as container:
        video = container.add_stream("libx264", rate=spec.fps)
        video.width, video.height, video.pix_fmt = spec.width, spec.height, "yuv420p"
        # One thread and fixed options: x264 output then depends only on the input frames.
        video.codec_context.thread_count = 1
        video.options = {"preset": "veryfast", "crf": "20", "g": str(2 * spec.fps)}
        if rotation:
            video.set_display_rotation(rotation)
        if spec.vfr:
            video.codec_context.time_base = Fraction(1, VFR_TIME_BASE)
            video.time_base = Fraction(1, VFR_TIME_BASE)
            pts = np.concatenate([[0], np.cumsum(spec.frame_durations)[:-1]]).astype(int)
        else:
            video.codec_context.time_base = Fraction(1, spec.fps)
            pts = np.arange(len(times))
        audio = None
        if spec.has_audio:
            audio = container.add_stream("aac", rate=spec.sample_rate, layout="stereo")
            audio.codec_context.thread_count = 1
        for t, p in zip(times, pts, strict=True):
            frame = av.VideoFrame.from_ndarray(render_frame(painters, float(t)), format="rgb24")
            frame.pts = int(p)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if audio is not None:
            samples = render_audio(spec)
            block = 1024
            for i0 in range(0, len(samples), block):
                chunk = samples[i0 : i0 + block]
                stereo = np.ascontiguousarray(np.stack([chunk, chunk]))
                af = av.AudioFrame.from_ndarray(stereo, format="fltp", layout="stereo")
                af.sample_rate = spec.sample_rate
                af.pts = i0
                container.mux(audio.encode(af))
            container.mux(audio.encode(None))
    tmp.replace(path)
