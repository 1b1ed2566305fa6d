"""Archives and outputs in an object store (`s3://`), against a real S3-compatible server
on localhost (moto in server mode, started and stopped here): the same HTTP requests a
bucket on AWS gets, no mock of the client. Credentials and the endpoint reach vidgist the
standard AWS way, through the environment."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from pipeline.sources import list_inputs, make_sources
from pipeline.store import JOURNAL, OutputUnusable, Store
from stages.decode import probe
from stages.keyframes import frames_at
from tests.ports import free_port
from tests.test_store import _run_row, _video

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on a free port, and the environment that points AWS clients at
    it; yields (environment, file system with bucket creation allowed)."""
    if shutil.which("moto_server", path=str(BIN)) is None:
        pytest.skip("moto's server is not installed (pip install 'moto[server]'; in .[dev])")
    port = free_port()
    server = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(endpoint, timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.skip(f"moto's S3 server did not start on port {port} within 30 s")
            time.sleep(0.2)
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        admin = pafs.S3FileSystem(endpoint_override=endpoint, allow_bucket_creation=True)
        yield env, admin
    server.terminate()
    server.wait(timeout=10)


_buckets = iter(range(1000))


@pytest.fixture
def bucket(s3) -> str:
    """A fresh bucket per test (the S3 clients vidgist keeps are per bucket)."""
    name = f"vidgist-test-{next(_buckets)}"
    s3[1].create_dir(name)
    return name


def _upload(admin: pafs.FileSystem, local: Path, key: str) -> None:
    with admin.open_output_stream(key) as out:
        out.write(local.read_bytes())


def _keys(admin: pafs.FileSystem, prefix: str) -> list[str]:
    infos = admin.get_file_info(pafs.FileSelector(prefix, recursive=True, allow_not_found=True))
    return sorted(i.path for i in infos if i.type == pafs.FileType.File)


def test_staged_objects_are_invisible_until_the_runs_record_is_written(bucket, s3):
    store = Store(f"s3://{bucket}/out")
    store.stage("r1", "videos", "r1-a", _video("a", "r1"))
    assert store.read_committed("videos").empty
    store.commit("r1", _run_row("r1"))
    assert list(store.read_committed("videos")["video_id"]) == ["a"]
    assert _keys(s3[1], f"{bucket}/out/_staging") == []
    assert store.inspect(deep=True) == []


def test_a_commit_killed_between_copies_is_rolled_forward_by_the_next_run(bucket, s3):
    store = Store(f"s3://{bucket}/out")
    store.stage("r2", "videos", "r2-a", _video("a", "r2"))
    store.stage("r2", "videos", "r2-b", _video("b", "r2"))
    # What commit writes first, then stop as if killed after copying one object.
    moves = [["videos/r2-a.parquet", "videos/r2-a.parquet", 1, 0]]
    moves.append(["videos/r2-b.parquet", "videos/r2-b.parquet", 1, 0])
    row = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in _run_row("r2").items()}
    journal = {"run_id": "r2", "moves": moves, "run_row": row}
    store.folder.write_text(f"_staging/r2/{JOURNAL}", json.dumps(journal))
    store.folder.move("_staging/r2/videos/r2-a.parquet", "videos/r2-a.parquet")
    assert store.read_committed("videos").empty  # no runs record: nothing is committed
    assert Store(f"s3://{bucket}/out").recover() == ["run r2: commit completed from its journal"]
    assert sorted(store.read_committed("videos")["video_id"]) == ["a", "b"]


def test_an_output_in_a_bucket_that_does_not_exist_is_refused_in_one_line(s3):
    with pytest.raises(OutputUnusable, match=r"^output s3://no-such-bucket/out: bucket "):
        Store("s3://no-such-bucket/out").check_usable()


def test_an_s3_prefix_lists_its_videos_with_size_and_mtime_fingerprints(bucket, s3, tiny_clip):
    admin = s3[1]
    _upload(admin, tiny_clip, f"{bucket}/in/a.mp4")
    _upload(admin, tiny_clip, f"{bucket}/in/deeper/b.MOV")
    admin.open_output_stream(f"{bucket}/in/notes.txt").close()
    uris = list_inputs(f"s3://{bucket}/in")
    assert uris == [f"s3://{bucket}/in/a.mp4", f"s3://{bucket}/in/deeper/b.MOV"]
    before = make_sources(uris)
    size = tiny_clip.stat().st_size
    assert all(s.fingerprint.startswith(f"{size}-") for s in before)
    with admin.open_output_stream(f"{bucket}/in/a.mp4") as out:
        out.write(tiny_clip.read_bytes() + b"\0")  # the object replaced
    after = make_sources(uris)
    assert after[0].fingerprint != before[0].fingerprint
    assert after[1] == before[1]
    with pytest.raises(FileNotFoundError, match="input not found: s3://"):
        list_inputs(f"s3://{bucket}/nothing-here")


def test_an_object_decodes_to_the_same_probe_and_frames_as_the_local_file(bucket, s3, tiny_clip):
    _upload(s3[1], tiny_clip, f"{bucket}/in/a.mp4")
    uri = f"s3://{bucket}/in/a.mp4"
    assert probe(uri) == probe(str(tiny_clip))
    remote, local = frames_at(uri, [1.0, 7.5]), frames_at(str(tiny_clip), [1.0, 7.5])
    assert all((r == x).all() for r, x in zip(remote, local, strict=True))


def test_vidgist_run_reads_and_writes_s3_as_the_readme_says(bucket, s3, tiny_clip, bad_inputs):
    env, admin = s3
    _upload(admin, tiny_clip, f"{bucket}/archive/tiny.mp4")
    _upload(admin, bad_inputs["random"], f"{bucket}/archive/broken.mp4")
    out = f"s3://{bucket}/vidgist"
    ran = subprocess.run(
        [
            str(BIN / "vidgist"),
            "run",
            "--input",
            f"s3://{bucket}/archive",
            "--output",
            out,
            "ray.progress=false",
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    store = Store(out)
    videos = store.read_committed("videos").set_index("uri")
    assert videos.loc[f"s3://{bucket}/archive/tiny.mp4", "status"] == "ok"
    assert videos.loc[f"s3://{bucket}/archive/broken.mp4", "status"] == "error"
    assert len(store.read_committed("summaries")) == 1
    assert len(store.read_committed("keyframes")["jpeg"].iloc[0]) > 1000
    assert _keys(admin, f"{bucket}/vidgist/_staging") == []
    assert store.inspect(deep=True) == []
    # Incremental: the next run finds the ok video done by its fingerprint.
    from pipeline.config import load_config
    from pipeline.run import run_pipeline

    cfg = load_config("local.yaml", ["ray.progress=false"])
    again = run_pipeline(cfg, f"s3://{bucket}/archive/tiny.mp4", out, log=lambda _: None)
    assert again.n_skipped == 1 and again.report.empty
