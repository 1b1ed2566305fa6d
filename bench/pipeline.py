"""The whole `vidgist run` against its bare work, on exactly the same clips, at several sizes.

For each set of clips (the first N sample clips of seed 0 for each N of `--sweep`, and
one long clip of `--long-minutes`), the run is given a manifest of exactly those files,
and the bare components do the core work sequentially on the same files, once before the
run and once after it: the ffmpeg CLI decoding and sampling every clip, and the bare CNN
on every sampled frame (the faster of torch's default threads and the profile's own
layout of model copies). Their sum is what decode + visual encoding cost without Ray,
windows, audio, fusion, selection, keyframes, text and Parquet; the ratios take the mean
of the two, and the row shows both, so a machine that changed speed during the run (a
shared one does: the bare CNN on the same frames has taken 16-28 s on one machine in one
evening) shows as a spread instead of skewing a ratio unseen. The run's pass 1 (decode +
encode) is timed from its own progress lines; with `run.stage_times=true` it also logs
per-stage times, from which the bench takes when the first window was decoded (seconds
from the command's start), the CNN's share, and the stages' own floor: the CPU seconds of
every stage call of both passes over the machine's cores, the least wall any scheduling
could give the run's own work (OCR, speech and skims included, which the bare reference
has none of); the run's wall against it is what the pipeline itself costs. Peak PSS is of
the run's whole process tree (Ray's included), with the processes that made it up at the
peak. The bench refuses a result where the run processed another number of videos than
the reference. `--executor` sets `run.executor` (default auto, what a user gets: in
process up to `run.in_process_max` videos, Ray Data above); each row says which ran.
`--set KEY=VALUE` (repeatable) passes a config override to the run alone, e.g. the
product stages off (`speech.enabled=false`) to see the pipeline without them; the bare
reference does not change with it, and the results file records the overrides.

    python -m bench.pipeline [--sweep 1,8,24,64] [--long-minutes 30] [--config local.yaml]
                             [--executor auto|ray|in_process] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bench.common import ROOT, ensure_samples, run_measured, save
from bench.reference import sampled_frames
from pipeline.config import load_config
from pipeline.timings import read_table
from stages.devices import torch_threads
from stages.settings import DecodeConfig, VisualConfig
from stages.visual import VisualEncoder


def bare_reference(videos: list[Path], config: str) -> dict:
    """ffmpeg decoding and sampling, then the bare CNN on the same frames: the faster of
    torch's default (one model, every core's threads) and the profile's own layout
    (`resources.visual.max_size` copies at most one a core, `visual.threads` each, on
    threads of their own), so a run is never compared with a slower way of running its
    model than it uses itself."""
    cfg = DecodeConfig()
    t0 = time.perf_counter()
    frames = [sampled_frames(str(v), cfg.fps, cfg.frame_size) for v in videos]
    t_decode = time.perf_counter() - t0
    profile = load_config(config)
    visual = dataclasses.replace(profile.visual, device="cpu", threads=0)
    copies = min(profile.resources.visual.max_size, os.cpu_count() or 1)
    t_default = bare_cnn(frames, visual, copies=1, threads=0)
    t_layout = bare_cnn(frames, visual, copies, profile.visual.threads) if copies > 1 else None
    return {
        "ffmpeg_decode_s": t_decode,
        "bare_cnn_s": min(t for t in (t_default, t_layout) if t is not None),
        "bare_cnn_default_s": t_default,
        "bare_cnn_layout_s": t_layout,
        "cnn_copies": copies,
        "frames": int(sum(len(f) for f in frames)),
        "cnn_batch": visual.batch_size,
    }


def decode_and_cnn(bare: dict) -> float:
    """A bare reference's total: the ffmpeg decode, then the bare CNN."""
    return bare["ffmpeg_decode_s"] + bare["bare_cnn_s"]


def either_side(before: dict, after: dict) -> dict:
    """The bare reference measured before and after the run, as one: each time the mean
    of the two, and each side's total (decode + CNN) kept to show the machine's drift.
    `bare_cnn_s` is the mean of each side's faster way, so where the faster way differs
    between the sides it is below both ways' means."""
    mean = {
        key: (value + after[key]) / 2 if key.endswith("_s") and value is not None else value
        for key, value in before.items()
    }
    return {
        **mean,
        "bare_before_s": decode_and_cnn(before),
        "bare_after_s": decode_and_cnn(after),
    }


