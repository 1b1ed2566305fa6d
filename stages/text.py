"""Text stage: captions per selected segment and a summary of the video.

Two writers, chosen by `text.writer`:

- `narrative` (default) leads with content: the key sentences of the transcript, the
  on-screen titles and the tags of the selected shots; each caption says what a segment
  shows, what is written on it and what is said during it.
- `template` (the fallback) describes each selected segment by its measurements only:
  tags, dominant colours, motion, and the loudness and pitch of its audio.

Every sentence comes from something a stage observed; nothing is invented, and the
summary never repeats a sentence.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

from stages.base import VideoStage
from stages.measure import PALETTE_NAMES
from stages.records import Caption, Features, Text, VideoRecord
from stages.settings import TextConfig


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def clock(seconds: float, tenths: bool = False) -> str:
    """m:ss (h:mm:ss past an hour); with `tenths`, m:ss.s."""
    if tenths:
        t = round(seconds, 1)
        whole, frac = int(t), int(round((t - int(t)) * 10))
        return f"{clock(whole)}.{frac}"
    s = int(round(seconds))
    return (
        f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


def span(start_s: float, end_s: float) -> str:
    """A readable time range; tenths of a second where whole seconds would blur it."""
    tenths = end_s - start_s < 2.0 or clock(start_s) == clock(end_s)
    return f"{clock(start_s, tenths)}-{clock(end_s, tenths)}"


class TemplateWriter(VideoStage):
    """Stage (`text.writer=template`): a video's selected segments and measurements in,
    a caption per selected segment and a summary out."""

    name = "text"
    config = TextConfig

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

    def look(self, f: Features, a: int, b: int, has_audio: bool, tags: list[str]) -> str:
        """What frames [a, b) measure as: tags, colours, motion; and their sound."""
        parts = [f"looks like a {tags[0]}"] if tags else []
        parts.append(self._colours(f.colour_hist[a:b]))
        moving = float(np.median(f.motion[a:b])) > self.cfg.motion_threshold
        parts.append("with movement" if moving else "still")
        sound = self._sound(f.loudness_db[a:b], f.pitch_hz[a:b], f.flatness[a:b], has_audio)
        return ", ".join(parts) + f"; {sound}"

    @staticmethod
    def chosen(record: VideoRecord) -> list[int]:
        return [int(s) for s in np.flatnonzero(record.selection.selected)]

    @staticmethod
    def segment_tags(record: VideoRecord, s: int) -> list[str]:
        return record.tags[s] if record.tags else []

    def head(self, record: VideoRecord, n_captions: int) -> str:
        sel = record.selection
        return (
            f"{clock(record.probe.duration_s)} video, {_count(len(sel.segments), 'segment')}; "
            f"summary of {_count(n_captions, 'segment')} ({sel.selected_duration_s:.1f} s)."
        )

    def write(self, record: VideoRecord) -> Text:
        sel = record.selection
        # What the summary keeps of each chosen segment (an excerpt of a long one).
        captions = [
            Caption(
                float(sel.excerpt_start[s]),
                float(sel.excerpt_end[s]),
                self.look(
                    record.features,
                    int(sel.excerpt_first[s]),
                    int(sel.excerpt_last[s]),
                    record.probe.has_audio,
                    self.segment_tags(record, s),
                ),
            )
            for s in self.chosen(record)
        ]
        body = " ".join(f"{span(c.start_s, c.end_s)}: {c.text}." for c in captions)
        return Text(f"{self.head(record, len(captions))} {body}".strip(), captions)

    def __call__(self, record: VideoRecord) -> VideoRecord:
        record.text = self.write(record)
        return record


# --- the narrative writer -------------------------------------------------------------

# Words that say nothing about a sentence's topic (TextRank links sentences by the rest).
_STOPWORD_TEXT = """
a an the and or but if of to in on at by for with from as is are was were be been it its
this that these those i you he she we they me him her us them my your our their his so not
no do does did have has had will would can could should there here what which who when
where how all any some just than then too very
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass
class Sentence:
    start_s: float
    end_s: float
    text: str


def sentences(record: VideoRecord) -> list[Sentence]:
    """The transcript's trusted speech as sentences, each timed by its share of its span."""
    tr = record.transcript
    if tr is None:
        return []
    out = []
    for i in tr.speech:
        text, a, b = tr.text[i], float(tr.start_s[i]), float(tr.end_s[i])
        parts = [p.strip() for p in re.split(r"(?<=[.!?])\s+", text) if p.strip()]
        total = sum(len(p) for p in parts) or 1
        at = 0
        for p in parts:
            t0 = a + (b - a) * at / total
            at += len(p)
            out.append(Sentence(t0, a + (b - a) * at / total, p))
    return out


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9']+", text.lower()) if w not in _STOPWORDS}


