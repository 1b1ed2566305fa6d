"""`vidgist eval`: eccv16 h5 files, sample sidecars and a run's OUT, through the protocol."""

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from jobs.evaluate import evaluate
from pipeline.datasets import ECCV16_BACKBONE, load_dataset
from pipeline.store import Store
from stages import checkpoint as ckpt
from stages import fusion
from stages.protocol import evaluate_video
from stages.settings import FusionConfig

ROOT = Path(__file__).resolve().parent.parent


def write_eccv16(path, videos, backbone=None):
    """A small h5 in the layout of the public SumMe/TVSum files."""
    with h5py.File(path, "w") as f:
        if backbone:
            f.attrs["backbone"] = backbone
        for key, v in videos.items():
            g = f.create_group(key)
            for name, value in v.items():
                g[name] = value


def _video(n_frames, picks, cps, users, features_dim=8, seed=0):
    cps = np.asarray(cps)
    return {
        "n_frames": n_frames,
        "picks": np.asarray(picks),
        "change_points": cps,
        "n_frame_per_seg": cps[:, 1] - cps[:, 0] + 1,
        "user_summary": np.asarray(users, dtype=np.float32),
        "gtscore": np.linspace(0, 1, len(picks)),
        "gtsummary": np.asarray(users[0], dtype=np.float32)[picks],
        "features": np.random.default_rng(seed).random((len(picks), features_dim)),
        "video_name": np.bytes_(f"clip{seed}"),
    }


def _frames(n, a, b):
    out = np.zeros(n)
    out[a : b + 1] = 1
    return out


@pytest.fixture
def dataset(tmp_path):
    """Two videos: 40 frames in shots of 10/3/3/24 (capacity 6), and one whose last pick
    (frame 20) leaves frames 20-29 to the last step."""
    gt = tmp_path / "eccv16_dataset_tiny.h5"
    write_eccv16(
        gt,
        {
            "video_1": _video(
                40,
                [0, 10, 13, 16],
                [[0, 9], [10, 12], [13, 15], [16, 39]],
                [_frames(40, 10, 15), _frames(40, 13, 18)],
                seed=1,
            ),
            "video_2": _video(
                30,
                [0, 10, 20],
                [[0, 15], [16, 19], [20, 29]],
                [_frames(30, 16, 19), _frames(30, 0, 3)],
                seed=2,
            ),
        },
    )
    pred = tmp_path / "result.h5"
    with h5py.File(pred, "w") as f:
        f["video_1/score"] = np.array([0.1, 0.9, 0.8, 0.2])  # takes frames 10-15
        f["video_2/score"] = np.array([0.3, 0.2, 0.9])  # the last shot (10 frames) > 4: 16-19
    return gt, pred


def test_eval_reproduces_hand_computed_f1_and_precision(dataset):
    gt, pred = dataset
    report = evaluate(str(pred), str(gt), "avg", random_trials=10)
    v1, v2 = report["videos"]
    # video_1: summary 10-15 vs users 10-15 (F 1) and 13-18 (overlap 3: P = R = 1/2).
    assert (v1["name"], v1["f1"], v1["precision"]) == ("clip1", 0.75, 0.75)
    # video_2: shots 16-19 (4 frames) fit capacity 4; users 16-19 (F 1) and 0-3 (F 0).
    assert (v2["f1"], v2["recall"]) == (0.5, 0.5)
    assert report["mean"]["f1"] == pytest.approx(0.625)
    maxed = evaluate(str(pred), str(gt), "max", random_trials=10)
    assert [v["f1"] for v in maxed["videos"]] == [1.0, 1.0]


def test_eval_cli_prints_one_json_object_with_every_figure(dataset):
    gt, pred = dataset
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "jobs.cli",
            "eval",
            "--pred",
            str(pred),
            "--gt",
            str(gt),
            "--json",
            "--random-trials",
            "5",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    report = json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    keys = {"f1", "precision", "recall", "kendall", "spearman", "random_f1"}
    assert keys <= set(report["mean"]) and all(keys <= set(v) for v in report["videos"])
    assert report["metric"] == "avg" and report["missing"] == []


