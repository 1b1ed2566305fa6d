import json
from datetime import datetime, timezone

import pandas as pd
import pyarrow as pa
import pytest

from pipeline.schemas import TABLES
from pipeline.store import JOURNAL, Store


def _video(vid: str, run_id: str) -> pa.Table:
    row = {k: None for k in TABLES["videos"].names}
    row.update(video_id=vid, run_id=run_id, status="ok", uri=f"/v/{vid}.mp4", fingerprint="1-2")
    return pa.Table.from_pylist([row], schema=TABLES["videos"])


def _run_row(run_id: str) -> dict:
    now = datetime.now(timezone.utc)
    return dict(
        run_id=run_id,
        started_at=now,
        finished_at=now,
        status="committed",
        config="{}",
        n_videos=1,
        n_ok=1,
        n_error=0,
        n_skipped=0,
        code_version="t",
        model_version="m1",
    )


def test_staged_files_are_invisible_until_the_run_commits(tmp_path):
    store = Store(tmp_path)
    store.stage("r1", "videos", "r1-a", _video("a", "r1"))
    assert not (tmp_path / "videos").exists()
    assert store.read_committed("videos").empty
    store.commit("r1", _run_row("r1"))
    assert list(pd.read_parquet(tmp_path / "videos")["video_id"]) == ["a"]
    assert list(store.committed_runs()["run_id"]) == ["r1"]
    assert not (tmp_path / "_staging").exists()


def test_a_run_killed_before_commit_is_discarded_by_the_next_run(tmp_path):
    store = Store(tmp_path)
    store.stage("dead", "videos", "dead-a", _video("a", "dead"))
    notes = Store(tmp_path).recover()
    assert notes == ["run dead: uncommitted files discarded"]
    assert not (tmp_path / "_staging" / "dead").exists()
    assert not (tmp_path / "videos").exists()


def test_a_run_killed_while_publishing_is_rolled_forward_from_its_journal(tmp_path):
    store = Store(tmp_path)
    store.stage("r2", "videos", "r2-a", _video("a", "r2"))
    store.stage("r2", "segments", "r2-a", TABLES["segments"].empty_table())
    staging = tmp_path / "_staging" / "r2"
    # What commit writes first, then stop as if killed after moving one file.
    moves = [
        ["segments/r2-a.parquet", "segments/r2-a.parquet"],
        ["videos/r2-a.parquet", "videos/r2-a.parquet"],
    ]
    row = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in _run_row("r2").items()}
    (staging / JOURNAL).write_text(json.dumps({"run_id": "r2", "moves": moves, "run_row": row}))
    (tmp_path / "segments").mkdir()
    (staging / "segments" / "r2-a.parquet").rename(tmp_path / "segments" / "r2-a.parquet")
    assert store.committed_runs().empty  # readers of the ledger see nothing yet
    assert Store(tmp_path).recover() == ["run r2: commit completed from its journal"]
    assert list(store.read_committed("videos")["video_id"]) == ["a"]
    assert list(store.committed_runs()["run_id"]) == ["r2"]


def test_committed_reads_ignore_files_of_runs_without_a_ledger_row(tmp_path):
    store = Store(tmp_path)
    store.stage("r1", "videos", "r1-a", _video("a", "r1"))
    store.commit("r1", _run_row("r1"))
    stray = tmp_path / "videos" / "orphan.parquet"
    import pyarrow.parquet as pq

    pq.write_table(_video("b", "never-committed"), stray)
    assert list(store.read_committed("videos")["video_id"]) == ["a"]


def test_done_videos_need_ok_status_same_fingerprint_and_model_version(tmp_path):
    store = Store(tmp_path)
    store.stage("r1", "videos", "r1-a", _video("a", "r1"))
    store.commit("r1", _run_row("r1"))
    assert store.video_states("m1") == ({("a", "1-2")}, set())
    assert store.video_states("m2") == (set(), set())


def test_unknown_tables_are_refused(tmp_path):
    with pytest.raises(KeyError):
        Store(tmp_path).stage("r", "nope", "x", _video("a", "r"))


