"""The ledger at archive scale: what a run does before its first video, on N inputs of
which all but `--new` are already committed.

    python -m bench.ledger [--n 1000000] [--new 1000] [--batch 64] [--dir /tmp/...]

Builds (once, kept in --dir) N empty `.mp4` files in folders of 10,000, and an OUT whose
ledger holds N - new of them as committed `ok`, laid out as `vidgist run` lays it out:
one commit per batch of `--batch` videos, each with its `videos` file, `runs` row and
journal (the other tables are left out: the start-up check only stats their files, and
an archive's real files would cost the same stat). Then, in a fresh process, times each
step the driver takes before Ray starts: listing, fingerprints, recovering and checking
OUT, and the skip check; and reports that process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa

from bench.common import save


def build(root: Path, n: int, new: int, batch: int, mversion: str) -> tuple[Path, Path]:
    from pipeline.schemas import VIDEOS
    from pipeline.sources import make_sources
    from pipeline.store import Store

    inputs, out = root / "inputs", root / "out"
    marker = root / f"built-{n}-{new}-{batch}.json"
    if marker.exists():
        return inputs, out
    t0 = time.perf_counter()
    for i in range(n):
        folder = inputs / f"{i // 10_000:04d}"
        if i % 10_000 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"v{i:07d}.mp4").touch()
    print(f"created {n} empty inputs in {time.perf_counter() - t0:.0f} s")
    t0 = time.perf_counter()
    files = sorted(str(p) for p in inputs.rglob("*.mp4"))[: n - new]
    store = Store(out)
    now = datetime.now(timezone.utc)
    for k in range(0, len(files), batch):
        run_id = f"20260101T000000Z-{k // batch:06x}"
        refs = make_sources(files[k : k + batch])
        rows = [
            {
                "video_id": r.video_id,
                "uri": r.uri,
                "fingerprint": r.fingerprint,
                "run_id": run_id,
                "status": "ok",
                "processed_at": now,
            }
            for r in refs
        ]
        store.stage(
            run_id,
            "videos",
            f"{run_id}-{refs[0].video_id}",
            pa.Table.from_pylist(rows, schema=VIDEOS),
        )
        row = {
            "run_id": run_id,
            "started_at": now,
            "finished_at": now,
            "status": "committed",
            "config": "{}",
            "n_videos": len(rows),
            "n_ok": len(rows),
            "n_error": 0,
            "n_skipped": 0,
            "code_version": "bench",
            "model_version": mversion,
        }
        store.commit(run_id, row)
    n_batches = -(-len(files) // batch)
    took = time.perf_counter() - t0
    print(f"committed {len(files)} videos in {n_batches} batches in {took:.0f} s")
    marker.write_text("{}")
    return inputs, out


def measure(inputs: str, out: str, mversion: str) -> dict:
    """The driver's steps before Ray, timed one by one (run in a fresh process)."""
    from pipeline.sources import list_inputs, make_sources, split_done
    from pipeline.store import Store

    steps = {}
    t0 = time.perf_counter()
    uris = list_inputs(inputs)
    steps["list"] = time.perf_counter() - t0
    t = time.perf_counter()
    sources = make_sources(uris)
    steps["ids + fingerprints"] = time.perf_counter() - t
    t = time.perf_counter()
    store = Store(out)
    store.recover()
    store.check_committed()
    steps["recover + check OUT"] = time.perf_counter() - t
    t = time.perf_counter()
    done, _ = store.video_states(mversion)
    todo, skipped = split_done(sources, done)
    steps["skip check"] = time.perf_counter() - t
    return {
        "inputs": len(sources),
        "to_do": len(todo),
        "done": len(skipped),
        "steps_s": steps,
        "total_s": time.perf_counter() - t0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--new", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--dir", default="/tmp/vidgist-bench-ledger")
    ap.add_argument("--measure", nargs=2, metavar=("INPUTS", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    mversion = "bench-model"
    if args.measure:
        print(json.dumps(measure(*args.measure, mversion)))
        return {}
    inputs, out = build(Path(args.dir), args.n, args.new, args.batch, mversion)
    child = subprocess.run(
        [sys.executable, "-m", "bench.ledger", "--measure", str(inputs), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(child.stdout.strip().splitlines()[-1])
    result.update(n=args.n, new=args.new, batch=args.batch)
    steps = ", ".join(f"{k} {v:.1f} s" for k, v in result["steps_s"].items())
    print(
        f"{result['inputs']} inputs, {result['done']} done, {result['to_do']} to do: "
        f"{result['total_s']:.1f} s before Ray ({steps}); peak RSS {result['peak_rss_mb']:.0f} MB"
    )
    save(f"ledger-{args.n}", result)
    return result


if __name__ == "__main__":
    main()
