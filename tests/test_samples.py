import hashlib

import av
import numpy as np

from jobs.samples import generate_samples, make_clip_spec
from jobs.samples.truth import ground_truth, importance
from tests.conftest import tiny_spec, truth_of


def _decoded(path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="gray").astype(np.int16) for f in c.decode(video=0)]


def _audio_packets(path) -> str:
    with av.open(str(path)) as c:
        digest = hashlib.sha256()
        for packet in c.demux(audio=0):
            digest.update(bytes(packet))
        return digest.hexdigest()


def test_the_same_seed_renders_the_same_frames_sound_and_truth(tmp_path):
    a = generate_samples(tmp_path / "a", count=1, seed=3)[0]
    b = generate_samples(tmp_path / "b", count=1, seed=3)[0]
    assert truth_of(a) == truth_of(b)
    assert _audio_packets(a) == _audio_packets(b)
    fa, fb = _decoded(a), _decoded(b)
    assert len(fa) == len(fb)
    # Same pixels in, but x264 (one thread, fixed options) was seen, rarely, to decide a
    # few macroblocks differently (render.py): allow that much, not a moved object.
    for x, y in zip(fa, fb, strict=True):
        assert np.abs(x - y).mean() < 0.5
        assert (np.abs(x - y) > 12).mean() < 0.001


def test_a_set_of_three_covers_dissolve_silence_track_and_variable_frame_rate():
    specs = [make_clip_spec(0, i) for i in range(3)]
    assert any(s.transition == "dissolve" for s in specs[0].shots)
    assert not specs[1].has_audio
    assert specs[2].vfr and len(set(specs[2].frame_durations)) > 1
    assert {s.fps for s in specs} == {24, 25, 30}


def test_every_clip_has_3_to_8_shots_of_2_to_10_s_within_10_to_60_s():
    for i in range(12):
        spec = make_clip_spec(5, i)
        assert 3 <= len(spec.shots) <= 8
        assert all(2.0 <= s.duration_s <= 10.0 for s in spec.shots)
        assert 10.0 <= spec.duration_s <= 60.0
        assert (320, 240) <= (spec.width, spec.height) <= (1280, 720)


def test_sidecar_speaks_the_summe_tvsum_vocabulary(tiny_clip):
    gt = truth_of(tiny_clip)
    n = gt["n_frames"]
    assert n == 9 * 24
    assert len(gt["picks"]) == len(gt["gtscore"]) == 18  # 9 s at 2 fps
    assert gt["change_points"] == [[0, 71], [72, 143], [144, 215]]
    assert gt["n_frame_per_seg"] == [72, 72, 72]
    assert len(gt["user_summary"]) >= 5
    for user in gt["user_summary"]:
        assert len(user) == n and 0.05 < np.mean(user) <= 0.15
    assert gt["shots"][1]["caption"] == "a red circle moves right while a high tone plays"


def test_gtscore_ranks_moving_object_with_sound_above_empty_silence():
    spec = tiny_spec()
    empty, moving_with_tone = importance(spec, np.array([1.0, 4.5]))
    assert moving_with_tone > 0.6 > 0.1 > empty


def test_rendered_clip_matches_its_description(tiny_clip):
    with av.open(str(tiny_clip)) as c:
        v = c.streams.video[0]
        assert (v.codec_context.width, v.codec_context.height) == (320, 240)
        assert v.codec_context.name == "h264"
        assert c.streams.audio[0].codec_context.name == "aac"
        frames = list(c.decode(v))
    assert len(frames) == ground_truth(tiny_spec())["n_frames"]
    # The first shot is a plain green frame.
    rgb = frames[10].to_ndarray(format="rgb24").reshape(-1, 3).mean(0)
    assert rgb[1] > 140 and rgb[0] < 80 and rgb[2] < 90


def test_variable_frame_rate_clip_has_uneven_timestamps(tmp_path):
    from jobs.samples import write_clip

    path = write_clip(make_clip_spec(0, 2), tmp_path)
    with av.open(str(path)) as c:
        times = [f.time for f in c.decode(video=0)]
    steps = np.unique(np.round(np.diff(times), 4))
    assert len(steps) > 1
    assert len(truth_of(path)["frame_times"]) == len(times)


def test_long_clips_last_one_to_three_minutes_and_keep_every_special_case():
    specs = [make_clip_spec(202, i, long=True) for i in range(4)]
    assert all(60 <= sum(s.duration_s for s in spec.shots) <= 180 for spec in specs)
    assert [s.has_audio for s in specs[:2]] == [True, False] and specs[2].vfr


def test_each_annotator_summarizes_what_their_own_scores_rank_high():
    gt = ground_truth(make_clip_spec(5, 4))
    scores, summaries = np.asarray(gt["user_scores"]), np.asarray(gt["user_summary"], bool)
    assert scores.shape == summaries.shape == (len(summaries), gt["n_frames"])
    for score, chosen in zip(scores, summaries, strict=True):
        assert score[chosen].mean() > score[~chosen].mean()
