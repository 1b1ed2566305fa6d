"""The SumMe/TVSum evaluation protocol, as the public reference code defines it.

The definitions follow DR-DSN's `vsum_tools` and DSNet's `vsumm_helper`, so a figure from
`vidgist eval` means what the same figure means in VASNet, DSNet, PGL-SUM or CA-SUM papers:

1. a model scores time steps (sampled frames); step i covers frames picks[i] up to the
   next pick, the last step up to n_frames (frames before picks[0] score 0);
2. a shot's score is the mean of its frames' scores, over the data set's own
   `change_points` (both ends inclusive);
3. a 0/1 knapsack takes shots (weight: length in frames, value: shot score) under a
   capacity of floor(0.15 x n_frames), solved exactly by dynamic programming; on equal
   values a later shot is left out, as in DR-DSN's knapsack;
4. the binary frame summary is compared with every annotator's: F1 (precision and recall
   guarded against empty sets), then the max over annotators (SumMe) or the mean (TVSum);
5. rank correlation after Otani et al. (CVPR 2019): Kendall's tau and Spearman's rho
   between the step scores (before the knapsack) and each annotator's scores at the same
   steps, averaged over annotators;
6. the random floor: the mean F1 of seeded uniform random step scores through the same
   shots and knapsack; PoR (performance over random) = F1 / random F1.

Pure numpy: no I/O, no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from stages.metrics import kendall_tau, spearman_rho
from stages.select import knapsack

METRICS = ("avg", "max")  # TVSum averages over annotators, SumMe takes the best one


@dataclass(frozen=True)
class Annotations:
    """One video's ground truth in the eccv16 h5 vocabulary."""

    name: str
    n_frames: int
    picks: np.ndarray  # [T] frame index of each scored step, increasing
    change_points: np.ndarray  # [S, 2] first and last frame of each shot (inclusive)
    user_summary: np.ndarray  # [U, n_frames] 0/1 per annotator
    user_scores: np.ndarray | None = None  # [U, n_frames] per annotator (TVSum), if known
    gtscore: np.ndarray | None = None  # [T] mean importance per step, for training

    def annotator_step_scores(self) -> np.ndarray:
        """[U, T]: each annotator's scores at the scored steps; their binary summaries
        where the data set has no per-annotator scores (SumMe)."""
        per_frame = self.user_scores if self.user_scores is not None else self.user_summary
        return np.asarray(per_frame, dtype=np.float64)[:, np.asarray(self.picks)]


@dataclass(frozen=True)
class VideoResult:
    name: str
    f1: float
    precision: float
    recall: float
    kendall: float
    spearman: float
    random_f1: float

    @property
    def por(self) -> float:
        return self.f1 / self.random_f1 if self.random_f1 > 0 else float("nan")


def frame_scores(step_scores: np.ndarray, picks: np.ndarray, n_frames: int) -> np.ndarray:
    """[n_frames]: each step's score over its frames, the last step to the end."""
    step_scores = np.asarray(step_scores, dtype=np.float64)
    picks = np.asarray(picks, dtype=np.int64)
    if len(step_scores) != len(picks):
        raise ValueError(f"{len(step_scores)} step scores for {len(picks)} picks")
    out = np.zeros(n_frames)
    bounds = [*picks.tolist(), n_frames]
    for i, score in enumerate(step_scores):
        out[bounds[i] : bounds[i + 1]] = score
    return out


def shot_scores(per_frame: np.ndarray, change_points: np.ndarray) -> np.ndarray:
    """Mean frame score of every shot [first, last] (inclusive)."""
    return np.array([per_frame[a : b + 1].mean() for a, b in np.asarray(change_points)])


def summarize(step_scores: np.ndarray, gt: Annotations, proportion: float = 0.15) -> np.ndarray:
    """The binary frame summary [n_frames] that the knapsack makes of these scores."""
    cps = np.asarray(gt.change_points, dtype=np.int64)
    values = shot_scores(frame_scores(step_scores, gt.picks, gt.n_frames), cps)
    weights = cps[:, 1] - cps[:, 0] + 1
    taken = knapsack(values, weights, int(math.floor(gt.n_frames * proportion)))
    summary = np.zeros(gt.n_frames, dtype=bool)
    for (a, b), t in zip(cps, taken, strict=True):
        summary[a : b + 1] = t
    return summary


def f_score(machine: np.ndarray, user: np.ndarray) -> tuple[float, float, float]:
    """(precision, recall, F1) of one binary summary against one annotator's."""
    machine, user = np.asarray(machine, dtype=bool), np.asarray(user, dtype=bool)
    overlap = float((machine & user).sum())
    precision = overlap / machine.sum() if machine.any() else 0.0
    recall = overlap / user.sum() if user.any() else 0.0
    if precision + recall == 0:
        return precision, recall, 0.0
    return precision, recall, 2 * precision * recall / (precision + recall)


def summary_f_score(
    machine: np.ndarray, users: np.ndarray, metric: str
) -> tuple[float, float, float]:
    """(precision, recall, F1) against all annotators: the mean of each ('avg'), or the
    precision and recall of the annotator with the best F1 ('max')."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, not {metric!r}")
    users = np.asarray(users, dtype=bool)
    machine = np.asarray(machine, dtype=bool)
    # Summaries of another length than the annotators' are padded with zeros or cut.
    n = users.shape[1]
    machine = np.pad(machine[:n], (0, max(0, n - len(machine))))
    per_user = np.array([f_score(machine, u) for u in users])
    if metric == "avg":
        return tuple(float(x) for x in per_user.mean(axis=0))  # type: ignore[return-value]
    best = int(np.argmax(per_user[:, 2]))
    return tuple(float(x) for x in per_user[best])  # type: ignore[return-value]


def rank_correlation(step_scores: np.ndarray, gt: Annotations) -> tuple[float, float]:
    """(Kendall tau, Spearman rho) with each annotator, averaged over annotators."""
    pairs = [
        (kendall_tau(step_scores, a), spearman_rho(step_scores, a))
        for a in gt.annotator_step_scores()
    ]
    tau, rho = np.mean(pairs, axis=0)
    return float(tau), float(rho)


def random_f1(gt: Annotations, metric: str, trials: int = 100, seed: int = 0) -> float:
    """Mean F1 of `trials` seeded uniform random score draws through the same protocol."""
    rng = np.random.default_rng(seed)
    draws = rng.random((trials, len(gt.picks)))
    return float(
        np.mean([summary_f_score(summarize(d, gt), gt.user_summary, metric)[2] for d in draws])
    )


def evaluate_video(
    step_scores: np.ndarray,
    gt: Annotations,
    metric: str,
    random_trials: int = 100,
    seed: int = 0,
) -> VideoResult:
    precision, recall, f1 = summary_f_score(summarize(step_scores, gt), gt.user_summary, metric)
    tau, rho = rank_correlation(step_scores, gt)
    return VideoResult(
        gt.name, f1, precision, recall, tau, rho, random_f1(gt, metric, random_trials, seed)
    )


def mean_result(results: list[VideoResult]) -> dict[str, float]:
    """Means over videos of every figure, and PoR of the means."""
    keys = ("f1", "precision", "recall", "kendall", "spearman", "random_f1")
    mean = {k: float(np.mean([getattr(r, k) for r in results])) for k in keys}
    mean["por"] = mean["f1"] / mean["random_f1"] if mean["random_f1"] > 0 else float("nan")
    return mean
