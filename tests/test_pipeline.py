"""Both Ray Data passes on the session's local Ray, on tiny clips and bad inputs."""

import os
import shutil
from dataclasses import replace

import av
import numpy as np
import pandas as pd
import pytest

from pipeline import in_process
from pipeline.config import load_config
from pipeline.progress import Progress
from pipeline.run import run_pipeline
from pipeline.store import Store
from pipeline.summarize import summarize_plan
from pipeline.timings import read_table
from tests.conftest import local_overrides


def test_good_videos_are_summarized_and_bad_ones_are_error_rows(first_run):
    result, out = first_run
    videos = pd.read_parquet(out / "videos")
    by_name = {os.path.basename(r.uri): r for r in videos.itertuples()}
    assert {n for n, r in by_name.items() if r.status == "ok"} == {
        "tiny.mp4",
        "tiny-noaudio.mp4",
        "tiny-rotated.mp4",
    }
    for name in ("empty.mp4", "random.mp4", "truncated.mp4"):
        assert by_name[name].status == "error"
        assert by_name[name].error and "\n" not in by_name[name].error
    assert (result.n_ok, result.n_error) == (3, 3)
    rotated = by_name["tiny-rotated.mp4"]
    assert (rotated.width, rotated.height, rotated.n_sampled) == (240, 320, 18)


def test_a_run_with_stage_times_logs_every_stage_of_both_passes(first_run, first_run_log):
    log = "\n".join(first_run_log)
    pass1, pass2 = read_table(log, "pass 1"), read_table(log, "pass 2")
    assert {"decode", "measure", "shots", "visual", "audio", "write", "visual (build)"} <= set(
        pass1
    )
    assert {"features", "fusion", "ocr", "speech", "text", "skim", "write"} <= set(pass2)
    # The three good clips went through each.
    assert pass2["fusion"]["items"] == 3 and pass2["skim"]["items"] == 3
    assert pass1["decode"]["cpu"] > 0 and pass1["visual"]["cpu"] > 0
    assert pass1["decode"]["first"] <= pass1["visual"]["first"] < pass1["visual"]["last"]
    # Skims run FFmpeg in a child process: its CPU is counted too.
    assert pass2["skim"]["cpu"] > 0.01


def test_pass_2_writes_in_tasks_of_their_own_so_videos_are_summarized_in_parallel(
    ray_session, tmp_path, capsys
):
    # Fused into the per-video task, the writer made it take write_batch videos at once.
    cfg = load_config("local.yaml", local_overrides())
    shared = replace(cfg.decode.shared(), visual_dim=8, audio_dim=8)
    import ray.data

    items = ray.data.from_items([{"video_id": "v", "record": b""}])
    ds = summarize_plan(items, cfg, str(tmp_path), "r", "m", shared)
    ds.explain()
    physical = capsys.readouterr().out.split("Physical Plan (Optimized)")[1]
    assert "TaskPoolMapOperator[MapBatches(Timed)]" in physical
    assert "->MapBatches(Timed)" not in physical


def test_every_table_holds_consistent_rows_for_the_good_videos(first_run):
    _, out = first_run
    videos = pd.read_parquet(out / "videos")
    ok = set(videos.loc[videos["status"] == "ok", "video_id"])
    summaries = pd.read_parquet(out / "summaries")
    keyframes = pd.read_parquet(out / "keyframes")
    scores = pd.read_parquet(out / "scores")
    segments = pd.read_parquet(out / "segments")
    assert set(summaries["video_id"]) == ok == set(scores["video_id"]) == set(keyframes["video_id"])
    for vid in ok:
        sc = scores[scores["video_id"] == vid].iloc[0]
        assert len(sc["time_s"]) == len(sc["score"]) == 18
        assert min(sc["score"]) >= 0 and max(sc["score"]) <= 1
        seg = segments[segments["video_id"] == vid].sort_values("seg_index")
        assert (
            seg["start_s"].iloc[0] == 0
            and (seg["start_s"].values[1:] == seg["end_s"].values[:-1]).all()
        )
        chosen = seg[seg["selected"]]
        kept = (chosen["summary_end_s"] - chosen["summary_start_s"]).sum()
        assert 0 < kept <= 0.15 * 9.0 + 0.5
        # The tiny clip's three 3-s shots, cut at 3 s and 6 s, found on the frame.
        assert list(seg["start_s"]) == [0.0, 3.0, 6.0] and list(seg["shot_index"]) == [0, 1, 2]
        assert seg["boundary"].isna().iloc[0] and list(seg["boundary"].iloc[1:]) == ["cut", "cut"]
        kf = keyframes[keyframes["video_id"] == vid]
        assert set(kf["seg_index"]) <= set(chosen["seg_index"])
        assert (kf["jpeg"].map(len) > 1000).all()
    text = summaries.set_index("video_id").loc[next(iter(ok)), "text"]
    assert "summary of" in text


