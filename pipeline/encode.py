"""Pass 1, ENCODE: videos -> windows -> CNN + RNN features -> staged `features` files.

Reads top to bottom like the data flows. Each step says why its resources are what
they are; the numbers themselves come from the config (`resources.*`).
"""

from __future__ import annotations

import ray
from ray.data import ActorPoolStrategy, Dataset

from pipeline.adapters import Lazy
from pipeline.config import VidgistConfig
from pipeline.features import FeatureWriter
from stages.audio import AudioEncoder
from stages.decode import Decoder
from stages.measure import Measurer
from stages.visual import VisualEncoder


def encode_plan(
    items: list[dict],
    cfg: VidgistConfig,
    out: str,
    run_id: str,
    encoder_version: str,
    visual_trained: bool,
) -> Dataset:
    r = cfg.resources
    d = cfg.decode
    # One row per video and one block per row, so decode tasks spread over the cluster.
    ds = ray.data.from_items(items, override_num_blocks=max(1, len(items)))

    # Decode in CPU tasks that fan each video out into fixed windows: memory is bounded by
    # the window, long videos do not straggle, and workers are recycled every
    # `max_calls` tasks because native decoders can leak or wedge on hostile files.
    decode_args = r.decode.remote_args()
    ds = ds.flat_map(Lazy(Decoder, d), **decode_args)
    # Colour, motion and loudness are cheap numpy on the decoded window: same resources,
    # so Ray Data fuses this into the decode task and the window never leaves the worker.
    ds = ds.map(Lazy(Measurer, cfg.measure, d.sample_rate, d.fps), **decode_args)

    # The CNN is an actor pool: the model loads once per actor, batches of windows keep
    # the device busy, and fractional num_gpus lets several actors share one GPU.
    ds = ds.map_batches(
        VisualEncoder,
        fn_constructor_kwargs={"cfg": cfg.visual},
        compute=ActorPoolStrategy(min_size=r.visual.min_size, max_size=r.visual.max_size),
        batch_size=r.visual.batch_size,
        num_cpus=r.visual.num_cpus,
        num_gpus=r.visual.num_gpus,
    )
    # The audio RNN is small; its own pool keeps it off the CNN's critical path.
    ds = ds.map_batches(
        AudioEncoder,
        fn_constructor_kwargs={"cfg": cfg.audio, "sample_rate": d.sample_rate, "fps": d.fps},
        compute=ActorPoolStrategy(min_size=r.audio.min_size, max_size=r.audio.max_size),
        batch_size=r.audio.batch_size,
        num_cpus=r.audio.num_cpus,
        num_gpus=r.audio.num_gpus,
    )

    # Features are ~7 KB per sampled frame once the pixels are gone: light tasks write
    # them into the run's staging and return one small row per window for the driver.
    writer = Lazy(FeatureWriter, out, run_id, encoder_version, visual_trained)
    return ds.map_batches(
        writer, batch_size=r.write_batch, num_cpus=0.25, max_retries=r.decode.max_retries
    )
