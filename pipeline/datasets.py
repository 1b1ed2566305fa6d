"""Annotated videos and predicted scores, for `vidgist eval` and `vidgist train`.

Ground truth comes either as an eccv16 h5 file (SumMe and TVSum as the literature ships
them: one group per video with `features`, `gtscore`, `user_summary`, `change_points`,
`n_frame_per_seg`, `n_frames`, `picks`, `video_name`) or as a folder of vidgist sample
clips, whose `.gt.json` sidecars carry the same fields. Both become `Annotations`.

Predictions are step scores at the annotations' picks, from one of:
- an OUT folder of `vidgist run` (the committed `scores` of each video's latest ok run,
  matched to the annotations by file name and read at the picks' times);
- an h5 file with one group per video holding `score` (DR-DSN's result format);
- a fusion checkpoint (.pt), which scores the features stored in an h5 ground truth; it is
  refused when they come from another backbone than the one it was trained on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from stages.protocol import Annotations

# The public SumMe/TVSum h5 files hold GoogLeNet pool5 vectors (1024-d) at 2 fps. A file may
# name its backbone in a `backbone` attribute; without one this is what it holds.
ECCV16_BACKBONE = "googlenet-pool5"


@dataclass(frozen=True)
class AnnotatedVideo:
    key: str  # the h5 group, or the sample clip's stem
    truth: Annotations
    pick_times: np.ndarray | None  # seconds of each pick, when the frame rate is known
    features: np.ndarray | None  # [T, D] per pick (h5 only)


@dataclass(frozen=True)
class Dataset:
    source: str
    backbone: str | None  # what the features are ("" when there are none)
    videos: dict[str, AnnotatedVideo]  # by key


def load_dataset(path: str | Path) -> Dataset:
    """An eccv16 h5 file, or a folder of sample clips with `.gt.json` sidecars."""
    path = Path(path)
    if path.is_dir():
        return _load_sidecars(path)
    if path.is_file() and h5py.is_hdf5(path):
        return _load_h5(path)
    raise ValueError(f"{path}: not an eccv16 h5 file or a folder of .gt.json sidecars")


def _load_sidecars(folder: Path) -> Dataset:
    videos = {}
    for sidecar in sorted(folder.glob("*.gt.json")):
        gt = json.loads(sidecar.read_text())
        key = sidecar.name[: -len(".gt.json")]
        truth = Annotations(
            name=key,
            n_frames=int(gt["n_frames"]),
            picks=np.asarray(gt["picks"], dtype=np.int64),
            change_points=np.asarray(gt["change_points"], dtype=np.int64).reshape(-1, 2),
            user_summary=np.asarray(gt["user_summary"], dtype=np.int8),
            user_scores=(
                np.asarray(gt["user_scores"], dtype=np.float32) if "user_scores" in gt else None
            ),
            gtscore=np.asarray(gt["gtscore"], dtype=np.float32),
        )
        videos[key] = AnnotatedVideo(key, truth, np.asarray(gt["pick_times"]), None)
    if not videos:
        raise ValueError(f"{folder}: no .gt.json sidecars (make some with `vidgist samples`)")
    return Dataset(str(folder), None, videos)


def _text(value) -> str:
    value = value[()] if isinstance(value, h5py.Dataset) else value
    if isinstance(value, np.ndarray):
        value = value.item() if value.size == 1 else value.tobytes()
    return value.decode() if isinstance(value, bytes) else str(value)


def _load_h5(path: Path) -> Dataset:
    videos = {}
    with h5py.File(path, "r") as f:
        backbone = _text(f.attrs["backbone"]) if "backbone" in f.attrs else ECCV16_BACKBONE
        for key in sorted(f.keys(), key=_natural):
            g = f[key]
            missing = [
                k for k in ("n_frames", "picks", "change_points", "user_summary") if k not in g
            ]
            if missing:
                raise ValueError(f"{path}: video {key} lacks {', '.join(missing)}")
            picks = np.asarray(g["picks"][()], dtype=np.int64)
            n_frames = int(np.asarray(g["n_frames"][()]).item())
            truth = Annotations(
                name=_text(g["video_name"]) if "video_name" in g else key,
                n_frames=n_frames,
                picks=picks,
                change_points=np.asarray(g["change_points"][()], dtype=np.int64).reshape(-1, 2),
                user_summary=np.asarray(g["user_summary"][()]).astype(np.int8),
                user_scores=(
                    np.asarray(g["user_scores"][()], dtype=np.float32)
                    if "user_scores" in g
                    else None
                ),
                gtscore=(
                    np.asarray(g["gtscore"][()], dtype=np.float32) if "gtscore" in g else None
                ),
            )
            fps = float(np.asarray(g["fps"][()]).item()) if "fps" in g else None
            features = np.asarray(g["features"][()], dtype=np.float32) if "features" in g else None
            if features is not None and len(features) != len(picks):
                raise ValueError(
                    f"{path}: video {key} has {len(features)} features, {len(picks)} picks"
                )
            videos[key] = AnnotatedVideo(key, truth, picks / fps if fps else None, features)
    if not videos:
        raise ValueError(f"{path}: no videos in this h5 file")
    return Dataset(str(path), backbone, videos)


def _natural(key: str) -> tuple:
    """video_2 before video_10."""
    head, _, tail = key.rpartition("_")
    return (head, int(tail)) if tail.isdigit() else (key, 0)


# ---------------------------------------------------------------- predictions


def load_predictions(path: str | Path, data: Dataset) -> dict[str, np.ndarray]:
    """Step scores at each annotated video's picks, by key; videos without a prediction are
    left out (the caller says how many)."""
    path = Path(path)
    if path.is_dir():
        return _from_out(path, data)
    if path.suffix == ".pt":
        return _from_checkpoint(path, data)
    if path.is_file() and h5py.is_hdf5(path):
        return _from_h5(path, data)
    raise ValueError(f"{path}: not a vidgist OUT folder, a score h5 file or a .pt checkpoint")


def _from_h5(path: Path, data: Dataset) -> dict[str, np.ndarray]:
    out = {}
    with h5py.File(path, "r") as f:
        for key, video in data.videos.items():
            if key not in f or "score" not in f[key]:
                continue
            score = np.asarray(f[key]["score"][()], dtype=np.float64).reshape(-1)
            if len(score) != len(video.truth.picks):
                raise ValueError(
                    f"{path}: {key} has {len(score)} scores for {len(video.truth.picks)} picks"
                )
            out[key] = score
    return out


def _from_out(path: Path, data: Dataset) -> dict[str, np.ndarray]:
    from pipeline.store import Store

    store = Store(path)
    videos = store.read_committed("videos", ["video_id", "uri", "status", "run_id"])
    videos = videos[videos["status"] == "ok"].sort_values("run_id")
    latest = videos.drop_duplicates("video_id", keep="last")
    scores = store.read_committed("scores", ["video_id", "run_id", "time_s", "score"])
    scores = scores.merge(latest[["video_id", "run_id", "uri"]], on=["video_id", "run_id"])
    by_name = {
        Path(r.uri).stem: (np.asarray(r.time_s), np.asarray(r.score)) for r in scores.itertuples()
    }
    out = {}
    for key, video in data.videos.items():
        found = by_name.get(video.truth.name, by_name.get(key))
        if found is None:
            continue
        if video.pick_times is None:
            raise ValueError(
                f"{data.source}: {key} has no frame rate (an `fps` field), so the times of "
                "its picks, where the run's scores are read, are unknown"
            )
        out[key] = scores_at_picks(*found, video.pick_times)
    return out


def scores_at_picks(time_s: np.ndarray, score: np.ndarray, pick_times: np.ndarray) -> np.ndarray:
    """The score of the sampled frame on screen at each pick's time (the last one sampled
    at or before it): a run's steps and a data set's picks need not coincide."""
    step = np.searchsorted(np.asarray(time_s), np.asarray(pick_times) + 1e-6, side="right") - 1
    return np.asarray(score, np.float64)[np.clip(step, 0, len(score) - 1)]


def _from_checkpoint(path: Path, data: Dataset) -> dict[str, np.ndarray]:
    from stages.fusion import load_trained

    if not data.backbone:
        raise ValueError(
            f"{data.source} holds no features to score with {path}; pass an h5 file with "
            "features, or the OUT of a `vidgist run`"
        )
    scorer = load_trained(path, features=data.backbone)
    return {
        key: scorer.score_visual(v.features).astype(np.float64)
        for key, v in data.videos.items()
        if v.features is not None
    }
