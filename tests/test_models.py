"""Visual, audio and fusion stages run in-process, without Ray."""

import os

import numpy as np
import pytest
import torch

from stages import checkpoint as ckpt
from stages.audio import AudioEncoder, architecture, build_model
from stages.decode import Decoder
from stages.fusion import FusionScorer, chunk_spans
from stages.imagenet import imagenet_categories
from stages.records import VideoRef, Windows
from stages.settings import AudioConfig, DecodeConfig, FusionConfig, Shared, VisualConfig
from stages.visual import VisualEncoder
from tests.conftest import in_a_fresh_process


@pytest.fixture(scope="module")
def decoded(tiny_clip) -> Windows:
    """The tiny clip's three windows of 8 sampled frames, as one batch."""
    return Windows.concat(list(Decoder(DecodeConfig(window=8))(VideoRef("v", str(tiny_clip)))))


@pytest.fixture
def window_batch(decoded) -> Windows:
    return Windows.from_columns(decoded.to_columns())  # a fresh copy: stages fill it in


def _fusion(cfg: FusionConfig, visual_dim: int, audio_dim: int) -> FusionScorer:
    return FusionScorer(cfg, Shared(visual_dim=visual_dim, audio_dim=audio_dim))


def test_visual_encoder_gives_pooled_features_and_labels_for_valid_frames_only(window_batch):
    enc = VisualEncoder(VisualConfig(batch_size=8, device="cpu"))
    out = enc(window_batch)
    assert out.frames is None
    assert out.visual.shape == (3, 8, 1280)
    assert enc.trained and enc.version.startswith("efficientnet_lite0:")
    assert np.abs(out.visual[2, :2]).sum() > 0
    assert not out.visual[2, 2:].any()  # padding stays zero
    assert (out.label_ids[2, 2:] == -1).all()
    probs = out.label_probs[0, 0]
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
    out = enc(window_batch)
    assert out.visual.shape[-1] == enc.feature_dim == 1024


def test_the_default_cnn_is_built_without_importing_torchvision():
    # torchvision's import (its ops pull in torch._dynamo) cost every CNN worker ~1 CPU-s
    # of start-up for a backbone that is not torchvision's.
    code = (
        "import sys; from stages.visual import VisualEncoder; "
        "from stages.settings import VisualConfig; VisualEncoder(VisualConfig(device='cpu')); "
        "print('torchvision' in sys.modules)"
    )
    assert in_a_fresh_process(code) == "False"


def test_the_model_stages_load_without_pyav_or_ray_as_on_a_gpu_machine():
    # bench/device.sh runs them where torch is installed but neither PyAV nor Ray.
    code = (
        "import sys; sys.modules['av'] = sys.modules['ray'] = None; "
        "import stages.visual, stages.audio, stages.fusion, stages.transnet, bench.encoders; "
        "print('ok')"
    )
    assert in_a_fresh_process(code) == "ok"


def test_missing_torch_cache_weights_are_an_error_not_a_download(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError, match="never downloads"):
        VisualEncoder(VisualConfig(backbone="resnet18", weights="torch-cache"))


def test_audio_encoder_gives_one_vector_per_frame_and_masks_missing_audio(window_batch):
    enc = AudioEncoder(AudioConfig(device="cpu", checkpoint="none"))
    out = enc(window_batch)
    assert out.wave is None
    assert out.audio.shape == (3, 8, 128)
    mask = out.audio_mask
    assert mask[0].all() and mask[2, :2].all() and not mask[2, 2:].any()
    assert not out.audio[~mask].any()


def test_windows_without_real_audio_are_masked_out(window_batch):
    window_batch.wave_to = np.zeros(3, dtype=np.int64)
    assert not AudioEncoder(AudioConfig(device="cpu", checkpoint="none"))(
        window_batch
    ).audio_mask.any()


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
    scorer = _fusion(FusionConfig(checkpoint="none", device="cpu"), 64, 16)
    s = scorer.score(rng.normal(size=(50, 64)), rng.normal(size=(50, 16)), np.ones(50, bool))
    assert s.shape == (50,) and s.min() >= 0 and s.max() <= 1