def test_each_good_video_has_a_committed_skim_as_long_as_its_summary(first_run):
    _, out = first_run
    summaries = pd.read_parquet(out / "summaries")
    segments = pd.read_parquet(out / "segments")
    assert len(summaries) == 3 and not list((out / "_staging").glob("*"))
    for row in summaries.itertuples():
        with av.open(str(out / row.skim_path)) as skim:
            stream = skim.streams.video[0]
            frames = sum(1 for _ in skim.decode(stream))
            fps = float(stream.average_rate)
        n_parts = int(
            segments[(segments["video_id"] == row.video_id) & segments["selected"]].shape[0]
        )
        assert abs(frames / fps - row.summary_duration_s) <= n_parts / fps


def test_features_are_kept_per_window_for_reuse(first_run):
    _, out = first_run
    features = pd.read_parquet(out / "features")
    per_video = features.groupby("video_id")["time_s"].apply(lambda s: sum(len(t) for t in s))
    assert set(per_video) == {18}
    first = features.iloc[0]
    assert len(first["visual"][0]) == 1280 and len(first["audio"][0]) == 128
    assert features["encoder_version"].str.contains("efficientnet_lite0").all()


def test_a_second_run_skips_what_is_done_and_redoes_what_changed(first_run, inputs):
    _, out = first_run
    cfg = load_config("local.yaml", local_overrides())
    again = run_pipeline(cfg, str(inputs), str(out), log=lambda _: None)
    assert again.n_skipped == 3  # the good ones
    assert sorted(again.report["status"]) == ["error"] * 3  # bad ones are tried again
    tiny = inputs / "tiny.mp4"
    os.utime(tiny, ns=(1, 1))  # a changed file
    third = run_pipeline(cfg, str(inputs / "tiny.mp4"), str(out), log=lambda _: None)
    assert list(third.report["status"]) == ["ok"] and third.n_skipped == 0
    runs = Store(out).committed_runs()
    assert len(runs) == 3 and list(runs.sort_values("started_at")["n_skipped"]) == [0, 3, 0]


def test_a_run_that_dies_half_way_leaves_nothing_readable(
    ray_session, inputs, tmp_path, monkeypatch
):
    import pipeline.run as run_module

    staged = []

    def die(*args, **kwargs):
        staged.extend((tmp_path / "_staging").rglob("*.parquet"))
        raise KeyboardInterrupt("killed between the passes")

    monkeypatch.setattr(run_module, "summarize_plan", die)
    cfg = load_config("local.yaml", local_overrides())
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(cfg, str(inputs / "tiny.mp4"), str(tmp_path), log=lambda _: None)
    assert staged  # pass 1 had written features into its staging...
    assert not list(tmp_path.rglob("*.parquet"))  # ... which the failed batch discarded
    monkeypatch.undo()
    result = run_pipeline(cfg, str(inputs / "tiny.mp4"), str(tmp_path), log=lambda _: None)
    assert result.n_ok == 1
    assert len(pd.read_parquet(tmp_path / "features")["run_id"].unique()) == 1
    assert np.isin(pd.read_parquet(tmp_path / "videos")["run_id"], result.run_ids).all()


