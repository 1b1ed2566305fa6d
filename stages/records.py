"""The typed records that flow between stages (numpy only, no torch, no Ray).

Pass 1 moves `Windows`: a batch of fixed-size windows of one or more videos, one field
per column, leading axis = window. Ray Data wants columns; `from_columns`/`to_columns`
are the only place where a window is spelled as keys, so stages read and fill attributes.

Pass 2 moves one `VideoRecord` per video: its identity, probe and typed parts that the
stages fill in turn (features -> importance -> shots -> selection -> keyframes -> text),
and `errors`, keyed by the stage that failed.

One name per concept: `wave` is the decoded audio signal, `audio` the audio encoder's
features (as in the `features` table), `visual` the CNN's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)  # slots: an archive run holds a million of them
class VideoRef:
    """Which video: a stable id of its canonical URI, and a fingerprint of its bytes."""

    video_id: str
    uri: str
    fingerprint: str = ""


@dataclass
class Probe:
    """What the container says of a video (the `videos` table publishes all but the last two)."""

    duration_s: float = 0.0
    fps: float = 0.0
    width: int = 0  # display width, after rotation and pixel aspect ratio
    height: int = 0
    video_codec: str = ""
    has_audio: bool = False
    rotation: int = 0  # degrees counter-clockwise that the frames are turned for display
    start_s: float = 0.0  # the video stream's first timestamp; vidgist's times count from it


# Probe fields that travel with every window and are published in `videos`.
PROBE_COLUMNS = ("duration_s", "fps", "width", "height", "video_codec", "has_audio")


def effective_duration(stated_s: float, n_sampled: int, fps: float) -> float:
    """The stated duration, or the decoded length when the container states none or less
    than it holds (browser-recorded WebM): the last sample sits at (n - 1) / fps."""
    if (stated_s or 0.0) < (n_sampled - 1) / fps:
        return n_sampled / fps
    return float(stated_s)


# Every decoded frame is also shrunk to this size (width, height) for shot detection
# (`Windows.tiny`): TransNetV2's input size, and enough for colour-difference detectors.
SHOT_FRAME = (48, 27)
# Decoded frames of context a window carries from before and after it (`tiny_lead`,
# `tiny_tail`): TransNetV2 looks 25 frames each way; the content detector compares frames
# up to this far apart. Here, not in stages/decode.py, so that the shot detectors load
# without PyAV (a GPU machine that runs the models alone has none).
SHOT_CONTEXT = 25


@dataclass
class Windows:
    """A batch of pass-1 windows. Fields left None have not been computed yet."""

    video_id: np.ndarray  # [B] str
    uri: np.ndarray  # [B] str
    fingerprint: np.ndarray  # [B] str
    error: np.ndarray  # [B] str, "" when the window is good; an error row has n_frames 0
    window_index: np.ndarray  # [B] int, -1 on an error row
    is_last: np.ndarray  # [B] bool: the video's last window (lets sinks see lost windows)
    n_frames: np.ndarray  # [B] int: valid sampled frames; the rest is padding
    time_s: np.ndarray  # [B, W] float64 seconds from the first video frame, -1 in padding
    # The probe, repeated per window so that sinks need no lookup table of videos.
    duration_s: np.ndarray
    fps: np.ndarray
    width: np.ndarray
    height: np.ndarray
    video_codec: np.ndarray
    has_audio: np.ndarray
    # Decoded (dropped by the stage that last needs them).
    frames: np.ndarray | None = None  # [B, W, S, S, 3] uint8
    lead_frame: np.ndarray | None = None  # [B, S, S, 3]: the sampled frame before the window
    has_lead: np.ndarray | None = None  # [B] bool
    wave: np.ndarray | None = None  # [B, W * samples_per_frame] float32 mono
    wave_from: np.ndarray | None = None  # [B] real audio lies in wave[from:to]; zeros elsewhere
    wave_to: np.ndarray | None = None
    # Every decoded frame, for shot detection (only when a detector asks for them): per
    # window an array of its own length, since frames per window vary with the frame rate.
    decoded_time_s: np.ndarray | None = None  # [B] of [m] float64
    tiny: np.ndarray | None = None  # [B] of [m, 27, 48, 3] uint8
    tiny_lead: np.ndarray | None = None  # [B] of [<=25, 27, 48, 3]: decoded frames before
    tiny_tail: np.ndarray | None = None  # [B] of [<=25, 27, 48, 3]: decoded frames after
    shot_signal: np.ndarray | None = None  # [B] of [m, k] float32: the detector's per frame
    # Measured (stages.measure).
    colour_hist: np.ndarray | None = None  # [B, W, len(PALETTE)]
    motion: np.ndarray | None = None  # [B, W]
    loudness_db: np.ndarray | None = None  # [B, W]
    pitch_hz: np.ndarray | None = None
    flatness: np.ndarray | None = None
    # Encoded.
    visual: np.ndarray | None = None  # [B, W, Dv] float32
    label_ids: np.ndarray | None = None  # [B, W, k] int16, -1 in padding
    label_probs: np.ndarray | None = None  # [B, W, k] float32
    audio: np.ndarray | None = None  # [B, W, Da] float32, zero where audio_mask is False
    audio_mask: np.ndarray | None = None  # [B, W] bool

    def __len__(self) -> int:
        return len(self.video_id)

    @classmethod
    def from_columns(cls, batch: dict[str, Any]) -> Windows:
        names = {f.name for f in fields(cls)}
        unknown = set(batch) - names
        if unknown:
            raise KeyError(f"not a Windows column: {sorted(unknown)}")
        return cls(**{k: np.asarray(v) for k, v in batch.items()})

    def to_columns(self) -> dict[str, np.ndarray]:
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None}

    @classmethod
    def concat(cls, parts: list[Windows]) -> Windows:
        columns = [p.to_columns() for p in parts]
        return cls.from_columns({k: np.concatenate([c[k] for c in columns]) for k in columns[0]})


@dataclass
class Features:
    """A video's pass-1 output, one entry per sampled frame, in time order."""

    time_s: np.ndarray  # [T] float64
    visual: np.ndarray  # [T, Dv]
    audio: np.ndarray  # [T, Da]
    audio_mask: np.ndarray  # [T] bool
    label_ids: np.ndarray  # [T, k]
    label_probs: np.ndarray  # [T, k]
    colour_hist: np.ndarray  # [T, len(PALETTE)]
    motion: np.ndarray  # [T]
    loudness_db: np.ndarray  # [T]
    pitch_hz: np.ndarray  # [T]
    flatness: np.ndarray  # [T]
    visual_trained: bool = True  # False: the CNN ran from a seeded init; its labels mean nothing
    # Per decoded frame (not per sampled frame): times and the shot detector's signals.
    decoded_time_s: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [M]
    shot_signal: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))


