import numpy as np
import pytest

from stages.decode import Decoder
from stages.measure import PALETTE_NAMES, Measurer, _thumbs, audio_measures, colour_histogram
from stages.records import VideoRef
from stages.settings import DecodeConfig


def test_colour_histogram_names_the_dominant_colour():
    red = np.zeros((1, 32, 32, 3), np.float32)
    red[..., 0] = 220
    hist = colour_histogram(red)
    assert PALETTE_NAMES[int(hist[0].argmax())] == "red"
    assert hist.sum() == 1.0


@pytest.mark.parametrize("size", [224, 100])
def test_thumbnails_are_the_mean_of_each_block_of_pixels(size):
    frames = np.random.default_rng(0).integers(0, 256, (3, size, size, 3), dtype=np.uint8)
    f = size // 32
    expected = np.empty((3, 32, 32, 3))
    for i in range(32):
        for j in range(32):
            block = frames[:, i * f : (i + 1) * f, j * f : (j + 1) * f].astype(np.float64)
            expected[:, i, j] = block.mean(axis=(1, 2))
    np.testing.assert_allclose(_thumbs(frames), expected, rtol=1e-6)


def test_audio_measures_find_a_tone_and_its_pitch():
    sr, spf = 16000, 8000
    t = np.arange(2 * spf) / sr
    tone = (0.3 * np.sin(2 * np.pi * 880 * t)).astype(np.float32)
    silence_then_tone = np.concatenate([np.zeros(spf, np.float32), tone[:spf]])
    loud, pitch, flat = audio_measures(silence_then_tone, 2, spf, sr, -60.0)
    assert loud[0] == -60.0 and loud[1] > -15
    assert abs(pitch[1] - 880) < 5
    assert flat[1] < 0.1


def test_noise_is_flat_and_tones_are_not():
    sr, spf = 16000, 8000
    noise = np.random.default_rng(0).uniform(-0.3, 0.3, spf).astype(np.float32)
    _, _, flat = audio_measures(noise, 1, spf, sr, -60.0)
    assert flat[0] > 0.5


def test_motion_is_measured_across_window_boundaries(tiny_clip):
    dec = Decoder(DecodeConfig(window=4, frame_size=64))
    windows = [Measurer()(w) for w in dec(VideoRef("v", str(tiny_clip)))]
    motion = np.concatenate([w.motion[0, : w.n_frames[0]] for w in windows])
    assert motion[0] == 0.0
    # The cut at 3 s (sampled frame 6) falls inside window 1; at 6 s (frame 12) it is
    # the first frame of window 3 and still measured against the frame before it.
    assert motion[6] > 0.05 and motion[12] > 0.05
    assert motion[1:6].max() < 0.01  # static first shot
    assert windows[0].lead_frame is None  # dropped once motion is measured
