"""Seconds per training epoch of the fusion model, both objectives, on CPU or CUDA.

    python -m bench.fit_speed --export DATA.npz [--clips 80]   (here: training clips' features)
    python -m bench.fit_speed --data DATA.npz --device cuda --epochs 5

The features are `vidgist train`'s training clips (conf/train.yaml), exported once from
the features table so the GPU machine, which has no PyAV or Ray, fits on exactly the same
arrays. Early stopping is off (patience = epochs): every epoch is timed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from stages import fusion
from stages.fusion_train import FitConfig, Sequence, fit, split
from stages.settings import FusionConfig


def export(path: Path, work: str | None, count: int) -> None:
    from jobs.train import load_train_config
    from jobs.training import encode_samples
    from pipeline.config import load_config

    tc = load_train_config()
    if work:
        tc.work = work
    clips = encode_samples(tc, load_config(tc.pipeline, tc.overrides))[0][:count]
    arrays = {}
    for i, c in enumerate(clips):
        s = c.seq
        arrays.update(
            {
                f"{i}_visual": s.visual,
                f"{i}_audio": s.audio,
                f"{i}_mask": s.mask,
                f"{i}_target": s.target,
            }
        )
    np.savez_compressed(path, **arrays)
    print(f"{len(clips)} clips -> {path} ({path.stat().st_size / 2**20:.1f} MB)")


def load(path: Path) -> list[Sequence]:
    data = np.load(path)
    n = len({k.split("_")[0] for k in data.files})
    return [
        Sequence(
            str(i),
            data[f"{i}_visual"].astype(np.float32),
            data[f"{i}_audio"].astype(np.float32),
            data[f"{i}_mask"],
            data[f"{i}_target"].astype(np.float32),
        )
        for i in range(n)
    ]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--export", type=Path, help="write the training clips' features here")
    ap.add_argument("--work", help="training work folder (default: the train profile's)")
    ap.add_argument("--clips", type=int, default=80, help="export the first N training clips")
    ap.add_argument("--data", type=Path, help="features exported with --export")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--epochs", type=int, default=5)
    args = ap.parse_args(argv)
    if args.export:
        export(args.export, args.work, args.clips)
        return {}
    seqs = load(args.data)
    fit_on, val = split(seqs, 0.2, 0)
    dims = seqs[0].visual.shape[1], seqs[0].audio.shape[1]
    steps = sum(len(s.visual) for s in fit_on)
    result = {
        "device": args.device,
        "clips": len(fit_on),
        "steps": steps,
        "threads": torch.get_num_threads(),
    }
    if args.device.startswith("cuda"):
        result["gpu"] = torch.cuda.get_device_name()
    for objective in ("supervised", "unsupervised"):
        torch.manual_seed(0)
        model = fusion.build_model(FusionConfig(), *dims)
        cfg = FitConfig(
            objective=objective, epochs=args.epochs, patience=args.epochs, device=args.device
        )
        t0 = time.perf_counter()
        r = fit(model, fit_on, val, cfg, desc=objective)
        result[objective] = {
            "seconds_per_epoch": r.seconds_per_epoch,
            "wall_s": time.perf_counter() - t0,
            "epochs": r.epochs_run,
        }
        print(
            f"{objective:<13} {args.device}: {r.seconds_per_epoch:.2f} s per epoch "
            f"({len(fit_on)} clips, {steps} steps; validation included)"
        )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
