"""What skims and the report cost.

    python -m bench.report [--samples DIR] [--count 8] [--videos 1000]

1. `vidgist run` on the same clips with `skims.enabled=false` and `true` (fresh OUT each,
   best of `--repeat`): the extra wall seconds per minute of source video; and each
   skim's length against its `summary_duration_s`, in frames per selected segment.
2. `vidgist report` on an OUT of `--videos` videos: the run's committed rows copied under
   new video ids (same rows, keyframes and skims per video as the real run), its build
   time and the size of what it writes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import av
import pandas as pd
import pyarrow as pa

from bench.common import ROOT, ensure_samples, run_measured, save


def _run(samples: Path, out: Path, skims: bool) -> float:
    cmd = [str(Path(sys.executable).parent / "vidgist"), "run", "--input", str(samples)]
    cmd += ["--output", str(out), f"skims.enabled={str(skims).lower()}", "run.progress_s=0"]
    ran = run_measured(cmd)
    if ran["rc"]:
        raise RuntimeError(f"vidgist run failed:\n{ran['output'][-2000:]}")
    return ran["wall_s"]


def _skim_frames_off(out: Path) -> list[float]:
    """Per video: |skim length - summary_duration_s| in frames, per selected segment."""
    summaries = pd.read_parquet(out / "summaries")
    segments = pd.read_parquet(out / "segments")
    off = []
    for row in summaries.itertuples():
        with av.open(str(out / row.skim_path)) as skim:
            stream = skim.streams.video[0]
            fps = float(stream.average_rate)
            frames = sum(1 for _ in skim.decode(stream))
        parts = int((segments["selected"] & (segments["video_id"] == row.video_id)).sum())
        off.append(abs(frames / fps - row.summary_duration_s) * fps / max(parts, 1))
    return off


def _replicated(source: Path, target: Path, videos: int) -> None:
    """An OUT of `videos` videos: the source's committed rows, copied under new ids, in
    one committed run."""
    from pipeline.schemas import TABLES
    from pipeline.store import Store

    src, dst = Store(source), Store(target)
    run_id = "20260101T000000Z-000000"
    tables = {t: src.read_committed(t) for t in TABLES if t not in ("runs", "features")}
    skims = {
        r.video_id: (source / r.skim_path).read_bytes()
        for r in tables["summaries"].itertuples()
        if r.skim_path
    }
    n_src = len(tables["videos"])
    for k in range(-(-videos // n_src)):
        for name, frame in tables.items():
            copy = frame.assign(run_id=run_id, video_id=frame["video_id"] + f"-{k:05d}")
            if name == "videos":
                copy = copy.assign(uri=copy["uri"].str.replace(".mp4", f"-{k:05d}.mp4"))
            if name == "summaries":
                copy = copy.assign(skim_path=[f"skims/{run_id}-{v}.mp4" for v in copy["video_id"]])
            table = pa.Table.from_pandas(copy, schema=TABLES[name], preserve_index=False)
            dst.stage(run_id, name, f"{run_id}-{k:05d}", table)
        for vid, data in skims.items():
            dst.stage_file(run_id, "skims", f"{run_id}-{vid}-{k:05d}", data)
    now = datetime.now(timezone.utc)
    row = dict(run_id=run_id, started_at=now, finished_at=now, status="committed", config="{}")
    row |= dict(n_videos=videos, n_ok=videos, n_error=0, n_skipped=0)
    dst.commit(run_id, row | dict(code_version="bench", model_version="bench"))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", default=str(ROOT / "bench" / ".samples-report"))
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--videos", type=int, default=1000)
    args = ap.parse_args(argv)
    samples = Path(args.samples)
    clips = ensure_samples(samples, count=args.count, seed=0)
    from pipeline.report import build_report
    from stages.decode import probe

    minutes = sum(probe(str(c)).duration_s for c in clips) / 60
    walls: dict[bool, float] = {}
    with tempfile.TemporaryDirectory(prefix="vidgist-bench-") as tmp:
        for skims in (False, True):
            walls[skims] = min(
                _run(samples, Path(tmp) / f"out-{skims}-{i}", skims) for i in range(args.repeat)
            )
        out = Path(tmp) / "out-True-0"
        off = _skim_frames_off(out)
        big = Path(tmp) / "big"
        _replicated(out, big, args.videos)
        t0 = time.perf_counter()
        built = build_report(str(big))
        took = time.perf_counter() - t0
        index_mb = (big / "report" / "index.html").stat().st_size / 2**20
    result = {
        "clips": len(clips),
        "minutes_of_video": round(minutes, 2),
        "run_s_skims_off": round(walls[False], 1),
        "run_s_skims_on": round(walls[True], 1),
        "skims_extra_s_per_minute": round((walls[True] - walls[False]) / minutes, 2),
        "skim_frames_off_per_segment_max": round(max(off), 2),
        "report_videos": built.n_videos,
        "report_build_s": round(took, 2),
        "report_files": built.n_files,
        "report_mb": round(built.n_bytes / 2**20, 1),
        "report_index_mb": round(index_mb, 2),
    }
    print(
        f"skims: run {walls[False]:.1f} s -> {walls[True]:.1f} s on {len(clips)} clips "
        f"({minutes:.1f} min of video): +{result['skims_extra_s_per_minute']:.2f} s per minute "
        f"of video; skim length vs summary_duration_s: at most "
        f"{result['skim_frames_off_per_segment_max']:.2f} frames off per segment"
    )
    print(
        f"report of {built.n_videos} videos: {took:.1f} s, {built.n_files} files, "
        f"{result['report_mb']} MB ({index_mb:.2f} MB index.html)"
    )
    save("report", result)
    return result


if __name__ == "__main__":
    main()
