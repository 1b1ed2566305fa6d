"""Pass 2, SUMMARIZE: one row per video: fusion -> selection -> keyframes -> text -> tables.

A video's whole feature sequence fits in one row (a few KB per sampled frame), which
temporal attention needs. Rows carry a pickled per-video state (see adapters.OnPayload).
"""

from __future__ import annotations

import ray
from ray.data import ActorPoolStrategy, Dataset

from pipeline.adapters import Lazy, OnPayload, pack, unpack
from pipeline.config import VidgistConfig
from pipeline.features import FeatureLoader
from pipeline.outputs import OutputWriter
from stages.fusion import FusionScorer
from stages.keyframes import KeyframeExtractor
from stages.select import Selector
from stages.text import TextWriter


def _drop_heavy(row: dict) -> dict:
    """After selection nothing needs the feature matrices: stop shipping them."""
    state = unpack(row["state"])
    for key in ("visual", "audio_feat"):
        state.pop(key, None)
    return {"video_id": row["video_id"], "state": pack(state)}


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
    ds = ds.map(Lazy(OnPayload, FeatureLoader), **task)
    # Fusion holds a model: an actor pool, on GPUs where the config gives them.
    ds = ds.map(
        OnPayload,
        fn_constructor_args=(FusionScorer, cfg.fusion, visual_dim, audio_dim),
        compute=ActorPoolStrategy(min_size=r.fusion.min_size, max_size=r.fusion.max_size),
        num_cpus=r.fusion.num_cpus,
        num_gpus=r.fusion.num_gpus,
    )
    # Selection, keyframe decoding, text and writing are CPU work per video; with equal
    # resources Ray Data fuses them into one task, so a video's state moves once.
    ds = ds.map(Lazy(OnPayload, Selector, cfg.select, cfg.decode.fps), **task)
    ds = ds.map(_drop_heavy, **task)
    ds = ds.map(Lazy(OnPayload, KeyframeExtractor, cfg.keyframes), **task)
    ds = ds.map(Lazy(OnPayload, TextWriter, cfg.text), **task)
    return ds.map_batches(writer, batch_size=r.write_batch, **task)
