"""Pass 2, SUMMARIZE: one row per video: fusion -> selection -> keyframes -> text -> tables.

A video's whole feature sequence fits in one row (a few KB per sampled frame), which
temporal attention needs. Rows carry a pickled per-video state (see adapters.OnPayload).
"""

from __future__ import annotations

import ray
from ray.data import ActorPoolStrategy, Dataset

from pipeline.adapters import Lazy, OnPayload
from pipeline.config import VidgistConfig
from pipeline.features import FeatureLoader
from pipeline.outputs import OutputWriter
from stages.fusion import FusionScorer
from stages.keyframes import KeyframeExtractor
from stages.select import Selector
from stages.text import TextWriter


def summarize_plan(
    items: list[dict],
    cfg: VidgistConfig,
    out: str,
    run_id: str,
    model_version: str,
    visual_dim: int,
    audio_dim: int,
) -> Dataset:
    r = cfg.resources
    task = r.summarize.remote_args()
    ds = ray.data.from_items(items, override_num_blocks=max(1, len(items)))
    writer = Lazy(OutputWriter, out, run_id, model_version)
    if not visual_dim:
        # Every video failed in pass 1: there is nothing to fuse, only error rows to write.
        return ds.map_batches(writer, batch_size=r.write_batch, **task)
    # Reading a video's windows back is I/O on small files: a light task.
    ds = ds.map(Lazy(OnPayload, (FeatureLoader,)), **task)
    # Fusion holds a model: an actor pool, on GPUs where the config gives them.
    ds = ds.map(
        OnPayload,
        fn_constructor_args=((FusionScorer, cfg.fusion, visual_dim, audio_dim),),
        compute=ActorPoolStrategy(min_size=r.fusion.min_size, max_size=r.fusion.max_size),
        num_cpus=r.fusion.num_cpus,
        num_gpus=r.fusion.num_gpus,
    )
    # Selection, keyframe decoding and text are CPU work per video: one task runs them in
    # turn on one unpickled state, and Ray Data fuses the writer into the same task.
    cpu_stages = (
        (Selector, cfg.select, cfg.decode.fps),
        (KeyframeExtractor, cfg.keyframes),
        (TextWriter, cfg.text),
    )
    ds = ds.map(Lazy(OnPayload, *cpu_stages), **task)
    return ds.map_batches(writer, batch_size=r.write_batch, **task)