def test_eval_says_in_one_line_what_is_wrong_with_its_inputs(tmp_path, dataset):
    gt, _ = dataset
    (tmp_path / "empty").mkdir()
    cli = [sys.executable, "-m", "jobs.cli", "eval", "--gt", str(gt), "--pred"]
    bad = subprocess.run(
        [*cli, str(tmp_path / "nothing.h5")], cwd=ROOT, capture_output=True, text=True
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "not a vidgist OUT folder" in bad.stderr


def test_a_fusion_checkpoint_scores_an_h5s_features_of_its_own_backbone(tmp_path, dataset):
    gt, _ = dataset
    cfg = FusionConfig(d_model=16, heads=2, layers=1, ff=32, inputs="visual")
    model = fusion.build_model(cfg, 8, 4)
    meta = {"architecture": fusion.architecture(cfg, 8, 4), "encoder_version": ECCV16_BACKBONE}
    ours = tmp_path / "h5.pt"
    ckpt.save(ours, model.state_dict(), meta)
    report = evaluate(str(ours), str(gt), "avg", random_trials=5)
    assert [v["name"] for v in report["videos"]] == ["clip1", "clip2"]

    other = tmp_path / "other.pt"
    ckpt.save(other, model.state_dict(), {**meta, "encoder_version": "resnet18:abc|2fps-224px"})
    with pytest.raises(ckpt.CheckpointMismatch, match=r"resnet18.*googlenet-pool5"):
        evaluate(str(other), str(gt), "avg")


def test_sample_sidecars_read_as_annotations_in_the_h5_vocabulary(clips_dir, tiny_clip):
    data = load_dataset(clips_dir)
    truth = data.videos[tiny_clip.stem].truth
    sidecar = json.loads(tiny_clip.with_suffix("").with_suffix(".gt.json").read_text())
    assert truth.n_frames == sidecar["n_frames"] == truth.user_summary.shape[1]
    assert truth.annotator_step_scores().shape == (len(sidecar["user_summary"]), len(truth.picks))


def test_eval_of_a_run_reads_its_scores_at_the_annotated_picks(first_run, clips_dir):
    _, out = first_run
    report = evaluate(str(out), str(clips_dir), "avg", random_trials=5)
    assert "tiny" in {v["name"] for v in report["videos"]} and len(report["videos"]) >= 2
    # The same figures from the committed scores, read independently at each pick's time.
    store = Store(out)
    videos = store.read_committed("videos", ["video_id", "uri", "status", "run_id"])
    scores = store.read_committed("scores", ["video_id", "run_id", "time_s", "score"])
    data = load_dataset(clips_dir)
    for row in report["videos"]:
        v = data.videos[row["name"]]
        mine = videos[
            (videos["uri"].str.endswith(f"/{row['name']}.mp4")) & (videos["status"] == "ok")
        ]
        latest = mine.sort_values("run_id").iloc[-1]
        s = scores[(scores["video_id"] == latest.video_id) & (scores["run_id"] == latest.run_id)]
        time_s, score = np.asarray(s.iloc[0].time_s), np.asarray(s.iloc[0].score)
        step = [int(np.argmin(np.abs(time_s - t))) for t in v.pick_times]
        expected = evaluate_video(score[step], v.truth, "avg", random_trials=5)
        assert row["f1"] == pytest.approx(expected.f1)
        assert row["kendall"] == pytest.approx(expected.kendall)


def test_h5_features_must_match_its_picks(tmp_path):
    v = _video(40, [0, 10], [[0, 39]], [_frames(40, 0, 5)])
    v["features"] = np.zeros((3, 8))
    write_eccv16(tmp_path / "bad.h5", {"video_1": v})
    with pytest.raises(ValueError, match="3 features, 2 picks"):
        load_dataset(tmp_path / "bad.h5")