def bare_cnn(frames: list[np.ndarray], visual: VisualConfig, copies: int, threads: int) -> float:
    """Seconds for `copies` copies of the bare model, `threads` intra-op threads each (0:
    torch's default), to normalise and encode every frame at `visual.batch_size`, the
    batches dealt out in turn, each copy on a thread of its own."""
    size = visual.batch_size
    batches = [f[i : i + size] for f in frames for i in range(0, len(f), size)]
    with torch_threads(threads):
        models = [VisualEncoder(visual) for _ in range(copies)]

        @torch.inference_mode()
        def encode(enc: VisualEncoder, mine: list[np.ndarray]) -> None:
            for b in mine:
                x = torch.from_numpy(b.copy()).permute(0, 3, 1, 2).float()
                x = ((x - enc._mean) / enc._std).contiguous(memory_format=torch.channels_last)
                enc.model(x)

        t0 = time.perf_counter()
        with ThreadPoolExecutor(copies) as pool:
            done = [pool.submit(encode, m, batches[j::copies]) for j, m in enumerate(models)]
            for future in done:
                future.result()
        return time.perf_counter() - t0


def pass_seconds(timed_lines: list[tuple[float, str]]) -> tuple[float, float]:
    """Seconds in pass 1 and in pass 2, summed over commit batches, from when the run
    printed the start of each pass and the batch's commit."""
    pass1 = pass2 = 0.0
    start1 = start2 = None
    for t, line in timed_lines:
        if line.startswith("pass 1/2"):
            start1 = t
        elif line.startswith("pass 2/2") and start1 is not None:
            pass1 += t - start1
            start2, start1 = t, None
        elif line.startswith("batch ") and " committed" in line and start2 is not None:
            pass2 += t - start2
            start2 = None
    return pass1, pass2


def every_table(log: str, title: str) -> list[dict[str, dict[str, float]]]:
    """The `title` stage tables of every commit batch in a run's log, in order."""
    head = f"stage times, {title}:"
    tables, at = [], log.find(head)
    while at >= 0:
        tables.append(read_table(log[at:], title))
        at = log.find(head, at + 1)
    return tables


def measure(
    videos: list[Path], config: str, executor: str = "auto", overrides: tuple[str, ...] = ()
) -> dict:
    """One `vidgist run` on exactly `videos` (with config `overrides`), between two runs of
    the bare reference on the same files."""
    before = bare_reference(videos, config)
    work = Path(tempfile.mkdtemp(prefix="vidgist-bench-"))
    try:
        manifest = work / "inputs.txt"
        manifest.write_text("\n".join(str(v.resolve()) for v in videos) + "\n")
        cmd = [str(Path(sys.executable).parent / "vidgist"), "run", "--input", str(manifest)]
        cmd += ["--output", str(work / "out"), "--config", config, "ray.progress=false"]
        cmd += ["run.stage_times=true", f"run.executor={executor}", *overrides]
        run = run_measured(cmd)
        if run["rc"] != 0:
            raise RuntimeError(f"vidgist run failed:\n{run['output'][-3000:]}")
        videos_df = pd.read_parquet(work / "out" / "videos")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if len(videos_df) != len(videos) or (videos_df["status"] != "ok").any():
        raise RuntimeError(f"the run processed {len(videos_df)} videos for {len(videos)} inputs")
    pass1, pass2 = pass_seconds(run["timed_lines"])
    # One table per pass per commit batch; the first batch's are kept whole.
    pass1_tables = every_table(run["output"], "pass 1")
    pass2_tables = every_table(run["output"], "pass 2")
    stages, pass2_stages = pass1_tables[0], pass2_tables[0]
    pass1_start = next(t for t, line in run["timed_lines"] if line.startswith("pass 1/2"))
    # What the stages themselves cost (CPU seconds of every stage call of both passes of
    # every commit batch, model builds included): over the cores, the least wall any
    # scheduling could give this run's own work, start-up aside. The run against it is
    # what the pipeline itself costs.
    stage_cpu = sum(row["cpu"] for t in pass1_tables + pass2_tables for row in t.values())
    cores = os.cpu_count() or 1
    bare = either_side(before, bare_reference(videos, config))
    bare_total = decode_and_cnn(bare)
    in_process = any(line.startswith("running in this process") for _, line in run["timed_lines"])
    return {
        "videos": len(videos),
        "executor": "in_process" if in_process else "ray",
        "video_seconds": float(videos_df["duration_s"].sum()),
        "wall_s": run["wall_s"],
        "pass1_s": pass1,
        "pass2_s": pass2,
        "peak_pss_mb": run["peak_pss_mb"],
        "peak_processes": run["peak_processes"],
        "cpu_by_process": run["cpu_by_process"],
        "watch_cpu_s": run["watch_cpu_s"],
        # The measure stage starts on a window as soon as the decoder has made it.
        "first_window_s": pass1_start + stages["measure"]["first"],
        "pass1_stages": stages,
        "pass2_stages": pass2_stages,
        "stage_cpu_s": stage_cpu,
        "stage_floor_s": stage_cpu / cores,
        "wall_vs_floor": run["wall_s"] / (stage_cpu / cores),
        **bare,
        "bare_total_s": bare_total,
        "wall_vs_bare": run["wall_s"] / bare_total,
        "pass1_vs_bare": pass1 / bare_total,
    }