def test_fusion_chunks_cover_every_frame_within_the_context():
    spans = chunk_spans(2500, 1024)
    covered = np.zeros(2500, bool)
    for a, b in spans:
        assert b - a <= 1024
        covered[a:b] = True
    assert covered.all()


def test_chunked_fusion_scores_equal_unchunked_ones_where_the_context_fits_both_ways():
    # With attention silenced, a frame's score depends on its own inputs, its position and
    # the frame before it: context that fits in any chunk. Stitching must then be exact.
    rng = np.random.default_rng(1)
    v, a = rng.normal(size=(300, 16)), rng.normal(size=(300, 8))
    mask = rng.random(300) > 0.3

    def scorer(max_context):
        s = _fusion(FusionConfig(checkpoint="none", device="cpu", max_context=max_context), 16, 8)
        for layer in s.model.encoder.layers:
            torch.nn.init.zeros_(layer.self_attn.out_proj.weight)
            torch.nn.init.zeros_(layer.self_attn.out_proj.bias)
        return s

    whole = scorer(1024).score(v, a, mask)
    chunked = scorer(64).score(v, a, mask)
    assert len(chunk_spans(300, 64)) > 5
    np.testing.assert_allclose(chunked, whole, atol=1e-5)
    # ...and with attention on, chunks still score every frame, differently from one pass.
    live = _fusion(FusionConfig(checkpoint="none", device="cpu", max_context=64), 16, 8)
    assert np.isfinite(live.score(v, a, mask)).all()


def test_fusion_ignores_audio_where_the_mask_says_there_is_none():
    rng = np.random.default_rng(2)
    scorer = _fusion(FusionConfig(checkpoint="none", device="cpu"), 16, 8)
    v = rng.normal(size=(20, 16))
    off = np.zeros(20, bool)
    a = scorer.score(v, rng.normal(size=(20, 8)), off)
    b = scorer.score(v, rng.normal(size=(20, 8)), off)
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_the_shipped_checkpoints_load_as_trained_models():
    assert _fusion(FusionConfig(device="cpu"), 1280, 128).trained
    assert AudioEncoder(AudioConfig(device="cpu")).trained


def test_the_shipped_imagenet_names_are_torchvisions_in_class_order():
    import torchvision

    shipped = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    assert imagenet_categories() == list(shipped)


def test_the_audio_encoder_runs_on_its_own_threads_and_gives_the_process_its_own_back(
    window_batch, monkeypatch
):
    seen: list[int] = []
    enc = AudioEncoder(AudioConfig(device="cpu", threads=1))
    per_frame = enc.model.per_frame
    monkeypatch.setattr(
        enc.model, "per_frame", lambda *a: seen.append(torch.get_num_threads()) or per_frame(*a)
    )
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        enc(window_batch)
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("cores", "cnn_threads", "given", "expected"),
    [
        (2, 2, None, "PASSIVE"),  # the CNN fills every core: its threads sleep
        (4, 2, None, None),  # cores to spare: spinning costs no one
        (2, 0, None, None),  # torch's own count: not measured, left alone
        (2, 2, "ACTIVE", "ACTIVE"),  # the user's setting is kept
    ],
)
def test_openmp_threads_sleep_at_barriers_only_when_the_cnn_fills_every_core(
    monkeypatch, cores, cnn_threads, given, expected
):
    from stages.devices import wait_policy

    monkeypatch.setattr("os.cpu_count", lambda: cores)
    if given is None:
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    else:
        monkeypatch.setenv("OMP_WAIT_POLICY", given)
    wait_policy(cnn_threads)
    assert os.environ.get("OMP_WAIT_POLICY") == expected
