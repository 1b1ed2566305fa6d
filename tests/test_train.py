"""`vidgist train` end to end on a handful of clips (quality is measured by bench/quality.py)."""

import json
import shutil

import h5py
import numpy as np

from jobs.train import main as train_main
from stages import checkpoint as ckpt
from stages.audio import AudioEncoder
from stages.fusion import FusionScorer, load_trained
from stages.settings import AudioConfig, FusionConfig, Shared

FAST = ["fusion_epochs=3", "patience=2", "random_trials=2", "val_fraction=0.34"]


def test_train_on_samples_writes_loadable_checkpoints_with_held_out_metrics(
    ray_session, tmp_path, capsys
):
    out = tmp_path / "ckpt"
    args = [f"work={tmp_path / 'work'}", f"out={out}", "train_count=3", "test_count=2"]
    args += ["audio_epochs=2", "test_long=false", *FAST]
    assert train_main(args) == 0

    _, audio_meta = ckpt.load(out / "audio_rnn.pt")
    assert 0.0 <= audio_meta["metrics"]["test_accuracy"] <= 1.0
    _, meta = ckpt.load(out / "fusion.pt")
    metrics = meta["metrics"]
    assert metrics["n_train_clips"] == 3 and metrics["n_test_clips"] == 2
    figures = {"f1", "precision", "recall", "kendall", "spearman", "random_f1", "por"}
    assert set(metrics["test"]) == figures == set(metrics["ground_truth"])
    assert meta["encoder_version"].startswith("efficientnet_lite0:")
    assert meta["fit"]["epochs_run"] <= 3 and meta["architecture"]["inputs"] == "visual+audio"
    assert json.loads((tmp_path / "work" / "metrics.json").read_text())["test"]
    assert "held-out: 2 videos (trained on 3)" in capsys.readouterr().out

    # The stages load what train wrote.
    assert AudioEncoder(AudioConfig(checkpoint=str(out / "audio_rnn.pt"), device="cpu")).trained
    widths = Shared(visual_dim=1280, audio_dim=128)
    assert FusionScorer(
        FusionConfig(checkpoint=str(out / "fusion.pt"), device="cpu"), widths
    ).trained

    # A second run reuses the committed features instead of decoding again; then the
    # clips alone (no labels) train an unsupervised model on the same cached features.
    assert train_main(args) == 0
    assert "reusing the committed features of 5 clips" in capsys.readouterr().out
    archive = tmp_path / "archive"
    archive.mkdir()
    for clip in (tmp_path / "work" / "train").glob("*.mp4"):
        shutil.copy(clip, archive / clip.name)
    (archive / "broken.mp4").write_bytes(b"not a video")
    unsup = tmp_path / "unsup.pt"
    args = [f"work={tmp_path / 'work2'}", *FAST]
    assert train_main(["--input", str(archive), "--output", str(unsup), *args]) == 0
    printed = capsys.readouterr().out
    assert "1 of 4 videos have no features" in printed and "fitted on 3 videos" in printed
    _, meta = ckpt.load(unsup)
    assert meta["objective"] == "unsupervised" and meta["metrics"]["n_videos"] == 3
    assert FusionScorer(FusionConfig(checkpoint=str(unsup), device="cpu"), widths).trained


def test_train_on_an_eccv16_h5_holds_out_a_test_split_and_names_its_backbone(tmp_path, capsys):
    rng = np.random.default_rng(0)
    h5 = tmp_path / "eccv16_dataset_tiny.h5"
    with h5py.File(h5, "w") as f:
        f.attrs["backbone"] = "googlenet-pool5"
        for i in range(6):
            g = f.create_group(f"video_{i + 1}")
            n_frames, picks = 150, np.arange(0, 150, 15)
            g["n_frames"], g["picks"] = n_frames, picks
            g["change_points"] = np.array([[a, a + 29] for a in range(0, 150, 30)])
            g["user_summary"] = (rng.random((3, n_frames)) < 0.15).astype(np.float32)
            g["gtscore"] = rng.random(len(picks)).astype(np.float32)
            g["features"] = rng.random((len(picks), 16)).astype(np.float32)
    out = tmp_path / "summe.pt"
    args = ["--h5", str(h5), "--output", str(out), f"work={tmp_path}", *FAST]
    assert train_main([*args, "fusion.d_model=16"]) == 2  # pipeline keys are not train keys
    assert "config error" in capsys.readouterr().err
    assert train_main(args) == 0
    _, meta = ckpt.load(out)
    assert meta["encoder_version"] == "googlenet-pool5"
    assert len(meta["metrics"]["test_videos"]) == 1
    assert meta["architecture"]["inputs"] == "visual"
    scorer = load_trained(out, features="googlenet-pool5", device="cpu")
    assert scorer.score_visual(np.zeros((7, 16), np.float32)).shape == (7,)
