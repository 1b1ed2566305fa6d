"""Shot detection quality and speed: vidgist's detectors against the true cuts, beside
PySceneDetect's own detectors run on the same clips in the same run.

    python -m bench.shots [--samples DIR] [--real ../shared/realclips]

Per detector: precision, recall and F1 of boundaries against the true cut times at 0.5 s
and at one frame of tolerance (one-to-one matching), over (a) the sample clips (hard cuts
and 1-s dissolves at 320x240 to 1280x720) and (b) the real clips that ship a cut list.
Speed: decoded frames per second of the detector alone (vidgist: the pass-1 scorer and the
pass-2 decision, on frames already decoded) and of the whole detection including its own
decoding (PySceneDetect opens the file itself; vidgist's decode here also samples the
frames the CNN needs, as a run does).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.common import ROOT, ensure_samples, run_measured, save
from pipeline.sources import make_sources
from stages import registry
from stages.decode import Decoder
from stages.settings import DecodeConfig, ShotsConfig


def match(found: np.ndarray, truth: np.ndarray, tolerance: float) -> int:
    """True positives: boundaries matched one-to-one to a true cut within `tolerance`."""
    used = np.zeros(len(truth), bool)
    hits = 0
    for t in np.sort(found):
        if not len(truth):
            break
        d = np.abs(truth - t)
        d[used] = np.inf
        j = int(np.argmin(d))
        if d[j] <= tolerance + 1e-9:
            used[j] = True
            hits += 1
    return hits


def vidgist_boundaries(video: Path, detector: str) -> tuple[np.ndarray, int, float, float]:
    """(boundary times, decoded frames, seconds with decode, seconds of detection alone)."""
    cfg = ShotsConfig(detector=detector)
    cls = registry.resolve("shots.detector", detector)
    shared = replace(DecodeConfig().shared(), shot_frames=True)
    decoder, scorer, stage = (
        Decoder(DecodeConfig(), shared),
        cls.scorer(cfg, shared),
        cls(cfg, shared),
    )
    t0 = time.perf_counter()
    detect_s = 0.0
    times, signals = [], []
    for w in decoder(make_sources([str(video)])[0]):
        t1 = time.perf_counter()
        w = scorer(w)
        detect_s += time.perf_counter() - t1
        times.append(w.decoded_time_s[0])
        signals.append(w.shot_signal[0])
    time_s, signal = np.concatenate(times), np.concatenate(signals)
    t1 = time.perf_counter()
    idx, _, _ = stage.boundaries(time_s, signal)
    detect_s += time.perf_counter() - t1
    return time_s[idx], len(time_s), time.perf_counter() - t0, detect_s


def pyscenedetect_boundaries(video: Path, name: str) -> tuple[np.ndarray, int, float]:
    import scenedetect

    detector = {
        "psd-content": scenedetect.ContentDetector,
        "psd-adaptive": scenedetect.AdaptiveDetector,
    }[name]()
    t0 = time.perf_counter()
    scenes = scenedetect.detect(str(video), detector, backend="pyav")
    seconds = time.perf_counter() - t0
    starts = np.array([s[0].seconds for s in scenes[1:]])
    n = int(scenes[-1][1].frame_num) if scenes else 0
    return starts, n, seconds


def clips(samples: Path, real: Path | None) -> list[dict]:
    out = []
    for v in ensure_samples(samples):
        gt = json.loads(v.with_suffix("").with_suffix(".gt.json").read_text())
        out.append(
            {
                "set": "samples",
                "path": v,
                "cuts": np.array(gt["cut_times"]),
                "fps": gt["fps"],
                "duration_s": gt["duration_s"],
            }
        )
    if real and (real / "truth.json").exists():
        for t in json.loads((real / "truth.json").read_text()):
            if t["cuts_seconds"] is None:
                continue  # no cut list from the source project
            out.append(
                {
                    "set": "real",
                    "path": real / t["file"],
                    "cuts": np.array(t["cuts_seconds"]),
                    "fps": t["fps"],
                    "duration_s": t["duration_s"],
                }
            )
    return out


def pipeline_cost(samples: Path, repeat: int) -> dict:
    """Wall time of `vidgist run` on the same clips with `kts` (no per-frame work) and with
    `content` (every decoded frame shrunk, scored, stored), alternated `repeat` times."""
    vidgist = str(Path(sys.executable).parent / "vidgist")
    walls: dict[str, list[float]] = {"kts": [], "content": []}
    for _ in range(repeat):
        for det in walls:
            out = Path(tempfile.mkdtemp(prefix=f"vidgist-shots-{det}-"))
            cmd = [
                vidgist,
                "run",
                "--input",
                str(samples),
                "--output",
                str(out),
                f"shots.detector={det}",
                "ray.progress=false",
            ]
            r = run_measured(cmd)
            shutil.rmtree(out, ignore_errors=True)
            if r["rc"] != 0:
                raise RuntimeError(r["output"][-2000:])
            walls[det].append(r["wall_s"])
    best = {d: min(w) for d, w in walls.items()}
    print(
        f"vidgist run on {samples}: best of {repeat}: kts {best['kts']:.1f} s, content "
        f"{best['content']:.1f} s: the content detector adds "
        f"{100 * (best['content'] / best['kts'] - 1):+.1f}% wall time"
    )
    return {"walls": walls, "best": best}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", default=str(ROOT / "samples"))
    ap.add_argument("--real", default=str(ROOT.parent / "shared" / "realclips"))
    ap.add_argument("--detectors", default="content,transnetv2,psd-content,psd-adaptive")
    ap.add_argument("--pipeline", type=int, default=0, help="also time vidgist run N times")
    args = ap.parse_args(argv)
    detectors = args.detectors.split(",")
    rows = []
    for clip in clips(Path(args.samples), Path(args.real) if args.real else None):
        for det in detectors:
            if det.startswith("psd-"):
                found, frames, total_s = pyscenedetect_boundaries(clip["path"], det)
                detect_s = float("nan")
            else:
                found, frames, total_s, detect_s = vidgist_boundaries(clip["path"], det)
            truth = clip["cuts"]
            rows.append(
                {
                    "set": clip["set"],
                    "clip": clip["path"].name,
                    "detector": det,
                    "true": len(truth),
                    "found": len(found),
                    "hit_05s": match(found, truth, 0.5),
                    "hit_1f": match(found, truth, 1.0 / clip["fps"]),
                    "frames": frames,
                    "total_s": total_s,
                    "detect_s": detect_s,
                    "single_shot_s": clip["duration_s"] if not len(truth) else 0.0,
                    "boundaries": [round(float(x), 3) for x in found],
                }
            )
            r = rows[-1]
            print(
                f"{r['set']:<8}{r['clip']:<28}{det:<14}true {r['true']:>2} found {r['found']:>2} "
                f"hit@0.5s {r['hit_05s']:>2} hit@1f {r['hit_1f']:>2}  {r['boundaries']}"
            )
    print()
    print(
        f"{'set':<8}{'detector':<14}{'P@0.5s':>7}{'R@0.5s':>7}{'F1@0.5s':>8}{'F1@1f':>7}"
        f"{'detect fps':>11}{'with decode fps':>16}"
    )
    summary = {}
    for s in ("samples", "real"):
        for det in detectors:
            sel = [r for r in rows if r["set"] == s and r["detector"] == det]
            if not sel:
                continue
            true, found = sum(r["true"] for r in sel), sum(r["found"] for r in sel)
            h5, h1 = sum(r["hit_05s"] for r in sel), sum(r["hit_1f"] for r in sel)
            p, rc = h5 / max(found, 1), h5 / max(true, 1)
            f1 = 2 * p * rc / max(p + rc, 1e-9)
            p1, r1 = h1 / max(found, 1), h1 / max(true, 1)
            f1_1 = 2 * p1 * r1 / max(p1 + r1, 1e-9)
            frames = sum(r["frames"] for r in sel)
            det_s = sum(r["detect_s"] for r in sel)
            tot_s = sum(r["total_s"] for r in sel)
            summary[f"{s}/{det}"] = {
                "precision": p,
                "recall": rc,
                "f1": f1,
                "f1_1frame": f1_1,
                "detect_fps": frames / det_s if det_s == det_s else None,
                "with_decode_fps": frames / tot_s,
            }
            d = summary[f"{s}/{det}"]
            det_fps = f"{d['detect_fps']:>11.0f}" if d["detect_fps"] else f"{'-':>11}"
            print(
                f"{s:<8}{det:<14}{p:>7.3f}{rc:>7.3f}{f1:>8.3f}{f1_1:>7.3f}{det_fps}"
                f"{d['with_decode_fps']:>16.0f}"
            )
    result = {"rows": rows, "summary": summary}
    if args.pipeline:
        result["pipeline"] = pipeline_cost(Path(args.samples), args.pipeline)
    save("shots", result)
    return result


if __name__ == "__main__":
    main()
