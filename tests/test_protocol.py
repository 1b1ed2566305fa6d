"""The SumMe/TVSum protocol against results computed by hand."""

import numpy as np
import pytest

from stages.protocol import (
    Annotations,
    evaluate_video,
    f_score,
    frame_scores,
    mean_result,
    random_f1,
    rank_correlation,
    shot_scores,
    summarize,
    summary_f_score,
)


def _video(n_frames, picks, change_points, users, user_scores=None):
    return Annotations(
        name="v",
        n_frames=n_frames,
        picks=np.asarray(picks),
        change_points=np.asarray(change_points),
        user_summary=np.asarray(users, dtype=np.int8),
        user_scores=None if user_scores is None else np.asarray(user_scores, dtype=float),
    )


def _frames(n, *spans):
    out = np.zeros(n, dtype=np.int8)
    for a, b in spans:
        out[a : b + 1] = 1
    return out


def test_step_scores_cover_their_frames_up_to_the_next_pick():
    assert frame_scores([1, 2, 3], [0, 3, 6], 8).tolist() == [1, 1, 1, 2, 2, 2, 3, 3]


def test_the_last_step_fills_to_n_frames_when_its_pick_falls_short():
    assert frame_scores([0.5, 0.25], [0, 2], 7).tolist() == [0.5, 0.5] + [0.25] * 5


def test_frames_before_the_first_pick_score_zero():
    assert frame_scores([1.0], [2], 4).tolist() == [0, 0, 1, 1]


def test_a_step_count_other_than_the_picks_is_refused():
    with pytest.raises(ValueError, match="2 step scores for 3 picks"):
        frame_scores([1, 2], [0, 1, 2], 3)


def test_a_shot_scores_the_mean_of_its_frames_both_ends_included():
    per_frame = np.array([1, 3, 5, 7, 9.0])
    assert shot_scores(per_frame, [[0, 1], [2, 4]]).tolist() == [2.0, 7.0]


def test_the_knapsack_takes_the_best_shots_that_fit_15_percent_of_the_frames():
    # 40 frames -> capacity 6; the 10-frame and 24-frame shots cannot fit.
    gt = _video(40, [0, 10, 13, 16], [[0, 9], [10, 12], [13, 15], [16, 39]], [_frames(40)])
    summary = summarize([1.0, 0.8, 0.9, 0.7], gt)
    assert np.flatnonzero(summary).tolist() == list(range(10, 16))


def test_a_tie_keeps_the_earlier_shot_as_dr_dsn_does():
    # Capacity 3 (20 frames): two equal shots of 3 frames, room for one.
    gt = _video(20, [0, 3, 6], [[0, 2], [3, 5], [6, 19]], [_frames(20)])
    assert np.flatnonzero(summarize([0.5, 0.5, 0.1], gt)).tolist() == [0, 1, 2]


def test_a_one_shot_video_gets_an_empty_summary_and_scores_zero():
    gt = _video(20, [0, 10], [[0, 19]], [_frames(20, (0, 2))])
    result = evaluate_video(np.array([0.9, 0.1]), gt, "avg", random_trials=3)
    assert not summarize([0.9, 0.1], gt).any()
    assert (result.f1, result.precision, result.recall) == (0.0, 0.0, 0.0)
    assert result.random_f1 == 0.0


def test_an_empty_summary_on_either_side_gives_zero_not_a_division_error():
    assert f_score(np.zeros(5, bool), _frames(5, (0, 1))) == (0.0, 0.0, 0.0)
    assert f_score(_frames(5, (0, 1)), np.zeros(5, bool)) == (0.0, 0.0, 0.0)


def test_f_score_by_hand():
    # 6 frames chosen, 6 annotated, 3 shared: P = R = F = 0.5.
    p, r, f = f_score(_frames(10, (0, 5)), _frames(10, (3, 8)))
    assert (p, r, f) == (0.5, 0.5, 0.5)


def test_avg_averages_annotators_and_max_keeps_the_best_ones_precision_and_recall():
    machine = _frames(10, (0, 3))
    users = [_frames(10, (0, 3)), _frames(10, (2, 9))]
    # Annotator 1: P = R = F = 1; annotator 2: overlap 2, P = 2/4, R = 2/8, F = 1/3.
    p, r, f = summary_f_score(machine, users, "avg")
    assert (p, r, f) == pytest.approx((0.75, 0.625, (1 + 1 / 3) / 2))
    assert summary_f_score(machine, users, "max") == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="metric"):
        summary_f_score(machine, users, "median")


def test_a_summary_longer_than_the_annotations_is_cut_to_their_length():
    assert summary_f_score(np.ones(12, bool), [np.ones(10, bool)], "avg")[2] == 1.0


def test_rank_correlation_by_hand_against_each_annotator_then_averaged():
    gt = _video(
        4, [0, 1, 2, 3], [[0, 3]], [_frames(4)] * 2, user_scores=[[1, 2, 3, 4], [1, 2, 4, 3]]
    )
    tau, rho = rank_correlation(np.array([1.0, 2, 3, 4]), gt)
    # Annotator 1 agrees fully; annotator 2 swaps one pair: tau (5-1)/6, rho 1 - 6*2/60.
    assert tau == pytest.approx((1 + 4 / 6) / 2)
    assert rho == pytest.approx((1 + 0.8) / 2)


def test_rank_correlation_reads_annotator_scores_at_the_picks():
    scores = [[0, 0, 1, 1, 2, 2, 3, 3]]
    gt = _video(8, [0, 2, 4, 6], [[0, 7]], [_frames(8)], user_scores=scores)
    assert rank_correlation(np.array([0.1, 0.2, 0.3, 0.4]), gt) == pytest.approx((1.0, 1.0))


def test_without_annotator_scores_their_binary_summaries_are_ranked():
    gt = _video(4, [0, 1, 2, 3], [[0, 3]], [_frames(4, (2, 3))])
    tau, _ = rank_correlation(np.array([0.1, 0.2, 0.8, 0.9]), gt)
    # 4 concordant pairs of 6, 2 tied in the summary: tau-b = 4 / sqrt(6 * 4).
    assert tau == pytest.approx(4 / np.sqrt(24))


def test_the_random_floor_is_seeded_and_perfect_scores_beat_it():
    cps = [[i * 10, i * 10 + 9] for i in range(10)]
    users = [_frames(100, (30, 44)), _frames(100, (30, 39))]
    gt = _video(100, list(range(0, 100, 5)), cps, users)
    assert random_f1(gt, "avg", 20, seed=1) == random_f1(gt, "avg", 20, seed=1)
    truth = np.isin(np.arange(0, 100, 5), range(30, 40)).astype(float)
    result = evaluate_video(truth, gt, "max", random_trials=20)
    assert result.f1 == 1.0 and result.random_f1 < 1.0
    assert result.por == pytest.approx(1.0 / result.random_f1)
    assert mean_result([result, result])["por"] == pytest.approx(result.por)
