"""`vidgist eval`: score predictions with the SumMe/TVSum protocol (stages/protocol.py)."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict

from pipeline.datasets import load_dataset, load_predictions
from stages.protocol import METRICS, VideoResult, evaluate_video, mean_result

FIELDS = ("f1", "precision", "recall", "kendall", "spearman", "random_f1", "por")


def evaluate(pred: str, gt: str, metric: str, random_trials: int = 100, seed: int = 0) -> dict:
    """Per-video and mean figures of `pred` against the annotations in `gt`."""
    data = load_dataset(gt)
    scores = load_predictions(pred, data)
    missing = sorted(set(data.videos) - set(scores))
    if not scores:
        raise ValueError(
            f"none of the {len(data.videos)} annotated videos in {gt} has a prediction in {pred}"
        )
    results = [
        evaluate_video(scores[k], data.videos[k].truth, metric, random_trials, seed)
        for k in sorted(scores, key=list(data.videos).index)
    ]
    return {
        "pred": str(pred),
        "gt": str(gt),
        "metric": metric,
        "videos": [_row(r) for r in results],
        "mean": mean_result(results),
        "missing": missing,
    }


def _row(r: VideoResult) -> dict:
    return {"name": r.name, **{k: v for k, v in asdict(r).items() if k != "name"}, "por": r.por}


def _json_safe(value):
    """NaN (PoR over a random floor of 0) is not JSON: it becomes null."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return None if isinstance(value, float) and math.isnan(value) else value


def format_table(report: dict) -> str:
    head = f"{'video':<28}" + "".join(f"{k:>10}" for k in FIELDS)
    lines = [f"{report['pred']} against {report['gt']} (F1 {report['metric']} over annotators)"]
    lines.append(head)
    for row in [*report["videos"], {"name": "mean", **report["mean"]}]:
        lines.append(f"{row['name'][:27]:<28}" + "".join(_cell(row[k]) for k in FIELDS))
    if report["missing"]:
        shown = ", ".join(report["missing"][:5])
        more = f" and {len(report['missing']) - 5} more" if len(report["missing"]) > 5 else ""
        lines.append(f"no prediction for {len(report['missing'])} videos: {shown}{more}")
    return "\n".join(lines)


def _cell(value: float) -> str:
    return f"{'-':>10}" if math.isnan(value) else f"{value:>10.3f}"


def add_arguments(p) -> None:
    p.add_argument(
        "--pred",
        required=True,
        help="what to score: a vidgist OUT folder, an h5 of <video>/score datasets, or a "
        "fusion checkpoint (.pt) to run on the features of an h5 --gt",
    )
    p.add_argument(
        "--gt",
        required=True,
        help="annotations: an eccv16 h5 file (SumMe/TVSum) or a folder of clips with .gt.json",
    )
    p.add_argument(
        "--metric",
        choices=METRICS,
        default="avg",
        help="F1 over annotators: avg (TVSum's convention, the default) or max (SumMe's)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument(
        "--random-trials", type=int, default=100, help="random score draws for the floor (100)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random floor (0)")


def run(args) -> int:
    try:
        report = evaluate(args.pred, args.gt, args.metric, args.random_trials, args.seed)
    except (ValueError, FileNotFoundError, OSError) as exc:
        print(f"vidgist: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(_json_safe(report)) if args.json else format_table(report))
    return 0