def long_clip(minutes: int) -> Path:
    from bench.long_video import long_spec
    from jobs.samples import write_clip

    spec = dataclasses.replace(long_spec(minutes), name=f"long-{minutes}min")
    video = ROOT / "bench" / "results" / "long" / f"{spec.name}.mp4"
    if not video.exists():
        write_clip(spec, video.parent)
    return video


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--samples", default=str(ROOT / "bench" / ".samples-0"), help="sample clips of seed 0"
    )
    ap.add_argument("--sweep", default="1,8,24,64", help="numbers of clips, comma-separated")
    ap.add_argument("--long-minutes", type=int, default=30, help="one long clip (0: none)")
    ap.add_argument("--config", default="local.yaml")
    ap.add_argument("--executor", default="auto", choices=["auto", "ray", "in_process"])
    ap.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config override for the run alone (repeatable)",
    )
    args = ap.parse_args(argv)
    load_config(args.config, args.overrides)  # a bad override fails here, not after a bare run
    if args.overrides:
        print(f"the run with {' '.join(args.overrides)}; the bare reference as always", flush=True)
    sets = {}
    for count in (int(n) for n in args.sweep.split(",") if n):
        sets[f"{count} clip{'s' if count > 1 else ''}"] = ensure_samples(
            Path(args.samples), count=count
        )[:count]
    if args.long_minutes:
        sets[f"one {args.long_minutes}-min clip"] = [long_clip(args.long_minutes)]
    rows = {}
    for name, videos in sets.items():
        rows[name] = measure(videos, args.config, args.executor, tuple(args.overrides))
        print(format_row(name, rows[name]), flush=True)
    results = "pipeline" if args.executor == "auto" else f"pipeline-{args.executor}"
    if args.overrides:
        results += "-set"  # the default figures are not overwritten by a variant
    save(results, {"overrides": args.overrides, "sets": rows})
    return rows


def format_row(name: str, r: dict) -> str:
    return (
        f"{name}: {r['video_seconds']:.0f} s of video; run ({r['executor']}) {r['wall_s']:.1f} s "
        f"(pass 1 {r['pass1_s']:.1f} s, pass 2 {r['pass2_s']:.1f} s), peak PSS "
        f"{r['peak_pss_mb']:.0f} MB; bare {r['bare_total_s']:.1f} s (before the run "
        f"{r['bare_before_s']:.1f} s, after {r['bare_after_s']:.1f} s; mean ffmpeg "
        f"{r['ffmpeg_decode_s']:.1f} s + CNN {r['bare_cnn_s']:.1f} s on {r['frames']} frames: "
        f"{_cnn_ways(r)}); "
        f"run {r['wall_vs_bare']:.2f}x bare, pass 1 {r['pass1_vs_bare']:.2f}x; the stages' "
        f"own work {r['stage_cpu_s']:.1f} CPU-s = {r['stage_floor_s']:.1f} s on every core, "
        f"run {r['wall_vs_floor']:.2f}x that; first window "
        f"decoded at {r['first_window_s']:.1f} s; watching it cost {r['watch_cpu_s']:.1f} "
        "CPU-s; largest at the peak: "
        + ", ".join(
            f"{g['name']} x{g['processes']} {g['pss_mb']:.0f} MB ({g['shmem_mb']:.0f} shared)"
            for g in r["peak_processes"][:4]
        )
    )


def _cnn_ways(r: dict) -> str:
    default = f"torch's threads {r['bare_cnn_default_s']:.1f} s"
    if r.get("bare_cnn_layout_s") is None:
        return default
    return f"{default}, {r['cnn_copies']} copies {r['bare_cnn_layout_s']:.1f} s"


if __name__ == "__main__":
    main()
