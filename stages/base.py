"""The stage contract: plain classes that know nothing of Ray.

A stage is built from its own config section and `Shared` (`Stage(cfg, shared)`), loads
any heavy state (a model) in its constructor, and is then called many times. Its `kind`
says what it is called on, and so how pipeline/adapters.py runs it:

- `source`:  one `VideoRef` in, an iterator of `Windows` (each of one window) out;
- `windows`: a `Windows` batch in, the same batch with its fields filled out;
- `video`:   one `VideoRecord` in, the same record with its part filled out. An exception
  becomes `record.errors[name]`, and later stages skip a failed record.

`name` is the stage's config section, its key in `record.errors` and, for the adapter,
the name in `resources.<name>` unless the plan groups it. Stages declare no resources.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Literal

from stages.records import VideoRecord, VideoRef, Windows
from stages.settings import Shared

Kind = Literal["source", "windows", "video"]


class Stage:
    name: ClassVar[str]
    kind: ClassVar[Kind]
    config: ClassVar[type | None] = None  # its section's dataclass: the default config

    def __init__(self, cfg: Any = None, shared: Shared | None = None):
        # Defaults make a stage one line to build in a test or a notebook.
        self.cfg = cfg if cfg is not None or self.config is None else self.config()
        self.shared = shared if shared is not None else Shared()

    @classmethod
    def describe(cls, cfg: Any) -> tuple[str, bool]:
        """(version, trained?) of what `cfg` builds, without building it. It enters the
        version strings stored with the outputs; model stages name their weights."""
        return f"{cls.__module__}.{cls.__qualname__}", False


class SourceStage(Stage):
    kind: ClassVar[Kind] = "source"

    def __call__(self, ref: VideoRef) -> Iterator[Windows]:
        raise NotImplementedError

    def error_row(self, ref: VideoRef, reason: str) -> Windows:
        """A window-shaped row that says why the video failed (batches keep one schema)."""
        raise NotImplementedError


class WindowStage(Stage):
    kind: ClassVar[Kind] = "windows"

    def __call__(self, windows: Windows) -> Windows:
        raise NotImplementedError


class VideoStage(Stage):
    kind: ClassVar[Kind] = "video"

    def __call__(self, record: VideoRecord) -> VideoRecord:
        raise NotImplementedError