def centrality(texts: list[str], damping: float = 0.85, iterations: int = 50) -> np.ndarray:
    """TextRank (Mihalcea & Tarau, 2004): PageRank over sentences linked by shared words,
    normalised by length. Sentences that share the most with the rest rank highest."""
    n = len(texts)
    if n <= 1:
        return np.ones(n)
    words = [_words(t) for t in texts]
    sim = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            shared = len(words[i] & words[j])
            if shared:
                norm = math.log(len(words[i]) + 1) + math.log(len(words[j]) + 1)
                sim[i, j] = sim[j, i] = shared / norm
    out_weight = sim.sum(1, keepdims=True)
    transition = np.divide(sim, out_weight, out=np.full_like(sim, 1.0 / n), where=out_weight > 0)
    rank = np.full(n, 1.0 / n)
    for _ in range(iterations):
        rank = (1 - damping) / n + damping * transition.T @ rank
    return rank / rank.max()


def _importance_at(record: VideoRecord, start_s: float, end_s: float) -> float:
    t, imp = record.features.time_s, record.importance
    inside = (t >= start_s) & (t < end_s)
    if inside.any():
        return float(imp[inside].mean())
    return float(imp[int(np.clip(np.searchsorted(t, start_s), 0, len(t) - 1))])


def _quote(text: str) -> str:
    return f"\u201c{text}\u201d"


class NarrativeWriter(TemplateWriter):
    """Stage (`text.writer=narrative`): transcript, on-screen text, tags and measurements
    in; captions that say what is shown, written and said, and a summary that leads with
    the key sentences, titles and topics."""

    def key_sentences(self, record: VideoRecord) -> list[Sentence]:
        """The `max_quotes` sentences ranked highest by importance at their time and by
        centrality in the transcript, in time order; no sentence twice."""
        found = sentences(record)
        unique = list({s.text.lower(): s for s in reversed(found)}.values())[::-1]
        if not unique:
            return []
        central = centrality([s.text for s in unique])
        imp = np.array([_importance_at(record, s.start_s, s.end_s) for s in unique])
        imp = imp / imp.max() if imp.max() > 0 else imp
        rank = 0.5 * central + 0.5 * imp
        best = sorted(np.argsort(-rank, kind="stable")[: self.cfg.max_quotes])
        return [unique[i] for i in best]

    def titles(self, record: VideoRecord) -> list[str]:
        """Distinct on-screen lines, in the order they first appear."""
        seen: dict[str, str] = {}
        for line in record.screen_text.lines if record.screen_text else []:
            seen.setdefault(line.text.lower(), line.text)
        return list(seen.values())[: self.cfg.max_titles]

    def said_during(self, record: VideoRecord, start_s: float, end_s: float) -> str:
        """Whole sentences that overlap [start, end), up to `max_caption_chars`."""
        said = []
        for s in sentences(record):
            if s.end_s > start_s and s.start_s < end_s:
                if said and len(" ".join([*said, s.text])) > self.cfg.max_caption_chars:
                    break
                said.append(s.text)
        return " ".join(said)

    def written_in(self, record: VideoRecord, s: int) -> list[str]:
        lines = record.screen_text.lines if record.screen_text else []
        return list(dict.fromkeys(line.text for line in lines if line.segment == s))

    def caption(self, record: VideoRecord, s: int) -> str:
        sel = record.selection
        a, b = int(sel.excerpt_first[s]), int(sel.excerpt_last[s])
        start, end = float(sel.excerpt_start[s]), float(sel.excerpt_end[s])
        tags = self.segment_tags(record, s)
        parts = []
        if tags:
            parts.append("shows " + ", ".join(tags))
        written = self.written_in(record, s)
        if written:
            parts.append("on screen " + ", ".join(_quote(w) for w in written))
        said = self.said_during(record, start, end)
        if said:
            parts.append("says " + _quote(said))
        if not parts:
            return self.look(record.features, a, b, record.probe.has_audio, tags)
        return "; ".join(parts)

    def write(self, record: VideoRecord) -> Text:
        sel = record.selection
        chosen = self.chosen(record)
        captions = [
            Caption(float(sel.excerpt_start[s]), float(sel.excerpt_end[s]), self.caption(record, s))
            for s in chosen
        ]
        quotes = self.key_sentences(record)
        titles = self.titles(record)
        tags = [
            t
            for t, _ in Counter(
                t for s in chosen for t in self.segment_tags(record, s)
            ).most_common()
        ]
        lead = []
        if quotes:
            lead.append("Speech: " + " ".join(_quote(q.text) for q in quotes))
        if titles:
            lead.append("On screen: " + ", ".join(_quote(t) for t in titles) + ".")
        if tags:
            lead.append("Shows " + ", ".join(tags[:3]) + ".")
        unclear = (
            record.transcript is not None
            and len(record.transcript.speech) == 0
            and any(k == "unclear" for k in record.transcript.kind)
        )
        if unclear:
            lead.append("Possible speech was heard but not transcribed (not clear English).")
        if not (quotes or titles or tags):
            # Nothing recognised: say how the chosen shots look and sound, each look once.
            looks = list(dict.fromkeys(c.text for c in captions))
            lead += [f"{looks[0][0].upper()}{looks[0][1:]}." if looks else ""]
            lead += [f"Also {look}." for look in looks[1:3]]
        summary = " ".join(x for x in [*lead, self.head(record, len(captions))] if x)
        excerpt = " ".join(q.text for q in quotes)
        return Text(summary, captions, transcript_excerpt=excerpt, tags=tags)