def test_a_task_whose_worker_dies_drops_only_its_video(ray_session):
    import ray

    from pipeline.config import RayConfig
    from pipeline.ray_runtime import ensure_ray
    from pipeline.run import _collect_pass1
    from stages.records import VideoRef

    ensure_ray(RayConfig(progress=False))
    receipt = {
        "error": "",
        "window_index": 0,
        "is_last": True,
        "n_frames": 4,
        "file": "f.parquet",
        "duration_s": 2.0,
        "fps": 24.0,
        "width": 8,
        "height": 8,
        "video_codec": "h264",
        "has_audio": False,
    }

    def decode_or_die(row):
        if row["video_id"] == "crash":
            os._exit(1)  # what a segfaulting native decoder does to its worker
        yield {"video_id": row["video_id"], **receipt}

    items = [{"video_id": v} for v in ("ok-1", "crash", "ok-2")]
    ds = ray.data.from_items(items, override_num_blocks=3)
    ds = ds.flat_map(decode_or_die, num_cpus=0.5, max_retries=1)
    sources = [VideoRef(v["video_id"], f"/{v['video_id']}.mp4", "") for v in items]
    seen = _collect_pass1(sources, ds.iter_batches(batch_size=None, batch_format="numpy"), 2.0)
    assert seen["ok-1"].ok and seen["ok-2"].ok
    assert seen["crash"].errors["decode"].startswith("no output")


def test_videos_lost_in_pass_2_become_error_rows(tmp_path, monkeypatch):
    import pipeline.run as run_module
    from pipeline.run import LOST_IN_PASS2, _summarize
    from stages.records import VideoRecord, VideoRef

    returned = pd.DataFrame(
        {
            "video_id": ["a"],
            "uri": ["/a.mp4"],
            "status": ["ok"],
            "error": [""],
            "duration_s": [1.0],
            "n_segments": [1],
            "n_keyframes": [1],
            "summary_s": [0.1],
            "files": [""],
        }
    )

    class OnlyFirstReturns:
        def iter_batches(self, **_):
            yield {k: returned[k].to_numpy() for k in returned}

    monkeypatch.setattr(run_module, "summarize_plan", lambda *a, **k: OnlyFirstReturns())
    records = [VideoRecord(VideoRef(v, f"/{v}.mp4"), n_sampled=2) for v in ("a", "b")]
    keep: set[str] = set()
    progress = Progress(len(records), print, every_s=0.0)
    report = _summarize(
        load_config(None), in_process, Store(tmp_path), "r1", "m", records, keep, print, progress
    )
    lost = report[report["video_id"] == "b"].iloc[0]
    assert (lost["status"], lost["error"]) == ("error", f"summarize: {LOST_IN_PASS2}")
    assert any("r1-lost" in f for f in keep)


def test_videos_never_tried_go_before_ones_that_failed_when_the_run_is_limited(
    ray_session, tmp_path, bad_inputs, tiny_clip
):
    folder = tmp_path / "in"
    folder.mkdir()
    for p in bad_inputs.values():
        shutil.copy(p, folder / p.name)
    cfg = load_config("local.yaml", local_overrides())
    out = tmp_path / "out"
    first = run_pipeline(cfg, str(folder), str(out), log=lambda _: None)
    assert first.n_error == 3
    shutil.copy(tiny_clip, folder / "zz-new.mp4")  # sorts after every failed file
    limited = load_config("local.yaml", [*local_overrides(), "run.limit=1"])
    second = run_pipeline(limited, str(folder), str(out), log=lambda _: None)
    assert list(second.report["uri"].map(os.path.basename)) == ["zz-new.mp4"]
    assert list(second.report["status"]) == ["ok"]


@pytest.fixture
def toy_parts():
    from stages import registry
    from tests.toy_stages import CountingWriter, HalvesShots

    registry.register("shots.detector", "halves", HalvesShots)
    registry.register("text.writer", "counting", CountingWriter)
    yield
    registry.unregister("shots.detector", "halves")
    registry.unregister("text.writer", "counting")


