"""The adapter's per-video behaviour, without Ray."""

import numpy as np

from pipeline.adapters import _source_windows
from stages.base import WindowStage
from stages.decode import Decoder
from stages.measure import Measurer
from stages.records import VideoRef
from stages.settings import DecodeConfig


class FailsOnSecondWindow(WindowStage):
    name = "toy"

    def __call__(self, windows):
        if windows.window_index[0] == 1:
            raise ValueError("cannot read this window")
        return windows


def test_a_window_stage_failing_on_a_video_ends_it_with_an_error_row_naming_the_stage(tiny_clip):
    cfg = DecodeConfig(window=8)
    source, measure = Decoder(cfg), Measurer()
    rows = list(
        _source_windows(
            source,
            [measure, FailsOnSecondWindow(None, cfg.shared())],
            VideoRef("v", str(tiny_clip)),
        )
    )
    assert [int(r.window_index[0]) for r in rows] == [0, -1]
    assert rows[-1].error[0] == "toy: ValueError: cannot read this window"
    assert rows[-1].is_last[0] and rows[-1].n_frames[0] == 0
    # Measured like every other row, so a batch of both keeps one set of columns.
    assert set(rows[-1].to_columns()) == set(rows[0].to_columns())
    assert np.all(rows[-1].motion == 0)
