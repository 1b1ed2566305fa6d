"""What a kill late in a long run costs: `vidgist run` uninterrupted, then the same run
killed (SIGKILL to it and all it started) at `--at` of the uninterrupted wall time, then
the rerun that finishes the job.

    python -m bench.kill [--samples DIR] [--count 12] [--batch 2] [--at 0.9]

Reports the videos the killed run had committed, the videos the rerun had to do, and
the work lost: (killed run's wall + rerun's wall) - uninterrupted wall. Also times the
same clips in one batch, for what committing in batches costs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, ensure_samples, save


def _vidgist(args: list[str], kill_after: float | None = None) -> tuple[float, str]:
    cmd = [str(Path(sys.executable).parent / "vidgist"), *args]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=kill_after)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    return time.perf_counter() - t0, out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", default=str(ROOT / "bench" / ".samples-kill"))
    ap.add_argument("--count", type=int, default=12)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--at", type=float, default=0.9)
    args = ap.parse_args(argv)
    ensure_samples(Path(args.samples), count=args.count, seed=5)
    from pipeline.store import Store

    base = Path(tempfile.mkdtemp(prefix="vidgist-kill-"))
    common = [f"run.batch_videos={args.batch}", "ray.progress=false"]
    try:
        whole, _ = _vidgist(["run", "--input", args.samples, "--output", str(base / "a"), *common])
        # The same clips in one batch: what committing in batches costs.
        single = ["run.batch_videos=0", "ray.progress=false"]
        one_batch, _ = _vidgist(
            ["run", "--input", args.samples, "--output", str(base / "c"), *single]
        )
        out = base / "b"
        run = ["run", "--input", args.samples, "--output", str(out), *common]
        killed, _ = _vidgist(run, kill_after=args.at * whole)
        committed = int(Store(out).committed_runs()["n_videos"].sum())
        rerun, _ = _vidgist(run)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    result = {
        "count": args.count,
        "batch_videos": args.batch,
        "kill_at": args.at,
        "uninterrupted_s": whole,
        "one_batch_s": one_batch,
        "killed_after_s": killed,
        "committed_before_kill": committed,
        "rerun_s": rerun,
        "lost_s": killed + rerun - whole,
    }
    print(
        f"{args.count} clips in one batch: {one_batch:.1f} s; in batches of {args.batch}: "
        f"{whole:.1f} s (x{whole / one_batch:.2f})"
    )
    print(
        f"{args.count} clips, batches of {args.batch}: uninterrupted {whole:.1f} s; killed at "
        f"{killed:.1f} s ({100 * args.at:.0f}%) with {committed} of {args.count} videos "
        f"committed; the rerun did {args.count - committed} in {rerun:.1f} s; lost "
        f"{result['lost_s']:.1f} s of work ({100 * result['lost_s'] / whole:.0f}% of the run)"
    )
    save("kill", result)
    return result


if __name__ == "__main__":
    main()
