"""The on-screen text stage: titles on keyframes and still shots, in reading order."""

import numpy as np
import pytest

from pipeline.sources import make_sources
from stages.decode import probe
from stages.keyframes import KeyframeExtractor, frames_at
from stages.ocr import ScreenReader, reading_order, strongest_edge
from stages.records import Segments, Selection, VideoRecord
from stages.settings import OcrConfig
from tests.conftest import TITLE, in_a_fresh_process, talking_spec
from tests.records import features_at_2fps


@pytest.fixture(scope="module")
def reader() -> ScreenReader:
    return ScreenReader(OcrConfig(threads=1))


@pytest.fixture(scope="module")
def title_clip(clips_dir):
    """The talking clip's pictures (speech is not needed to read its title)."""
    from jobs.samples import write_clip

    return write_clip(talking_spec("titled"), clips_dir)


def _record(path, keyframe_steps: list[int], moving_shot: int | None = 1) -> VideoRecord:
    """A record as the OCR stage sees it: the clip's three true shots as segments, 2 fps."""
    (ref,) = make_sources([str(path)])
    n = 20
    motion = np.zeros(n, np.float32)
    if moving_shot is not None:
        motion[6:15] = 0.01  # the middle shot (3.0-7.5 s) moves
    features = features_at_2fps(n, motion=motion)
    seg = Segments(
        np.array([0, 6, 15]),
        np.array([6, 15, 20]),
        np.array([0.0, 3.0, 7.5]),
        np.array([3.0, 7.5, 10.0]),
        10.0,
        shot_index=np.array([0, 1, 2]),
    )
    shots = [int(np.searchsorted(seg.last_step, s, side="right")) for s in keyframe_steps]
    selection = Selection(
        seg,
        np.array([0.5, 0.9, 0.1]),
        np.isin(np.arange(3), shots),
        np.array(keyframe_steps),
        np.array(shots),
    )
    record = VideoRecord(ref, probe(ref.uri), features=features, selection=selection)
    return KeyframeExtractor()(record)


def test_a_title_card_on_a_keyframe_comes_back_in_its_ocr_text(reader, title_clip):
    screen = reader(_record(title_clip, keyframe_steps=[2, 10])).screen_text
    assert screen.keyframe_text == [TITLE, ""]
    assert screen.keyframe_confidence[0] > 0.9 and np.isnan(screen.keyframe_confidence[1])
    assert [line.text for line in screen.lines] == [TITLE]


def test_a_still_shot_without_a_keyframe_is_read_too(reader, title_clip):
    # Only the moving middle shot has a keyframe; the title shot is still and is read.
    screen = reader(_record(title_clip, keyframe_steps=[10])).screen_text
    assert screen.keyframe_text == [""]
    (line,) = screen.lines
    assert line.text == TITLE and line.segment == 0 and 0.0 <= line.time_s < 3.0


def test_a_moving_shot_without_a_keyframe_is_not_read(reader, title_clip):
    # Mark the title shot as moving: it is no longer a still shot, so nothing reads it.
    record = _record(title_clip, keyframe_steps=[16], moving_shot=None)
    record.features.motion[:6] = 0.01
    assert reader(record).screen_text.lines == []


def test_lines_come_back_in_reading_order():
    def box(x, y, w=50, h=20):
        return [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]

    # Second line first, and the first line's words right to left.
    boxes = np.array([box(10, 100), box(120, 12), box(10, 10), box(70, 102)], np.float32)
    assert reading_order(boxes) == [[2, 1], [0, 3]]
    assert reading_order(np.zeros((0, 4, 2))) == []


def test_a_frame_without_text_reads_as_nothing(reader, tiny_clip):
    (image,) = frames_at(str(tiny_clip), [1.0])
    assert reader.read(image) == []


def test_the_strongest_edge_is_the_largest_step_between_neighbouring_pixels():
    image = np.full((6, 8, 3), 200, np.uint8)
    assert strongest_edge(image) == 0
    image[2, 3, 1] = 170  # one pixel, one channel: 30 levels to each neighbour
    image[5, :, 0] = 215  # a bottom row 15 levels brighter in red
    assert strongest_edge(image) == 30
    assert strongest_edge(image[4:]) == 15


def _squeezed(image: np.ndarray, levels: int) -> np.ndarray:
    """`image` with its contrast squeezed into `levels` levels above grey 100."""
    lum = image.astype(np.float32)
    return (100 + (lum - lum.min()) / np.ptp(lum) * levels).astype(np.uint8)


def test_faint_text_is_read_and_a_flat_frame_is_never_given_to_the_model(
    reader, title_clip, monkeypatch
):
    (image,) = frames_at(str(title_clip), [1.0])
    faint = _squeezed(image, 16)  # the faintest the model was measured to read
    assert strongest_edge(faint) > reader.cfg.min_edge
    assert [text for text, _ in reader.read(faint)] == [TITLE]

    given = []
    engine = reader.engine
    monkeypatch.setattr(reader, "engine", lambda image: given.append(image) or engine(image))
    flat = _squeezed(image, reader.cfg.min_edge)
    assert strongest_edge(flat) == reader.cfg.min_edge
    assert reader.read(flat) == [] and given == []
    reader.read(faint)
    assert len(given) == 1


def test_the_ocr_models_treat_subnormal_floats_as_zero_whatever_is_made_after_them():
    # PP-OCR's detector computes on subnormal floats, which x86 cores take a slow path
    # for (3.6x its time on a Xeon). ONNX Runtime flushes them on the calling thread only
    # from the first session made in a process, so the stage makes the detector's at
    # build, and the speech stage's voice filter (another ONNX Runtime session) cannot
    # undo it.
    code = (
        "import numpy as np; from faster_whisper.vad import get_vad_model; "
        "from stages.ocr import ScreenReader; from stages.settings import OcrConfig; "
        "tiny = np.array([1e-40], np.float32); before = bool((tiny * 2)[0] > 0); "
        "ScreenReader(OcrConfig(threads=1)); get_vad_model(); "
        "print(before, bool((tiny * 2)[0] > 0))"
    )
    assert in_a_fresh_process(code) == "True False"
