"""Fitting the fusion model: supervised on `gtscore`, or unsupervised on an archive.

- supervised: mean squared error between the predicted importance and `gtscore`;
- unsupervised, after DR-DSN (Zhou et al., AAAI 2018): the importance is a Bernoulli
  selection probability per step; sampled selections are rewarded for diversity (picked
  steps unlike each other) and representativeness (every step close to a picked one), and
  REINFORCE with a moving baseline raises the probability of well-rewarded selections. A
  penalty keeps the mean probability near `selection_rate`, so the model cannot pick
  everything. Validation is the same expected reward, on draws with a fixed seed. The
  reward sees what a viewer sees and hears: the L2-normalised visual vector beside the
  audio vector (zero where a video is silent).

Both are seeded (same seed, same data: the same weights on the same device), early-stop on
a validation split the caller draws apart from its test data, and report progress through
a tqdm bar. Plain torch on numpy inputs: no Ray, no I/O.
"""

from __future__ import annotations

import copy
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

OBJECTIVES = ("supervised", "unsupervised")


@dataclass
class Sequence:
    """One video's per-step inputs (and target, for supervised fitting)."""

    name: str
    visual: np.ndarray  # [T, Dv] float32
    audio: np.ndarray  # [T, Da] float32
    mask: np.ndarray  # [T] bool, True where there is audio
    target: np.ndarray | None = None  # [T] importance in [0, 1]


@dataclass
class FitConfig:
    objective: str = "supervised"
    epochs: int = 300
    lr: float = 5e-4
    weight_decay: float = 1e-4
    patience: int = 40  # epochs without a better validation figure before stopping
    seed: int = 0
    device: str = "cpu"
    # unsupervised, DR-DSN's settings but for the rate: DR-DSN aims at 0.5, we aim at the
    # share a summary keeps, so sampled selections look like the summaries that are scored
    # (held-out F1 0.13 at 0.5 against about 0.2 at 0.15 on the sample clips).
    episodes: int = 5
    selection_rate: float = 0.15
    rate_penalty: float = 0.01
    far_steps: int = 20


@dataclass
class FitResult:
    model: nn.Module
    best_epoch: int
    epochs_run: int
    history: list[float] = field(default_factory=list)  # validation figure per epoch
    seconds_per_epoch: float = 0.0


def _inputs(s: Sequence, device: torch.device) -> tuple[torch.Tensor, ...]:
    return (
        torch.from_numpy(np.ascontiguousarray(s.visual, np.float32))[None].to(device),
        torch.from_numpy(np.ascontiguousarray(s.audio, np.float32))[None].to(device),
        torch.from_numpy(np.ascontiguousarray(s.mask, bool))[None].to(device),
    )


def reward_features(s: Sequence) -> np.ndarray:
    """[T, Dv + Da]: the unit visual vector beside the unit audio vector (zero where silent);
    what representativeness and diversity are measured on."""

    def unit(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-6)

    audio = unit(s.audio) * np.asarray(s.mask, np.float32)[:, None]
    return np.concatenate([unit(s.visual), audio], axis=1)


def selection_reward(x: torch.Tensor, picks: torch.Tensor, far_steps: int) -> torch.Tensor:
    """DR-DSN's diversity + representativeness reward of the picked steps; x [T, D] with
    unit-norm parts, picks [T] bool. Fewer than two picks earn nothing."""
    idx = torch.nonzero(picks).flatten()
    if len(idx) < 2:
        return x.new_zeros(())
    unit = nn.functional.normalize(x, dim=1)
    dissim = 1.0 - unit[idx] @ unit[idx].T
    # Steps far apart in time are counted as fully dissimilar: a story may return to a
    # scene, and picking both times is no redundancy.
    far = (idx[:, None] - idx[None, :]).abs() > far_steps
    dissim = torch.where(far, torch.ones_like(dissim), dissim)
    n = len(idx)
    diversity = dissim.sum() / (n * (n - 1))  # the diagonal is 0
    dist = torch.cdist(x, x[idx])
    representativeness = torch.exp(-dist.min(dim=1).values.mean())
    return diversity + representativeness


