import os
from dataclasses import replace

import numpy as np
import pytest

from stages.decode import AudioCursor, Deadline, Decoder, probe
from stages.records import VideoRef
from stages.settings import DecodeConfig
from tests.conftest import truth_of


def _rows(uri, **cfg):
    """The decoder's windows (each a Windows of one), as one dict of values per window."""
    windows = Decoder(DecodeConfig(**cfg))(VideoRef("v", str(uri)))
    return [{k: v[0] for k, v in w.to_columns().items()} for w in windows]


def test_probe_reports_duration_rate_size_codec_and_audio(tiny_clip, silent_clip):
    p = probe(str(tiny_clip))
    assert p.duration_s == pytest.approx(9.0, abs=0.05)
    assert (p.fps, p.width, p.height, p.video_codec, p.has_audio) == (24.0, 320, 240, "h264", True)
    assert probe(str(silent_clip)).has_audio is False


def test_probe_reports_display_size_after_rotation(rotated_clip):
    p = probe(str(rotated_clip))
    assert (p.width, p.height, p.rotation) == (240, 320, 90)


def test_frames_are_sampled_by_timestamp_into_fixed_windows(tiny_clip):
    rows = _rows(tiny_clip, window=8, frame_size=64)
    assert [r["window_index"] for r in rows] == [0, 1, 2]
    assert [r["n_frames"] for r in rows] == [8, 8, 2]
    assert all(r["frames"].shape == (8, 64, 64, 3) for r in rows)
    times = np.concatenate([r["time_s"][: r["n_frames"]] for r in rows])
    np.testing.assert_allclose(times, np.arange(18) / 2.0)
    assert rows[-1]["is_last"] and not rows[0]["is_last"]
    assert np.all(rows[-1]["time_s"][2:] == -1)  # padding is marked


def test_sampled_frames_follow_the_shots(tiny_clip):
    rows = _rows(tiny_clip, window=32, frame_size=32)
    frames = rows[0]["frames"][:18].reshape(18, -1, 3).mean(1)
    assert frames[1][1] > frames[1][0]  # green shot
    assert frames[8][2] > frames[8][1]  # blue shot


def test_audio_is_16k_mono_aligned_with_the_frames(tiny_clip):
    (row,) = _rows(tiny_clip, window=32)
    audio = row["wave"]
    assert audio.dtype == np.float32 and audio.shape == (32 * 8000,)
    rms = np.sqrt((audio[: 18 * 8000].reshape(18, 8000) ** 2).mean(1))
    assert rms[:6].max() < 1e-3  # silent first shot
    assert rms[7:11].min() > 0.1  # tone from 3 s to 6 s
    assert row["wave_from"] == 0
    assert row["wave_to"] == pytest.approx(9 * 16000, abs=2000)


def test_the_audio_cursor_gives_the_same_samples_in_one_span_or_in_many(tiny_clip):
    def spans(size: int) -> np.ndarray:
        cursor = AudioCursor(str(tiny_clip), 16000, 0.0, Deadline(60))
        try:
            parts = [cursor.take(i, i + size)[0] for i in range(0, 12 * 16000, size)]
        finally:
            cursor.close()
        return np.concatenate(parts)[: 12 * 16000]

    whole = spans(12 * 16000)
    assert whole[: 9 * 16000 - 2000].any() and not whole[10 * 16000 :].any()
    for size in (333, 16000, 5 * 16000 + 7):
        np.testing.assert_array_equal(spans(size), whole)


def test_a_clip_without_audio_gets_zeros_and_no_audio_count(silent_clip):
    (row,) = _rows(silent_clip)
    assert row["wave_to"] == row["wave_from"] == 0 and not row["wave"].any()


def test_variable_frame_rate_clip_samples_the_frames_on_screen(tmp_path):
    from jobs.samples import make_clip_spec, write_clip

    path = write_clip(make_clip_spec(0, 2), tmp_path)
    gt = truth_of(path)
    rows = _rows(path, frame_size=32)
    n = sum(r["n_frames"] for r in rows)
    assert n == len(gt["picks"])


