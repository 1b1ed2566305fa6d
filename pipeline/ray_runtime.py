"""Starting or joining Ray, and the Ray Data settings every run uses."""

from __future__ import annotations

import logging
import os
import warnings

from pipeline.config import RayConfig, Resources
from pipeline.progress import for_logs


class ClusterLacks(ValueError):
    """The profile asks for resources the Ray cluster does not have: the run would wait
    for them for ever."""


def ensure_ray(cfg: RayConfig) -> None:
    """Join `cfg.address` or RAY_ADDRESS when given (`ray job submit` sets it for the
    job); otherwise start a new local Ray, even where a `ray start` cluster runs on the
    machine (Ray's own default would join that one)."""
    # Imported here, not above: runs in process and a CLI error need none of Ray.
    import ray
    from ray.data import DataContext

    if not ray.is_initialized():
        address = cfg.address or os.environ.get("RAY_ADDRESS")
        if address:
            ray.init(address=address, logging_level=logging.WARNING)
        else:
            ray.init(
                address="local",
                num_cpus=cfg.num_cpus,
                object_store_memory=cfg.object_store_mb * 2**20 if cfg.object_store_mb else None,
                include_dashboard=False,
                logging_level=logging.WARNING,
            )
    ctx = DataContext.get_current()
    # Bars for a person at a terminal; a log gets vidgist's compact lines instead, and
    # none of Ray Data's per-dataset INFO blocks.
    ctx.enable_progress_bars = cfg.progress and not for_logs()
    if for_logs():
        logging.getLogger("ray.data").setLevel(logging.WARNING)
    # A task that fails for good (a decoder that crashes its worker, say) drops its block
    # instead of failing the run; the driver notices the missing windows or videos and
    # reports them as errors, so one hostile file never stops the others.
    ctx.max_errored_blocks = -1
    # `max_retries` still travels through ray_remote_args, which Ray 2.60 marks as
    # deprecated without a named replacement (pyproject pins ray below its removal).
    warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated", category=Warning)


def check_fits(res: Resources, shots_pool: bool) -> None:
    """Refuse, in one line, a profile the cluster cannot run: a task or actor bigger than
    every node, or a pass whose actor pools (at their minimum size) and one task of each
    kind need more than the whole cluster at once."""
    import ray

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    have = {k: [n.get(k, 0.0) for n in nodes] or [0.0] for k in ("CPU", "GPU")}
    where = f"{len(nodes)} node{'s' if len(nodes) != 1 else ''}: " + ", ".join(
        f"{n.get('CPU', 0):g} CPU {n.get('GPU', 0):g} GPU" for n in nodes
    )
    passes = {
        "pass 1": [
            "decode",
            "visual",
            *([] if res.audio.pool == "visual" else ["audio"]),  # in the CNN's actors
            *(["shots"] if shots_pool else []),
        ],
        "pass 2": ["summarize", "fusion"],
    }
    for pools in passes.values():
        for name in pools:
            r = getattr(res, name)
            for key, unit, asked in (
                ("num_gpus", "GPU", r.num_gpus),
                ("num_cpus", "CPU", r.num_cpus),
            ):
                if asked > max(have[unit]):
                    raise ClusterLacks(
                        f"resources.{name}.{key}={asked:g}, but no node has {asked:g} {unit} "
                        f"({where}); use a profile for this cluster or set "
                        f"resources.{name}.{key}"
                    )
    for label, pools in passes.items():
        for key, unit in (("num_cpus", "CPU"), ("num_gpus", "GPU")):
            need = sum(
                getattr(getattr(res, n), key)
                * (getattr(res, n).min_size if getattr(res, n).pool == "actors" else 1)
                for n in pools
            )
            if need > sum(have[unit]) + 1e-9:
                parts = " + ".join(f"{n} {getattr(getattr(res, n), key):g}" for n in pools)
                raise ClusterLacks(
                    f"{label} needs {need:g} {unit} at once ({parts}, actor pools at their "
                    f"min_size), but the cluster has {sum(have[unit]):g} ({where})"
                )