def test_a_second_run_on_the_same_output_is_refused_while_the_first_holds_it(tmp_path):
    from pipeline.store import StoreLocked

    with Store(tmp_path).lock():
        blocked = Store(tmp_path).lock()
        with pytest.raises(StoreLocked, match="another vidgist run"):
            blocked.__enter__()
    with Store(tmp_path).lock():  # released again
        pass


def test_commit_publishes_only_the_files_the_tasks_reported(tmp_path):
    store = Store(tmp_path)
    good = store.stage("r1", "videos", "r1-a", _video("a", "r1"))
    store.stage("r1", "videos", "r1-half-written", _video("b", "r1"))  # from a task that died
    store.commit("r1", _run_row("r1"), keep={str(good)})
    assert list(pd.read_parquet(tmp_path / "videos")["video_id"]) == ["a"]
    assert not (tmp_path / "_staging").exists()


def test_features_only_runs_do_not_make_videos_done(tmp_path):
    store = Store(tmp_path)
    store.stage("r1", "videos", "r1-a", _video("a", "r1"))
    store.commit("r1", {**_run_row("r1"), "status": "committed (features only)"})
    assert store.video_states("m1")[0] == set()


def test_vacuum_keeps_each_videos_latest_runs_and_the_journals_agree(tmp_path):
    store = Store(tmp_path)
    for run_id, vids in (("r1", ["a", "b"]), ("r2", ["a"]), ("r3", ["a"])):
        for v in vids:
            store.stage(run_id, "videos", f"{run_id}-{v}", _video(v, run_id))
        store.commit(run_id, _run_row(run_id))
    actions = store.vacuum(keep=2)
    assert actions == ["videos/r1-a.parquet: 1 superseded rows dropped"]
    videos = store.read_committed("videos")
    assert sorted(zip(videos["video_id"], videos["run_id"], strict=True)) == [
        ("a", "r2"),
        ("a", "r3"),
        ("b", "r1"),
    ]
    assert store.inspect(deep=True) == []
    assert len(store.committed_runs()) == 3  # the ledger keeps every run


def test_a_vacuum_killed_after_its_intent_is_finished_by_the_next_command(tmp_path):
    store = Store(tmp_path)
    for run_id in ("r1", "r2"):
        store.stage(run_id, "videos", f"{run_id}-a", _video("a", run_id))
        store.commit(run_id, _run_row(run_id))
    # Kill the vacuum right after its intent is written, before any file is replaced.
    finish = Store._finish_vacuum
    Store._finish_vacuum = lambda self, intent: None
    try:
        store.vacuum(keep=1)
    finally:
        Store._finish_vacuum = finish
    assert list((tmp_path / "_journal").glob(".*.vacuum.json"))
    assert store.recover() == ["vacuum of r1: finished from its intent"]
    assert list(store.read_committed("videos")["run_id"]) == ["r2"]
    assert store.inspect(deep=True) == []


def test_skims_are_published_checked_and_vacuumed_like_table_files(tmp_path):
    store = Store(tmp_path)
    for run_id in ("r1", "r2"):
        store.stage(run_id, "videos", f"{run_id}-a", _video("a", run_id))
        store.stage_file(run_id, "skims", f"{run_id}-a", b"\0\0\0\x20ftypisom")
        store.commit(run_id, _run_row(run_id))
    assert sorted(p.name for p in (tmp_path / "skims").iterdir()) == ["r1-a.mp4", "r2-a.mp4"]
    assert store.inspect(deep=True) == []
    (tmp_path / "skims" / "r2-a.mp4").write_bytes(b"cut")
    assert [p.line() for p in store.inspect()] == [
        "damaged: skims/r2-a.mp4 (3 bytes, the journal says 12)"
    ]
    (tmp_path / "skims" / "r2-a.mp4").write_bytes(b"\0\0\0\x20ftypisom")
    assert "skims/r1-a.mp4: superseded, deleted" in store.vacuum(keep=1)
    assert [p.name for p in (tmp_path / "skims").iterdir()] == ["r2-a.mp4"]
    assert store.inspect(deep=True) == []
