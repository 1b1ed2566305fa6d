"""Pass 1, ENCODE: videos -> windows -> CNN + RNN features -> staged `features` files.

Reads top to bottom like the data flows. Each step says why its resources are what
they are; the numbers themselves come from the config (`resources.*`).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from typing import TYPE_CHECKING

from pipeline import in_process
from pipeline.adapters import Bound, Watchdog, apply
from pipeline.config import WRITE_CPUS, VidgistConfig
from pipeline.features import FeatureWriter
from pipeline.store import Store
from pipeline.timings import StageTimer, Timed
from stages import registry
from stages.measure import Measurer
from stages.visual import VisualEncoder

if TYPE_CHECKING:
    from ray.data import Dataset

WATCHDOG_SLACK_S = 5.0  # past decode.timeout_s, so the decoder's own clean timeout goes first


def watchdog_folder(out: str, run_id: str) -> str:
    """Where the decode tasks of a run leave hang reasons and crash records: a local
    folder (a fault handler writes to a file descriptor), under the run's staging when
    OUT is local or shared, else in the node's temporary folder (so on a cluster writing
    to an object store, the driver reads only its own node's records)."""
    store = Store(out)
    if store.folder.remote:
        return os.path.join(tempfile.gettempdir(), "vidgist-watchdog", run_id)
    return store.folder.full(f"{store.staging(run_id)}/_watchdog")


def encode_plan(
    ds: Dataset | in_process.Dataset,
    cfg: VidgistConfig,
    out: str,
    run_id: str,
    encoder_version: str,
    visual_trained: bool,
    timer: StageTimer | None = None,
) -> Dataset | in_process.Dataset:
    """`ds`: one {"video_id", "uri", "fingerprint"} row per video (pipeline/run.py)."""
    r = cfg.resources
    audio_encoder = registry.resolve("audio.encoder", cfg.audio.encoder)
    detector = registry.resolve("shots.detector", cfg.shots.detector)
    scorer_cls = registry.pass1_part(detector)
    # A detector that decides on every decoded frame has the decoder keep them (tiny).
    shared = replace(cfg.decode.shared(), shot_frames=scorer_cls is not None)

    # Decode in CPU tasks that fan each video out into fixed windows: memory is bounded by
    # the window, long videos do not straggle, and workers are recycled every
    # `max_calls` tasks because native decoders can leak or wedge on hostile files.
    # Colour, motion and loudness, and the shot detector's per-frame signals, are cheap
    # numpy on each decoded window: they run in the same task, so the window's pixels
    # (and every decoded frame, 48x27) never leave the worker before they are measured.
    decoder = registry.resolve("decode.decoder", cfg.decode.decoder)
    decode = [Bound(decoder, cfg.decode, shared), Bound(Measurer, cfg.measure, shared)]
    scorer = [Bound(scorer_cls, cfg.shots, shared)] if scorer_cls else []
    own_pool = bool(scorer) and r.shots.pool == "actors"
    # A decoder stuck inside one native call cannot be interrupted from Python: the
    # watchdog ends its worker and leaves the reason for the retry to report.
    watchdog = Watchdog(watchdog_folder(out, run_id), cfg.decode.timeout_s + WATCHDOG_SLACK_S)
    ds = apply(ds, decode if own_pool else decode + scorer, r.decode, watchdog, timer)
    if own_pool:
        # A detector with a model (TransNetV2) on GPUs: its own actor pool, fed the
        # windows' 48x27 frames (about 4 KB per decoded frame).
        ds = apply(ds, scorer, r.shots, timer=timer)

    # The CNN is an actor pool: the model loads once per actor, batches of windows keep
    # the device busy, and fractional num_gpus lets several actors share one GPU.
    visual = [Bound(VisualEncoder, cfg.visual, shared)]
    audio = [Bound(audio_encoder, cfg.audio, shared)]
    if r.audio.pool == "visual":
        # On a CPU the audio encoder's own actor costs more than its work (a process with
        # torch, and every window handed over once more): run it after the CNN, in the
        # CNN's actors, on the same batch.
        ds = apply(ds, visual + audio, r.visual, timer=timer)
    else:
        # Its own pool keeps the small audio encoder off the CNN's critical path (a GPU's).
        ds = apply(ds, visual, r.visual, timer=timer)
        ds = apply(ds, audio, r.audio, timer=timer)

    # Features are ~7 KB per sampled frame once the pixels are gone: light tasks write
    # them into the run's staging and return one small receipt per window for the driver.
    writer = Timed(FeatureWriter(out, run_id, encoder_version, visual_trained), "write", timer)
    return ds.map_batches(
        writer, batch_size=r.write_batch, num_cpus=WRITE_CPUS, max_retries=r.decode.max_retries
    )