@pytest.mark.parametrize("kind", ["empty", "random", "truncated"])
def test_a_bad_file_becomes_one_error_row_with_a_one_line_reason(bad_inputs, kind):
    rows = _rows(bad_inputs[kind])
    assert rows[-1]["error"]
    assert "\n" not in rows[-1]["error"]
    assert rows[-1]["window_index"] == -1


def test_containers_are_closed_after_decoding(tiny_clip, bad_inputs):
    clips = {str(tiny_clip), str(bad_inputs["truncated"])}

    def open_files():
        # Only descriptors on the clips themselves: other threads may open files meanwhile.
        links = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                links.append(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:
                continue
        return sum(link in clips for link in links)

    for _ in range(3):
        _rows(tiny_clip)
        _rows(bad_inputs["truncated"])
        gen = Decoder(DecodeConfig(window=4))(VideoRef("v", str(tiny_clip)))
        next(gen)
        assert open_files() > 0  # the generator holds the clip open...
        gen.close()  # ...until a consumer that stops early closes it
        assert open_files() == 0


def test_a_video_slower_than_the_time_limit_is_an_error(tiny_clip):
    rows = _rows(tiny_clip, timeout_s=0.0)
    assert "longer than" in rows[-1]["error"]


def test_audio_that_starts_late_is_placed_and_masked_where_it_is(tmp_path):
    import av

    from stages.audio import AudioEncoder
    from stages.records import Windows
    from stages.settings import AudioConfig

    path = tmp_path / "late-audio.mp4"
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=24)
        v.width, v.height, v.pix_fmt = 64, 64, "yuv420p"
        a = c.add_stream("aac", rate=48000, layout="mono")
        for i in range(5 * 24):
            f = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
            f.pts = i
            c.mux(v.encode(f))
        c.mux(v.encode(None))
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(48000) / 48000)).astype(np.float32)
        for i0 in range(0, len(tone), 1024):
            af = av.AudioFrame.from_ndarray(
                tone[None, i0 : i0 + 1024].copy(), format="fltp", layout="mono"
            )
            af.sample_rate, af.pts = 48000, 3 * 48000 + i0  # the track starts at 3 s
            c.mux(a.encode(af))
        c.mux(a.encode(None))
    (row,) = _rows(path, window=16, frame_size=32)
    assert row["wave_from"] == pytest.approx(3 * 16000, abs=800)
    rms = np.sqrt((row["wave"][: 10 * 8000].reshape(10, 8000) ** 2).mean(1))
    assert rms[:5].max() < 1e-3 and rms[6:8].min() > 0.1  # the tone sits at 3-4 s
    out = AudioEncoder(AudioConfig(device="cpu"))(
        Windows.from_columns({k: np.asarray([v]) for k, v in row.items()})
    )
    np.testing.assert_array_equal(np.flatnonzero(out.audio_mask[0]), [6, 7])


def test_each_window_carries_the_decoded_frames_before_and_after_it(tmp_path):
    import av

    from stages.records import SHOT_CONTEXT

    path = tmp_path / "slow.mp4"  # 2 fps: 4 decoded frames per window of 4 samples
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=2)
        v.width, v.height, v.pix_fmt = 64, 64, "yuv420p"
        for i in range(40):
            f = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 5, np.uint8), format="rgb24")
            f.pts = i
            c.mux(v.encode(f))
        c.mux(v.encode(None))
    cfg = DecodeConfig(window=4)
    windows = list(Decoder(cfg, replace(cfg.shared(), shot_frames=True))(VideoRef("v", str(path))))
    assert [len(w.tiny[0]) for w in windows] == [4] * 10
    # Context comes from as many windows as it takes, up to what the video has.
    assert [len(w.tiny_tail[0]) for w in windows] == [25, 25, 25, 24, 20, 16, 12, 8, 4, 0]
    assert [len(w.tiny_lead[0]) for w in windows] == [0, 4, 8, 12, 16, 20, 24, 25, 25, 25]
    frames = np.concatenate([w.tiny[0] for w in windows])
    np.testing.assert_array_equal(windows[2].tiny_tail[0], frames[12 : 12 + SHOT_CONTEXT])
    np.testing.assert_array_equal(windows[8].tiny_lead[0], frames[32 - 25 : 32])
    assert [bool(w.is_last[0]) for w in windows] == [False] * 9 + [True]
