"""The whole `vidgist run` on the demo's sample clips: wall time, throughput, memory.

Reported next to the bare components doing the core work once, sequentially, in the
same run: the ffmpeg CLI decoding and sampling every clip, and the bare CNN on every
sampled frame. Their sum is what the pipeline's decode + visual encoding cost without
Ray, windows, audio, fusion, selection, keyframes, text and Parquet.

    python -m bench.pipeline [--samples samples] [--config conf/local.yaml]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from bench.common import ROOT, ensure_samples, run_measured, save
from bench.reference import sampled_frames
from stages.settings import DecodeConfig, VisualConfig
from stages.visual import VisualEncoder


def bare_reference(videos: list[Path]) -> dict:
    cfg = DecodeConfig()
    t0 = time.perf_counter()
    frames = [sampled_frames(str(v), cfg.fps, cfg.frame_size) for v in videos]
    t_decode = time.perf_counter() - t0
    enc = VisualEncoder(VisualConfig(device="cpu"))
    t0 = time.perf_counter()
    with torch.inference_mode():
        for f in frames:
            x = torch.from_numpy(f.copy()).permute(0, 3, 1, 2).float()
            x = ((x - enc._mean) / enc._std).contiguous(memory_format=torch.channels_last)
            for i in range(0, len(x), 32):
                enc.model(x[i : i + 32])
    t_cnn = time.perf_counter() - t0
    return {
        "ffmpeg_decode_s": t_decode,
        "bare_cnn_s": t_cnn,
        "frames": int(sum(len(f) for f in frames)),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", default=str(ROOT / "samples"))
    ap.add_argument("--config", default="local.yaml")
    args = ap.parse_args(argv)
    videos = ensure_samples(Path(args.samples))
    out = Path(tempfile.mkdtemp(prefix="vidgist-bench-"))
    try:
        cmd = [
            str(Path(sys.executable).parent / "vidgist"),
            "run",
            "--input",
            args.samples,
            "--output",
            str(out),
            "--config",
            args.config,
            "ray.progress=false",
        ]
        run = run_measured(cmd)
        if run["rc"] != 0:
            raise RuntimeError(f"vidgist run failed:\n{run['output'][-3000:]}")
        videos_df = pd.read_parquet(out / "videos")
        seconds = float(videos_df["duration_s"].sum())
    finally:
        shutil.rmtree(out, ignore_errors=True)
    bare = bare_reference(videos)
    bare_total = bare["ffmpeg_decode_s"] + bare["bare_cnn_s"]
    result = {
        "videos": len(videos_df),
        "video_seconds": seconds,
        "wall_s": run["wall_s"],
        "video_s_per_wall_s": seconds / run["wall_s"],
        "peak_pss_mb": run["peak_pss_mb"],
        **bare,
        "bare_total_s": bare_total,
        "wall_vs_bare": run["wall_s"] / bare_total,
    }
    wall = run["wall_s"]
    print(f"vidgist run: {len(videos_df)} videos, {seconds:.0f} s of video in {wall:.1f} s wall")
    print(f"  {seconds / wall:.1f} s of video per s, peak PSS {run['peak_pss_mb']:.0f} MB")
    print(
        f"bare components on {bare['frames']} frames: ffmpeg decode {bare['ffmpeg_decode_s']:.1f} s"
        f" + CNN {bare['bare_cnn_s']:.1f} s = {bare_total:.1f} s"
    )
    print(f"  the pipeline takes {wall / bare_total:.2f}x that")
    save("pipeline", result)
    return result


if __name__ == "__main__":
    main()
