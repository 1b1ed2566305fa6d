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


class DyingWindows:
    """An isolated call for the in-process executor: per input `n`, n outputs carrying
    the child's pid; it kills its own process on the input named in `die_on` (every
    time, or once when a marker file is given: then the retry finds the marker and goes
    on); given a `marks` folder, it leaves a file there for each input it begins. It
    lives here, a light module, because the child imports it to unpickle it."""

    def __init__(self, die_on: int = -1, once: str = "", marks: str = ""):
        self.die_on, self.once, self.marks = die_on, once, marks

    def __call__(self, batch):
        n = int(batch["n"][0])
        if self.marks:  # a file per input begun, named for it
            open(os.path.join(self.marks, str(n)), "w").close()
        if n == self.die_on and not (self.once and os.path.exists(self.once)):
            if self.once:
                open(self.once, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        for w in range(n):
            yield {"n": np.array([n]), "w": np.array([w]), "pid": np.array([os.getpid()])}


class PidRow:
    """A row call for the in-process executor's children: the row with the pid that
    made it; on the row named in `die_on` it kills its own process."""

    def __init__(self, die_on: int = -1):
        self.die_on = die_on

    def __call__(self, row: dict) -> dict:
        if int(row["n"]) == self.die_on:
            os.kill(os.getpid(), signal.SIGKILL)
        return {"n": int(row["n"]), "pid": os.getpid()}
