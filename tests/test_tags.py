"""Tags: a label names a segment only when the CNN holds it across the segment."""

import numpy as np

from stages.records import Features
from stages.settings import TagsConfig
from stages.tags import Tagger
from tests.records import features_at_2fps

BALLOON, PARACHUTE = 417, 701  # ImageNet ids


def _features(ids: np.ndarray, probs: np.ndarray, trained: bool = True) -> Features:
    return features_at_2fps(
        len(ids),
        visual_trained=trained,
        label_ids=ids.astype(np.int16),
        label_probs=probs.astype(np.float32),
    )


def _frames(top: list[int], p: list[float]) -> tuple[np.ndarray, np.ndarray]:
    ids = np.full((len(top), 5), -1)
    probs = np.zeros((len(top), 5))
    ids[:, 0], probs[:, 0] = top, p
    return ids, probs


def test_a_label_confident_on_most_frames_tags_the_segment():
    ids, probs = _frames([BALLOON] * 8 + [PARACHUTE] * 2, [0.9] * 10)
    assert Tagger().tag(_features(ids, probs), 0, 10) == ["balloon"]


def test_a_label_on_few_frames_or_with_low_probability_is_no_tag():
    ids, probs = _frames([BALLOON] * 4 + [PARACHUTE] * 6, [0.9] * 4 + [0.3] * 6)
    assert Tagger().tag(_features(ids, probs), 0, 10) == []


def test_an_untrained_encoder_or_a_one_frame_segment_gives_no_tag():
    ids, probs = _frames([BALLOON] * 10, [0.95] * 10)
    assert Tagger().tag(_features(ids, probs, trained=False), 0, 10) == []
    assert Tagger().tag(_features(ids, probs), 3, 4) == []
    assert Tagger(TagsConfig(enabled=False)).tag(_features(ids, probs), 0, 10) == []
