"""`vidgist train`: the checkpoints the defaults need, trained and measured on sample clips.

1. Sample clips: a training set and a held-out test set drawn with different seeds.
2. Audio encoder: the log-mel BiGRU learns to tell the sample world's sound events
   apart, frame by frame (accuracy measured on the test clips).
3. Features: pass 1 of the real pipeline, with that audio encoder, on both sets.
4. Fusion: temporal attention regresses the ground-truth importance (`gtscore`) of the
   training clips, early-stopped on a validation split of the training set.
5. Evaluation on the test clips through the real selection (KTS + knapsack): F1 against
   the simulated annotators and rank correlation with gtscore, next to random scores
   and to the ground truth itself fed through the same selection (the ceiling).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from omegaconf import OmegaConf
from torch import nn

from jobs.samples import VERSION as SAMPLES_VERSION
from jobs.samples import generate_samples
from pipeline.config import VidgistConfig, find_profile, load_config
from pipeline.features import features_from_table
from pipeline.run import run_pipeline
from pipeline.sources import canonical_uri, make_sources
from pipeline.store import Store
from pipeline.versions import encoder_version, features_version
from stages import audio as audio_stage
from stages import checkpoint as ckpt
from stages import fusion as fusion_stage
from stages.decode import Decoder
from stages.metrics import kendall_tau, machine_summary, spearman_rho, summary_f1
from stages.records import Features
from stages.select import Selector
from stages.shots import KTSShots

REPO_CHECKPOINTS = Path(__file__).resolve().parent.parent / "stages" / "checkpoints"


@dataclass
class TrainConfig:
    work: str = ".vidgist-train"  # samples, features and logs go here
    out: str = str(REPO_CHECKPOINTS)  # where audio_rnn.pt and fusion.pt are written
    pipeline: str = "local.yaml"  # profile for the feature-extraction run
    train_count: int = 80
    test_count: int = 12
    train_seed: int = 101
    test_seed: int = 202
    val_fraction: float = 0.2
    audio_epochs: int = 25
    audio_crop_frames: int = 8  # train the audio RNN on 4 s crops
    audio_lr: float = 3e-3
    fusion_epochs: int = 300
    fusion_lr: float = 5e-4
    weight_decay: float = 1e-4
    patience: int = 40
    random_trials: int = 100
    seed: int = 0
    overrides: list[str] = field(default_factory=list)  # key=value for the pipeline config


def _log(msg: str) -> None:
    print(f"[train {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _samples(directory: Path, count: int, seed: int) -> list[Path]:
    videos = [directory / f"sample-{i:03d}.mp4" for i in range(count)]
    marker = directory / ".complete.json"
    expected = {"count": count, "seed": seed, "version": SAMPLES_VERSION}
    if not (marker.exists() and json.loads(marker.read_text()) == expected):
        _log(f"rendering {count} sample clips (seed {seed}) into {directory}")
        generate_samples(directory, count=count, seed=seed)
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
    _log(f"audio: {len(train_data)} training windows, {len(test_data)} test windows")
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
            _log(f"audio epoch {epoch + 1}: loss {total / max(1, len(order) / 8):.3f}")
    model.eval()
    head.eval()
    acc, per_class = _audio_accuracy(model, head, test_data, spf)
    train_acc, _ = _audio_accuracy(model, head, train_data, spf)
    _log(f"audio event accuracy: train {train_acc:.3f}, held-out test {acc:.3f} {per_class}")
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


def _cached_features(out: Path, videos: list[Path], encoder: str) -> dict[str, Features] | None:
    """Per-clip arrays (by canonical path) from committed features of these exact files and
    encoder, or None unless every clip is there and its run decoded it completely."""
    store = Store(out)
    ok = store.read_committed("videos", ["video_id", "fingerprint", "run_id", "status"])
    ok = ok[ok["status"] == "ok"]
    complete = set(zip(ok["video_id"], ok["fingerprint"], ok["run_id"], strict=True))
    if not complete:
        return None
    table = pq.read_table(out / "features")
    table = table.filter(pc.field("encoder_version") == encoder)
    clips = {}
    for src in make_sources([str(v.resolve()) for v in videos]):
        rows = table.filter(
            (pc.field("video_id") == src.video_id) & (pc.field("fingerprint") == src.fingerprint)
        )
        runs = [
            r
            for r in set(rows["run_id"].to_pylist())
            if (src.video_id, src.fingerprint, r) in complete
        ]
        if not runs:
            return None
        newest = max(runs)  # a clip encoded twice: take the last complete run
        clips[src.uri] = features_from_table(rows.filter(pc.field("run_id") == newest))
    return clips


def extract_features(
    tc: TrainConfig, cfg: VidgistConfig, videos: list[Path]
) -> dict[str, Features]:
    """Pass 1 of the real pipeline over the clips; returns per-clip arrays by canonical path.

    The features table is a cache: clips already encoded with the same encoder are reused.
    """
    work = Path(tc.work)
    out = work / "features-run"
    encoder = features_version(cfg)
    cached = _cached_features(out, videos, encoder)
    if cached is not None:
        _log(f"reusing the committed features of {len(cached)} clips in {out}")
        return cached
    listing = work / "all-clips.txt"
    listing.write_text("\n".join(str(v.resolve()) for v in videos) + "\n")
    result = run_pipeline(cfg, str(listing), str(out), log=_log, encode_only=True)
    if result.n_error:
        raise RuntimeError(
            f"feature extraction failed for {result.n_error} clips:\n{result.report}"
        )
    cached = _cached_features(out, videos, encoder)
    if cached is None:
        raise RuntimeError(f"pass 1 committed no features for some clips in {out}")
    return cached


# ---------------------------------------------------------------- fusion


@dataclass
class Clip:
    name: str
    visual: np.ndarray
    audio: np.ndarray
    mask: np.ndarray
    time_s: np.ndarray
    target: np.ndarray
    truth: dict


def _clip(video: Path, f: Features) -> Clip:
    truth = _truth(video)
    n = min(len(f.time_s), len(truth["gtscore"]))
    return Clip(
        video.name,
        # Copies: arrays read from Arrow are read-only, and torch wants writable memory.
        f.visual[:n].copy(),
        f.audio[:n].copy(),
        f.audio_mask[:n].copy(),
        f.time_s[:n],
        np.asarray(truth["gtscore"][:n], dtype=np.float32),
        truth,
    )


def _tensors(c: Clip) -> tuple[torch.Tensor, ...]:
    return (
        torch.from_numpy(c.visual)[None],
        torch.from_numpy(c.audio)[None],
        torch.from_numpy(c.mask)[None],
        torch.from_numpy(c.target)[None],
    )


def _val_loss(model, clips: list[Clip]) -> float:
    model.eval()
    with torch.inference_mode():
        losses = [
            float(nn.functional.mse_loss(model(*_tensors(c)[:3]), _tensors(c)[3])) for c in clips
        ]
    model.train()
    return float(np.mean(losses))


def train_fusion(tc: TrainConfig, cfg: VidgistConfig, clips: list[Clip]) -> nn.Module:
    rng = np.random.default_rng(tc.seed)
    torch.manual_seed(tc.seed)
    order = rng.permutation(len(clips))
    n_val = max(1, int(round(tc.val_fraction * len(clips))))
    val = [clips[i] for i in order[:n_val]]
    fit = [clips[i] for i in order[n_val:]]
    model = fusion_stage.build_model(cfg.fusion, clips[0].visual.shape[1], clips[0].audio.shape[1])
    opt = torch.optim.AdamW(model.parameters(), lr=tc.fusion_lr, weight_decay=tc.weight_decay)
    best, best_state, waited = float("inf"), None, 0
    _log(f"fusion: {len(fit)} training clips, {len(val)} validation clips")
    model.train()
    for epoch in range(tc.fusion_epochs):
        for i in rng.permutation(len(fit)):
            v, a, m, y = _tensors(fit[i])
            loss = nn.functional.mse_loss(model(v, a, m), y)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        vl = _val_loss(model, val)
        if vl < best - 1e-5:
            best, waited = vl, 0
            best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
        else:
            waited += 1
        if epoch % 20 == 19:
            _log(f"fusion epoch {epoch + 1}: validation MSE {vl:.4f} (best {best:.4f})")
        if waited >= tc.patience:
            _log(f"early stop at epoch {epoch + 1}")
            break
    model.load_state_dict(best_state)
    model.eval()
    return model


def evaluate(clips: list[Clip], cfg: VidgistConfig, scorer, trials: int = 1) -> dict[str, float]:
    """Mean over clips (and trials) of F1 (mean/max over annotators), tau and rho."""
    # The SumMe/TVSum protocol: KTS over the whole video, then the knapsack.
    shared = cfg.decode.shared()
    shots, selector = KTSShots(cfg.shots, shared), Selector(cfg.select, shared)
    rows = []
    for c in clips:
        truth = c.truth
        frame_times = (
            np.asarray(truth["frame_times"])
            if "frame_times" in truth
            else np.arange(truth["n_frames"]) / truth["fps"]
        )
        seg = shots.segments(c.time_s, c.visual, truth["duration_s"])
        seg = selector.fit_budget(seg, c.time_s)
        users = np.asarray(truth["user_summary"])
        for trial in range(trials):
            importance = scorer(c, trial)
            sel = selector.choose(seg, importance, c.time_s)
            machine = machine_summary(
                frame_times, sel.segments.starts, sel.segments.ends, sel.selected
            )
            f1_mean, f1_max = summary_f1(machine, users)
            rows.append(
                (
                    f1_mean,
                    f1_max,
                    kendall_tau(importance, c.target),
                    spearman_rho(importance, c.target),
                )
            )
    r = np.array(rows)
    return {
        "f1_mean": r[:, 0].mean(),
        "f1_max": r[:, 1].mean(),
        "kendall_tau": r[:, 2].mean(),
        "spearman_rho": r[:, 3].mean(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vidgist train",
        description="Train the audio encoder and the fusion head on sample clips and write "
        "their checkpoints (with held-out metrics) to stages/checkpoints.",
    )
    parser.add_argument(
        "--config", default="train.yaml", help="training profile (YAML; default: the shipped one)"
    )
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the training profile")
    args = parser.parse_args(argv)
    tc: TrainConfig = OmegaConf.to_object(
        OmegaConf.merge(
            OmegaConf.structured(TrainConfig),
            OmegaConf.load(find_profile(args.config)),
            OmegaConf.from_dotlist(args.overrides),
        )
    )
    work = Path(tc.work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    train = _samples(work / "train", tc.train_count, tc.train_seed)
    test = _samples(work / "test", tc.test_count, tc.test_seed)

    cfg = load_config(tc.pipeline, tc.overrides)
    audio_path = train_audio(tc, cfg, train, test)
    cfg.audio.checkpoint = str(audio_path)
    cfg.fusion.checkpoint = "none"

    arrays = extract_features(tc, cfg, train + test)
    train_clips = [_clip(v, arrays[canonical_uri(str(v))]) for v in train]
    test_clips = [_clip(v, arrays[canonical_uri(str(v))]) for v in test]
    model = train_fusion(tc, cfg, train_clips)

    def predict(c: Clip, _trial: int) -> np.ndarray:
        with torch.inference_mode():
            return model(*_tensors(c)[:3])[0].numpy()

    def random_scores(c: Clip, trial: int) -> np.ndarray:
        return (
            np.random.default_rng([tc.seed, trial, len(c.target)])
            .random(len(c.target))
            .astype(np.float32)
        )

    metrics = {
        "test": evaluate(test_clips, cfg, predict),
        "random": evaluate(test_clips, cfg, random_scores, tc.random_trials),
        "ground_truth": evaluate(test_clips, cfg, lambda c, _t: c.target),
        "train": evaluate(train_clips, cfg, predict),
        "n_train_clips": len(train_clips),
        "n_test_clips": len(test_clips),
    }
    enc, _ = encoder_version(cfg)
    meta = {
        "kind": "fusion",
        "architecture": fusion_stage.architecture(
            cfg.fusion, train_clips[0].visual.shape[1], train_clips[0].audio.shape[1]
        ),
        "encoder_version": enc,
        "training": asdict(tc),
        "metrics": metrics,
        "torch": torch.__version__,
    }
    fusion_path = Path(tc.out) / fusion_stage.BUNDLED
    ckpt.save(fusion_path, model.state_dict(), meta)
    (work / "metrics.json").write_text(json.dumps(metrics, indent=2))
    _log(f"wrote {audio_path} and {fusion_path} in {time.monotonic() - t0:.0f} s")
    print(format_metrics(metrics))
    return 0


def format_metrics(m: dict) -> str:
    lines = [f"held-out sample clips: {m['n_test_clips']} (trained on {m['n_train_clips']})"]
    lines.append(f"{'scores':<14} {'F1 mean':>8} {'F1 max':>8} {'tau':>7} {'rho':>7}")
    for name in ("test", "random", "ground_truth"):
        r = m[name]
        label = {"test": "fusion", "random": "random", "ground_truth": "ground truth"}[name]
        f1 = f"{r['f1_mean']:>8.3f} {r['f1_max']:>8.3f}"
        lines.append(f"{label:<14} {f1} {r['kendall_tau']:>7.3f} {r['spearman_rho']:>7.3f}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
