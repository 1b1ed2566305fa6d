"""Summary videos: the selected segments, cut on the frame, joined in time order, as
H.264/AAC MP4 that browsers play."""

import av
import numpy as np
import pytest

from stages.decode import probe
from stages.keyframes import frames_at
from stages.records import Segments, Selection, VideoRecord, VideoRef
from stages.settings import SkimConfig
from stages.skim import SkimWriter, render_skim, spans_of

FPS = 24  # the tiny clip's


def _decoded(data: bytes, tmp_path) -> tuple[list[np.ndarray], list[str], float]:
    path = tmp_path / "skim.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as c:
        codecs = sorted(s.codec_context.name for s in c.streams)
        audio_s = 0.0
        if c.streams.audio:
            a = c.streams.audio[0]
            audio_s = sum(f.samples for f in c.decode(a)) / a.rate
        c.seek(0)
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return frames, codecs, audio_s


def test_a_skim_is_the_spans_cut_on_the_frame_with_their_sound(tiny_clip, tmp_path):
    # The green first shot, then the yellow gradient of the third (the clip cuts at 3 and 6 s).
    spans = [(1.0, 2.0), (6.5, 7.75)]
    data = render_skim(str(tiny_clip), spans, True, 240, SkimConfig())
    frames, codecs, audio_s = _decoded(data, tmp_path)
    assert codecs == ["aac", "h264"]
    assert len(frames) == round(2.25 * FPS)  # exactly the spans' frames
    assert audio_s == pytest.approx(2.25, abs=0.05)
    # Each part starts on the frame the source shows at its start time.
    first, third = frames_at(str(tiny_clip), [1.0, 6.5])
    assert np.abs(frames[0].astype(int) - first.astype(int)).mean() < 6
    assert np.abs(frames[FPS].astype(int) - third.astype(int)).mean() < 6
    assert np.abs(frames[FPS - 1].astype(int) - first.astype(int)).mean() < 6


def test_a_video_without_sound_gets_a_skim_without_an_audio_track(silent_clip, tmp_path):
    data = render_skim(str(silent_clip), [(0.5, 1.5)], False, 120, SkimConfig())
    frames, codecs, _ = _decoded(data, tmp_path)
    assert codecs == ["h264"] and frames[0].shape == (120, 160, 3)


def _record(clip) -> VideoRecord:
    """Segments at the tiny clip's shots; the last two selected, each kept in part."""
    seg = Segments(
        np.array([0, 6, 12]),
        np.array([6, 12, 18]),
        np.array([0.0, 3.0, 6.0]),
        np.array([3.0, 6.0, 9.0]),
        9.0,
    )
    record = VideoRecord(VideoRef("v", str(clip)), probe(str(clip)))
    record.selection = Selection(
        seg,
        np.zeros(3),
        np.array([False, True, True]),
        np.array([2, 1]),
        np.array([2, 1]),
        excerpt_first=seg.first_step,
        excerpt_last=seg.last_step,
        excerpt_start=np.array([0.0, 7.0, 6.0]),
        excerpt_end=np.array([3.0, 8.0, 6.5]),
    )
    return record


def test_the_skim_stage_joins_the_kept_parts_in_time_order(tiny_clip, tmp_path):
    record = _record(tiny_clip)
    assert spans_of(record) == [(6.0, 6.5), (7.0, 8.0)]
    frames, _, _ = _decoded(SkimWriter(SkimConfig(max_height=120))(record).skim, tmp_path)
    assert len(frames) == round(1.5 * FPS) and frames[0].shape == (120, 160, 3)


def test_no_skim_is_made_when_skims_are_disabled(tiny_clip):
    assert SkimWriter(SkimConfig(enabled=False))(_record(tiny_clip)).skim is None
