"""Text stage: a plain-language summary of the selected shots, from what was measured.

Every sentence comes from a measurement of that shot: confident ImageNet labels (only
when the visual encoder is trained), dominant colours, motion between sampled frames,
and the loudness, pitch and tonality of its audio. Nothing is invented.
"""

from __future__ import annotations

import numpy as np

from stages.base import VideoStage
from stages.measure import PALETTE_NAMES
from stages.records import Caption, Features, Text, VideoRecord
from stages.settings import Shared, TextConfig
from stages.visual import imagenet_categories


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def clock(seconds: float) -> str:
    s = int(round(seconds))
    return (
        f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


class TemplateWriter(VideoStage):
    """Stage (`text.writer=template`): a video's selected segments and measurements in,
    a caption per selected segment and a summary out."""

    name = "text"
    config = TextConfig

    def __init__(self, cfg: TextConfig | None = None, shared: Shared | None = None):
        super().__init__(cfg, shared)
        self.categories = imagenet_categories()

    def _label(self, ids: np.ndarray, probs: np.ndarray) -> str | None:
        top_ids, top_p = ids[:, 0], probs[:, 0]
        valid = top_ids >= 0
        if not valid.any():
            return None
        values, counts = np.unique(top_ids[valid], return_counts=True)
        best = values[counts.argmax()]
        if top_p[valid][top_ids[valid] == best].mean() < self.cfg.label_min_prob:
            return None
        return self.categories[int(best)].lower()

    def _colours(self, hist: np.ndarray) -> str:
        mean = hist.mean(0)
        order = [i for i in np.argsort(-mean) if mean[i] >= self.cfg.colour_min_fraction][:2]
        names = [PALETTE_NAMES[i] for i in order] or [PALETTE_NAMES[int(mean.argmax())]]
        return "mostly " + " and ".join(names)

    def _sound(self, loud: np.ndarray, pitch: np.ndarray, flat: np.ndarray, has_audio: bool) -> str:
        cfg = self.cfg
        if not has_audio:
            return "no audio track"
        audible = loud > cfg.silence_db
        if audible.mean() < 0.3:
            return "silence"
        level = float(np.median(loud[audible]))
        strength = "loud" if level >= cfg.loud_db else "quiet"
        if float(np.median(flat[audible])) >= cfg.noise_flatness:
            return f"{strength} noise"
        p = pitch[audible]
        hz = float(np.median(p))
        register = "low" if hz < 330 else "high" if hz > 660 else "mid"
        trend = ""
        if len(p) >= 3:
            ratio = float(np.median(p[-len(p) // 3 :]) / max(1.0, np.median(p[: len(p) // 3 or 1])))
            trend = "rising " if ratio > 1.3 else "falling " if ratio < 0.77 else ""
        return f"a {strength} {trend}{register} tone (~{hz:.0f} Hz)"

    def caption(self, f: Features, a: int, b: int, has_audio: bool) -> str:
        parts = []
        if f.visual_trained:
            label = self._label(f.label_ids[a:b], f.label_probs[a:b])
            if label:
                parts.append(f"looks like a {label}")
        parts.append(self._colours(f.colour_hist[a:b]))
        moving = float(np.median(f.motion[a:b])) > self.cfg.motion_threshold
        parts.append("with movement" if moving else "still")
        sound = self._sound(f.loudness_db[a:b], f.pitch_hz[a:b], f.flatness[a:b], has_audio)
        return ", ".join(parts) + f"; {sound}"

    def write(self, record: VideoRecord) -> Text:
        sel = record.selection
        seg = sel.segments
        # What the summary keeps of each chosen segment (an excerpt of a long one).
        captions = [
            Caption(
                float(sel.excerpt_start[s]),
                float(sel.excerpt_end[s]),
                self.caption(
                    record.features,
                    int(sel.excerpt_first[s]),
                    int(sel.excerpt_last[s]),
                    record.probe.has_audio,
                ),
            )
            for s in np.flatnonzero(sel.selected)
        ]
        head = (
            f"{clock(record.probe.duration_s)} video, {_count(len(seg), 'segment')}; "
            f"summary of {_count(len(captions), 'segment')} ({sel.selected_duration_s:.1f} s)."
        )
        body = " ".join(f"{clock(c.start_s)}-{clock(c.end_s)}: {c.text}." for c in captions)
        return Text(f"{head} {body}".strip(), captions)

    def __call__(self, record: VideoRecord) -> VideoRecord:
        record.text = self.write(record)
        return record
