"""Visual, audio and fusion stages run in-process, without Ray."""

import numpy as np
import pytest
import torch

from stages import checkpoint as ckpt
from stages.audio import AudioConfig, AudioEncoder, architecture, build_model
from stages.decode import DecodeConfig, Decoder
from stages.fusion import FusionConfig, FusionScorer, chunk_spans
from stages.visual import VisualConfig, VisualEncoder, imagenet_categories


@pytest.fixture(scope="module")
def window_batch(tiny_clip):
    rows = list(Decoder(DecodeConfig(window=8))({"uri": str(tiny_clip), "video_id": "v"}))
    return {
        k: np.stack([r[k] for r in rows])
        for k in ("frames", "n_frames", "time_s", "audio", "audio_from", "audio_to")
    }


def test_visual_encoder_gives_pooled_features_and_labels_for_valid_frames_only(window_batch):
    enc = VisualEncoder(VisualConfig(batch_size=8, device="cpu"))
    out = enc(dict(window_batch))
    assert "frames" not in out
    assert out["visual"].shape == (3, 8, 1280)
    assert enc.trained and enc.version.startswith("efficientnet_lite0:")
    assert np.abs(out["visual"][2, :2]).sum() > 0
    assert not out["visual"][2, 2:].any()  # padding stays zero
    assert (out["label_ids"][2, 2:] == -1).all()
    probs = out["label_probs"][0, 0]
    assert np.all(np.diff(probs) <= 0) and 0 < probs.sum() <= 1.0


def test_bundled_lite0_weights_classify_a_drawn_object_sensibly():
    # A red disc on a white ground: ImageNet's nearest classes are round things.
    img = np.full((1, 224, 224, 3), 245, np.uint8)
    yy, xx = np.mgrid[0:224, 0:224]
    img[0][(yy - 112) ** 2 + (xx - 112) ** 2 < 70**2] = (210, 30, 30)
    enc = VisualEncoder(VisualConfig(device="cpu"))
    _, ids, probs = enc.encode(img)
    names = [imagenet_categories()[i] for i in ids[0]]
    assert probs[0, 0] > 0.1
    assert set(names) & {
        "balloon",
        "ping-pong ball",
        "pomegranate",
        "red wine",
        "tennis ball",
        "strawberry",
        "lollipop",
    }


def test_any_torchvision_backbone_runs_by_name_with_a_seeded_init(window_batch):
    enc = VisualEncoder(VisualConfig(backbone="mobilenet_v3_small", weights="none", device="cpu"))
    assert not enc.trained and enc.version == "mobilenet_v3_small:untrained"
    out = enc(dict(window_batch))
    assert out["visual"].shape[-1] == enc.feature_dim == 1024


def test_missing_torch_cache_weights_are_an_error_not_a_download(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError, match="never downloads"):
        VisualEncoder(VisualConfig(backbone="resnet18", weights="torch-cache"))


def test_audio_encoder_gives_one_vector_per_frame_and_masks_missing_audio(window_batch):
    enc = AudioEncoder(AudioConfig(device="cpu", checkpoint="none"))
    out = enc(dict(window_batch))
    assert out["audio_feat"].shape == (3, 8, 128)
    mask = out["audio_mask"]
    assert mask[0].all() and mask[2, :2].all() and not mask[2, 2:].any()
    assert not out["audio_feat"][~mask].any()
    silent = dict(window_batch, audio_to=np.zeros(3, dtype=np.int64))
    assert not AudioEncoder(AudioConfig(device="cpu", checkpoint="none"))(silent)[
        "audio_mask"
    ].any()


def test_a_checkpoint_for_another_architecture_is_refused_with_the_differences(tmp_path):
    other = AudioConfig(hidden=32)
    path = tmp_path / "audio.pt"
    ckpt.save(
        path, build_model(other, 16000).state_dict(), {"architecture": architecture(other, 16000)}
    )
    with pytest.raises(ckpt.CheckpointMismatch, match="hidden: checkpoint 32 vs config 64"):
        AudioEncoder(AudioConfig(checkpoint=str(path)))


def test_checkpoints_load_with_weights_only(tmp_path):
    path = tmp_path / "x.pt"
    ckpt.save(path, {"w": torch.ones(2)}, {"architecture": {"a": 1}, "metrics": {"f1": 0.5}})
    state, meta = ckpt.load(path)
    assert meta["metrics"]["f1"] == 0.5 and torch.equal(state["w"], torch.ones(2))
    torch.save({"not": "ours"}, tmp_path / "y.pt")
    with pytest.raises(ckpt.CheckpointMismatch):
        ckpt.load(tmp_path / "y.pt")


def test_fusion_scores_every_frame_in_zero_one():
    rng = np.random.default_rng(0)
    scorer = FusionScorer(FusionConfig(checkpoint="none", device="cpu"), 64, 16)
    s = scorer.score(rng.normal(size=(50, 64)), rng.normal(size=(50, 16)), np.ones(50, bool))
    assert s.shape == (50,) and s.min() >= 0 and s.max() <= 1


def test_fusion_chunks_long_videos_and_blends_every_frame():
    spans = chunk_spans(2500, 1024)
    covered = np.zeros(2500, bool)
    for a, b in spans:
        assert b - a <= 1024
        covered[a:b] = True
    assert covered.all()
    rng = np.random.default_rng(1)
    scorer = FusionScorer(FusionConfig(checkpoint="none", device="cpu", max_context=64), 16, 8)
    s = scorer.score(rng.normal(size=(300, 16)), rng.normal(size=(300, 8)), np.ones(300, bool))
    assert s.shape == (300,) and np.isfinite(s).all()


def test_fusion_ignores_audio_where_the_mask_says_there_is_none():
    rng = np.random.default_rng(2)
    scorer = FusionScorer(FusionConfig(checkpoint="none", device="cpu"), 16, 8)
    v = rng.normal(size=(20, 16))
    off = np.zeros(20, bool)
    a = scorer.score(v, rng.normal(size=(20, 8)), off)
    b = scorer.score(v, rng.normal(size=(20, 8)), off)
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_the_shipped_checkpoints_load_and_carry_held_out_metrics():
    fusion = FusionScorer(FusionConfig(device="cpu"))
    assert fusion.trained
    metrics = fusion.meta["metrics"]
    assert metrics["test"]["f1_mean"] > metrics["random"]["f1_mean"]
    assert metrics["test"]["kendall_tau"] > metrics["random"]["kendall_tau"]
    assert AudioEncoder(AudioConfig(device="cpu")).trained
