"""The checkpoints that ship in stages/checkpoints, measured again here on clips they were
not trained on (the held-out seed of conf/train.yaml), not trusted from their metadata."""

import json
from dataclasses import replace

import numpy as np
import pytest
from omegaconf import OmegaConf

from jobs.samples import generate_samples
from jobs.train import Clip, evaluate
from pipeline.config import find_profile, load_config
from pipeline.sources import make_sources
from stages.audio import AudioEncoder
from stages.decode import Decoder
from stages.fusion import FusionScorer
from stages.measure import Measurer
from stages.records import Windows, features_from_windows
from stages.visual import VisualEncoder

N_CLIPS = 3


@pytest.fixture(scope="module")
def held_out(tmp_path_factory) -> tuple[list[Clip], object]:
    """A few clips from the training profile's held-out seed, through pass 1's stages."""
    train = OmegaConf.load(find_profile("train.yaml"))
    folder = tmp_path_factory.mktemp("held-out")
    videos = generate_samples(folder, count=N_CLIPS, seed=int(train.test_seed))
    cfg = load_config("local.yaml", ["visual.threads=0"])
    shared = cfg.decode.shared()
    decoder, measure = Decoder(cfg.decode, shared), Measurer(cfg.measure, shared)
    visual, audio = VisualEncoder(cfg.visual, shared), AudioEncoder(cfg.audio, shared)
    clips = []
    for video, ref in zip(videos, make_sources([str(v) for v in videos]), strict=True):
        windows = Windows.concat([measure(w) for w in decoder(ref)])
        f = features_from_windows(audio(visual(windows)))
        truth = json.loads(video.with_suffix("").with_suffix(".gt.json").read_text())
        n = min(len(f.time_s), len(truth["gtscore"]))
        target = np.asarray(truth["gtscore"][:n], np.float32)
        clips.append(
            Clip(
                video.name, f.visual[:n], f.audio[:n], f.audio_mask[:n], f.time_s[:n], target, truth
            )
        )
    return clips, cfg


def test_the_shipped_fusion_ranks_held_out_moments_far_better_than_chance(held_out):
    clips, cfg = held_out
    widths = replace(cfg.decode.shared(), visual_dim=clips[0].visual.shape[1], audio_dim=128)
    fusion = FusionScorer(cfg.fusion, widths)
    assert fusion.trained

    def predict(c: Clip, _trial: int) -> np.ndarray:
        return fusion.score(c.visual, c.audio, c.mask)

    def random_scores(c: Clip, trial: int) -> np.ndarray:
        return np.random.default_rng([trial, len(c.target)]).random(len(c.target))

    model = evaluate(clips, cfg, predict)
    chance = evaluate(clips, cfg, random_scores, trials=20)
    print(f"held-out ({N_CLIPS} clips): fusion {model}, random {chance}")
    assert model["kendall_tau"] > 0.3 and model["kendall_tau"] > chance["kendall_tau"] + 0.25
    assert model["f1_mean"] > chance["f1_mean"]