# Per-sampled-frame fields of Features, also the per-frame columns of the features table.
PER_FRAME = tuple(
    f.name
    for f in fields(Features)
    if f.name not in ("time_s", "visual_trained", "decoded_time_s", "shot_signal")
)


def features_from_windows(windows: Windows, visual_trained: bool = True) -> Features:
    """One video's encoded windows (in order, error rows excluded) as per-frame Features:
    how a notebook or the GPU machine runs pass 1 and 2 back to back without Ray."""
    keep = [i for i in np.argsort(windows.window_index) if not windows.error[i]]

    def valid(column: np.ndarray) -> np.ndarray:
        return np.concatenate([column[i][: int(windows.n_frames[i])] for i in keep])

    decoded = {}
    if windows.shot_signal is not None:
        decoded = {
            "decoded_time_s": np.concatenate([windows.decoded_time_s[i] for i in keep]),
            "shot_signal": np.concatenate([windows.shot_signal[i] for i in keep]),
        }
    return Features(
        time_s=valid(windows.time_s),
        visual_trained=visual_trained,
        **{name: valid(getattr(windows, name)) for name in PER_FRAME},
        **decoded,
    )


@dataclass
class Segments:
    """A partition of the sampled frames into segments that never cross a shot boundary."""

    first_step: np.ndarray  # [n_seg] index of each segment's first sampled frame
    last_step: np.ndarray  # exclusive
    starts: np.ndarray  # [n_seg] start times (s)
    ends: np.ndarray
    duration_s: float
    shot_index: np.ndarray | None = None  # [n_seg] the shot each segment lies in
    # How each segment begins: None (the video's start), 'cut', 'gradual' (a dissolve or
    # fade, placed at its middle) or 'split' (inside a long shot, where content changes).
    kind: np.ndarray | None = None  # [n_seg] object
    confidence: np.ndarray | None = None  # [n_seg] the detector's strength; NaN if none

    def __post_init__(self) -> None:
        n = len(self.first_step)
        if self.shot_index is None:
            self.shot_index = np.zeros(n, np.int64)
        if self.kind is None:
            self.kind = np.array([None] + ["split"] * (n - 1), dtype=object)[:n]
        if self.confidence is None:
            self.confidence = np.full(n, np.nan)

    @property
    def n_shots(self) -> int:
        return int(self.shot_index.max()) + 1 if len(self.shot_index) else 0

    def __len__(self) -> int:
        return len(self.first_step)


