"""`vidgist train` end to end on a handful of clips (quality is measured by the real run)."""

import json

from jobs.train import main as train_main
from stages import checkpoint as ckpt
from stages.audio import AudioEncoder
from stages.fusion import FusionScorer
from stages.settings import AudioConfig, FusionConfig, Shared


def test_train_writes_loadable_checkpoints_with_held_out_metrics(ray_session, tmp_path, capsys):
    out = tmp_path / "ckpt"
    args = [f"work={tmp_path / 'work'}", f"out={out}", "train_count=3", "test_count=2"]
    args += [
        "audio_epochs=2",
        "fusion_epochs=3",
        "patience=2",
        "random_trials=2",
        "val_fraction=0.34",
    ]
    assert train_main(args) == 0

    _, audio_meta = ckpt.load(out / "audio_rnn.pt")
    assert 0.0 <= audio_meta["metrics"]["test_accuracy"] <= 1.0
    _, meta = ckpt.load(out / "fusion.pt")
    assert meta["metrics"]["n_train_clips"] == 3 and meta["metrics"]["n_test_clips"] == 2
    assert set(meta["metrics"]["random"]) == {"f1_mean", "f1_max", "kendall_tau", "spearman_rho"}
    assert meta["metrics"]["ground_truth"]["kendall_tau"] == 1.0
    assert meta["encoder_version"].startswith("efficientnet_lite0:")
    assert json.loads((tmp_path / "work" / "metrics.json").read_text())["test"]

    # The stages load what train wrote.
    assert AudioEncoder(AudioConfig(checkpoint=str(out / "audio_rnn.pt"), device="cpu")).trained
    widths = Shared(visual_dim=1280, audio_dim=128)
    assert FusionScorer(
        FusionConfig(checkpoint=str(out / "fusion.pt"), device="cpu"), widths
    ).trained

    # A second run reuses the committed features instead of decoding again.
    capsys.readouterr()
    assert train_main(args) == 0
    assert "reusing the committed features of 5 clips" in capsys.readouterr().out
