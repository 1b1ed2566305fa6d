"""What `vidgist train` runs (jobs/train.py parses its command line): fit the fusion model
and measure it with the SumMe/TVSum protocol.

Three sources of videos, one training loop (stages/fusion_train.py):

- sample clips (the default, and the recipe of the shipped checkpoints): a training set
  and a held-out test set of longer clips, drawn with different seeds; the audio encoder
  learns the sample world's sound events (or the shipped one is kept: audio_epochs=0);
  pass 1 of the real pipeline encodes both sets; the fusion model fits `gtscore`
  (objective=supervised) or the clips alone (objective=unsupervised), early-stopped on a
  validation split of the training set; `vidgist eval`'s protocol scores it on the test set
  next to random scores and the ground truth itself (the ceiling).
- an archive without labels (`vidgist train --input DIR`): pass 1 over its videos, then
  unsupervised fitting, early-stopped on a validation split of its videos;
- an eccv16 h5 file (`vidgist train --h5 summe.h5`): supervised on its features and
  `gtscore`, with a seeded test split that is scored by the protocol.

Features are read from the committed features table: training again never decodes again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from torch import nn

from jobs.samples import VERSION as SAMPLES_VERSION
from jobs.samples import generate_samples
from jobs.train import TrainConfig
from pipeline.config import VidgistConfig, load_config
from pipeline.datasets import AnnotatedVideo, load_dataset, scores_at_picks
from pipeline.features import features_from_table
from pipeline.run import run_pipeline
from pipeline.sources import list_inputs, make_sources
from pipeline.store import Store
from pipeline.versions import encoder_version, features_version
from stages import audio as audio_stage
from stages import checkpoint as ckpt
from stages import fusion as fusion_stage
from stages.decode import Decoder
from stages.fusion_train import FitConfig, FitResult, Sequence, fit, split
from stages.protocol import evaluate_video, mean_result
from stages.records import Features


def log(msg: str) -> None:
    print(f"[train {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sample_videos(directory: Path, count: int, seed: int, long: bool = False) -> list[Path]:
    videos = [directory / f"sample-{i:03d}.mp4" for i in range(count)]
    marker = directory / ".complete.json"
    expected = {"count": count, "seed": seed, "long": long, "version": SAMPLES_VERSION}
    if not (marker.exists() and json.loads(marker.read_text()) == expected):
        kind = "long sample clips" if long else "sample clips"
        log(f"rendering {count} {kind} (seed {seed}) into {directory}")
        generate_samples(directory, count=count, seed=seed, long=long)
        marker.write_text(json.dumps(expected))
    return videos


def _truth(video: Path) -> dict:
    return json.loads(video.with_suffix("").with_suffix(".gt.json").read_text())


# ---------------------------------------------------------------- audio encoder


def _audio_labels(truth: dict, times: np.ndarray) -> np.ndarray:
    """Sound event per sampled frame, judged at the middle of the frame's half second."""
    labels = np.zeros(len(times), dtype=np.int64)
    centre = times + 0.25
    for shot in truth["shots"]:
        s = shot["sound"]
        if s["kind"] == "silence":
            continue
        active = (centre >= s["onset_s"]) & (centre < s["end_s"])
        labels[active] = audio_stage.AUDIO_EVENTS.index(s["kind"])
    return labels


