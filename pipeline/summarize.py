"""Pass 2, SUMMARIZE: one row per video: features -> fusion -> shots -> selection -> tags
-> keyframes -> on-screen text -> speech -> text -> skim -> tables.

A video's whole feature sequence fits in one row (a few KB per sampled frame), which
temporal attention needs. Rows carry a pickled `VideoRecord` (see pipeline/adapters.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline import in_process
from pipeline.adapters import Bound, apply
from pipeline.config import WRITE_CPUS, VidgistConfig
from pipeline.features import FeatureLoader
from pipeline.outputs import OutputWriter
from pipeline.timings import StageTimer, Timed
from stages import registry
from stages.keyframes import KeyframeExtractor
from stages.ocr import ScreenReader
from stages.select import Selector
from stages.settings import Shared
from stages.skim import SkimWriter
from stages.speech import SpeechRecognizer
from stages.tags import Tagger

if TYPE_CHECKING:
    from ray.data import Dataset


def summarize_plan(
    ds: Dataset | in_process.Dataset,
    cfg: VidgistConfig,
    out: str,
    run_id: str,
    model_version: str,
    shared: Shared,
    timer: StageTimer | None = None,
) -> Dataset | in_process.Dataset:
    """`ds`: one {"video_id", "record"} row per video; `shared` carries the feature widths."""
    r = cfg.resources
    # The writer is its own light task (WRITE_CPUS says why it must not fuse with the
    # per-video stages): it gathers up to `write_batch` finished videos per file.
    writer = Timed(OutputWriter(out, run_id, model_version), "write", timer)
    write_args = {"num_cpus": WRITE_CPUS, "max_retries": r.summarize.max_retries}
    if not shared.visual_dim:
        # Every video failed in pass 1: there is nothing to fuse, only error rows to write.
        return ds.map_batches(writer, batch_size=r.write_batch, **write_args)
    # Reading a video's windows back is I/O on small files: a light task. In process it
    # reads here: in two children it took them 1.2 s each over 24 clips, and the run's
    # peak PSS was 2,442 MB against 2,063 MB without them (bench.pipeline, in process).
    loader = [Bound(FeatureLoader, None, shared)]
    ds = apply(ds, loader, r.summarize, timer=timer, light=True)
    # Fusion holds a model: an actor pool, on GPUs where the config gives them.
    fusion = registry.resolve("fusion.model", cfg.fusion.model)
    ds = apply(ds, [Bound(fusion, cfg.fusion, shared)], r.fusion, timer=timer)
    # Shots, selection, tags, keyframe decoding, OCR, speech and text are CPU work per
    # video: one task runs them in turn on one unpickled record. Speech reads the audio
    # itself (pass 1 keeps no waveform) and is the costliest: about 0.1 s per second of
    # speech on one core (bench/speech.py).
    cpu_stages = [
        Bound(registry.resolve("shots.detector", cfg.shots.detector), cfg.shots, shared),
        Bound(Selector, cfg.select, shared),
        Bound(Tagger, cfg.tags, shared),
        Bound(KeyframeExtractor, cfg.keyframes, shared),
        Bound(ScreenReader, cfg.ocr, shared),
        Bound(SpeechRecognizer, cfg.speech, shared),
        Bound(registry.resolve("text.writer", cfg.text.writer), cfg.text, shared),
        Bound(SkimWriter, cfg.skims, shared),
    ]
    ds = apply(ds, cpu_stages, r.summarize, timer=timer)
    return ds.map_batches(writer, batch_size=r.write_batch, **write_args)