def test_a_part_registered_by_name_runs_through_both_passes(
    ray_session, toy_parts, tiny_clip, tmp_path
):
    picks = ["shots.detector=halves", "text.writer=counting", "select.budget=0.5"]
    cfg = load_config("local.yaml", [*local_overrides(), *picks])
    result = run_pipeline(cfg, str(tiny_clip), str(tmp_path), log=lambda _: None)
    assert result.n_ok == 1
    segments = pd.read_parquet(tmp_path / "segments").sort_values("seg_index")
    # The toy's one cut at half of the 18 sampled frames (4.25 s): the toy, not the
    # default detector (which cuts at 3 s and 6 s), decided where segments begin.
    assert 4.25 in set(segments["start_s"]) and 4.25 in set(segments["end_s"])
    summary = pd.read_parquet(tmp_path / "summaries")["text"].iloc[0]
    assert summary.startswith("toy summary:")
    default = load_config("local.yaml", local_overrides())
    from pipeline.versions import model_version

    assert model_version(cfg) != model_version(default)


def test_an_unknown_part_name_is_refused_with_the_names_that_exist():
    from stages.registry import UnknownName

    with pytest.raises(UnknownName, match=r"text.writer='nope'.*template"):
        load_config("local.yaml", ["text.writer=nope"])


def test_the_audio_encoder_in_a_pool_of_its_own_writes_what_it_writes_in_the_cnn_s_actors(
    first_run, tiny_clip, tmp_path
):
    # local.yaml runs it after the CNN in the CNN's actors (resources.audio.pool=visual);
    # the GPU profile gives it actors of its own. The session's first run had the former.
    first, shared_out = first_run
    videos = pd.read_parquet(shared_out / "videos")
    shared_id = videos.loc[videos["uri"].str.endswith(tiny_clip.name), "video_id"].iloc[0]
    picks = [*local_overrides(), "run.executor=ray", "resources.audio.pool=actors"]
    cfg = load_config("local.yaml", picks)
    assert run_pipeline(cfg, str(tiny_clip), str(tmp_path), log=lambda _: None).n_ok == 1

    def audio(out, video_id=None, run_ids=None):
        f = pd.read_parquet(out / "features")
        if video_id:  # later tests add runs to the first run's OUT
            f = f[(f["video_id"] == video_id) & f["run_id"].isin(run_ids)]
        return f.sort_values("window_index")[["audio", "audio_mask"]]

    shared, own = audio(shared_out, shared_id, first.run_ids), audio(tmp_path)
    assert len(own) == len(shared) > 0
    for a, b in zip(shared.itertuples(), own.itertuples(), strict=True):
        assert list(a.audio_mask) == list(b.audio_mask) and any(a.audio_mask)
        np.testing.assert_allclose(np.stack(a.audio), np.stack(b.audio), atol=1e-5)


def test_only_the_audio_encoder_may_share_another_stage_s_pool():
    from pipeline.validate import SettingError

    assert load_config(None, ["resources.audio.pool=visual"]).resources.audio.pool == "visual"
    with pytest.raises(SettingError, match=r"pool='visual': must be one of: tasks, actors$"):
        load_config(None, ["resources.visual.pool=visual"])


def test_transnetv2_runs_in_its_own_actor_pool_on_every_decoded_frame(
    ray_session, tiny_clip, tmp_path
):
    # The 48x27 frames travel from the decode tasks to the detector's actors (ragged:
    # frames per window follow the source's rate); the cuts come back on the frame.
    picks = [
        "shots.detector=transnetv2",
        "resources.shots.pool=actors",
        "resources.shots.num_cpus=0.25",
    ]
    cfg = load_config("local.yaml", [*local_overrides(), *picks])
    result = run_pipeline(cfg, str(tiny_clip), str(tmp_path), log=lambda _: None)
    assert result.n_ok == 1
    seg = pd.read_parquet(tmp_path / "segments").sort_values("seg_index")
    assert list(seg["start_s"]) == [0.0, 3.0, 6.0]
    assert (
        list(seg["boundary"].iloc[1:]) == ["cut", "cut"]
        and (seg["confidence"].iloc[1:] > 0.5).all()
    )
    features = pd.read_parquet(tmp_path / "features")
    assert features["encoder_version"].str.endswith("|shots-transnetv2").all()
    assert sum(len(t) for t in features["decoded_time_s"]) == 9 * 24  # every decoded frame
