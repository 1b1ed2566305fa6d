"""Losing a worker node in the middle of a run (issue 9).

A two-node Ray cluster on this machine: a head and a second raylet, each a `ray start
--block` with free ports of its own, in a session (process group) of its own. While a
worker node joins, a small driver holds every CPU of the head, so all of a run's work is
scheduled on the worker node; once the run has staged part of a pass, the test SIGKILLs
every process of that node at once and lets go of the head, and the run has to finish on
the head alone. One run loses its worker in pass 1; a second run, on a fresh worker node
and into the same OUT, loses it in pass 2.

What makes that survivable is Ray's and ours together: Ray Data retries the tasks of the
lost node and restarts its actor pools' actors on the head, and the driver publishes only
files whose receipts came back, under deterministic names, counting a window or a video
once however often it was redone. The test checks the result, not the mechanism: every
video committed once, as `ok`, with the same results as videos that lost nothing.
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from pipeline.store import Store
from tests.ports import free_port

BIN = Path(sys.executable).parent
N_CLIPS = 3  # per run
WINDOWS = 5  # the 9 s tiny clip at decode.fps=2, in windows of 4 sampled frames
SETTINGS = [
    "ray.progress=false",
    # Short windows, and one staged file per window (pass 1) or per video (pass 2): the
    # files appear one by one as a pass goes, so the test can see a pass half done.
    "decode.window=4",
    "resources.write_batch=1",
]
# Each node alone can run a whole pass (pass 1 at once: decode 0.5 + CNN 1 + audio 0.25
# + writer 0.25 CPU in conf/local.yaml), so the head can finish what the worker left.
NODE_CPUS = 2
# The GCS declares a node dead after missed health checks; with Ray's defaults that takes
# 15 s or more, during which the lost node's tasks wait to be retried.
FAST_NODE_DEATH = {
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}
# A driver that waits for the worker node to join, then takes every CPU of the head until
# it is killed: meanwhile a run's tasks and actors can only be placed on the worker node.
HOLD_HEAD = """
import sys, time, ray
ray.init(address=sys.argv[1], logging_level="ERROR")
deadline = time.monotonic() + 60
while sum(bool(n["Alive"]) for n in ray.nodes()) < 2:
    if time.monotonic() > deadline:
        sys.exit("the worker node did not join the cluster")
    time.sleep(0.2)

@ray.remote(num_cpus=float(sys.argv[2]), resources={"node:__internal_head__": 0.001})
class Hold:
    def ready(self):
        return True

hold = Hold.remote()
ray.get(hold.ready.remote())
print("held", flush=True)
sys.stdin.read()
"""


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_range(size: int = 100) -> tuple[int, int]:
    """A run of free ports for a node's workers, below Linux's ephemeral range (where
    `free_port` and every outgoing connection take theirs)."""
    for _ in range(200):
        first = random.randrange(10_000, 30_000 - size)
        if all(_bindable(p) for p in range(first, first + size)):
            return first, first + size - 1
    raise RuntimeError(f"no {size} free ports in a row")


def _node_ports() -> list[str]:
    """Every port a raylet and its agents listen on, free ones, never Ray's defaults: the
    test session's own Ray, and other tests' clusters, may hold those."""
    low, high = _free_range()
    return [
        f"--node-manager-port={free_port()}",
        f"--object-manager-port={free_port()}",
        f"--min-worker-port={low}",
        f"--max-worker-port={high}",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--dashboard-agent-grpc-port={free_port()}",
        f"--runtime-env-agent-port={free_port()}",
        f"--metrics-export-port={free_port()}",
    ]


def _session(leader: int) -> list[int]:
    """The live processes (zombies aside) of the session `leader` started: a Ray worker
    moves to a process group of its own, but stays in its raylet's session."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended while we looked
        if int(fields[3]) == leader and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def _signal_session(leader: int, sig: int) -> None:
    for pid in _session(leader):
        with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
            os.kill(pid, sig)


