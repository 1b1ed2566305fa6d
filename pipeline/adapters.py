"""How plain stages become Ray Data UDFs, without the stages knowing.

- `Lazy(cls, ...)`: a picklable function UDF for task pools; the stage is built on first
  use and then reused by every task that the same worker process runs.
- `OnPayload((cls, ...), ...)`: pass 2 carries each video's state as one pickled
  `state` column (its arrays differ in length from video to video, and failed videos
  carry fewer keys, which a columnar block cannot hold). It unpickles, runs its stages
  until the video fails, turns any exception into the video's one-line error, and
  pickles the state again. Used as an actor class, or wrapped in Lazy for tasks.
"""

from __future__ import annotations

import pickle
import uuid
from typing import Any

from stages.errors import one_line

_BUILT: dict[str, Any] = {}


class Lazy:
    def __init__(self, cls: type, *args: Any, **kwargs: Any):
        self.cls, self.args, self.kwargs = cls, args, kwargs
        self.token = uuid.uuid4().hex

    def _stage(self) -> Any:
        stage = _BUILT.get(self.token)
        if stage is None:
            stage = _BUILT[self.token] = self.cls(*self.args, **self.kwargs)
        return stage

    def __call__(self, item: Any) -> Any:
        return self._stage()(item)


class OnPayload:
    """Runs one or more stages, each given as (cls, *args), on a video's state in turn:
    stages that share a task share one unpickle and one pickle."""

    def __init__(self, *specs: tuple):
        self.stages = [(cls.__name__, cls(*args)) for cls, *args in specs]

    def __call__(self, row: dict) -> dict:
        state = unpack(row["state"])
        for name, stage in self.stages:
            if state.get("error"):
                break
            try:
                state = stage(state)
            except Exception as exc:  # a bad video must never stop the others
                state["error"] = f"{name}: {one_line(exc)}"
        return {"video_id": row["video_id"], "state": pack(state)}


def pack(state: dict) -> bytes:
    return pickle.dumps(state, protocol=5)


def unpack(blob: bytes) -> dict:
    return pickle.loads(blob)
