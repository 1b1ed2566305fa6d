"""Does a long video stay within bounded memory and linear time? One 10-minute clip.

Renders a 10-minute, 60-shot sample clip (320x240, 24 fps, with audio) once, runs
`vidgist run` on it, and reports wall time, seconds of video per second, and peak PSS of
the process tree, next to the same figures for the 8 demo clips (bench.pipeline), so
the per-video cost can be compared as the video gets 20x longer.

    python -m bench.long_video
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import ROOT, run_measured, save
from jobs.samples import write_clip
from jobs.samples.world import ClipSpec, ShotSpec, random_object, random_sound

MINUTES = 10


def long_spec(minutes: int = MINUTES, seed: int = 11) -> ClipSpec:
    rng = np.random.default_rng(seed)
    colours = ["red", "blue", "green", "yellow", "purple", "cyan", "orange", "pink"]
    shots = []
    for i in range(minutes * 6):
        primary = colours[i % len(colours)]
        objects = tuple(random_object(rng, {primary}) for _ in range(int(rng.integers(0, 3))))
        shots.append(
            ShotSpec(
                start_s=10.0 * i,
                duration_s=10.0,
                background=("solid", "gradient", "noise")[i % 3],
                colours=(primary, "white"),
                texture_seed=i,
                objects=objects,
                sound=random_sound(rng, 10.0),
            )
        )
    return ClipSpec("long-10min", 320, 240, 24, False, True, tuple(shots), seed, 0)


def main(argv: list[str] | None = None) -> dict:
    folder = ROOT / "bench" / "results" / "long"
    video = folder / "long-10min.mp4"
    if not video.exists():
        write_clip(long_spec(), folder)
    out = Path(tempfile.mkdtemp(prefix="vidgist-long-"))
    try:
        cmd = [str(Path(sys.executable).parent / "vidgist"), "run", "--input", str(video)]
        run = run_measured([*cmd, "--output", str(out), "ray.progress=false"])
        if run["rc"] != 0:
            raise RuntimeError(run["output"][-3000:])
        videos = pd.read_parquet(out / "videos")
        segments = pd.read_parquet(out / "segments")
    finally:
        shutil.rmtree(out, ignore_errors=True)
    seconds = float(videos["duration_s"].sum())
    result = {
        "video_seconds": seconds,
        "n_sampled": int(videos["n_sampled"].sum()),
        "status": videos["status"].tolist(),
        "n_segments": len(segments),
        "wall_s": run["wall_s"],
        "video_s_per_wall_s": seconds / run["wall_s"],
        "peak_pss_mb": run["peak_pss_mb"],
    }
    rate, pss = result["video_s_per_wall_s"], run["peak_pss_mb"]
    n, segs = result["n_sampled"], len(segments)
    print(f"{seconds / 60:.0f}-minute clip: {n} sampled frames, {segs} segments")
    print(f"  {run['wall_s']:.1f} s wall ({rate:.1f} s of video per s), peak PSS {pss:.0f} MB")
    save("long_video", result)
    return result


if __name__ == "__main__":
    main()
