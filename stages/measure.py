"""Cheap per-frame measurements that the text writer reports in plain words.

Per sampled frame: how much of it is each named colour, how much it changed since the
previous sampled frame, and the loudness, dominant pitch and tonality of its audio.
All numpy; runs in the decode task on each window.
"""

from __future__ import annotations

import numpy as np

from stages.base import WindowStage
from stages.records import Windows
from stages.settings import MeasureConfig

# Named colours the text can use; each pixel counts towards the nearest one.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (210, 40, 40),
    "orange": (235, 140, 30),
    "yellow": (235, 215, 50),
    "green": (50, 165, 70),
    "cyan": (50, 195, 215),
    "blue": (45, 75, 210),
    "purple": (135, 65, 195),
    "pink": (235, 125, 180),
    "white": (235, 235, 235),
    "grey": (128, 128, 128),
    "black": (20, 20, 20),
    "brown": (120, 75, 40),
}
PALETTE_NAMES = tuple(PALETTE)
_PALETTE_RGB = np.array(list(PALETTE.values()), dtype=np.float32)
_THUMB = 32  # colour and motion are measured on a 32x32 thumbnail


def _thumbs(frames: np.ndarray) -> np.ndarray:
    """[N, S, S, 3] uint8 -> [N, 32, 32, 3] float32 by block averaging.

    Rows are summed first (contiguous, exact in uint16), then the columns of each block
    one slice at a time: numpy's mean over the two strided block axes at once took ~13x
    as long, most of this stage's time."""
    n, s = frames.shape[0], frames.shape[1]
    f = s // _THUMB
    crop = frames[:, : f * _THUMB, : f * _THUMB]
    rows = crop.reshape(n, _THUMB, f, -1).sum(axis=2, dtype=np.uint16)
    blocks = rows.reshape(n, _THUMB, _THUMB, f, 3)
    total = blocks[:, :, :, 0].astype(np.float32)
    for j in range(1, f):
        total += blocks[:, :, :, j]
    return total / np.float32(f * f)


def colour_histogram(thumbs: np.ndarray) -> np.ndarray:
    """Fraction of each frame's pixels nearest to each PALETTE colour: [N, len(PALETTE)]."""
    px = thumbs.reshape(len(thumbs), -1, 3)
    # Squared distance summed channel by channel (a sum over a last axis of 3 is slow).
    d = np.zeros((*px.shape[:2], len(PALETTE)), np.float32)
    for c in range(3):
        d += (px[:, :, c, None] - _PALETTE_RGB[:, c]) ** 2
    nearest = d.argmin(-1)
    hist = np.stack([np.bincount(r, minlength=len(PALETTE)) for r in nearest]).astype(np.float32)
    return hist / px.shape[1]


def motion(thumbs: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    """Mean absolute grey-level change (0-1) from the previous sampled frame."""
    grey = thumbs.mean(-1) / 255.0
    before = np.concatenate([grey[:1] if previous is None else previous[None], grey[:-1]])
    out = np.abs(grey - before).mean(axis=(1, 2)).astype(np.float32)
    if previous is None:
        out[0] = 0.0
    return out


def audio_measures(
    audio: np.ndarray, n_frames: int, samples_per_frame: int, sample_rate: int, floor_db: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per sampled frame: loudness (dBFS RMS), dominant frequency (Hz), spectral flatness."""
    w = len(audio) // samples_per_frame
    chunks = audio[: w * samples_per_frame].reshape(w, samples_per_frame).astype(np.float64)
    rms = np.sqrt((chunks**2).mean(1))
    loud = np.maximum(20 * np.log10(np.maximum(rms, 1e-12)), floor_db)
    spec = np.abs(np.fft.rfft(chunks * np.hanning(samples_per_frame), axis=1)) + 1e-12
    freqs = np.fft.rfftfreq(samples_per_frame, 1.0 / sample_rate)
    spec[:, freqs < 50] = 1e-12  # ignore DC and rumble
    peak = freqs[spec.argmax(1)]
    band = spec[:, (freqs >= 50) & (freqs <= 6000)]
    flat = np.exp(np.log(band).mean(1)) / band.mean(1)
    silent = loud <= floor_db + 1e-6
    peak[silent], flat[silent] = 0.0, 0.0
    valid = np.arange(w) < n_frames
    return (
        np.where(valid, loud, floor_db).astype(np.float32),
        np.where(valid, peak, 0.0).astype(np.float32),
        np.where(valid, flat, 0.0).astype(np.float32),
    )


class Measurer(WindowStage):
    """Stage: adds colour, motion and audio measurements to decoded windows.

    Motion of a window's first frame is measured against the window's `lead_frame` (the
    sampled frame before it), so the stage keeps no state between windows.
    """

    name = "measure"
    config = MeasureConfig

    def __call__(self, windows: Windows) -> Windows:
        rows = [self._measure(windows, i) for i in range(len(windows))]
        hist, mot, loud, pitch, flat = (np.stack(column) for column in zip(*rows, strict=True))
        windows.colour_hist, windows.motion = hist, mot
        windows.loudness_db, windows.pitch_hz, windows.flatness = loud, pitch, flat
        windows.lead_frame = windows.has_lead = None  # only motion needed them
        return windows

    def _measure(self, w: Windows, i: int) -> tuple[np.ndarray, ...]:
        n = int(w.n_frames[i])
        thumbs = _thumbs(w.frames[i])
        hist = colour_histogram(thumbs)
        prev = None
        if w.has_lead[i]:
            prev = _thumbs(w.lead_frame[i][None])[0].mean(-1) / 255.0
        mot = motion(thumbs, prev)
        hist[n:] = 0.0
        mot[n:] = 0.0
        floor = self.cfg.min_loudness_db
        sr, spf = self.shared.sample_rate, self.shared.samples_per_frame
        loud, pitch, flat = audio_measures(w.wave[i], n, spf, sr, floor)
        if w.wave_to[i] <= w.wave_from[i]:
            loud[:] = floor
            pitch[:] = 0.0
            flat[:] = 0.0
        return hist, mot, loud, pitch, flat
