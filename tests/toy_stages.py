"""Toy implementations that tests register by name, to show a new part plugs in."""

from __future__ import annotations

import ctypes
import os
import signal

import numpy as np

from stages.base import VideoStage
from stages.decode import Decoder
from stages.records import Text, VideoRecord, VideoRef
from stages.shots import segments_from_change_points


class HalvesShots(VideoStage):
    """shots.detector=halves: a cut in the middle of every video, whatever it shows."""

    name = "shots"

    def __call__(self, record: VideoRecord) -> VideoRecord:
        time_s = record.features.time_s
        cps = np.array([len(time_s) // 2], dtype=np.int64)
        record.shots = segments_from_change_points(cps, time_s, record.probe.duration_s)
        return record


class CountingWriter(VideoStage):
    """text.writer=counting: says how many segments were chosen, nothing else."""

    name = "text"

    def __call__(self, record: VideoRecord) -> VideoRecord:
        n = int(record.selection.selected.sum())
        record.text = Text(f"toy summary: {n} of {len(record.selection.segments)} chosen", [])
        return record


class UnreachableShots(VideoStage):
    """shots.detector=unreachable: fails on every video, as a detector whose model server
    is down would (a fault of the run, not of the videos)."""

    name = "shots"

    def __call__(self, record: VideoRecord) -> VideoRecord:
        raise ConnectionError("model server unreachable")


class FaultyDecoder(Decoder):
    """decode.decoder=faulty: on a video whose file name says "hang", blocks in a native
    call (libc sleep, which no Python signal or check interrupts); on one that says
    "crash", dies of SIGSEGV as a native decoder's bad read would; decodes the rest."""

    def __call__(self, ref: VideoRef):
        name = os.path.basename(ref.uri)  # the file's, not its folder's (a test's name)
        if "hang" in name:
            ctypes.CDLL(None).sleep(3600)
        if "crash" in name:
            os.kill(os.getpid(), signal.SIGSEGV)
        yield from super().__call__(ref)
