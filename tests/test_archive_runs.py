"""Runs over an archive: commit batches, resume after a kill, refuse bad settings and
damaged outputs, stop on a fault of the run itself, stop cleanly on SIGTERM."""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipeline.config import load_config
from pipeline.run import SystemicFault, run_pipeline
from pipeline.store import OutputUnusable, Store
from tests.conftest import local_overrides

BIN = Path(sys.executable).parent
N_CLIPS = 4
# On Ray, which runs of this size would not choose on their own (run.in_process_max).
BATCHED = ["run.batch_videos=2", "ray.progress=false", "run.executor=ray"]


@pytest.fixture(scope="module")
def archive(tmp_path_factory, tiny_clip) -> Path:
    """Copies of the tiny clip: videos with identical content."""
    folder = tmp_path_factory.mktemp("archive")
    for i in range(N_CLIPS):
        shutil.copy(tiny_clip, folder / f"clip-{i}.mp4")
    return folder


@pytest.fixture(scope="module")
def uninterrupted(ray_session, archive, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    cfg = load_config("local.yaml", [*local_overrides(), *BATCHED])
    notes: list[str] = []
    result = run_pipeline(cfg, str(archive), str(out), log=notes.append)
    return out, result, notes


def _latest(out: Path, table: str) -> pd.DataFrame:
    return Store(out).read_committed(table)


def _vidgist(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "vidgist"), *args], capture_output=True, text=True, check=False, **kw
    )


def test_each_batch_commits_on_its_own(uninterrupted):
    out, result, notes = uninterrupted
    assert result.n_ok == N_CLIPS and len(result.run_ids) == 2
    runs = Store(out).committed_runs().sort_values("started_at")
    assert list(runs["n_videos"]) == [2, 2]
    assert [n for n in notes if "committed:" in n] == [
        "batch 1/2 committed: 2 ok, 0 error",
        "batch 2/2 committed: 2 ok, 0 error",
    ]
    videos = _latest(out, "videos")
    assert videos["video_id"].is_unique and len(videos) == N_CLIPS


