"""The procedural world that sample clips are drawn from.

A clip is a list of shots; a shot is a background, up to two moving or still objects and
one audio event. Every attribute is drawn from a seeded generator, so a (seed, index)
pair always describes the same clip, and the renderer turns the description into the
same pixels and sound.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (240, 140, 20),
    "yellow": (240, 220, 40),
    "green": (40, 170, 60),
    "cyan": (40, 200, 220),
    "blue": (40, 70, 220),
    "purple": (140, 60, 200),
    "pink": (240, 120, 180),
    "white": (240, 240, 240),
    "black": (15, 15, 15),
    "grey": (128, 128, 128),
}
SHAPES = ("circle", "square", "triangle")
MOTIONS = ("still", "left", "right", "up", "down")
BACKGROUNDS = ("solid", "gradient", "noise")
SOUNDS = ("silence", "tone", "noise", "chirp", "chord")  # drawn at random; "speech" is placed
# Sentences the speaking shots say (espeak-ng renders them) and the words title cards are
# made of: plain news, lecture and meeting English, so recognisers are tested on the
# language an archive holds, and the truth of every word is known.
SENTENCES = (
    "Welcome back to the evening news.",
    "Today we look at the weather across the country.",
    "The meeting will start in five minutes.",
    "Please open your books at the second chapter.",
    "The train to the city leaves from platform two.",
    "Our team finished the project ahead of time.",
    "Thank you all for coming to this lecture.",
    "The market was busy on a sunny morning.",
    "We will answer your questions at the end.",
    "The new bridge opens to traffic next month.",
    "Children played in the park until dark.",
    "The museum shows paintings from three centuries.",
    "A small boat crossed the lake at dawn.",
    "Let us begin with a short history of the town.",
    "The library is closed on public holidays.",
    "The orchestra played music by famous composers.",
    "Scientists measured the temperature of the ocean.",
    "Remember to save your work before you leave.",
    "The mountain road is closed because of snow.",
    "Our guest today is a well known writer.",
    "Traffic was slow on the main road this morning.",
    "The city council will vote on the budget tonight.",
    "He walked to the station in the cold wind.",
    "The results of the survey will be published soon.",
)
TITLE_HEADS = ("Chapter", "Part", "Episode", "Section", "Lesson")
TITLE_TOPICS = (
    "The Harbour",
    "Morning Market",
    "City Council",
    "Weather Report",
    "Quarterly Results",
    "Mountain Roads",
    "The Old Bridge",
    "Evening News",
    "Ocean Science",
    "Town History",
)
PITCHES: dict[str, float] = {"low": 220.0, "mid": 440.0, "high": 880.0}
RESOLUTIONS = ((320, 240), (480, 360), (640, 360), (640, 480), (854, 480), (960, 540), (1280, 720))
FRAME_RATES = (24, 25, 30)
# Frame durations of the variable-frame-rate clip, in units of VFR_TIME_BASE (1/600 s):
# 30, 24, 20 and 15 fps frames mixed at random.
VFR_TIME_BASE = 600
VFR_DURATIONS = (20, 25, 30, 40)


@dataclass(frozen=True)
class ObjectSpec:
    shape: str
    colour: str
    size: float  # side or diameter as a fraction of the frame's shorter side
    start: tuple[float, float]  # centre (x, y) in [0, 1] frame coordinates at shot start
    end: tuple[float, float]  # centre at shot end
    motion: str  # one of MOTIONS; 'still' means start == end

    @property
    def moving(self) -> bool:
        return self.motion != "still"


@dataclass(frozen=True)
class SoundSpec:
    kind: str  # one of SOUNDS
    pitch: str | None = None  # PITCHES key for tone, chord and chirp start
    onset_s: float = 0.0  # start within the shot
    duration_s: float = 0.0
    level_db: float = -12.0  # peak level in dBFS
    direction: str | None = None  # 'rising' or 'falling' for a chirp
    mode: str | None = None  # 'major' or 'minor' for a chord
    text: str | None = None  # what a 'speech' sound says

    def active(self, shot_time_s: np.ndarray) -> np.ndarray:
        """Boolean mask of shot-local times at which this sound is audible."""
        if self.kind == "silence":
            return np.zeros(np.shape(shot_time_s), dtype=bool)
        return (shot_time_s >= self.onset_s) & (shot_time_s < self.onset_s + self.duration_s)


@dataclass(frozen=True)
class ShotSpec:
    start_s: float
    duration_s: float
    background: str
    colours: tuple[str, str]  # primary (and secondary for gradient/noise) background colours
    texture_seed: int
    objects: tuple[ObjectSpec, ...]
    sound: SoundSpec
    transition: str = "cut"  # how this shot begins: 'cut' or 'dissolve'
    dissolve_s: float = 0.0
    title: str | None = None  # text of a title card drawn over the shot

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


@dataclass(frozen=True)
class ClipSpec:
    name: str
    width: int
    height: int
    fps: int  # nominal rate; the VFR clip's frames vary around it
    vfr: bool
    has_audio: bool
    shots: tuple[ShotSpec, ...]
    seed: int
    index: int
    sample_rate: int = 48000
    frame_durations: tuple[int, ...] = field(default=(), repr=False)  # VFR only, 1/600 s

    @property
    def duration_s(self) -> float:
        return self.shots[-1].end_s


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def random_object(rng: np.random.Generator, colour_exclude: set[str]) -> ObjectSpec:
    colours = [c for c in COLOURS if c not in colour_exclude]
    motion = _pick(rng, MOTIONS)
    size = float(rng.uniform(0.15, 0.3))
    margin = size / 2 + 0.02
    lo, hi = margin, 1 - margin
    travel = float(rng.uniform(0.35, 0.6))
    x, y = float(rng.uniform(lo, hi)), float(rng.uniform(lo, hi))
    start, end = (x, y), (x, y)
    if motion == "left":
        x0 = float(rng.uniform(lo + travel, hi)) if lo + travel < hi else hi
        start, end = (x0, y), (max(lo, x0 - travel), y)
    elif motion == "right":
        x0 = float(rng.uniform(lo, max(lo, hi - travel)))
        start, end = (x0, y), (min(hi, x0 + travel), y)
    elif motion == "up":
        y0 = float(rng.uniform(lo + travel, hi)) if lo + travel < hi else hi
        start, end = (x, y0), (x, max(lo, y0 - travel))
    elif motion == "down":
        y0 = float(rng.uniform(lo, max(lo, hi - travel)))
        start, end = (x, y0), (x, min(hi, y0 + travel))
    return ObjectSpec(_pick(rng, SHAPES), _pick(rng, colours), size, start, end, motion)


def random_sound(rng: np.random.Generator, duration_s: float, kind: str | None = None) -> SoundSpec:
    kind = kind or _pick(rng, SOUNDS)
    if kind == "silence":
        return SoundSpec("silence")
    level = float(rng.uniform(-16.0, -8.0))
    if kind == "noise":
        # A burst: shorter than the shot, somewhere inside it.
        length = float(rng.uniform(0.6, max(0.7, 0.6 * duration_s)))
        onset = float(rng.uniform(0.0, duration_s - length))
        return SoundSpec("noise", None, onset, length, level)
    # Tonal sounds fill most of the shot.
    onset = float(rng.uniform(0.0, 0.2 * duration_s))
    length = duration_s - onset - float(rng.uniform(0.0, 0.1 * duration_s))
    pitch = _pick(rng, tuple(PITCHES))
    if kind == "chirp":
        return SoundSpec(
            "chirp", pitch, onset, length, level, direction=_pick(rng, ("rising", "falling"))
        )
    if kind == "chord":
        return SoundSpec("chord", pitch, onset, length, level, mode=_pick(rng, ("major", "minor")))
    return SoundSpec("tone", pitch, onset, length, level)


def _shot_durations(rng: np.random.Generator, long: bool) -> list[float]:
    """3-8 shots of 2-10 s whose total lies in 10-60 s (redrawn until it does); a long
    clip has 12-24 such shots and lasts 60-180 s."""
    shots, total = ((12, 25), (60.0, 180.0)) if long else ((3, 9), (10.0, 60.0))
    while True:
        n = int(rng.integers(*shots))
        durations = [round(float(rng.uniform(2.0, 10.0)), 2) for _ in range(n)]
        if total[0] <= sum(durations) <= total[1]:
            return durations


def make_clip_spec(seed: int, index: int, long: bool = False) -> ClipSpec:
    """Describe sample clip `index` of the set drawn with `seed` (`long`: 1-3 minutes).

    The first clips of every set carry the special cases, so that any set of three or
    more holds a dissolve (clip 0), a clip without audio (clip 1) and a variable frame
    rate clip (clip 2); clip 0 is the smallest resolution and clip 3 the largest.
    """
    rng = np.random.default_rng([seed, index])
    width, height = _pick(rng, RESOLUTIONS)
    if index == 0:
        width, height = RESOLUTIONS[0]
    elif index == 3:
        width, height = RESOLUTIONS[-1]
    fps = FRAME_RATES[index % 3] if index < 3 else _pick(rng, FRAME_RATES)
    vfr = index == 2
    has_audio = index != 1
    durations = _shot_durations(rng, long)
    shots: list[ShotSpec] = []
    start = 0.0
    previous_colour = None
    for i, duration in enumerate(durations):
        # Consecutive shots never share a background colour: a cut must be visible.
        colours = [c for c in COLOURS if c != previous_colour]
        primary = _pick(rng, colours)
        secondary = _pick(rng, [c for c in COLOURS if c != primary])
        background = _pick(rng, BACKGROUNDS)
        n_objects = int(rng.integers(0, 3))
        objects = tuple(random_object(rng, {primary}) for _ in range(n_objects))
        sound = random_sound(rng, duration)
        if not has_audio:
            sound = SoundSpec("silence")
        transition, dissolve = "cut", 0.0
        wants_dissolve = (index == 0 and i == 1) or (i > 0 and rng.uniform() < 0.15)
        if wants_dissolve and i > 0:
            transition, dissolve = "dissolve", 1.0
        shots.append(
            ShotSpec(
                start_s=round(start, 4),
                duration_s=duration,
                background=background,
                colours=(primary, secondary),
                texture_seed=int(rng.integers(2**31)),
                objects=objects,
                sound=sound,
                transition=transition,
                dissolve_s=dissolve,
            )
        )
        start += duration
        previous_colour = primary
    shots = add_speech_and_titles(shots, seed, index, has_audio)
    frame_durations: tuple[int, ...] = ()
    if vfr:
        total = round(start * VFR_TIME_BASE)
        ticks: list[int] = []
        while sum(ticks) < total:
            ticks.append(int(_pick(rng, VFR_DURATIONS)))
        frame_durations = tuple(ticks)
    return ClipSpec(
        name=f"sample-{index:03d}",
        width=width,
        height=height,
        fps=fps,
        vfr=vfr,
        has_audio=has_audio,
        shots=tuple(shots),
        seed=seed,
        index=index,
        frame_durations=frame_durations,
    )


SPEECH_MIN_SHOT_S = 3.5  # a sentence takes 2-3 s at the speaking rate used
SPEECH_CHARS_PER_S = 13.0
TITLE_MIN_SHOT_S = 2.5


def add_speech_and_titles(
    shots: list[ShotSpec], seed: int, index: int, has_audio: bool
) -> list[ShotSpec]:
    """Give some shots a spoken sentence (in place of their sound) and one a title card.

    Drawn from a generator of its own, so the shots, colours and sounds of a (seed,
    index) are those they were before clips could speak. Every clip with audio and a
    long enough shot speaks in its longest shot, others with probability 0.3; half the
    clips (and always the first of a set) show a title card (text over a still background).
    """
    rng = np.random.default_rng([seed, index, 2])
    out = list(shots)
    sentences = [str(x) for x in rng.permutation(SENTENCES)]
    if has_audio:
        long = [i for i, s in enumerate(out) if s.duration_s >= SPEECH_MIN_SHOT_S]
        longest = max(long, key=lambda i: out[i].duration_s) if long else None
        for i in long:
            if i == longest or rng.uniform() < 0.3:
                text = sentences.pop()
                # espeak-ng at 140 words a minute speaks about 13 characters a second.
                length = min(out[i].duration_s - 0.6, len(text) / SPEECH_CHARS_PER_S + 0.3)
                sound = SoundSpec("speech", None, 0.3, round(length, 2), -6.0, text=text)
                out[i] = replace(out[i], sound=sound)
    titled = [i for i, s in enumerate(out) if s.duration_s >= TITLE_MIN_SHOT_S]
    if titled and (index == 0 or rng.uniform() < 0.5):
        i = titled[int(rng.integers(len(titled)))]
        head = TITLE_HEADS[int(rng.integers(len(TITLE_HEADS)))]
        topic = TITLE_TOPICS[int(rng.integers(len(TITLE_TOPICS)))]
        # A title card holds still: its objects give way to the text.
        title = f"{head} {int(rng.integers(1, 10))}: {topic}"
        out[i] = replace(out[i], title=title, objects=())
    return out


def frame_times(spec: ClipSpec) -> np.ndarray:
    """Presentation time (s) of every video frame of the clip."""
    if spec.vfr:
        ticks = np.concatenate([[0], np.cumsum(spec.frame_durations)[:-1]])
        return ticks / VFR_TIME_BASE
    n = int(round(spec.duration_s * spec.fps))
    return np.arange(n) / spec.fps


def shot_index_at(spec: ClipSpec, t: np.ndarray) -> np.ndarray:
    starts = np.array([s.start_s for s in spec.shots])
    return np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(spec.shots) - 1)


def caption(shot: ShotSpec) -> str:
    """One sentence describing the shot from its attributes."""
    if shot.objects:
        parts = []
        for obj in shot.objects:
            verb = "stays still" if obj.motion == "still" else f"moves {obj.motion}"
            parts.append(f"a {obj.colour} {obj.shape} {verb}")
        scene = " and ".join(parts)
    else:
        texture = {"solid": "plain", "gradient": "gradient", "noise": "textured"}[shot.background]
        scene = f"an empty {texture} {shot.colours[0]} scene"
    s = shot.sound
    if s.kind == "silence":
        sound = "in silence"
    elif s.kind == "tone":
        sound = f"while a {s.pitch} tone plays"
    elif s.kind == "noise":
        sound = "while a burst of noise sounds"
    elif s.kind == "chirp":
        sound = f"while a {s.direction} chirp sounds"
    elif s.kind == "speech":
        sound = f'while a voice says "{s.text}"'
    else:
        sound = f"while a {s.mode} chord plays"
    title = f'under the title "{shot.title}" ' if shot.title else ""
    return f"{scene} {title}{sound}"
