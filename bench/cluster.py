"""A two-node Ray cluster against one node, on the same clips, on this machine.

    python -m bench.cluster [--samples DIR] [--count 6]

Both layouts have the same 2 logical CPUs: one node of 2, or a head and a worker node of
1 each (`ray start`, as tests/test_node_loss.py starts them). `vidgist run --address`
joins each and runs the same clips into a fresh OUT. On one 2-core machine this measures
what a second node costs (a second raylet, object transfers between nodes), not a
speed-up: more nodes only help when they bring more cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import ROOT, ensure_samples, run_measured, save

BIN = Path(sys.executable).parent
WAIT_FOR_NODES = """
import sys, time, ray
ray.init(address=sys.argv[1], logging_level="ERROR")
deadline = time.monotonic() + 90
while sum(bool(n["Alive"]) for n in ray.nodes()) < int(sys.argv[2]):
    if time.monotonic() > deadline:
        sys.exit("the nodes did not join within 90 s")
    time.sleep(0.2)
"""


def _timed_run(nodes: int, samples: Path, tmp: Path) -> float:
    from tests.test_node_loss import Cluster

    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_AUTH_MODE="token", PATH=f"{BIN}:{env['PATH']}")
    logs = tmp / f"logs-{nodes}"
    logs.mkdir()
    temp = Path(tempfile.mkdtemp(prefix="vidgist-ray-"))
    cluster = Cluster(env, logs, temp, cpus=2 // nodes)
    try:
        for k in range(1, nodes):
            cluster.worker(f"worker-{k}")
        wait = [sys.executable, "-c", WAIT_FOR_NODES, cluster.address, str(nodes)]
        subprocess.run(wait, env=env, check=True)
        cmd = [str(BIN / "vidgist"), "run", "--input", str(samples), "--output"]
        cmd += [str(tmp / f"out-{nodes}"), "--address", cluster.address, "run.progress_s=0"]
        ran = run_measured(cmd, env=env)
        if ran["rc"]:
            raise RuntimeError(f"vidgist run failed:\n{ran['output'][-2000:]}")
        return ran["wall_s"]
    finally:
        cluster.close()
        shutil.rmtree(temp, ignore_errors=True)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", default=str(ROOT / "bench" / ".samples-report"))
    ap.add_argument("--count", type=int, default=6)
    args = ap.parse_args(argv)
    samples = Path(args.samples)
    ensure_samples(samples, count=args.count, seed=0)
    with tempfile.TemporaryDirectory(prefix="vidgist-bench-") as tmp:
        one = _timed_run(1, samples, Path(tmp))
        two = _timed_run(2, samples, Path(tmp))
    result = {"clips": args.count, "one_node_s": round(one, 1), "two_nodes_s": round(two, 1)}
    result["two_over_one"] = round(two / one, 2)
    print(
        f"{args.count} clips, 2 CPUs in all: one node {one:.1f} s, two nodes {two:.1f} s: "
        f"x{two / one:.2f} (the cost of a second node on the same cores, not a speed-up)"
    )
    save("cluster", result)
    return result


if __name__ == "__main__":
    main()