def _run_and_kill(args: list[str], marker: str, nth: int) -> None:
    """Run vidgist and kill it, and everything it started, with SIGKILL (a node reboot, a
    scheduler's kill -9) when `marker` is printed the `nth` time."""
    proc = subprocess.Popen(
        [str(BIN / "vidgist"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    seen = 0
    for line in proc.stdout:
        seen += marker in line
        if seen == nth:
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"never saw {marker!r} {nth} times"


def test_a_run_killed_in_every_phase_resumes_to_the_uninterrupted_result(
    uninterrupted, archive, tmp_path
):
    reference, _, _ = uninterrupted
    one = ["run", "--input", str(archive), "--output", str(tmp_path), "run.batch_videos=1"]
    # The runs alternate executors, as `auto` may when the videos left to do fall below
    # `run.in_process_max`: each resumes what the other left. (In process also spares
    # this, the suite's slowest test, a Ray start per run.)
    ray = [*one, "ray.progress=false", "run.executor=ray"]
    in_process = [*one, "run.executor=in_process"]
    store = Store(tmp_path)
    # Killed in batch 2's pass 1: batch 1 (one video) stays committed.
    _run_and_kill(ray, "pass 1/2", 2)
    assert len(store.committed_runs()) == 1
    # Killed in the next run's pass 2: nothing more is committed.
    _run_and_kill(in_process, "pass 2/2", 1)
    assert len(store.committed_runs()) == 1
    # Killed right after the next commit: that batch stays.
    _run_and_kill(ray, "committed:", 1)
    assert len(store.committed_runs()) == 2
    rerun = _vidgist(*in_process)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"{N_CLIPS - 2} to process, 2 already done" in rerun.stdout
    # Nothing lost, nothing twice, and the same answers as the run never interrupted.
    for table in ("videos", "summaries"):
        got, want = _latest(tmp_path, table), _latest(reference, table)
        assert got["video_id"].is_unique and len(got) == N_CLIPS, table
        assert set(got["video_id"]) == set(want["video_id"])
    cols = ["video_id", "seg_index", "start_s", "end_s", "selected"]
    seg = _latest(tmp_path, "segments").sort_values(cols[:2])[cols].reset_index(drop=True)
    ref = _latest(reference, "segments").sort_values(cols[:2])[cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(seg, ref)
    assert not (tmp_path / "_staging").exists() and not store.inspect(deep=True)


@pytest.mark.parametrize("executor", ["ray", "in_process"])
def test_sigterm_keeps_committed_batches_discards_the_one_in_flight_and_exits_143(
    archive, tmp_path, executor
):
    args = ["run", "--input", str(archive), "--output", str(tmp_path), *BATCHED]
    args.append(f"run.executor={executor}")
    proc = subprocess.Popen(
        [str(BIN / "vidgist"), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    for line in proc.stdout:
        if "batch 2/2: " in line:
            proc.send_signal(signal.SIGTERM)
            break
    rest = proc.stdout.read()
    assert proc.wait(timeout=120) == 143, rest[-2000:]
    assert "stopped by SIGTERM" in rest
    assert len(Store(tmp_path).committed_runs()) == 1
    assert not (tmp_path / "_staging").exists()
    assert not Store(tmp_path).inspect(deep=True)


def test_a_damaged_file_in_every_table_is_found_quarantined_and_redone(
    ray_session, uninterrupted, archive, tmp_path
):
    source, _, _ = uninterrupted
    out = tmp_path / "out"
    shutil.copytree(source, out)
    store = Store(out)
    assert store.inspect(deep=True) == []
    # Cut one file of every table (runs/ included) in half.
    damaged = []
    for table in ("videos", "segments", "scores", "keyframes", "summaries", "features", "runs"):
        path = sorted((out / table).glob("*.parquet"))[0]
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        damaged.append(path)
    cfg = load_config("local.yaml", [*local_overrides(), *BATCHED])
    with pytest.raises(OutputUnusable, match=r"damaged: .* run `vidgist check .* --repair`"):
        run_pipeline(cfg, str(out.parent / "nothing"), str(out), log=lambda _: None)
    found = {p.rel for p in store.inspect(deep=True)}
    assert {str(p.relative_to(out)) for p in damaged} <= found
    checked = _vidgist("check", str(out))
    assert checked.returncode == 1 and "damaged: videos/" in checked.stdout
    repaired = _vidgist("check", str(out), "--repair")
    assert repaired.returncode == 0, repaired.stdout
    assert "restored runs row" in repaired.stdout and "quarantined" in repaired.stdout
    assert list((out / "_quarantine").rglob("*.parquet"))
    # The next run redoes exactly the videos whose results were set aside.
    missing = N_CLIPS - len(_latest(out, "summaries"))
    assert missing >= 1
    result = run_pipeline(cfg, str(archive), str(out), log=lambda _: None)
    assert result.n_ok == missing and result.n_skipped == N_CLIPS - missing
    assert store.inspect(deep=True) == []
    summaries = _latest(out, "summaries")
    assert summaries["video_id"].is_unique and len(summaries) == N_CLIPS


def test_an_orphaned_file_and_a_lost_runs_folder_are_found_and_repaired(uninterrupted, tmp_path):
    source, _, _ = uninterrupted
    out = tmp_path / "out"
    shutil.copytree(source, out)
    store = Store(out)
    orphan = out / "summaries" / "20990101T000000Z-abcdef-x.parquet"
    shutil.copy(next((out / "summaries").glob("*.parquet")), orphan)
    shutil.rmtree(out / "runs")
    kinds = sorted({p.kind for p in store.inspect()})
    assert kinds == ["orphaned", "unrecorded"]
    store.repair(store.inspect())
    assert store.inspect(deep=True) == [] and not orphan.exists()
    assert len(store.committed_runs()) == 2


def test_most_of_a_batch_failing_the_same_way_stops_the_run_uncommitted(
    ray_session, archive, tmp_path
):
    from stages import registry
    from tests.toy_stages import UnreachableShots

    registry.register("shots.detector", "unreachable", UnreachableShots)
    try:
        picks = ["shots.detector=unreachable", "run.batch_videos=0"]
        cfg = load_config("local.yaml", [*local_overrides(), *picks])
        said = r"4 of 4 videos .* model server unreachable \(the first: \S+\.mp4\)\. Nothing"
        with pytest.raises(SystemicFault, match=said):
            run_pipeline(cfg, str(archive), str(tmp_path), log=lambda _: None)
    finally:
        registry.unregister("shots.detector", "unreachable")
    assert Store(tmp_path).committed_runs().empty
    assert not list(tmp_path.rglob("*.parquet"))


@pytest.mark.parametrize(
    "setting, says",
    [
        ("select.budget=2", "select.budget=2.0: must be in (0, 1)"),
        ("select.budget=0", "select.budget=0.0: must be in (0, 1)"),
        ("select.budget=-0.5", "select.budget=-0.5: must be in (0, 1)"),
        ("run.limit=-1", "run.limit=-1: must be >= 0"),
        ("decode.fps=0", "decode.fps=0.0: must be in (0, 120]"),
        ("decode.fps=-1", "decode.fps=-1.0: must be in (0, 120]"),
        ("decode.fps=3", "decode.sample_rate (16000) / fps must be whole"),
        ("decode.frame_size=16", "decode.frame_size=16: must be in [32, 4096]"),
        ("fusion.heads=3", "fusion.heads=3: must divide fusion.d_model (128)"),
        ("resources.visual.min_size=3", "resources.visual.max_size=2: must be >= "),
        ("run.batch_videos=-2", "run.batch_videos=-2: must be >= 0"),
    ],
)
def test_a_refused_setting_exits_2_with_one_line_before_out_exists(tmp_path, setting, says):
    out = tmp_path / "out"
    ran = _vidgist("run", "--input", str(tmp_path), "--output", str(out), setting)
    assert ran.returncode == 2
    assert ran.stderr.count("\n") == 1 and says in ran.stderr
    assert not out.exists()


def test_an_output_that_is_a_file_is_refused_before_anything_starts(tmp_path):
    out = tmp_path / "out"
    out.write_text("not a folder")
    ran = _vidgist("run", "--input", str(tmp_path), "--output", str(out))
    assert ran.returncode == 2 and "is a file, not a folder" in ran.stderr
    assert ran.stderr.count("\n") == 1 and out.read_text() == "not a folder"


@pytest.mark.parametrize("executor", ["ray", "in_process"])
def test_a_decoder_that_hangs_or_crashes_in_native_code_becomes_an_error_row_naming_why(
    ray_session, tiny_clip, tmp_path, executor
):
    from stages import registry
    from tests.toy_stages import FaultyDecoder

    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("fine", "hang", "crash"):
        shutil.copy(tiny_clip, inputs / f"{name}.mp4")
    registry.register("decode.decoder", "faulty", FaultyDecoder)
    try:
        # 5 s (+5): generous for the fine video on a loaded machine, short for the hang.
        picks = ["decode.decoder=faulty", "decode.timeout_s=5", f"run.executor={executor}"]
        cfg = load_config("local.yaml", [*local_overrides(), *picks])
        result = run_pipeline(cfg, str(inputs), str(tmp_path / "out"), log=lambda _: None)
    finally:
        registry.unregister("decode.decoder", "faulty")
    report = result.report.set_index(result.report["uri"].map(lambda u: Path(u).name))
    assert report.loc["fine.mp4", "status"] == "ok", report.loc["fine.mp4", "error"]
    assert report.loc["hang.mp4", "error"].startswith("decode: watchdog: no progress within 10 s")
    assert report.loc["crash.mp4", "error"] == (
        "decode: no output: its worker died of SIGSEGV (segmentation fault) while decoding "
        "it (2 attempts)"
    )