def fit(
    model: nn.Module,
    train: list[Sequence],
    val: list[Sequence],
    cfg: FitConfig,
    desc: str = "fusion",
) -> FitResult:
    """Train `model` in place and return it with the weights of its best validation epoch."""
    if cfg.objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, not {cfg.objective!r}")
    if not train or not val:
        raise ValueError(f"need training and validation videos ({len(train)}, {len(val)})")
    if cfg.objective == "supervised" and any(s.target is None for s in train + val):
        raise ValueError("supervised fitting needs a target (gtscore) for every video")
    device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    data = {id(s): (_inputs(s, device), _aux(s, cfg, device)) for s in train + val}
    baselines = {id(s): 0.0 for s in train}
    # Lower is better for both: the MSE, or minus the reward of the top selection.
    best, best_state, best_epoch, waited = float("inf"), None, 0, 0
    history: list[float] = []
    bar = tqdm(range(cfg.epochs), desc=desc, unit="epoch", file=sys.stderr, mininterval=2.0)
    t0 = time.perf_counter()
    epoch = 0
    for epoch in bar:
        for i in rng.permutation(len(train)):
            s = train[i]
            inputs, aux = data[id(s)]
            p = model(*inputs)[0]
            if cfg.objective == "supervised":
                loss = nn.functional.mse_loss(p, aux)
            else:
                loss, baselines[id(s)] = _reinforce(p, aux, baselines[id(s)], cfg, gen)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        figure = _validate(model, val, data, cfg)
        history.append(figure)
        if figure < best - 1e-5:
            best, best_epoch, waited = figure, epoch + 1, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            waited += 1
        bar.set_postfix(val=f"{figure:.4f}", best=f"{best:.4f}@{best_epoch}", refresh=False)
        if waited >= cfg.patience:
            break
    bar.close()
    seconds = (time.perf_counter() - t0) / (epoch + 1)
    model.load_state_dict(best_state)
    model.eval()
    return FitResult(model, best_epoch, epoch + 1, history, seconds)


def _aux(s: Sequence, cfg: FitConfig, device: torch.device) -> torch.Tensor:
    if cfg.objective == "supervised":
        return torch.from_numpy(np.asarray(s.target, np.float32)).to(device)
    return torch.from_numpy(reward_features(s)).to(device)


def _reinforce(
    p: torch.Tensor, x: torch.Tensor, baseline: float, cfg: FitConfig, gen: torch.Generator
) -> tuple[torch.Tensor, float]:
    p = p.float().clamp(1e-4, 1 - 1e-4)
    dist = torch.distributions.Bernoulli(probs=p)
    terms, rewards = [], []
    for _ in range(cfg.episodes):
        picks = torch.bernoulli(p.detach(), generator=gen).bool()
        reward = float(selection_reward(x, picks, cfg.far_steps))
        terms.append(-dist.log_prob(picks.float()).mean() * (reward - baseline))
        rewards.append(reward)
    loss = torch.stack(terms).mean() + cfg.rate_penalty * (p.mean() - cfg.selection_rate) ** 2
    return loss, 0.9 * baseline + 0.1 * float(np.mean(rewards))


@torch.no_grad()
def _validate(model: nn.Module, val: list[Sequence], data: dict, cfg: FitConfig) -> float:
    model.eval()
    figures = []
    for s in val:
        inputs, aux = data[id(s)]
        p = model(*inputs)[0].float()
        if cfg.objective == "supervised":
            figures.append(float(nn.functional.mse_loss(p, aux)))
        else:
            # The training objective itself, on selections drawn with a fixed seed: the
            # reward that the policy expects on videos it did not learn from.
            gen = torch.Generator(device=p.device).manual_seed(cfg.seed + 1)
            draws = [torch.bernoulli(p, generator=gen).bool() for _ in range(cfg.episodes)]
            figures.append(
                -float(np.mean([selection_reward(aux, d, cfg.far_steps).item() for d in draws]))
            )
    model.train()
    return float(np.mean(figures))


def split(items: list, fraction: float, seed: int) -> tuple[list, list]:
    """(rest, held): a seeded share `fraction` of the items held out (at least one)."""
    order = np.random.default_rng(seed).permutation(len(items))
    n = max(1, int(round(fraction * len(items))))
    return [items[i] for i in sorted(order[n:])], [items[i] for i in sorted(order[:n])]
