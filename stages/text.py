"""Text stage: a plain-language summary of the selected shots, from what was measured.

Every sentence comes from a measurement of that shot: confident ImageNet labels (only
when the visual encoder is trained), dominant colours, motion between sampled frames,
and the loudness, pitch and tonality of its audio. Nothing is invented.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stages.measure import PALETTE_NAMES
from stages.visual import imagenet_categories


@dataclass
class TextConfig:
    label_min_prob: float = 0.3  # mean top-1 probability needed to name what a shot shows
    colour_min_fraction: float = 0.15  # a colour is named when it covers this much
    # Median grey-level change per sampled frame; on the training clips moving-object
    # shots have a median of 0.003 (95% above 0.0004) and static shots 0.0.
    motion_threshold: float = 0.001
    silence_db: float = -50.0
    loud_db: float = -18.0
    noise_flatness: float = 0.3  # spectral flatness above this is noise, below is tonal


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def clock(seconds: float) -> str:
    s = int(round(seconds))
    return (
        f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


class TextWriter:
    """Stage: a video's selected segments and measurements in, summary text out."""

    def __init__(self, cfg: TextConfig | None = None):
        self.cfg = cfg or TextConfig()
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

    def caption(self, row: dict, a: int, b: int, visual_trained: bool) -> str:
        parts = []
        if visual_trained:
            label = self._label(row["label_ids"][a:b], row["label_probs"][a:b])
            if label:
                parts.append(f"looks like a {label}")
        parts.append(self._colours(row["colour_hist"][a:b]))
        moving = float(np.median(row["motion"][a:b])) > self.cfg.motion_threshold
        parts.append("with movement" if moving else "still")
        sound = self._sound(
            row["loudness_db"][a:b],
            row["pitch_hz"][a:b],
            row["flatness"][a:b],
            bool(row["has_audio"]),
        )
        return ", ".join(parts) + f"; {sound}"

    def write(self, row: dict, visual_trained: bool) -> tuple[str, list[dict]]:
        selected = np.flatnonzero(row["seg_selected"])
        captions = []
        for s in selected:
            a, b = int(row["seg_first_step"][s]), int(row["seg_last_step"][s])
            start, end = float(row["seg_start_s"][s]), float(row["seg_end_s"][s])
            captions.append(
                {"start_s": start, "end_s": end, "text": self.caption(row, a, b, visual_trained)}
            )
        total = float(row["summary_duration_s"])
        segments = _count(len(row["seg_selected"]), "segment")
        head = (
            f"{clock(float(row['duration_s']))} video, {segments}; "
            f"summary of {_count(len(captions), 'segment')} ({total:.1f} s)."
        )
        body = " ".join(
            f"{clock(c['start_s'])}-{clock(c['end_s'])}: {c['text']}." for c in captions
        )
        return (f"{head} {body}".strip(), captions)

    def __call__(self, row: dict) -> dict:
        text, captions = self.write(row, bool(row.get("visual_trained", True)))
        return {**row, "text": text, "captions": captions}
