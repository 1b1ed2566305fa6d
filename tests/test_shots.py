"""Shot detection on every decoded frame, and segments that follow the shots (no Ray)."""

import colorsys
from dataclasses import replace

import numpy as np
import pytest

from jobs.samples import write_clip
from jobs.samples.world import ShotSpec, SoundSpec
from pipeline.sources import make_sources
from stages.decode import Decoder
from stages.records import Windows
from stages.settings import DecodeConfig, ShotsConfig
from stages.shots import ContentScorer, ContentShots, _hsv, segments_from_boundaries
from tests.conftest import tiny_spec


def _detect(path, cfg: ShotsConfig | None = None):
    """Decode every frame (48x27), score it and decide: (frame times, boundary indices,
    kinds, the windows' sampled-frame times)."""
    cfg = cfg or ShotsConfig()
    shared = replace(DecodeConfig().shared(), shot_frames=True)
    scorer = ContentScorer(cfg, shared)
    windows = Windows.concat(
        [scorer(w) for w in Decoder(DecodeConfig(), shared)(make_sources([str(path)])[0])]
    )
    time_s = np.concatenate(list(windows.decoded_time_s))
    signal = np.concatenate(list(windows.shot_signal))
    idx, kinds, conf = ContentShots(cfg, shared).boundaries(time_s, signal)
    sampled = np.concatenate([t[:n] for t, n in zip(windows.time_s, windows.n_frames, strict=True)])
    return time_s, idx, kinds, conf, sampled


def test_the_content_detector_sees_colours_in_standard_hsv():
    rgb = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    rgb[0, 0, 0] = (90, 90, 90)  # grey: no hue, no saturation
    h, s, v = _hsv(rgb)
    for index in np.ndindex(rgb.shape[:-1]):
        eh, es, ev = colorsys.rgb_to_hsv(*(rgb[index] / 255.0))
        hue_gap = abs(h[index] - eh * 180.0)
        assert min(hue_gap, 180.0 - hue_gap) < 1e-3
        assert s[index] == pytest.approx(es * 255.0, abs=1e-3)
        assert v[index] == pytest.approx(ev * 255.0, abs=1e-3)


def _shot(start, duration, colours, transition="cut", dissolve_s=0.0, background="solid"):
    return ShotSpec(start, duration, background, colours, 1, (), SoundSpec("silence"),
                    transition, dissolve_s)  # fmt: skip


def test_a_hard_cut_lands_on_the_frame_where_the_new_shot_begins(tiny_clip):
    time_s, idx, kinds, conf, _ = _detect(tiny_clip)
    # The tiny clip (24 fps) cuts at 3 s and 6 s: frames 72 and 144.
    assert list(idx) == [72, 144]
    np.testing.assert_allclose(time_s[idx], [3.0, 6.0], atol=1e-6)
    assert list(kinds) == ["cut", "cut"] and (conf > 0.5).all()


@pytest.mark.parametrize(
    ("fps", "dissolve_s"),
    [(24, 1.0), (24, 3.0), (60, 1.0)],  # longer than the 25-frame context in the last two
)
def test_a_dissolve_is_one_gradual_boundary_near_its_middle(tmp_path, fps, dissolve_s):
    spec = replace(
        tiny_spec("dissolve", fps=fps),
        shots=(
            _shot(0.0, 6.0, ("green", "white")),
            _shot(6.0, 6.0, ("purple", "white"), "dissolve", dissolve_s),  # centred on 6 s
        ),
    )
    time_s, idx, kinds, _, _ = _detect(write_clip(spec, tmp_path))
    assert list(kinds) == ["gradual"], time_s[idx]
    assert abs(time_s[idx[0]] - 6.0) <= 0.35


def test_a_one_shot_clip_with_nothing_changing_is_one_segment(tmp_path):
    spec = replace(
        tiny_spec("one-shot"), shots=(_shot(0.0, 12.0, ("blue", "yellow"), background="gradient"),)
    )
    time_s, idx, kinds, conf, sampled = _detect(write_clip(spec, tmp_path))
    assert len(idx) == 0
    seg = segments_from_boundaries(
        time_s[idx], kinds, conf, sampled, np.ones((len(sampled), 4)), 12.0, ShotsConfig(), 2.0
    )
    assert len(seg) == 1 and seg.n_shots == 1


def test_segments_never_cross_a_cut_and_long_shots_split_where_content_changes():
    # 3 shots on a 2 fps grid, cuts at 10.3 s and 30.1 s (decoded-frame times).
    sampled = np.arange(100) / 2.0  # 50 s
    features = np.zeros((100, 3))
    features[:, 0] = 1.0
    features[40:60, 1] = 5.0  # the middle shot's content changes at 20 s
    features[:40, 2] = features[60:, 2] = 0.0
    cuts = np.array([10.3, 30.1])
    cfg = ShotsConfig(max_segment_s=15.0)
    seg = segments_from_boundaries(
        cuts,
        np.array(["cut", "cut"], object),
        np.array([0.9, 0.8]),
        sampled,
        features,
        50.0,
        cfg,
        2.0,
    )
    for c in cuts:
        assert c in set(seg.starts)  # a segment begins exactly at every cut
        assert not ((seg.starts < c) & (seg.ends > c)).any()  # and none spans one
    assert (seg.ends - seg.starts).max() <= 15.0 + 0.5
    splits = seg.starts[seg.kind == "split"]
    assert 20.0 in set(splits)  # inside the 20 s middle shot, where the content changes
    assert list(seg.kind[:1]) == [None] and seg.n_shots == 3
    # Every sampled frame belongs to the segment (and shot) on screen at its time.
    for a, b, start, end in zip(seg.first_step, seg.last_step, seg.starts, seg.ends, strict=True):
        assert ((sampled[a:b] >= start) & (sampled[a:b] < end)).all()
