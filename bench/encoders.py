"""Each model stage vs its bare model, frames per second, in one run.

The bare model gets ready tensors (normalised, channels_last, batched, already on the
device); the stage gets what the pipeline hands it (uint8 windows, raw audio, per-video
feature arrays, each window's 48x27 decoded frames) and does its own conversion, copies,
top-k labels, masking, padding and chunking. The ratio is the price of the stage's
plumbing. Runs wherever torch runs (`--device cuda` on a GPU machine): the CNN,
the audio encoder, fusion and TransNetV2 (`shots.detector=transnetv2`).

    python -m bench.encoders [--samples samples] [--device cpu]
    python -m bench.encoders --export DATA.npz            (the decoded inputs, once, here)
    python -m bench.encoders --data DATA.npz --device cuda (where there is no PyAV)

bench/device.sh is the whole GPU check, prepared here by `make device-prep`.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from bench.common import ROOT, ensure_samples, save, timed
from stages.audio import AudioEncoder
from stages.devices import autocast
from stages.fusion import FusionScorer
from stages.records import Windows
from stages.settings import AudioConfig, DecodeConfig, FusionConfig, ShotsConfig, VisualConfig
from stages.transnet import TransNetScorer
from stages.visual import VisualEncoder

# One window's decoded 48x27 frames as TransNetV2's stage takes them: (lead, own, tail).
ShotWindow = tuple[np.ndarray, np.ndarray, np.ndarray]
_SHOT_PARTS = ("lead", "tiny", "tail")


def _windows(videos: list[Path], limit: int) -> Windows:
    """Windows of the clips, every decoded frame kept at 48x27 too, until `limit`
    sampled frames."""
    from pipeline.sources import make_sources
    from stages.decode import Decoder  # PyAV: imported only where clips are decoded

    cfg = DecodeConfig()
    dec = Decoder(cfg, replace(cfg.shared(), shot_frames=True))
    out = []
    for ref in make_sources([str(v) for v in videos]):
        out.extend(dec(ref))  # as a run decodes: each window with its frames after
        if sum(int(w.n_frames[0]) for w in out) >= limit:
            break
    return Windows.concat(out)


def _first_frames(shots: list[ShotWindow], limit: int) -> list[ShotWindow]:
    """The first windows, until they hold `limit` decoded frames."""
    out, n = [], 0
    for w in shots:
        if n >= limit:
            break
        out.append(w)
        n += len(w[1])
    return out


def _pack_shots(shots: list[ShotWindow]) -> dict[str, np.ndarray]:
    """The windows as flat arrays for an .npz: each part joined, with its lengths."""
    packed = {}
    for k, part in enumerate(_SHOT_PARTS):
        packed[f"shot_{part}"] = np.concatenate([w[k] for w in shots])
        packed[f"shot_{part}_n"] = np.array([len(w[k]) for w in shots])
    return packed


def _unpack_shots(data) -> list[ShotWindow]:
    parts = [
        np.split(data[f"shot_{part}"], np.cumsum(data[f"shot_{part}_n"])[:-1])
        for part in _SHOT_PARTS
    ]
    return list(zip(*parts, strict=True))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _compare(bare, stage, frames: int, device: torch.device, repeat: int) -> dict:
    """Frames per second of the bare model and of the stage, timed alike after a warm-up."""

    def synced(fn):
        def run():
            fn()
            _sync(device)

        return run

    synced(bare)()
    t_bare, _ = timed(synced(bare), repeat)
    t_stage, _ = timed(synced(stage), repeat)
    return {
        "bare_fps": frames / t_bare,
        "stage_fps": frames / t_stage,
        "stage_vs_bare": t_bare / t_stage,
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", default=str(ROOT / "samples"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--frames", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    # TransNetV2 reads every decoded frame (~15x the sampled ones at 30 fps) and runs at
    # ~67 frames/s on this CPU: a few hundred keep its rows to seconds here.
    ap.add_argument("--shot-frames", type=int, default=600, help="decoded frames for TransNetV2")
    ap.add_argument("--export", help="save the decoded inputs to this .npz and stop")
    ap.add_argument("--data", help="read the inputs from an --export file instead of decoding")
    args = ap.parse_args(argv)
    if args.data:
        data = np.load(args.data)
        frames, audio = data["frames"][: args.frames], data["audio"]
        spans = data["wave_from"], data["wave_to"]
        a_frames = int(data["audio_frames"])
        shots = _first_frames(_unpack_shots(data), args.shot_frames)
    else:
        windows = _windows(ensure_samples(Path(args.samples)), args.frames)
        frames = np.concatenate(
            [f[:n] for f, n in zip(windows.frames, windows.n_frames, strict=True)]
        )[: args.frames]
        has = windows.wave_to > windows.wave_from
        audio = windows.wave[has]
        spans = windows.wave_from[has], windows.wave_to[has]
        a_frames = int(windows.n_frames[has].sum())
        every = list(zip(windows.tiny_lead, windows.tiny, windows.tiny_tail, strict=True))
        shots = _first_frames(every, args.shot_frames)
    if args.export:
        np.savez_compressed(
            args.export,
            frames=frames,
            audio=audio,
            wave_from=spans[0],
            wave_to=spans[1],
            audio_frames=a_frames,
            **_pack_shots(shots),
        )
        print(
            f"{len(frames)} frames, {len(audio)} audio windows, "
            f"{sum(len(w[1]) for w in shots)} decoded 48x27 frames -> {args.export}"
        )
        return {}
    n = len(frames)
    result: dict = {"device": args.device, "frames": n, "threads": torch.get_num_threads()}

    vis = VisualEncoder(VisualConfig(device=args.device, batch_size=args.batch))
    dev = vis.device
    x_all = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    x_all = (
        ((x_all - vis._mean.cpu()) / vis._std.cpu())
        .to(dev)
        .contiguous(memory_format=torch.channels_last)
    )

    @torch.inference_mode()
    def bare_visual():
        for i in range(0, n, args.batch):
            with autocast(dev):
                vis.model(x_all[i : i + args.batch])

    result["visual"] = _compare(bare_visual, lambda: vis.encode(frames), n, dev, args.repeat)

    aud = AudioEncoder(AudioConfig(device=args.device))
    wave = torch.from_numpy(audio).to(dev)

    @torch.inference_mode()
    def bare_audio():
        with autocast(dev):
            aud.model.per_frame(wave, 32, aud.samples_per_frame)

    def stage_audio():
        aud.encode(audio, *spans, 32)

    result["audio"] = _compare(bare_audio, stage_audio, a_frames, dev, args.repeat)

    widths = replace(DecodeConfig().shared(), visual_dim=vis.feature_dim, audio_dim=128)
    fus = FusionScorer(FusionConfig(device=args.device), widths)
    feats = vis.encode(frames)[0]
    afeat = np.zeros((n, 128), np.float32)
    mask = np.zeros(n, bool)
    v_t = torch.from_numpy(feats)[None].to(dev)
    a_t = torch.from_numpy(afeat)[None].to(dev)
    m_t = torch.from_numpy(mask)[None].to(dev)

    @torch.inference_mode()
    def bare_fusion():
        with autocast(dev):
            fus.model(v_t, a_t, m_t)

    result["fusion"] = _compare(
        bare_fusion, lambda: fus.score(feats, afeat, mask), n, dev, args.repeat
    )

    # TransNetV2 as a run calls it: one window at a time, its 100-frame inputs (25 frames
    # of context each side) built, copied and cut back by the stage. The bare model gets
    # the same inputs ready on the device, `transnet_batch` at a time across windows.
    scorer = TransNetScorer(ShotsConfig(detector="transnetv2", device=args.device))
    inputs = torch.from_numpy(np.concatenate([scorer._inputs(*w) for w in shots])).to(dev)
    step = scorer.cfg.transnet_batch

    @torch.inference_mode()
    def bare_transnet():
        for i in range(0, len(inputs), step):
            with autocast(dev):
                scorer.model(inputs[i : i + step])

    def stage_transnet():
        for w in shots:
            scorer.predict(*w)

    decoded = sum(len(w[1]) for w in shots)
    result["transnet"] = _compare(bare_transnet, stage_transnet, decoded, dev, args.repeat)

    for k in ("visual", "audio", "fusion", "transnet"):
        r = result[k]
        print(
            f"{k:<8} bare {r['bare_fps']:9.1f} frames/s  stage {r['stage_fps']:9.1f} frames/s  "
            f"stage at {r['stage_vs_bare']:.2f}x bare"
        )
    save(f"encoders-{args.device}", result)
    return result


if __name__ == "__main__":
    main()
