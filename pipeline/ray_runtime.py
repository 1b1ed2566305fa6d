"""Starting or joining Ray, and the Ray Data settings every run uses."""

from __future__ import annotations

import logging
import os
import warnings

import ray
from ray.data import DataContext

from pipeline.config import RayConfig


def ensure_ray(cfg: RayConfig) -> None:
    """Join `cfg.address` or RAY_ADDRESS when given; otherwise start a local Ray."""
    if not ray.is_initialized():
        address = cfg.address or os.environ.get("RAY_ADDRESS")
        if address:
            ray.init(address=address, logging_level=logging.WARNING)
        else:
            ray.init(
                num_cpus=cfg.num_cpus,
                object_store_memory=cfg.object_store_mb * 2**20 if cfg.object_store_mb else None,
                include_dashboard=False,
                logging_level=logging.WARNING,
            )
    ctx = DataContext.get_current()
    ctx.enable_progress_bars = cfg.progress
    # A task that fails for good (a decoder that crashes its worker, say) drops its block
    # instead of failing the run; the driver notices the missing windows or videos and
    # reports them as errors, so one hostile file never stops the others.
    ctx.max_errored_blocks = -1
    # `max_retries` still travels through ray_remote_args, which Ray 2.60 marks as
    # deprecated without a named replacement (pyproject pins ray below its removal).
    warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated", category=Warning)
