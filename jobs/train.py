"""`vidgist train`: the command line (parsed and checked before torch or Ray load).

What it runs is in jobs/training.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from pipeline.config import find_profile

REPO_CHECKPOINTS = Path(__file__).resolve().parent.parent / "stages" / "checkpoints"


@dataclass
class TrainConfig:
    work: str = ".vidgist-train"  # samples, features and logs go here
    out: str = str(REPO_CHECKPOINTS)  # where audio_rnn.pt and fusion.pt are written
    pipeline: str = "local.yaml"  # profile for the feature-extraction run
    objective: str = "supervised"  # or unsupervised (no labels needed)
    input: str = ""  # an archive (as `vidgist run --input`): unsupervised fitting on it
    h5: str = ""  # an eccv16 h5 file (SumMe/TVSum): supervised fitting on its gtscore
    output: str = ""  # the fusion checkpoint of --input/--h5 runs (default <work>/fusion.pt)
    inputs: str = "visual+audio"  # what the fusion model sees (fusion.inputs)
    train_count: int = 200
    test_count: int = 12
    train_seed: int = 101
    test_seed: int = 202
    test_long: bool = True  # held-out clips of 1-3 minutes: longer than any training clip
    val_fraction: float = 0.2
    test_fraction: float = 0.2  # h5 only: the videos held out for the protocol
    metric: str = "avg"  # F1 over annotators: avg (TVSum) or max (SumMe)
    audio_epochs: int = 25  # 0 keeps the shipped audio encoder
    audio_crop_frames: int = 8  # train the audio RNN on 4 s crops
    audio_lr: float = 3e-3
    fusion_epochs: int = 300
    fusion_lr: float = 5e-4
    weight_decay: float = 1e-4
    patience: int = 40
    episodes: int = 5  # unsupervised: sampled selections per video and step
    selection_rate: float = 0.15  # unsupervised: the mean selection probability aimed at
    random_trials: int = 100
    seed: int = 0
    device: str = "cpu"  # where the fusion model trains (cuda when there is one)
    overrides: list[str] = field(default_factory=list)  # key=value for the pipeline config


def load_train_config(
    profile: str = "train.yaml", overrides: list[str] | None = None
) -> TrainConfig:
    """The training profile with key=value overrides, as `vidgist train` and the benches read it."""
    return OmegaConf.to_object(
        OmegaConf.merge(
            OmegaConf.structured(TrainConfig),
            OmegaConf.load(find_profile(profile)),
            OmegaConf.from_dotlist(overrides or []),
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vidgist train",
        description="Fit the fusion model: on sample clips (supervised by their gtscore, "
        "the recipe of the shipped checkpoint), on an archive without labels (--input, "
        "unsupervised), or on an eccv16 h5 file such as SumMe or TVSum (--h5). Progress "
        "shows as a bar; held-out figures follow `vidgist eval`'s protocol.",
    )
    parser.add_argument(
        "--config", default="train.yaml", help="training profile (YAML; default: the shipped one)"
    )
    parser.add_argument("--input", help="an archive to fit on without labels (unsupervised)")
    parser.add_argument("--h5", help="an eccv16 h5 file to fit on its gtscore")
    parser.add_argument("--output", help="where the fusion checkpoint goes")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the training profile")
    args = parser.parse_args(argv)
    flags = [f"input={args.input}", "objective=unsupervised"] if args.input else []
    flags += [f"h5={args.h5}"] if args.h5 else []
    flags += [f"output={args.output}"] if args.output else []
    try:
        tc = load_train_config(args.config, [*args.overrides, *flags])
    except Exception as exc:  # a typo in a key or value: one line, before any work
        print(f"vidgist: config error: {exc}".splitlines()[0], file=sys.stderr)
        return 2
    if tc.input and tc.h5:
        print(
            "vidgist: error: --input and --h5 are two different trainings; pick one",
            file=sys.stderr,
        )
        return 2
    Path(tc.work).mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    from jobs import training  # torch, Ray and the stages: only once the arguments are good
    from stages.checkpoint import CheckpointMismatch

    try:
        if tc.h5:
            training.train_on_h5(tc)
        elif tc.input:
            training.train_on_archive(tc)
        else:
            training.train_on_samples(tc)
    except (ValueError, FileNotFoundError, CheckpointMismatch) as exc:
        print(f"vidgist: error: {exc}", file=sys.stderr)
        return 2
    training.log(f"done in {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
