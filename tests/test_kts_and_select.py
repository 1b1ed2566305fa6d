import itertools

import numpy as np
import pytest

from stages import kts
from stages.records import Features, Probe, VideoRecord, VideoRef, effective_duration
from stages.select import Selector, knapsack
from stages.settings import Shared
from stages.shots import KTSShots


def _select(time_s, importance, features, duration_s):
    """Shots then selection, as pass 2 runs them on a record."""
    t = len(time_s)
    features_part = Features(
        time_s=time_s, visual=features, audio=np.zeros((t, 2)), audio_mask=np.zeros(t, bool),
        label_ids=np.zeros((t, 1)), label_probs=np.zeros((t, 1)), colour_hist=np.zeros((t, 1)),
        motion=np.zeros(t), loudness_db=np.zeros(t), pitch_hz=np.zeros(t), flatness=np.zeros(t),
    )  # fmt: skip
    record = VideoRecord(
        VideoRef("v", "/v.mp4"),
        Probe(duration_s=effective_duration(duration_s, t, 2.0)),
        features=features_part,
        importance=importance,
    )
    shared = Shared(fps=2.0)
    return Selector(shared=shared)(KTSShots(shared=shared)(record)).selection


def _planted(lengths, dim=32, noise=0.2, seed=0):
    rng = np.random.default_rng(seed)
    parts = [
        np.tile(rng.normal(size=(1, dim)), (n, 1)) + noise * rng.normal(size=(n, dim))
        for n in lengths
    ]
    return np.concatenate(parts), np.cumsum(lengths)[:-1]


def test_kts_finds_planted_change_points():
    x, truth = _planted([10, 7, 15, 4, 20, 9])
    np.testing.assert_array_equal(kts.segment(x, 30, min_len=2), truth)


def test_kts_stays_accurate_on_hour_long_sequences_by_pooling():
    rng = np.random.default_rng(1)
    lengths = rng.integers(6, 40, size=300)
    x, truth = _planted(lengths, seed=2)
    assert len(x) > 5 * 1200  # an hour at 2 fps goes through the pooled path
    found = kts.segment(x, 1000, min_len=2, max_steps=1200)
    hit = np.mean([np.abs(found - c).min() <= 1 for c in truth])
    assert hit > 0.9


def test_kts_falls_back_to_a_fixed_count_when_the_penalty_finds_too_few():
    x = np.random.default_rng(0).normal(size=(60, 8)) * 0.01 + 1.0  # nothing changes
    assert len(kts.segment(x, 20)) == 0
    assert len(kts.segment(x, 20, min_cps=3, fallback_cps=5)) == 5


def test_knapsack_is_optimal_against_brute_force():
    rng = np.random.default_rng(3)
    for _ in range(20):
        values, weights = rng.random(7), rng.integers(1, 10, 7)
        cap = int(rng.integers(5, 25))
        chosen = knapsack(values, weights, cap)
        best = max(
            (
                sum(values[list(c)])
                for r in range(8)
                for c in itertools.combinations(range(7), r)
                if sum(weights[list(c)]) <= cap
            ),
        )
        assert weights[chosen].sum() <= cap
        assert values[chosen].sum() == pytest.approx(best)


def test_selection_keeps_within_budget_and_picks_the_most_important_shot():
    time_s = np.arange(120) / 2.0
    x, _ = _planted([30, 30, 30, 30], seed=4)
    importance = np.full(120, 0.1)
    importance[60:90] = 0.9
    sel = _select(time_s, importance, x, 60.0)
    assert sel.selected_duration_s <= 0.15 * 60.0
    chosen = np.flatnonzero(sel.selected)
    assert all(60 <= sel.segments.first_step[s] < 90 for s in chosen)
    assert len(sel.keyframe_steps) == len(chosen)
    assert all(60 <= k < 90 for k in sel.keyframe_steps)


def test_a_video_too_short_for_any_segment_still_gets_one_within_one_sampled_frame():
    time_s = np.arange(6) / 2.0
    x, _ = _planted([3, 3], seed=5)
    sel = _select(time_s, np.linspace(0, 1, 6), x, 3.0)
    assert sel.selected.sum() == 1
    assert sel.selected_duration_s <= 0.15 * 3.0 + 0.5


def test_a_shot_longer_than_the_budget_stays_whole_and_its_best_excerpt_is_summarized():
    time_s = np.arange(40) / 2.0
    x, _ = _planted([20, 20], seed=6)
    importance = np.full(40, 0.1)
    importance[30:36] = 0.9  # 15 s to 18 s: what matters, inside the second 10 s shot
    sel = _select(time_s, importance, x, 20.0)
    assert list(sel.segments.first_step) == [0, 20]  # the shots, not pieces of them
    (chosen,) = np.flatnonzero(sel.selected)
    assert chosen == 1
    assert (sel.excerpt_first[1], sel.excerpt_last[1]) == (30, 36)  # 15% of 20 s = 6 frames
    assert (sel.excerpt_start[1], sel.excerpt_end[1]) == (15.0, 18.0)
    assert sel.selected_duration_s <= 3.0
    assert 30 <= sel.keyframe_steps[0] < 36


def test_the_end_of_a_long_final_shot_can_be_summarized():
    # 20 s, two 10 s shots, everything important at the very end: the end must be choosable.
    time_s = np.arange(40) / 2.0
    x, _ = _planted([20, 20], seed=7)
    importance = np.zeros(40)
    importance[-3:] = 1.0
    sel = _select(time_s, importance, x, 20.0)
    chosen = np.flatnonzero(sel.selected)
    assert sel.excerpt_last[chosen].max() == 40 and sel.excerpt_end[chosen].max() == 20.0
    assert sel.selected_duration_s <= 3.0


def test_a_video_whose_container_states_no_duration_uses_the_decoded_length():
    time_s = np.arange(120) / 2.0
    x, _ = _planted([40, 40, 40], seed=8)
    sel = _select(time_s, np.linspace(0, 1, 120), x, 0.0)
    assert sel.segments.ends[-1] == 60.0
    assert len(sel.segments) < 20  # the shots, split to fit 9 s: not one segment per frame
    assert 0 < sel.selected_duration_s <= 9.0