class Cluster:
    """The processes of a two-node cluster, each in a session of its own, so each can be
    ended with everything it started (`ray stop` would end every Ray on the machine, the
    test session's and other tests' included)."""

    def __init__(self, env: dict[str, str], logs: Path, temp: Path, cpus: int = NODE_CPUS):
        self.env = env
        self.cpus = cpus  # per node
        self.logs = logs
        # Its own root for Ray's session files (and its address file, which a plain
        # `ray.init()` on this machine would otherwise follow to this cluster).
        self.temp = temp
        self.procs: list[subprocess.Popen] = []
        port = free_port()
        self.address = f"127.0.0.1:{port}"
        self.head = self.spawn(
            "head",
            str(BIN / "ray"),
            "start",
            "--head",
            "--block",
            f"--port={port}",
            f"--ray-client-server-port={free_port()}",
            "--include-dashboard=false",
            f"--dashboard-port={free_port()}",
            *_node_ports(),
            f"--temp-dir={self.temp}",
            f"--num-cpus={self.cpus}",
            "--object-store-memory=200000000",
            "--disable-usage-stats",
        )

    def spawn(self, name: str, *argv: str, **kw) -> subprocess.Popen:
        """Start a session; what it prints goes to logs/<name>.log unless `kw` says."""
        with open(self.logs / f"{name}.log", "ab") as log:
            kw.setdefault("stdout", log)
            kw.setdefault("stderr", log)
            proc = subprocess.Popen(argv, start_new_session=True, env=self.env, **kw)
        self.procs.append(proc)
        return proc

    def worker(self, name: str) -> subprocess.Popen:
        return self.spawn(
            name,
            str(BIN / "ray"),
            "start",
            f"--address={self.address}",
            "--block",
            *_node_ports(),
            f"--temp-dir={self.temp}",
            f"--num-cpus={self.cpus}",
            "--object-store-memory=200000000",
            "--disable-usage-stats",
        )

    def hold_head(self, name: str) -> subprocess.Popen:
        """Start a driver that holds the head's CPUs once a worker node has joined."""
        proc = self.spawn(
            name,
            sys.executable,
            "-c",
            HOLD_HEAD,
            self.address,
            str(self.cpus),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 90)
        if not ready or proc.stdout.readline().strip() != b"held":
            pytest.skip(f"a Ray node did not start or join within 90 s: see {self.logs}")
        return proc

    def kill(self, proc: subprocess.Popen) -> None:
        """SIGKILL every process of `proc`'s session, a node's workers included (a node
        lost at once), and wait until none is left."""
        deadline = time.monotonic() + 30
        while _session(proc.pid) and time.monotonic() < deadline:
            _signal_session(proc.pid, signal.SIGKILL)
            time.sleep(0.1)
        proc.wait(timeout=10)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()

    def close(self) -> list[int]:
        """End every session started, the head's last; returns any process still alive."""
        # SIGKILL: on SIGTERM a head drains for up to 30 s before it stops.
        for proc in reversed(self.procs):
            self.kill(proc)
        return [pid for proc in self.procs for pid in _session(proc.pid)]


@pytest.fixture
def cluster(tmp_path) -> Iterator[Cluster]:
    if shutil.which("ray", path=str(BIN)) is None:
        pytest.skip("ray's CLI is not installed (pip install 'vidgist[cluster]')")
    try:
        import ray.dashboard  # noqa: F401  (a node's agents come with ray[default])
    except ImportError:
        pytest.skip("ray[default] is not installed (pip install 'vidgist[cluster]')")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    # As in tests/test_cluster.py: token authentication, vidgist's Python first on PATH.
    env.update(RAY_AUTH_MODE="token", PATH=f"{BIN}:{env['PATH']}", **FAST_NODE_DEATH)
    logs = tmp_path / "logs"
    logs.mkdir()
    # Not under tmp_path: Ray's socket paths there would pass the 107-byte limit.
    temp = Path(tempfile.mkdtemp(prefix="vidgist-ray-"))
    made = Cluster(env, logs, temp)
    try:
        yield made
    finally:
        left = made.close()
        shutil.rmtree(temp, ignore_errors=True)
    assert not left, f"processes of the test's cluster outlived it: {left}"