def _audio_windows(videos: list[Path], cfg: VidgistConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    """(audio samples, per-frame labels) for every window of every clip with audio."""
    dec = Decoder(cfg.decode)
    spf = dec.samples_per_frame
    out = []
    for v, src in zip(videos, make_sources([str(v) for v in videos]), strict=True):
        truth = _truth(v)
        if not truth["has_audio"]:
            continue
        for w in dec.windows(src):
            # The frames whose whole slice of samples is real audio.
            k0 = -(-int(w.wave_from[0]) // spf)
            k1 = min(int(w.n_frames[0]), int(w.wave_to[0]) // spf)
            if k1 > k0:
                wave, times = w.wave[0, k0 * spf : k1 * spf], w.time_s[0, k0:k1]
                out.append((wave, _audio_labels(truth, times)))
    return out


def _audio_accuracy(model, head, data, spf) -> tuple[float, dict[str, float]]:
    correct = np.zeros(len(audio_stage.AUDIO_EVENTS))
    total = np.zeros(len(audio_stage.AUDIO_EVENTS))
    with torch.inference_mode():
        for wave, labels in data:
            pred = (
                head(model.per_frame(torch.from_numpy(wave)[None], len(labels), spf))[0]
                .argmax(-1)
                .numpy()
            )
            for c in range(len(total)):
                sel = labels == c
                total[c] += sel.sum()
                correct[c] += (pred[sel] == c).sum()
    per_class = {
        name: float(correct[i] / total[i])
        for i, name in enumerate(audio_stage.AUDIO_EVENTS)
        if total[i]
    }
    return float(correct.sum() / total.sum()), per_class


def train_audio(tc: TrainConfig, cfg: VidgistConfig, train: list[Path], test: list[Path]) -> Path:
    rng = np.random.default_rng(tc.seed)
    torch.manual_seed(tc.seed)
    spf = cfg.decode.shared().samples_per_frame
    train_data = _audio_windows(train, cfg)
    test_data = _audio_windows(test, cfg)
    model = audio_stage.build_model(cfg.audio, cfg.decode.sample_rate)
    head = audio_stage.AudioEventHead(model.out_dim)
    params = [*model.parameters(), *head.parameters()]
    opt = torch.optim.AdamW(params, lr=tc.audio_lr, weight_decay=tc.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    crop = tc.audio_crop_frames
    log(f"audio: {len(train_data)} training windows, {len(test_data)} test windows")
    for epoch in range(tc.audio_epochs):
        order = rng.permutation(len(train_data))
        total = 0.0
        for i in range(0, len(order), 8):
            waves, labels = [], []
            for j in order[i : i + 8]:
                wave, lab = train_data[j]
                k = int(rng.integers(0, max(1, len(lab) - crop + 1)))
                n = min(crop, len(lab) - k)
                if n < crop:
                    continue
                waves.append(wave[k * spf : (k + n) * spf])
                labels.append(lab[k : k + n])
            if not waves:
                continue
            logits = head(model.per_frame(torch.from_numpy(np.stack(waves)), crop, spf))
            loss = loss_fn(
                logits.reshape(-1, logits.shape[-1]), torch.from_numpy(np.stack(labels)).reshape(-1)
            )
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            total += loss.item()
        if epoch % 5 == 4 or epoch == tc.audio_epochs - 1:
            log(f"audio epoch {epoch + 1}: loss {total / max(1, len(order) / 8):.3f}")
    model.eval()
    head.eval()
    acc, per_class = _audio_accuracy(model, head, test_data, spf)
    train_acc, _ = _audio_accuracy(model, head, train_data, spf)
    log(f"audio event accuracy: train {train_acc:.3f}, held-out test {acc:.3f} {per_class}")
    path = Path(tc.out) / audio_stage.BUNDLED
    meta = {
        "kind": "audio-encoder",
        "architecture": audio_stage.architecture(cfg.audio, cfg.decode.sample_rate),
        "classes": list(audio_stage.AUDIO_EVENTS),
        "training": {
            k: v for k, v in asdict(tc).items() if k.startswith(("audio", "train", "test", "seed"))
        },
        "metrics": {"train_accuracy": train_acc, "test_accuracy": acc, "test_per_class": per_class},
        "torch": torch.__version__,
    }
    ckpt.save(path, model.state_dict(), meta)
    return path


# ---------------------------------------------------------------- features


def _cached_features(out: Path, uris: list[str], encoder: str) -> dict[str, Features]:
    """Per-video arrays (by canonical URI) from committed features of these exact files and
    encoder, for the videos whose run decoded them completely."""
    store = Store(out)
    ok = store.read_committed("videos", ["video_id", "fingerprint", "run_id", "status"])
    ok = ok[ok["status"] == "ok"]
    complete = set(zip(ok["video_id"], ok["fingerprint"], ok["run_id"], strict=True))
    if not complete:
        return {}
    table = pq.read_table(out / "features")
    table = table.filter(pc.field("encoder_version") == encoder)
    clips = {}
    for src in make_sources(uris):
        rows = table.filter(
            (pc.field("video_id") == src.video_id) & (pc.field("fingerprint") == src.fingerprint)
        )
        runs = [
            r
            for r in set(rows["run_id"].to_pylist())
            if (src.video_id, src.fingerprint, r) in complete
        ]
        if runs:
            newest = max(runs)  # a video encoded twice: take the last complete run
            clips[src.uri] = features_from_table(rows.filter(pc.field("run_id") == newest))
    return clips


def extract_features(tc: TrainConfig, cfg: VidgistConfig, uris: list[str]) -> dict[str, Features]:
    """Pass 1 of the real pipeline over the videos; per-video arrays by canonical URI, for
    every video that decoded (a broken one is left out and said so).

    The features table is a cache: videos already encoded with the same encoder are reused.
    """
    out = Path(tc.work) / "features-run"
    encoder = features_version(cfg)
    cached = _cached_features(out, uris, encoder)
    if len(cached) == len(uris):
        log(f"reusing the committed features of {len(cached)} clips in {out}")
        return cached
    missing = [u for u in uris if u not in cached]
    log(f"{len(cached)} of {len(uris)} videos have features; encoding {len(missing)}")
    listing = Path(tc.work) / "to-encode.txt"
    listing.write_text("\n".join(missing) + "\n")
    result = run_pipeline(cfg, str(listing), str(out), log=log, encode_only=True)
    cached = _cached_features(out, uris, encoder)
    if len(cached) < len(uris):
        log(f"{len(uris) - len(cached)} of {len(uris)} videos have no features:\n{result.report}")
    return cached


# ---------------------------------------------------------------- fusion


@dataclass
class Clip:
    """A video to fit or score: its steps' inputs, their times, and its annotations."""

    seq: Sequence
    time_s: np.ndarray
    video: AnnotatedVideo | None = None


def sample_clips(folder: Path, arrays: dict[str, Features]) -> list[Clip]:
    """Sample clips with their sidecar annotations; the target is gtscore at each step."""
    data = load_dataset(folder)
    clips = []
    for key, video in data.videos.items():
        f = arrays.get(str((folder / f"{key}.mp4").resolve()))
        if f is None:
            continue
        target = scores_at_picks(video.pick_times, video.truth.gtscore, f.time_s)
        # Copies: arrays read from Arrow are read-only, and torch wants writable memory.
        seq = Sequence(key, f.visual.copy(), f.audio.copy(), f.audio_mask.copy(), target)
        clips.append(Clip(seq, f.time_s, video))
    return clips


def fit_config(tc: TrainConfig, objective: str | None = None) -> FitConfig:
    return FitConfig(
        objective=objective or tc.objective,
        epochs=tc.fusion_epochs,
        lr=tc.fusion_lr,
        weight_decay=tc.weight_decay,
        patience=tc.patience,
        seed=tc.seed,
        device=tc.device,
        episodes=tc.episodes,
        selection_rate=tc.selection_rate,
    )


def fit_fusion(
    tc: TrainConfig, cfg: VidgistConfig, clips: list[Clip], objective: str, inputs: str
) -> FitResult:
    """A fusion model fitted on `clips`, early-stopped on a seeded validation split of them."""
    fit_on, val = split(clips, tc.val_fraction, tc.seed)
    first = clips[0].seq
    torch.manual_seed(tc.seed)  # the initial weights too: same seed, same model
    model = fusion_stage.build_model(
        replace(cfg.fusion, inputs=inputs), first.visual.shape[1], first.audio.shape[1]
    )
    log(f"fusion ({objective}, {inputs}): {len(fit_on)} training, {len(val)} validation videos")
    return fit(model, [c.seq for c in fit_on], [c.seq for c in val], fit_config(tc, objective))


def predictor(model: nn.Module) -> Callable[[Clip], np.ndarray]:
    def predict(c: Clip) -> np.ndarray:
        param = next(model.parameters())
        with torch.inference_mode():
            x = [
                torch.from_numpy(np.asarray(a))[None].to(param.device)
                for a in (c.seq.visual, c.seq.audio, c.seq.mask)
            ]
            return model(*x)[0].float().cpu().numpy()

    return predict


def protocol_metrics(
    clips: list[Clip], predict: Callable[[Clip], np.ndarray], tc: TrainConfig, at_picks=False
) -> dict[str, float]:
    """`vidgist eval`'s figures, averaged over clips; `predict` gives one score per step
    (or per annotated pick, with at_picks)."""
    results = []
    for c in clips:
        scores = predict(c)
        if not at_picks:
            scores = scores_at_picks(c.time_s, scores, c.video.pick_times)
        results.append(evaluate_video(scores, c.video.truth, tc.metric, tc.random_trials, tc.seed))
    return mean_result(results)


def save_fusion(
    path: Path,
    result: FitResult,
    cfg: VidgistConfig,
    inputs: str,
    dims: tuple,
    features: str,
    tc: TrainConfig,
    metrics: dict,
) -> None:
    meta = {
        "kind": "fusion",
        "architecture": fusion_stage.architecture(replace(cfg.fusion, inputs=inputs), *dims),
        "encoder_version": features,
        "objective": tc.objective,
        "training": asdict(tc),
        "fit": {
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
            "seconds_per_epoch": result.seconds_per_epoch,
        },
        "metrics": metrics,
        "torch": torch.__version__,
    }
    ckpt.save(path, result.model.state_dict(), meta)
    log(f"wrote {path}")


def _dims(clips: list[Clip]) -> tuple[int, int]:
    return clips[0].seq.visual.shape[1], clips[0].seq.audio.shape[1]


def sample_sets(tc: TrainConfig) -> tuple[list[Path], list[Path]]:
    """The training and held-out sample clips (rendered once, then found on disk)."""
    work = Path(tc.work)
    train = sample_videos(work / "train", tc.train_count, tc.train_seed)
    return train, sample_videos(work / "test", tc.test_count, tc.test_seed, tc.test_long)


def encode_samples(tc: TrainConfig, cfg: VidgistConfig) -> tuple[list[Clip], list[Clip]]:
    """Both sample sets through pass 1 (or the features table), as clips with annotations."""
    train, test = sample_sets(tc)
    arrays = extract_features(tc, cfg, [str(v.resolve()) for v in train + test])
    work = Path(tc.work)
    train_clips, test_clips = (
        sample_clips(work / "train", arrays),
        sample_clips(work / "test", arrays),
    )
    if len(train_clips) < len(train) or len(test_clips) < len(test):
        raise RuntimeError("pass 1 failed on some sample clips (see above)")
    return train_clips, test_clips


def train_on_samples(tc: TrainConfig) -> dict:
    work = Path(tc.work)
    cfg = load_config(tc.pipeline, tc.overrides)
    if tc.audio_epochs > 0:
        cfg.audio.checkpoint = str(train_audio(tc, cfg, *sample_sets(tc)))
    cfg.fusion.checkpoint = "none"
    train_clips, test_clips = encode_samples(tc, cfg)
    result = fit_fusion(tc, cfg, train_clips, tc.objective, tc.inputs)
    metrics = {
        "test": protocol_metrics(test_clips, predictor(result.model), tc),
        "ground_truth": protocol_metrics(
            test_clips, lambda c: c.video.truth.gtscore, tc, at_picks=True
        ),
        "metric": tc.metric,
        "n_train_clips": len(train_clips),
        "n_test_clips": len(test_clips),
    }
    out = Path(tc.output) if tc.output else Path(tc.out) / fusion_stage.BUNDLED
    features = encoder_version(cfg)[0]
    save_fusion(out, result, cfg, tc.inputs, _dims(train_clips), features, tc, metrics)
    (work / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(format_metrics(metrics))
    return metrics


def train_on_archive(tc: TrainConfig) -> dict:
    """Unsupervised fitting on the videos of an archive (no labels)."""
    cfg = load_config(tc.pipeline, tc.overrides)
    cfg.fusion.checkpoint = "none"
    uris = list_inputs(tc.input)
    if len(uris) < 2:
        raise ValueError(f"{tc.input}: {len(uris)} videos; unsupervised fitting needs 2 or more")
    arrays = extract_features(tc, cfg, uris)
    clips = [
        Clip(Sequence(Path(u).stem, f.visual.copy(), f.audio.copy(), f.audio_mask.copy()), f.time_s)
        for u, f in arrays.items()
        if len(f.time_s) >= 2
    ]
    if len(clips) < 2:
        raise ValueError(f"{tc.input}: fewer than 2 videos decoded; nothing to fit")
    result = fit_fusion(tc, cfg, clips, "unsupervised", tc.inputs)
    metrics = {"validation_reward": -min(result.history), "n_videos": len(clips)}
    out = Path(tc.output) if tc.output else Path(tc.work) / fusion_stage.BUNDLED
    save_fusion(out, result, cfg, tc.inputs, _dims(clips), encoder_version(cfg)[0], tc, metrics)
    print(f"fitted on {len(clips)} videos of {tc.input}; use it with fusion.checkpoint={out}")
    return metrics


def train_on_h5(tc: TrainConfig) -> dict:
    """Supervised fitting on an eccv16 h5's features and gtscore; a seeded test split."""
    data = load_dataset(tc.h5)
    if not data.backbone:
        raise ValueError(f"{tc.h5}: no features to train on")
    clips = []
    for key, v in data.videos.items():
        if v.features is None or v.truth.gtscore is None:
            raise ValueError(f"{tc.h5}: video {key} lacks features or gtscore")
        t = len(v.truth.picks)
        seq = Sequence(
            key, v.features, np.zeros((t, 1), np.float32), np.zeros(t, bool), v.truth.gtscore
        )
        clips.append(Clip(seq, np.arange(t, dtype=np.float64), v))
    rest, test = split(clips, tc.test_fraction, tc.seed + 1)
    cfg = load_config(tc.pipeline, tc.overrides)
    result = fit_fusion(tc, cfg, rest, "supervised", "visual")
    metrics = {
        "test": protocol_metrics(test, predictor(result.model), tc, at_picks=True),
        "test_videos": [c.seq.name for c in test],
        "metric": tc.metric,
    }
    out = Path(tc.output) if tc.output else Path(tc.work) / fusion_stage.BUNDLED
    tc = replace(tc, objective="supervised", inputs="visual")
    save_fusion(out, result, cfg, "visual", _dims(clips), data.backbone, tc, metrics)
    print(format_metrics({**metrics, "n_test_clips": len(test), "n_train_clips": len(rest)}))
    return metrics


def format_metrics(m: dict) -> str:
    lines = [
        f"held-out: {m['n_test_clips']} videos (trained on {m['n_train_clips']}), "
        f"F1 {m['metric']} over annotators"
    ]
    lines.append(f"{'scores':<14} {'F1':>7} {'random':>7} {'PoR':>6} {'tau':>7} {'rho':>7}")
    for name, label in (("test", "fusion"), ("ground_truth", "ground truth")):
        if name in m:
            r = m[name]
            lines.append(
                f"{label:<14} {r['f1']:>7.3f} {r['random_f1']:>7.3f} {r['por']:>6.2f} "
                f"{r['kendall']:>7.3f} {r['spearman']:>7.3f}"
            )
    return "\n".join(lines)
