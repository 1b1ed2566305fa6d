"""Summary quality against baselines, with `vidgist eval`'s protocol on held-out clips.

    python -m bench.quality [--work DIR] [key=value ...]   (train profile overrides)

The clips, features and fitting settings are `vidgist train`'s (conf/train.yaml): 80
training clips, and 12 held-out clips of 1-3 minutes drawn with a seed never trained on.
Every learned row is fitted here on the training clips alone (validation split inside
them) and scored on the held-out clips; the full supervised row is exactly what `vidgist
train` ships (same data, seed and settings), which the script checks by digest when the
shipped checkpoint's features match.

Rows: random scores (mean of the random draws), uniform sampling, a label-free coverage
baseline (facility location on the visual features), visual-only and audio-only models,
the full model supervised and unsupervised, and `gtscore` itself (the ceiling).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

from bench.common import save
from jobs.train import TrainConfig, load_train_config
from jobs.training import Clip, encode_samples, fit_fusion, predictor, protocol_metrics
from pipeline.config import load_config


def uniform_scores(c: Clip, budget: float = 0.15) -> np.ndarray:
    """Evenly spaced steps (the budget's share of them) score 1, the others 0."""
    t = len(c.time_s)
    scores = np.zeros(t)
    scores[np.linspace(0, t - 1, max(1, round(budget * t))).round().astype(int)] = 1.0
    return scores


def coverage_scores(c: Clip) -> np.ndarray:
    """Facility location on the visual features, greedily: each step's score is how early
    the greedy cover picks it (the first pick scores 1, the last 1/T)."""
    x = c.seq.visual / np.maximum(np.linalg.norm(c.seq.visual, axis=1, keepdims=True), 1e-6)
    sim = np.clip(x @ x.T, 0.0, None)
    t = len(x)
    covered = np.zeros(t)
    scores = np.zeros(t)
    left = np.ones(t, bool)
    for rank in range(t):
        gains = np.maximum(sim - covered[:, None], 0.0).sum(axis=0)
        gains[~left] = -1.0
        best = int(np.argmax(gains))
        scores[best] = 1.0 - rank / t
        covered = np.maximum(covered, sim[:, best])
        left[best] = False
    return scores


def figures(clips: list[Clip], scores_of, tc: TrainConfig, at_picks: bool = False) -> dict:
    """F1 (avg and max over annotators), PoR, tau and rho, averaged over clips."""
    per_metric = {
        m: protocol_metrics(clips, scores_of, replace(tc, metric=m), at_picks)
        for m in ("avg", "max")
    }
    avg, mx = per_metric["avg"], per_metric["max"]
    return {
        "f1_avg": avg["f1"],
        "f1_max": mx["f1"],
        "por_avg": avg["por"],
        "por_max": mx["por"],
        "random_f1_avg": avg["random_f1"],
        "random_f1_max": mx["random_f1"],
        "kendall": avg["kendall"],
        "spearman": avg["spearman"],
    }


def random_row(clips: list[Clip], trials: int, tc: TrainConfig) -> dict:
    """Each figure averaged over `trials` seeded random score draws."""
    rows = []
    for trial in range(trials):

        def draw(c: Clip, trial=trial) -> np.ndarray:
            rng = np.random.default_rng([tc.seed, trial, len(c.time_s)])
            return rng.random(len(c.time_s))

        rows.append(figures(clips, draw, replace(tc, random_trials=1)))
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", help="training work folder (default: the train profile's)")
    parser.add_argument("--random-rows", type=int, default=20, help="draws for the random row")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of conf/train.yaml")
    args = parser.parse_args(argv)
    tc: TrainConfig = load_train_config("train.yaml", args.overrides)
    if args.work:
        tc = replace(tc, work=args.work)
    cfg = load_config(tc.pipeline, tc.overrides)
    cfg.fusion.checkpoint = "none"
    fit_on, held_out = encode_samples(tc, cfg)
    minutes = sum(float(c.time_s[-1]) for c in held_out) / 60
    print(
        f"{len(fit_on)} training clips, {len(held_out)} held-out clips "
        f"({minutes:.1f} min; seed {tc.test_seed}, never trained on)"
    )

    rows: dict[str, dict] = {}
    fits: dict[str, dict] = {}
    rows["random scores"] = random_row(held_out, args.random_rows, tc)
    rows["uniform sampling"] = figures(held_out, uniform_scores, tc)
    rows["coverage (facility location)"] = figures(held_out, coverage_scores, tc)
    models = {
        "visual only (supervised)": ("supervised", "visual"),
        "audio only (supervised)": ("supervised", "audio"),
        "fusion, supervised": ("supervised", "visual+audio"),
        "fusion, unsupervised": ("unsupervised", "visual+audio"),
    }
    for name, (objective, inputs) in models.items():
        t0 = time.perf_counter()
        result = fit_fusion(tc, cfg, fit_on, objective, inputs)
        fits[name] = {
            "seconds": time.perf_counter() - t0,
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "seconds_per_epoch": result.seconds_per_epoch,
        }
        rows[name] = figures(held_out, predictor(result.model), tc)
    rows["gtscore (ceiling)"] = figures(
        held_out, lambda c: c.video.truth.gtscore, tc, at_picks=True
    )

    print(format_table(rows))
    checks = targets(rows)
    for line in checks["lines"]:
        print(line)
    result = {
        "held_out_clips": len(held_out),
        "held_out_minutes": minutes,
        "training_clips": len(fit_on),
        "rows": rows,
        "fits": fits,
        "targets": checks,
    }
    print(f"results: {save('quality', result)}")
    return result


def format_table(rows: dict[str, dict]) -> str:
    head = f"{'scores':<30} {'F1 avg':>7} {'F1 max':>7} {'PoR avg':>8} {'tau':>7} {'rho':>7}"
    lines = [head, "-" * len(head)]
    for name, r in rows.items():
        lines.append(
            f"{name:<30} {r['f1_avg']:>7.3f} {r['f1_max']:>7.3f} {r['por_avg']:>8.2f} "
            f"{r['kendall']:>7.3f} {r['spearman']:>7.3f}"
        )
    return "\n".join(lines)


def targets(rows: dict[str, dict]) -> dict:
    full, ceiling = rows["fusion, supervised"], rows["gtscore (ceiling)"]
    unsup, cover = rows["fusion, unsupervised"], rows["coverage (facility location)"]
    checks = {
        "full tau >= 0.6": full["kendall"] >= 0.6,
        "full F1 >= 0.9 x ceiling": full["f1_avg"] >= 0.9 * ceiling["f1_avg"],
        "full tau > visual only": full["kendall"] > rows["visual only (supervised)"]["kendall"],
        "full tau > audio only": full["kendall"] > rows["audio only (supervised)"]["kendall"],
        "unsupervised F1 > coverage": unsup["f1_avg"] > cover["f1_avg"],
        "unsupervised tau > coverage": unsup["kendall"] > cover["kendall"],
    }
    lines = [f"target {k}: {'met' if v else 'NOT met'}" for k, v in checks.items()]
    lines.append(
        f"full F1 / ceiling F1 = {full['f1_avg'] / ceiling['f1_avg']:.3f} (avg), "
        f"{full['f1_max'] / ceiling['f1_max']:.3f} (max)"
    )
    return {"checks": checks, "lines": lines}


if __name__ == "__main__":
    main()
