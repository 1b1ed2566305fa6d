"""The cluster path as the README gives it: a real head (`ray start --head`), a job
submitted with `ray job submit --working-dir`, a profile the cluster cannot run refused,
and a local run that does not join the cluster by accident."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# What README.md's "On a Ray cluster" section tells users to exclude from the upload.
EXCLUDES = [".venv", ".git", "samples", "out", "build", "bench/.samples-*", "bench/results"]


@pytest.fixture(scope="module")
def head():
    """A Ray head with its job server, in a process group of its own that teardown ends
    (`ray stop` would end every Ray on the machine, the test session's included)."""
    if shutil.which("ray", path=str(BIN)) is None:
        pytest.skip("ray's CLI is not installed (pip install 'vidgist[cluster]')")
    try:
        import ray.dashboard  # noqa: F401  (the job server comes with ray[default])
    except ImportError:
        pytest.skip("ray[default] is not installed (pip install 'vidgist[cluster]')")
    port, dashboard, agent = free_port(), free_port(), free_port()
    # As after `source .venv/bin/activate`: the job's `python` is vidgist's.
    env = {**os.environ, "RAY_AUTH_MODE": "token", "PATH": f"{BIN}:{os.environ['PATH']}"}
    proc = subprocess.Popen(
        [
            str(BIN / "ray"),
            "start",
            "--head",
            "--block",
            f"--port={port}",
            f"--dashboard-port={dashboard}",
            # Not the default 52365: the test session's own Ray may hold it, and a head
            # whose job agent cannot bind answers every submit with "No available agent".
            f"--dashboard-agent-listen-port={agent}",
            "--dashboard-host=127.0.0.1",
            "--num-cpus=3",  # not this machine's 2: a run's message tells the two Rays apart
            "--disable-usage-stats",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=env,
    )
    url = f"http://127.0.0.1:{dashboard}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        listed = subprocess.run(
            [str(BIN / "ray"), "job", "list", "--address", url],
            env=env,
            capture_output=True,
            text=True,
        )
        if listed.returncode == 0:
            break
        time.sleep(2)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.skip("the Ray head's job server did not come up within 90 s")
    yield {"url": url, "address": f"127.0.0.1:{port}", "env": env}
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)  # a head given SIGTERM can take 30 s or more to stop
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def test_a_job_submitted_as_the_readme_says_commits_its_outputs(head, tiny_clip, tmp_path):
    out = tmp_path / "out"
    for _ in range(12):
        submitted = _submit(head, tiny_clip, out)
        # The head's job agent can come up after its job server: Ray says to retry.
        if "No available agent to submit job" not in submitted.stdout + submitted.stderr:
            break
        time.sleep(5)
    assert submitted.returncode == 0, submitted.stdout[-3000:] + submitted.stderr[-2000:]
    assert "succeeded" in submitted.stdout + submitted.stderr
    videos = pd.read_parquet(out / "videos")
    assert list(videos["status"]) == ["ok"] and len(pd.read_parquet(out / "summaries")) == 1


def _submit(head: dict, clip: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(BIN / "ray"),
            "job",
            "submit",
            "--address",
            head["url"],
            "--working-dir",
            str(ROOT),
            "--runtime-env-json",
            json.dumps({"excludes": EXCLUDES}),
            "--",
            "python",
            "-m",
            "jobs.summarize",
            "--input",
            str(clip),
            "--output",
            str(out),
            "ray.progress=false",
        ],
        env=head["env"],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _gpu_profile(tiny_clip: Path, out: Path, env: dict, *where: str):
    return subprocess.run(
        [
            *(str(BIN / "vidgist"), "run", "--input", str(tiny_clip), "--output", str(out)),
            *("--config", "cluster.yaml", *where),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_profile_asking_for_gpus_the_cluster_lacks_is_refused_in_one_line(
    head, tiny_clip, tmp_path
):
    ran = _gpu_profile(tiny_clip, tmp_path / "out", head["env"], "--address", head["address"])
    assert ran.returncode == 2
    assert (
        "vidgist: error: resources.visual.num_gpus=0.5, but no node has 0.5 GPU "
        "(1 node: 3 CPU 0 GPU)" in ran.stderr
    )


def test_a_run_without_an_address_starts_its_own_ray_beside_a_running_cluster(
    head, tiny_clip, tmp_path
):
    # Ray's default would join the 3-CPU head above; vidgist starts a local Ray (this
    # machine's 2 CPUs) unless it is given an address.
    env = {k: v for k, v in head["env"].items() if k != "RAY_ADDRESS"}
    ran = _gpu_profile(tiny_clip, tmp_path / "out", env, "ray.address=null")
    assert ran.returncode == 2
    assert f"(1 node: {os.cpu_count()} CPU 0 GPU)" in ran.stderr, ran.stderr[-1000:]
