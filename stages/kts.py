"""Kernel temporal segmentation (Potapov et al., ECCV 2014), kept tractable on long videos.

`cpd_auto` follows the reference code used with SumMe/TVSum: for every number of change
points m up to a maximum, the dynamic programme finds the segmentation with the least
within-segment kernel variance, then m is chosen by the penalty
    cost(m) / n + vmax * m / (2 n) * (log(n / m) + 1).
Two bounds keep it from being cubic in the number of steps n: segments longer than
`max_len` steps are not considered (a band of the cost matrix), and sequences longer than
`max_steps` are segmented on block-averaged features, then each boundary is refined on
the full sequence within one block.
"""

from __future__ import annotations

import numpy as np


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Each row scaled to unit length (zero rows stay zero)."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def cosine_kernel(x: np.ndarray) -> np.ndarray:
    x = unit_rows(x)
    return x @ x.T


def _segment_costs(kernel: np.ndarray) -> np.ndarray:
    """C[s, t] = within-segment scatter of steps s..t-1 (inclusive of s, exclusive of t)."""
    n = len(kernel)
    diag = np.concatenate([[0.0], np.cumsum(np.diag(kernel))])
    block = np.zeros((n + 1, n + 1))
    block[1:, 1:] = kernel.cumsum(0).cumsum(1)
    s = np.arange(n + 1)[:, None]
    t = np.arange(n + 1)[None, :]
    length = np.maximum(t - s, 1)
    inner = block[t, t] - block[s, t] - block[t, s] + block[s, s]
    cost = (diag[t] - diag[s]) - inner / length
    cost[t <= s] = np.inf
    return cost


def cpd_nonlin(
    kernel: np.ndarray, max_cps: int, min_len: int = 1, max_len: int | None = None
) -> tuple[list[np.ndarray], np.ndarray]:
    """Best change points for every m in 0..max_cps and the cost of each.

    Returns (change points per m, costs per m); change point i means a segment starts at i.
    """
    n = len(kernel)
    max_len = max_len or n
    cost = _segment_costs(kernel)
    s, t = np.arange(n + 1)[:, None], np.arange(n + 1)[None, :]
    cost[(t - s < min_len) | (t - s > max_len)] = np.inf
    # best[m, t]: least cost of splitting steps 0..t-1 into m + 1 segments.
    best = np.full((max_cps + 1, n + 1), np.inf)
    back = np.zeros((max_cps + 1, n + 1), dtype=np.int64)
    best[0] = cost[0]
    for m in range(1, max_cps + 1):
        total = best[m - 1][:, None] + cost  # [s, t]
        back[m] = total.argmin(0)
        best[m] = total[back[m], np.arange(n + 1)]
    solutions, costs = [], np.full(max_cps + 1, np.inf)
    for m in range(max_cps + 1):
        costs[m] = best[m, n]
        if not np.isfinite(costs[m]):
            solutions.append(np.zeros(0, dtype=np.int64))
            continue
        cps, end = [], n
        for k in range(m, 0, -1):
            end = int(back[k, end])
            cps.append(end)
        solutions.append(np.array(cps[::-1], dtype=np.int64))
    return solutions, costs


def cpd_auto(
    kernel: np.ndarray,
    max_cps: int,
    vmax: float = 1.0,
    min_len: int = 1,
    max_len: int | None = None,
    min_cps: int = 0,
    fallback_cps: int = 0,
) -> np.ndarray:
    """Change points with the number chosen by the KTS penalty.

    If the penalty picks fewer than `min_cps`, the best segmentation with `fallback_cps`
    change points is returned instead (same programme, no extra work).
    """
    n = len(kernel)
    solutions, costs = cpd_nonlin(kernel, max_cps, min_len, max_len)
    m = np.arange(max_cps + 1, dtype=np.float64)
    penalty = vmax * m / (2.0 * n) * (np.log(n / np.maximum(m, 1)) + 1.0)
    penalty[0] = 0.0
    chosen = int(np.nanargmin(costs / n + penalty))
    if chosen < min_cps:
        fallback = min(fallback_cps, max_cps)
        while fallback > 0 and not np.isfinite(costs[fallback]):
            fallback -= 1
        chosen = max(chosen, fallback)
    return solutions[chosen]


def segment(
    features: np.ndarray,
    max_cps: int,
    min_len: int = 1,
    max_len: int | None = None,
    max_steps: int = 1200,
    min_cps: int = 0,
    fallback_cps: int = 0,
) -> np.ndarray:
    """KTS change points of a [n, d] feature sequence on a cosine kernel."""
    n = len(features)
    if n < 2 or max_cps < 1:
        return np.zeros(0, dtype=np.int64)
    if n <= max_steps:
        kernel = cosine_kernel(features)
        return cpd_auto(kernel, min(max_cps, n - 1), 1.0, min_len, max_len, min_cps, fallback_cps)
    block = int(np.ceil(n / max_steps))
    m = n // block
    pooled = features[: m * block].reshape(m, block, -1).mean(1)
    coarse = cpd_auto(
        cosine_kernel(pooled),
        min(max_cps, m - 1),
        1.0,
        max(1, min_len // block),
        None if max_len is None else max(2, max_len // block),
        min_cps,
        fallback_cps,
    )
    return refine(features, coarse * block, radius=block)


def refine(features: np.ndarray, cps: np.ndarray, radius: int) -> np.ndarray:
    """Move each boundary within +-radius to where the two segments beside it cost least.

    Works on the full-rate sequence one neighbourhood at a time, so memory stays bounded.
    """
    n = len(features)
    x = unit_rows(features)
    edges = [0, *cps.tolist(), n]
    for i in range(1, len(edges) - 1):
        # Only the two segments beside the boundary matter; cap their reach to stay local.
        a = max(edges[i - 1], edges[i] - 8 * radius)
        c = min(edges[i + 1], edges[i] + 8 * radius)
        lo, hi = max(a + 1, edges[i] - radius), min(c - 1, edges[i] + radius)
        if hi < lo:
            continue
        cost = _segment_costs(x[a:c] @ x[a:c].T)
        cands = np.arange(lo - a, hi - a + 1)
        edges[i] = int(cands[int(np.argmin(cost[0, cands] + cost[cands, c - a]))]) + a
    return np.array(edges[1:-1], dtype=np.int64)
