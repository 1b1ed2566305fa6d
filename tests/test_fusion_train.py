"""Fitting the fusion model (stages/fusion_train.py), without Ray or video."""

import numpy as np
import pytest
import torch

from stages import fusion
from stages.fusion_train import FitConfig, Sequence, fit, reward_features, selection_reward, split
from stages.settings import FusionConfig

SMALL = FusionConfig(d_model=16, heads=2, layers=1, ff=32, dropout=0.1)


def _videos(n=6, t=24, seed=0):
    """Videos whose important steps (target 1) have a distinct visual vector."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        target = (rng.random(t) < 0.3).astype(np.float32)
        visual = rng.normal(0, 0.1, (t, 8)).astype(np.float32)
        visual[:, 0] += 2 * target
        audio = rng.normal(0, 1, (t, 4)).astype(np.float32)
        out.append(Sequence(f"v{i}", visual, audio, np.ones(t, bool), target))
    return out


def _fit(objective, epochs=5, seed=0, patience=50, inputs="visual+audio"):
    torch.manual_seed(123)  # the init; fit seeds everything after it
    model = fusion.build_model(FusionConfig(**{**SMALL.__dict__, "inputs": inputs}), 8, 4)
    videos = _videos()
    cfg = FitConfig(objective=objective, epochs=epochs, lr=3e-3, seed=seed, patience=patience)
    return fit(model, videos[:4], videos[4:], cfg)


def test_the_same_seed_gives_the_same_weights_for_both_objectives():
    for objective in ("supervised", "unsupervised"):
        a, b = _fit(objective), _fit(objective)
        assert a.history == b.history
        for (k, x), y in zip(
            a.model.state_dict().items(), b.model.state_dict().values(), strict=True
        ):
            assert torch.equal(x, y), k
    assert _fit("unsupervised", seed=1).history != _fit("unsupervised", seed=0).history


def test_supervised_fitting_learns_the_target_and_keeps_its_best_epoch():
    result = _fit("supervised", epochs=60)
    assert result.history[-1] < result.history[0] * 0.5
    assert result.history[result.best_epoch - 1] == min(result.history)


def test_early_stopping_stops_after_patience_epochs_without_progress():
    result = _fit("supervised", epochs=200, patience=3)
    assert result.epochs_run < 200
    assert result.epochs_run == result.best_epoch + 3


def test_supervised_fitting_refuses_videos_without_a_target():
    videos = _videos()
    videos[0].target = None
    model = fusion.build_model(SMALL, 8, 4)
    with pytest.raises(ValueError, match="target"):
        fit(model, videos[:4], videos[4:], FitConfig(epochs=1))


def test_diverse_representative_picks_earn_more_than_redundant_ones():
    x = torch.tensor(np.repeat(np.eye(4), 5, axis=0), dtype=torch.float32)  # 4 scenes
    spread = torch.zeros(20, dtype=torch.bool)
    spread[[0, 5, 10, 15]] = True
    redundant = torch.zeros(20, dtype=torch.bool)
    redundant[[0, 1, 2, 3]] = True
    assert selection_reward(x, spread, 20) > selection_reward(x, redundant, 20) + 0.5
    assert selection_reward(x, torch.zeros(20, dtype=torch.bool), 20) == 0


def test_the_reward_hears_the_audio_only_where_there_is_audio():
    s = _videos(1)[0]
    s.mask[:10] = False
    x = reward_features(s)
    assert np.allclose(x[:10, 8:], 0) and np.allclose(np.linalg.norm(x[10:, 8:], axis=1), 1)


def test_a_single_modality_model_ignores_the_other_input():
    model = fusion.build_model(FusionConfig(**{**SMALL.__dict__, "inputs": "visual"}), 8, 4)
    model.eval()
    s = _videos(1)[0]
    v, a, m = (torch.from_numpy(x)[None] for x in (s.visual, s.audio, s.mask))
    assert torch.equal(model(v, a, m), model(v, torch.zeros_like(a), m))
    assert not torch.equal(model(v, a, m), model(torch.zeros_like(v), a, m))


def test_split_holds_out_a_seeded_share_and_never_overlaps():
    rest, held = split(list(range(10)), 0.2, seed=3)
    assert len(held) == 2 and not set(rest) & set(held) and sorted(rest + held) == list(range(10))
    assert split(list(range(10)), 0.2, seed=3) == (rest, held)
