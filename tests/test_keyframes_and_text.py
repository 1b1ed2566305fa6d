import numpy as np
import torch
from torchvision.io import decode_jpeg

from bench.reference import frame_at
from stages.keyframes import KeyframeExtractor, frames_at
from stages.records import (
    Probe,
    Segments,
    Selection,
    VideoRecord,
    VideoRef,
)
from stages.tags import Tagger
from stages.text import TemplateWriter, clock, span
from tests.records import features_at_2fps


def test_keyframes_are_the_sampled_moment_at_full_display_size(tiny_clip):
    (img,) = frames_at(str(tiny_clip), [4.5])
    assert img.shape == (240, 320, 3)
    ref = frame_at(tiny_clip, 4.5, 320, 240)
    assert np.abs(img.astype(int) - ref.astype(int)).mean() < 2.0


def test_keyframes_of_a_rotated_video_are_turned_like_a_player_shows_them(rotated_clip):
    (img,) = frames_at(str(rotated_clip), [4.5])
    assert img.shape == (320, 240, 3)
    ref = frame_at(rotated_clip, 4.5, 240, 320)
    assert np.abs(img.astype(int) - ref.astype(int)).mean() < 2.0


def test_keyframes_encode_as_jpeg_that_decodes_back(tiny_clip):
    record = _record(n=18, uri=str(tiny_clip))
    record.selection.keyframe_steps = np.array([9, 1])
    record.selection.keyframe_segments = np.array([1, 0])
    kf = KeyframeExtractor()(record).keyframes
    assert list(kf.time_s) == [4.5, 0.5]
    for jpeg, w, h in zip(kf.jpeg, kf.width, kf.height, strict=True):
        img = decode_jpeg(torch.frombuffer(bytearray(jpeg), dtype=torch.uint8))
        assert tuple(img.shape) == (3, int(h), int(w)) == (3, 240, 320)


def _record(n=6, uri="/v.mp4", has_audio=True, visual_trained=True, **per_frame):
    """A record as the text stage sees it: 6 sampled frames, two segments, the second chosen."""
    hist = np.zeros((n, 12), np.float32)
    hist[:, 5] = 0.7  # blue
    hist[:, 0] = 0.3  # red
    frames = {
        "label_ids": np.zeros((n, 5), np.int16),
        "label_probs": np.zeros((n, 5), np.float32),
        "colour_hist": hist,
        "motion": np.full(n, 0.02, np.float32),
        "loudness_db": np.full(n, -10.0, np.float32),
        "pitch_hz": np.full(n, 880.0, np.float32),
        "flatness": np.full(n, 0.01, np.float32),
        **per_frame,
    }
    features = features_at_2fps(n, visual_trained, **frames)
    segments = Segments(
        np.array([0, 3]), np.array([3, n]), np.array([0.0, 1.25]), np.array([1.25, 3.0]), 65.0
    )
    selection = Selection(
        segments, np.array([0.2, 0.8]), np.array([False, True]), np.array([4]), np.array([1])
    )
    return VideoRecord(
        VideoRef("v", uri),
        Probe(duration_s=65.0, has_audio=has_audio),
        features=features,
        selection=selection,
    )


def _text(**over):
    return TemplateWriter()(_record(**over)).text


def test_text_says_what_was_measured_in_the_selected_shots():
    text = _text()
    (cap,) = text.captions
    assert (cap.start_s, cap.end_s) == (1.25, 3.0)
    assert cap.text == "mostly blue and red, with movement; a loud high tone (~880 Hz)"
    assert text.summary.startswith("1:05 video, 2 segments; summary of 1 segment (1.8 s).")
    assert "0:01.2-0:03.0: mostly blue and red" in text.summary


def test_text_names_the_tags_of_a_segment_only_when_the_cnn_is_trained():
    ids = np.full((6, 5), 417, np.int16)  # ImageNet 417: balloon
    probs = np.full((6, 5), 0.8, np.float32)

    def tagged(**over):
        return TemplateWriter()(Tagger()(_record(**over))).text

    assert "looks like a balloon" in tagged(label_ids=ids, label_probs=probs).summary
    assert "balloon" not in tagged(label_ids=ids, label_probs=probs, visual_trained=False).summary


def test_text_reports_silence_noise_and_missing_audio():
    quiet = _text(loudness_db=np.full(6, -60.0, np.float32))
    assert quiet.captions[0].text.endswith("; silence")
    noisy = _text(flatness=np.full(6, 0.6, np.float32))
    assert noisy.captions[0].text.endswith("; loud noise")
    assert _text(has_audio=False).captions[0].text.endswith("; no audio track")


def test_clock_formats_minutes_and_hours():
    assert (clock(5), clock(65), clock(3725)) == ("0:05", "1:05", "1:02:05")


def test_a_short_span_reads_in_tenths_of_a_second():
    assert span(0.04, 0.24) == "0:00.0-0:00.2"
    assert span(61.25, 62.5) == "1:01.2-1:02.5"
    assert span(3.0, 9.4) == "0:03-0:09"
