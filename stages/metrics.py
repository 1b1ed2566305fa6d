"""Quality figures (pure numpy); the SumMe/TVSum protocol that uses them is stages/protocol.py.

- `kendall_tau` / `spearman_rho`: rank correlation of predicted importance with the
  ground-truth score (Otani et al., CVPR 2019), tau-b and rho with ties averaged.
- `word_errors` / `character_accuracy`: how well speech and on-screen text were read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties given their average rank."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    sorted_x = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman_rho(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = rankdata(a), rankdata(b)
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-b (O(n^2); sequences here are a few thousand at most)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    da = np.sign(a[:, None] - a[None, :])
    db = np.sign(b[:, None] - b[None, :])
    iu = np.triu_indices(len(a), k=1)
    sa, sb = da[iu], db[iu]
    concordant_minus_discordant = float((sa * sb).sum())
    denom = np.sqrt(float((sa != 0).sum()) * float((sb != 0).sum()))
    return concordant_minus_discordant / denom if denom else 0.0


# --- recognition quality: word error rate and character accuracy --------------------

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
]
_ONES += ["fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def _number_words(n: int) -> list[str]:
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        tens, ones = divmod(n, 10)
        return [_TENS[tens - 2]] + ([_ONES[ones]] if ones else [])
    return [str(n)]


def normalize_words(text: str) -> list[str]:
    """Words as WER compares them: lower case, no punctuation, "2" -> "two" and
    "10%" -> "ten percent" (Whisper writes numbers as digits, references spell them)."""
    text = text.lower().replace("%", " percent ")
    # Split letters from digits ("f2" -> "f 2") and words at hyphens and slashes.
    text = re.sub(r"(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])|[-/]", " ", text)
    words: list[str] = []
    for token in re.findall(r"[a-z0-9']+", text):
        token = token.strip("'")
        if token.isdigit():
            words += _number_words(int(token))
        elif token:
            words.append(token)
    return words


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance (substitutions, insertions, deletions all cost 1)."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(word edits, reference words) after `normalize_words`; WER is their ratio."""
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    return edit_distance(ref, hyp), len(ref)


def character_accuracy(reference: str, hypothesis: str) -> float:
    """1 - character error rate (case-sensitive, spaces collapsed), floored at 0."""
    ref, hyp = " ".join(reference.split()), " ".join(hypothesis.split())
    if not ref:
        return 1.0 if not hyp else 0.0
    return max(0.0, 1.0 - edit_distance(ref, hyp) / len(ref))
