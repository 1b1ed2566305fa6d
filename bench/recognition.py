"""What the summary's words rest on: speech recognition, on-screen text and tags, measured
against known truth, plus what these stages cost a run.

    python -m bench.recognition [--samples DIR] [--count 12] [--seed 11]
                                [--real ../shared/realclips] [--pipeline N]

- Speech: word error rate (WER, after `stages.metrics.normalize_words`) of the speech
  stage's trusted transcript against the sentences the sample clips speak (espeak-ng) and
  against the transcripts the real GRID clips ship; words it invents where nothing is
  said (silent, tone, noise and music shots; the real clips without speech); and words it
  lets through from sentences spoken in other languages (espeak-ng voices).
- On-screen text: character accuracy of the OCR stage on every title card of the sample
  clips (the frame in the middle of the title's shot), and lines it reads off frames
  that show no text.
- Tags: tags given to the sample clips' true shots. The sample world holds no ImageNet
  object (shapes on colours), so every tag there is wrong; the target is none.
  Tags on the real clips are printed beside their content for a reader to judge.
- Cost (--pipeline N): `vidgist run` wall time with speech and OCR off and on, on the
  same clips, alternated N times (best of N).

Samples default to a seed that neither the demo (0) nor training (conf/train.yaml) uses.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

import numpy as np

from bench.common import ROOT, ensure_samples, run_measured, save
from jobs.samples.render import can_speak, speak
from pipeline.sources import make_sources
from stages.audio import AudioEncoder
from stages.decode import Decoder, probe
from stages.keyframes import frames_at
from stages.measure import Measurer
from stages.metrics import character_accuracy, normalize_words, word_errors
from stages.ocr import ScreenReader
from stages.records import VideoRecord, Windows, features_from_windows
from stages.settings import DecodeConfig, VisualConfig
from stages.speech import SAMPLE_RATE, SpeechRecognizer
from stages.tags import Tagger
from stages.visual import VisualEncoder

# Sentences in other languages: a voice the English recogniser must not turn into English.
FOREIGN = (
    ("de", "Heute ist das Wetter sehr schön, wir gehen in den Park."),
    ("de", "Der Zug fährt um acht Uhr vom Hauptbahnhof ab."),
    ("fr", "Bonjour à tous, la réunion commence dans cinq minutes."),
    ("fr", "Le marché était très animé ce matin."),
    ("es", "Los niños jugaron en el parque hasta la noche."),
    ("it", "La città è molto bella in primavera."),
    ("pl", "Dzisiaj jest bardzo ładna pogoda w mieście."),
    ("ru", "Сегодня хорошая погода, мы идём в парк."),
    ("cmn", "今天天气很好，我们去公园散步吧。"),
    ("cmn", "会议将在五分钟后开始。"),
    ("ja", "今日はとても良い天気です。"),
)


def record_for(path: Path) -> VideoRecord:
    (ref,) = make_sources([str(path)])
    return VideoRecord(ref, probe(ref.uri))


def speech_on_samples(videos: list[Path], recognizer: SpeechRecognizer) -> dict:
    errors = words = invented = 0
    seconds_audio = seconds_spent = 0.0
    rows = []
    for v in videos:
        truth = json.loads(v.with_suffix("").with_suffix(".gt.json").read_text())
        if not truth["has_audio"]:
            continue
        if not truth["speech_rendered"]:
            raise SystemExit(f"{v} was rendered without espeak-ng: its speech is silent")
        t0 = time.perf_counter()
        tr = recognizer(record_for(v)).transcript
        seconds_spent += time.perf_counter() - t0
        seconds_audio += truth["duration_s"]
        said = [s for s in truth["shots"] if s["speech"]]
        ref = " ".join(s["speech"] for s in said)
        inside, outside = [], []
        for i in tr.speech:
            mid = (tr.start_s[i] + tr.end_s[i]) / 2
            in_speech = any(s["start_s"] <= mid < s["end_s"] for s in said)
            (inside if in_speech else outside).append(tr.text[i])
        e, n = word_errors(ref, " ".join(inside))
        errors, words = errors + e, words + n
        invented += sum(len(normalize_words(t)) for t in outside)
        rows.append({"clip": v.name, "reference": ref, "heard": inside, "invented": outside})
    return {
        "clips": rows,
        "wer": errors / max(1, words),
        "reference_words": words,
        "invented_words": invented,
        "real_time_factor": seconds_spent / max(1e-9, seconds_audio),
    }


def speech_on_real(real: Path, recognizer: SpeechRecognizer) -> dict:
    errors = words = invented = 0
    rows = []
    for t in json.loads((real / "truth.json").read_text()):
        if not t["has_audio"]:
            continue
        tr = recognizer(record_for(real / t["file"])).transcript
        heard = " ".join(tr.text[i] for i in tr.speech)
        if t["transcript"]:
            e, n = word_errors(t["transcript"], heard)
            errors, words = errors + e, words + n
        else:
            invented += len(normalize_words(heard))
        rows.append({"clip": t["file"], "reference": t["transcript"], "heard": heard})
    return {
        "clips": rows,
        "wer": errors / max(1, words),
        "reference_words": words,
        "invented_words": invented,
    }


def foreign_speech(recognizer: SpeechRecognizer) -> dict:
    """Words let through as English from sentences spoken in other languages."""
    rows, let_through = [], 0
    for voice, text in FOREIGN:
        audio = speak(text, SAMPLE_RATE) * 0.5
        heard = recognizer.hear(audio, 0.0)
        kept = [h.text for h in heard if recognizer.trusted(h)]
        let_through += sum(len(normalize_words(k)) for k in kept)
        rows.append({"voice": voice, "heard": [h.text for h in heard], "kept": kept})
    return {"sentences": rows, "words_let_through": let_through, "n_sentences": len(FOREIGN)}


def ocr_on_titles(videos: list[Path], reader: ScreenReader) -> dict:
    accuracies, rows, false_lines, blank_frames = [], [], 0, 0
    for v in videos:
        truth = json.loads(v.with_suffix("").with_suffix(".gt.json").read_text())
        for shot in truth["shots"]:
            mid = (shot["start_s"] + shot["end_s"]) / 2
            (image,) = frames_at(str(v), [mid])
            lines = [text for text, _ in reader.read(image)]
            if shot["title"]:
                acc = character_accuracy(shot["title"], " ".join(lines))
                accuracies.append(acc)
                rows.append({"clip": v.name, "title": shot["title"], "read": lines, "acc": acc})
            else:
                blank_frames += 1
                false_lines += len(lines)
    return {
        "titles": rows,
        "char_accuracy": float(np.mean(accuracies)) if accuracies else None,
        "n_titles": len(accuracies),
        "frames_without_text": blank_frames,
        "lines_read_off_them": false_lines,
    }


def tags_on(path: Path, shot_starts: list[float], encoders, decoder, measurer, tagger) -> list:
    (ref,) = make_sources([str(path)])
    visual, audio = encoders
    f = features_from_windows(audio(visual(Windows.concat([measurer(w) for w in decoder(ref)]))))
    edges = np.searchsorted(f.time_s, [*shot_starts, np.inf])
    return [tagger.tag(f, int(a), int(b)) for a, b in pairwise(edges)]


def tags_everywhere(videos: list[Path], real: Path | None) -> dict:
    shared = DecodeConfig().shared()
    decoder, measurer = Decoder(DecodeConfig(), shared), Measurer(None, shared)
    encoder = (VisualEncoder(VisualConfig(device="cpu"), shared), AudioEncoder(None, shared))
    tagger = Tagger(None, shared)
    shots = tagged = n_tags = 0
    wrong = []
    for v in videos:
        truth = json.loads(v.with_suffix("").with_suffix(".gt.json").read_text())
        per_shot = tags_on(
            v, [s["start_s"] for s in truth["shots"]], encoder, decoder, measurer, tagger
        )
        shots += len(per_shot)
        tagged += sum(bool(t) for t in per_shot)
        n_tags += sum(len(t) for t in per_shot)
        wrong += [(v.name, k, t) for k, t in enumerate(per_shot) if t]
    real_rows = []
    if real and (real / "truth.json").exists():
        for t in json.loads((real / "truth.json").read_text()):
            starts = [0.0, *(t["cuts_seconds"] or [])]
            per_shot = tags_on(real / t["file"], starts, encoder, decoder, measurer, tagger)
            real_rows.append({"clip": t["file"], "tags_per_shot": per_shot})
    return {
        "sample_shots": shots,
        "sample_shots_tagged": tagged,
        "sample_tags": n_tags,
        "sample_tags_given": wrong,
        "real": real_rows,
    }


def pipeline_cost(samples: Path, repeat: int) -> dict:
    vidgist = str(Path(sys.executable).parent / "vidgist")
    variants = {"off": ["speech.enabled=false", "ocr.enabled=false"], "on": []}
    walls: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(repeat):
        for name, overrides in variants.items():
            out = Path(tempfile.mkdtemp(prefix=f"vidgist-recognition-{name}-"))
            cmd = [vidgist, "run", "--input", str(samples), "--output", str(out)]
            r = run_measured([*cmd, *overrides, "ray.progress=false"])
            shutil.rmtree(out, ignore_errors=True)
            if r["rc"] != 0:
                raise RuntimeError(r["output"][-2000:])
            walls[name].append(r["wall_s"])
    best = {k: min(w) for k, w in walls.items()}
    return {"walls": walls, "best": best, "ratio": best["on"] / best["off"]}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", default=str(ROOT / "bench" / ".samples-recognition"))
    ap.add_argument("--count", type=int, default=12)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--real", default=str(ROOT.parent / "shared" / "realclips"))
    ap.add_argument("--pipeline", type=int, default=0, help="also time vidgist run N times")
    args = ap.parse_args(argv)
    if not can_speak():
        raise SystemExit("bench.recognition needs espeak-ng (apt-get install espeak-ng)")
    samples, real = Path(args.samples), Path(args.real)
    real = real if (real / "truth.json").exists() else None
    videos = ensure_samples(samples, count=args.count, seed=args.seed)
    recognizer, reader = SpeechRecognizer(), ScreenReader()
    result: dict = {"samples": str(samples), "count": args.count, "seed": args.seed}

    result["speech_samples"] = s = speech_on_samples(videos, recognizer)
    print(
        f"speech, sample clips: WER {s['wer']:.3f} over {s['reference_words']} words; "
        f"{s['invented_words']} words invented outside speech; "
        f"{s['real_time_factor']:.3f} s per s of audio"
    )
    if real:
        result["speech_real"] = r = speech_on_real(real, recognizer)
        print(
            f"speech, real clips: WER {r['wer']:.3f} over {r['reference_words']} words; "
            f"{r['invented_words']} words invented on clips without speech"
        )
        for row in r["clips"]:
            print(f"  {row['clip']}: truth {row['reference']!r} heard {row['heard']!r}")
    result["speech_foreign"] = f = foreign_speech(recognizer)
    print(
        f"speech, other languages: {f['words_let_through']} words let through as English "
        f"from {f['n_sentences']} sentences"
    )
    result["ocr"] = o = ocr_on_titles(videos, reader)
    print(
        f"ocr, title cards: character accuracy {o['char_accuracy']:.3f} over {o['n_titles']} "
        f"titles; {o['lines_read_off_them']} lines read off {o['frames_without_text']} "
        "frames without text"
    )
    result["tags"] = t = tags_everywhere(videos, real)
    print(
        f"tags, sample world: {t['sample_tags']} tags on {t['sample_shots_tagged']} of "
        f"{t['sample_shots']} shots (every tag there would be wrong): {t['sample_tags_given']}"
    )
    for row in t["real"]:
        print(f"  {row['clip']}: {row['tags_per_shot']}")
    if args.pipeline:
        result["pipeline"] = p = pipeline_cost(samples, args.pipeline)
        minutes = (
            sum(
                json.loads(v.with_suffix("").with_suffix(".gt.json").read_text())["duration_s"]
                for v in videos
            )
            / 60
        )
        p["extra_s_per_minute"] = (p["best"]["on"] - p["best"]["off"]) / minutes
        print(
            f"vidgist run, best of {args.pipeline}: speech+OCR off {p['best']['off']:.1f} s, "
            f"on {p['best']['on']:.1f} s: x{p['ratio']:.2f} "
            f"({p['extra_s_per_minute']:.1f} s more per minute of video)"
        )
    print(f"saved {save('recognition', result)}")
    return result


if __name__ == "__main__":
    main()