class Run:
    """`vidgist run` joined to the cluster, its output read line by line as it comes."""

    def __init__(self, cluster: Cluster, inputs: Path, out: Path):
        self.log = cluster.logs / f"run-{inputs.name}.log"
        argv = [str(BIN / "vidgist"), "run", "--input", str(inputs), "--output", str(out)]
        self.proc = cluster.spawn(
            self.log.stem,
            *argv,
            "--address",
            cluster.address,
            *SETTINGS,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with open(self.log, "a") as log:
            for line in self.proc.stdout:
                self.lines.append(line)
                log.write(f"{time.strftime('%H:%M:%S')} {line}")

    def printed(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    def wait_for(self, ready: Callable[[], bool], what: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if self.proc.poll() is not None:
                pytest.fail(f"the run ended before {what}:\n{self.output()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} within {timeout:.0f} s:\n{self.output()[-3000:]}")
            time.sleep(0.05)

    def finish(self, timeout: float = 180) -> int:
        code = self.proc.wait(timeout=timeout)
        self.reader.join(timeout=10)
        return code

    def output(self) -> str:
        return "".join(self.lines)


def _clips(clip: Path, folder: Path) -> list[Path]:
    folder.mkdir()
    paths = [folder / f"clip-{i}.mp4" for i in range(N_CLIPS)]
    for path in paths:
        shutil.copy(clip, path)
    return paths


def _staged(out: Path, table: str) -> list[Path]:
    return list(out.glob(f"_staging/*/{table}/*.parquet"))


def _lose(cluster: Cluster, worker, hold, out: Path, table: str) -> int:
    """Kill the worker node at once and free the head; returns the files of `table`
    staged by then."""
    cluster.kill(worker)
    cluster.kill(hold)
    return len(_staged(out, table))


def test_a_run_survives_losing_a_worker_node_in_each_pass(cluster, tiny_clip, tmp_path):
    out = tmp_path / "out"
    clips = _clips(tiny_clip, tmp_path / "one") + _clips(tiny_clip, tmp_path / "two")
    t0 = time.monotonic()

    def note(what: str) -> None:  # shown with -s, and when the test fails
        print(f"{time.monotonic() - t0:6.1f} s  {what}")

    # Pass 1: killed once a window is staged, with windows still being decoded and encoded.
    worker = cluster.worker("worker-1")
    hold = cluster.hold_head("hold-1")
    note("worker node 1 joined, the head held")
    run = Run(cluster, tmp_path / "one", out)
    run.wait_for(lambda: _staged(out, "features"), "staged window of pass 1")
    staged = _lose(cluster, worker, hold, out, "features")
    note(f"worker node 1 killed in pass 1, {staged} of {N_CLIPS * WINDOWS} windows staged")
    assert run.finish() == 0, run.output()[-4000:]
    note("run 1 finished")
    assert staged < N_CLIPS * WINDOWS, "pass 1 was over when its node died: nothing was lost"

    # Pass 2: a fresh worker node takes the next run's work until its first video is staged.
    worker = cluster.worker("worker-2")
    hold = cluster.hold_head("hold-2")
    note("worker node 2 joined, the head held")
    run = Run(cluster, tmp_path / "two", out)
    run.wait_for(
        lambda: run.printed("pass 2/2") and _staged(out, "videos"), "staged video of pass 2"
    )
    staged = _lose(cluster, worker, hold, out, "videos")
    note(f"worker node 2 killed in pass 2, {staged} of {N_CLIPS} videos staged")
    assert run.finish() == 0, run.output()[-4000:]
    note("run 2 finished")
    assert staged < N_CLIPS, "pass 2 was over when its node died: nothing was lost"

    store = Store(out)
    runs = store.committed_runs()
    assert len(runs) == 2 and list(runs["n_ok"]) == [N_CLIPS, N_CLIPS], runs
    # Nothing lost: every input has its one row, ok; nothing twice in any table.
    videos = store.read_committed("videos")
    assert sorted(videos["uri"]) == sorted(str(c) for c in clips)
    assert videos["video_id"].is_unique
    failed = videos[videos["status"] != "ok"]
    assert failed.empty, "\n".join(f"{u}: {e}" for u, e in failed[["uri", "error"]].values)
    keys = {
        "segments": ["video_id", "seg_index"],
        "scores": ["video_id"],
        "keyframes": ["video_id", "rank"],
        "summaries": ["video_id"],
        "features": ["video_id", "window_index"],
    }
    tables = {table: store.read_committed(table) for table in keys}
    for table, key in keys.items():
        rows = tables[table]
        assert set(rows["video_id"]) == set(videos["video_id"]), table
        assert not rows.duplicated(key).any(), rows[rows.duplicated(key, keep=False)][key]
    windows = tables["features"]
    assert len(windows) == len(clips) * WINDOWS
    assert set(windows["window_index"]) == set(range(WINDOWS))
    # Every clip is a copy of one video: a video redone after the kill has the results of
    # one that never was.
    assert tables["summaries"]["text"].nunique() == 1
    cols = ["seg_index", "start_s", "end_s", "selected"]
    segments = tables["segments"].sort_values(["video_id", "seg_index"])
    per_video = [g[cols].reset_index(drop=True) for _, g in segments.groupby("video_id")]
    for other in per_video[1:]:
        pd.testing.assert_frame_equal(other, per_video[0])
    # Skims are files, not rows: exactly the ones the summaries name, none left over from
    # a task that died half-way.
    named = sorted(tables["summaries"]["skim_path"].dropna())
    assert sorted(str(p.relative_to(out)) for p in out.glob("skims/*")) == named
    # Nothing left half done: no staging, and every committed file as its journal says.
    assert not (out / "_staging").exists()
    assert store.inspect(deep=True) == []