@dataclass
class Selection:
    """Scored segments, the ones the knapsack took, and a keyframe step per chosen one.

    A chosen segment longer than the whole budget is represented in the summary by its
    best excerpt (the budget-long run of sampled frames with the highest importance), so
    segments can follow the shots without being cut up to fit the budget.
    """

    segments: Segments
    scores: np.ndarray  # [n_seg] mean importance
    selected: np.ndarray  # [n_seg] bool
    keyframe_steps: np.ndarray  # one sampled-frame index per selected segment, best first
    keyframe_segments: np.ndarray
    # The part of each segment the summary keeps (the whole segment unless it is longer
    # than the budget); meaningful where selected.
    excerpt_first: np.ndarray | None = None  # [n_seg] sampled-frame indices
    excerpt_last: np.ndarray | None = None  # exclusive
    excerpt_start: np.ndarray | None = None  # [n_seg] seconds
    excerpt_end: np.ndarray | None = None

    def __post_init__(self) -> None:
        seg = self.segments
        if self.excerpt_first is None:
            self.excerpt_first, self.excerpt_last = seg.first_step, seg.last_step
            self.excerpt_start, self.excerpt_end = seg.starts, seg.ends

    @property
    def selected_duration_s(self) -> float:
        return float((self.excerpt_end - self.excerpt_start)[self.selected].sum())


@dataclass
class Keyframes:
    steps: np.ndarray  # sampled-frame index of each, best first
    segments: np.ndarray  # the segment each belongs to
    time_s: np.ndarray
    jpeg: list[bytes]
    width: np.ndarray
    height: np.ndarray

    def __len__(self) -> int:
        return len(self.jpeg)


@dataclass
class Transcript:
    """What was said, one row per recognised span, in time order.

    `kind` is 'speech' for text the recogniser is sure of and 'unclear' for a span where
    it heard a voice but not English it trusts (its text is then empty, never invented).
    """

    start_s: np.ndarray  # [n] float64
    end_s: np.ndarray
    text: list[str]
    confidence: np.ndarray  # [n] mean probability of the span's words
    kind: list[str]

    @classmethod
    def empty(cls) -> Transcript:
        return cls(np.zeros(0), np.zeros(0), [], np.zeros(0, np.float32), [])

    def __len__(self) -> int:
        return len(self.text)

    @property
    def speech(self) -> np.ndarray:
        """Indices of the spans that hold trusted speech."""
        return np.array([i for i, k in enumerate(self.kind) if k == "speech"], dtype=np.int64)


@dataclass
class ScreenLine:
    """One line of on-screen text, read off the frame at `time_s`."""

    time_s: float
    text: str
    confidence: float
    segment: int  # the segment whose frame it was read from


@dataclass
class ScreenText:
    """On-screen text: per keyframe (parallel to `Keyframes`), and every line read off
    keyframes and still shots, in time then reading order."""

    keyframe_text: list[str]  # lines joined by newlines, reading order; "" when none
    keyframe_confidence: np.ndarray  # [n_keyframes] mean line confidence; NaN when none
    lines: list[ScreenLine]


@dataclass
class Caption:
    start_s: float
    end_s: float
    text: str


@dataclass
class Text:
    summary: str
    captions: list[Caption]
    transcript_excerpt: str = ""  # the transcript sentences the summary quotes
    tags: list[str] = field(default_factory=list)  # what the selected shots show


@dataclass
class VideoRecord:
    """One video in pass 2. Each stage reads the parts it needs and fills its own."""

    ref: VideoRef
    probe: Probe = field(default_factory=Probe)
    n_sampled: int = 0
    feature_files: list[str] = field(default_factory=list)
    features: Features | None = None
    importance: np.ndarray | None = None  # [T] in [0, 1]
    shots: Segments | None = None
    selection: Selection | None = None
    keyframes: Keyframes | None = None
    tags: list[list[str]] | None = None  # per segment: what the shot confidently shows
    screen_text: ScreenText | None = None
    transcript: Transcript | None = None
    text: Text | None = None
    skim: bytes | None = None  # the summary video (MP4), when skims are enabled
    errors: dict[str, str] = field(default_factory=dict)  # stage name -> one-line reason

    @property
    def video_id(self) -> str:
        return self.ref.video_id

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def error(self) -> str:
        """The first failure as `stage: reason` ("" when the video is fine)."""
        return "; ".join(f"{stage}: {why}" for stage, why in self.errors.items())
