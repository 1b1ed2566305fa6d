import numpy as np
import torch
from torchvision.io import decode_jpeg

from stages.keyframes import KeyframeExtractor
from stages.reference import frame_at
from stages.text import TextWriter, clock


def test_keyframes_are_the_sampled_moment_at_full_display_size(tiny_clip):
    ex = KeyframeExtractor()
    (img,) = ex.frames_at(str(tiny_clip), [4.5])
    assert img.shape == (240, 320, 3)
    ref = frame_at(tiny_clip, 4.5, 320, 240)
    assert np.abs(img.astype(int) - ref.astype(int)).mean() < 2.0


def test_keyframes_of_a_rotated_video_are_turned_like_a_player_shows_them(rotated_clip):
    (img,) = KeyframeExtractor().frames_at(str(rotated_clip), [4.5])
    assert img.shape == (320, 240, 3)
    ref = frame_at(rotated_clip, 4.5, 240, 320)
    assert np.abs(img.astype(int) - ref.astype(int)).mean() < 2.0


def test_keyframes_encode_as_jpeg_that_decodes_back(tiny_clip):
    row = {"uri": str(tiny_clip), "time_s": np.arange(18) / 2.0, "keyframe_steps": np.array([9, 1])}
    row["keyframe_segments"] = np.array([1, 0])
    out = KeyframeExtractor()(row)
    assert list(out["keyframe_time_s"]) == [4.5, 0.5]
    for jpeg, w, h in zip(
        out["keyframe_jpeg"], out["keyframe_width"], out["keyframe_height"], strict=True
    ):
        img = decode_jpeg(torch.frombuffer(bytearray(jpeg), dtype=torch.uint8))
        assert tuple(img.shape) == (3, int(h), int(w)) == (3, 240, 320)


def _text_row(**over):
    n = 6
    hist = np.zeros((n, 12), np.float32)
    hist[:, 5] = 0.7  # blue
    hist[:, 0] = 0.3  # red
    row = {
        "duration_s": 65.0,
        "has_audio": True,
        "seg_selected": np.array([False, True]),
        "seg_first_step": np.array([0, 3]),
        "seg_last_step": np.array([3, 6]),
        "seg_start_s": np.array([0.0, 1.25]),
        "seg_end_s": np.array([1.25, 3.0]),
        "summary_duration_s": 1.75,
        "label_ids": np.zeros((n, 5), np.int16),
        "label_probs": np.zeros((n, 5), np.float32),
        "colour_hist": hist,
        "motion": np.full(n, 0.02, np.float32),
        "loudness_db": np.full(n, -10.0, np.float32),
        "pitch_hz": np.full(n, 880.0, np.float32),
        "flatness": np.full(n, 0.01, np.float32),
    }
    row.update(over)
    return row


def test_text_says_what_was_measured_in_the_selected_shots():
    out = TextWriter()(_text_row())
    (cap,) = out["captions"]
    assert (cap["start_s"], cap["end_s"]) == (1.25, 3.0)
    assert cap["text"] == "mostly blue and red, with movement; a loud high tone (~880 Hz)"
    assert out["text"].startswith("1:05 video, 2 segments; summary of 1 segment (1.8 s).")
    assert "0:01-0:03: mostly blue and red" in out["text"]


def test_text_names_confident_labels_only_when_the_cnn_is_trained():
    ids = np.full((6, 5), 417, np.int16)  # ImageNet 417: balloon
    probs = np.full((6, 5), 0.8, np.float32)
    row = _text_row(label_ids=ids, label_probs=probs)
    assert "looks like a balloon" in TextWriter()(dict(row, visual_trained=True))["text"]
    assert "balloon" not in TextWriter()(dict(row, visual_trained=False))["text"]


def test_text_reports_silence_noise_and_missing_audio():
    quiet = _text_row(loudness_db=np.full(6, -60.0, np.float32))
    assert TextWriter()(quiet)["captions"][0]["text"].endswith("; silence")
    noisy = _text_row(flatness=np.full(6, 0.6, np.float32))
    assert TextWriter()(noisy)["captions"][0]["text"].endswith("; loud noise")
    assert TextWriter()(_text_row(has_audio=False))["captions"][0]["text"].endswith(
        "; no audio track"
    )


def test_clock_formats_minutes_and_hours():
    assert (clock(5), clock(65), clock(3725)) == ("0:05", "1:05", "1:02:05")
