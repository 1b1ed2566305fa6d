"""The in-process executor (pipeline/in_process.py) gives the plans Ray Data's batch
semantics without Ray, and runs task calls in child processes that may die."""

from __future__ import annotations

import os
import queue
import threading
import time

import numpy as np
import pandas as pd
import pytest

from pipeline import adapters, in_process
from pipeline.config import StageResources, load_config
from pipeline.run import run_pipeline
from pipeline.store import Store
from stages.base import WindowStage
from tests.conftest import local_overrides
from tests.toy_stages import DyingWindows, PidRow


def _ids(batches) -> list[list[int]]:
    return [list(b["i"]) for b in batches]


def test_batches_hold_exactly_batch_size_rows_across_the_inputs_they_came_in():
    ds = in_process.from_items([{"i": i} for i in range(7)])
    seen: list[list[int]] = []

    def record(batch):
        seen.append(list(batch["i"]))
        return {"i": batch["i"] * 10}

    out = ds.map_batches(record, batch_size=3).iter_batches()
    assert _ids(out) == [[0, 10, 20], [30, 40, 50], [60]]
    assert seen == [[0, 1, 2], [3, 4, 5], [6]]


def test_a_class_is_built_once_from_its_constructor_args_and_a_function_is_called_as_it_is():
    built: list[int] = []

    class Add:
        def __init__(self, k: int):
            built.append(k)
            self.k = k

        def __call__(self, batch):
            return {"i": batch["i"] + self.k}

    ds = in_process.from_items([{"i": i} for i in range(4)])
    ds = ds.map_batches(Add, batch_size=1, fn_constructor_args=(100,), num_cpus=0.5)
    assert _ids(ds.iter_batches()) == [[100], [101], [102], [103]]
    assert built == [100]


def test_map_gives_one_row_at_a_time_and_bytes_come_back_whole():
    blob = b"\x00pickled\x00"  # numpy's fixed-width bytes would drop the trailing NUL
    ds = in_process.from_items([{"video_id": "a", "record": blob}])
    rows = ds.map(lambda row: {"video_id": row["video_id"] + "!", "record": row["record"]})
    [batch] = list(rows.iter_batches())
    assert batch["video_id"].tolist() == ["a!"] and batch["record"][0] == blob


def test_a_generator_call_yields_several_batches_per_input():
    def windows(batch):
        for w in range(int(batch["n"][0])):
            yield {"n": np.array([w])}

    ds = in_process.from_items([{"n": 2}, {"n": 3}]).map_batches(windows, batch_size=1)
    assert [int(b["n"][0]) for b in ds.iter_batches()] == [0, 1, 0, 1, 2]


class _Noting:
    """An actor class: notes which instance ran each input on which thread; later
    inputs may finish first (they sleep less)."""

    def __init__(self, log: list, fail_on: int = -1):
        self.log, self.fail_on = log, fail_on
        log.append(("built", id(self)))

    def __call__(self, batch):
        n = int(batch["i"][0])
        if n == self.fail_on:
            raise ValueError(f"input {n}")
        time.sleep(0.02 * (n % 3))
        self.log.append((id(self), threading.get_ident(), n))
        return {"i": batch["i"] * 10}


def test_an_actor_pool_of_two_runs_two_instances_each_on_a_thread_of_its_own_in_order():
    log: list = []
    ds = in_process.from_items([{"i": i} for i in range(12)])
    out = ds.map_batches(_Noting, batch_size=1, fn_constructor_args=(log,), threads=2)
    assert [int(b["i"][0]) for b in out.iter_batches()] == [10 * i for i in range(12)]
    built = [entry[1] for entry in log if entry[0] == "built"]
    calls = [entry for entry in log if entry[0] != "built"]
    assert len(built) == 2 and {instance for instance, _, _ in calls} == set(built)
    threads = {instance: {t for i, t, _ in calls if i == instance} for instance in built}
    assert all(len(ts) == 1 for ts in threads.values())  # an instance keeps its thread
    assert len(set.union(*threads.values())) == 2
    assert threading.get_ident() not in set.union(*threads.values())


class _Repeating:
    """An actor class whose call yields its input's number that many times."""

    def __call__(self, batch):
        for _ in range(int(batch["i"][0])):
            yield {"i": batch["i"]}


def test_a_generator_call_in_an_actor_pool_gives_all_its_batches_in_input_order():
    ds = in_process.from_items([{"i": i} for i in (3, 1, 2)])
    out = ds.map_batches(_Repeating, batch_size=1, threads=2).iter_batches()
    assert [int(b["i"][0]) for b in out] == [3, 3, 3, 1, 2, 2]


def test_a_call_that_fails_in_an_actor_pool_fails_where_the_outputs_are_read():
    ds = in_process.from_items([{"i": i} for i in range(6)])
    out = ds.map_batches(_Noting, batch_size=1, fn_constructor_args=([], 3), threads=2)
    with pytest.raises(ValueError, match="input 3"):
        list(out.iter_batches())


class _Stage(WindowStage):
    name = "toy"

    def __call__(self, windows):
        return windows


class _Capture(in_process.Dataset):
    def map_batches(self, fn, **kwargs):
        self.kwargs = kwargs
        return self


@pytest.mark.parametrize("max_size, threads", [(1, None), (2, 2), (8, 2)])
def test_an_actor_pool_of_several_runs_in_process_on_as_many_threads_at_most_one_a_core(
    monkeypatch, max_size, threads
):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    res = StageResources(pool="actors", min_size=1, max_size=max_size)
    ds = adapters.apply(_Capture(lambda: iter(())), [adapters.Bound(_Stage, None, None)], res)
    assert ds.kwargs.get("threads") == threads


def _in_a_child(call, ns: list[int], max_retries: int = 1) -> list[dict]:
    ds = in_process.from_items([{"n": n} for n in ns])
    ds = ds.map_batches(call, batch_size=1, processes=1, max_retries=max_retries)
    return [{k: int(v[0]) for k, v in b.items()} for b in ds.iter_batches()]


def test_a_call_given_a_process_runs_in_a_child_and_streams_every_output_in_order():
    out = _in_a_child(DyingWindows(), [2, 1, 3])
    assert [(o["n"], o["w"]) for o in out] == [(2, 0), (2, 1), (1, 0), (3, 0), (3, 1), (3, 2)]
    assert {o["pid"] for o in out} != {os.getpid()} and len({o["pid"] for o in out}) == 1


def test_children_import_this_process_s_modules_whatever_folder_they_start_in(
    tmp_path, monkeypatch
):
    # A user's own packages of the same names, in the folder vidgist is started from.
    for name in ("pipeline", "stages", "tests"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("raise ImportError('the wrong one')\n")
    monkeypatch.chdir(tmp_path)
    out = _in_a_child(DyingWindows(), [2])
    assert [(o["n"], o["w"]) for o in out] == [(2, 0), (2, 1)]


def test_a_child_that_dies_is_restarted_on_the_input_it_died_on(tmp_path):
    out = _in_a_child(DyingWindows(die_on=2, once=str(tmp_path / "died")), [1, 2, 3])
    assert [(o["n"], o["w"]) for o in out] == [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)]
    assert out[0]["pid"] != out[1]["pid"] == out[-1]["pid"]  # a second child took over


def test_closing_a_child_that_died_with_an_item_still_in_its_pipe_raises_nothing():
    worker = in_process._Worker(DyingWindows(), False, 0, queue.Queue())
    worker.process.kill()
    worker.process.wait()
    worker.send({"n": np.arange(100_000)})  # fails part-written: the rest stays buffered
    worker.close()
    assert worker.process.stdin.closed


def test_an_input_that_kills_every_child_is_given_up_after_its_retries_and_the_rest_go_on():
    out = _in_a_child(DyingWindows(die_on=2), [1, 2, 3], max_retries=2)
    assert [(o["n"], o["w"]) for o in out] == [(1, 0), (3, 0), (3, 1), (3, 2)]
    assert len({o["pid"] for o in out}) == 2  # the first child, then the fourth


def test_a_child_begins_its_next_input_while_this_process_still_holds_its_outputs(tmp_path):
    # The consumer takes one output and waits: a child given one input at a time would
    # sit idle until the consumer asked for more (the decoder waiting on the CNN).
    ds = in_process.from_items([{"n": 1}, {"n": 2}])
    batches = ds.map_batches(DyingWindows(marks=str(tmp_path)), batch_size=1, processes=1)
    stream = batches.iter_batches()
    assert int(next(stream)["n"][0]) == 1
    deadline = time.monotonic() + 60
    while not (tmp_path / "2").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (tmp_path / "2").exists()
    assert [int(b["n"][0]) for b in stream] == [2, 2]


def test_a_consumer_that_stops_early_ends_the_child():
    ds = in_process.from_items([{"n": 50}, {"n": 50}])
    batches = ds.map_batches(DyingWindows(), batch_size=1, processes=1).iter_batches()
    first = next(batches)
    batches.close()
    with pytest.raises(ProcessLookupError):
        os.kill(int(first["pid"][0]), 0)


def test_rows_are_shared_out_among_child_processes_and_each_comes_back_once(tmp_path):
    ds = in_process.from_items([{"n": n} for n in range(6)])
    out = list(ds.map(PidRow(), processes=2).iter_batches())
    assert sorted(int(b["n"][0]) for b in out) == list(range(6))
    pids = {int(b["pid"][0]) for b in out}
    assert len(pids) == 2 and os.getpid() not in pids


def test_a_row_whose_child_dies_is_given_again_then_dropped_and_the_rest_come_back():
    ds = in_process.from_items([{"n": n} for n in range(5)])
    out = list(ds.map(PidRow(die_on=3), processes=2, max_retries=1).iter_batches())
    assert sorted(int(b["n"][0]) for b in out) == [0, 1, 2, 4]


def test_one_row_runs_in_this_process_a_worker_would_only_add_its_start_up():
    [batch] = in_process.from_items([{"n": 1}]).map(PidRow(), processes=2).iter_batches()
    assert int(batch["pid"][0]) == os.getpid()


def _tables(out, run_ids: list[str]) -> dict[str, pd.DataFrame]:
    """The run's committed rows, keyed by file name, in a stable order."""
    store = Store(out)
    videos = store.read_committed("videos")
    videos = videos[videos["run_id"].isin(run_ids)]
    names = dict(zip(videos["video_id"], videos["uri"].map(os.path.basename), strict=True))
    tables = {"videos": videos}
    for table in ("segments", "keyframes", "summaries", "scores", "transcripts"):
        rows = store.read_committed(table)
        tables[table] = rows[rows["run_id"].isin(run_ids)]
    for table, rows in tables.items():
        rows = rows.assign(name=rows["video_id"].map(names)).drop(columns=["run_id"])
        keys = ["name", *[k for k in ("seg_index", "rank", "start_s") if k in rows]]
        tables[table] = rows.sort_values(keys).reset_index(drop=True)
    return tables


def test_a_run_in_process_writes_what_a_run_on_ray_writes(first_run, inputs, tmp_path):
    # The same six inputs as the session's first run (on Ray): three good, three broken.
    on_ray, ray_out = first_run
    cfg = load_config("local.yaml", [*local_overrides(), "run.executor=in_process"])
    log: list[str] = []
    here = run_pipeline(cfg, str(inputs), str(tmp_path), log=log.append)
    assert "running in this process, without Ray (run.executor=in_process)" in log
    a, b = _tables(ray_out, on_ray.run_ids), _tables(tmp_path, here.run_ids)
    cols = ["name", "status", "error", "duration_s", "n_sampled", "n_shots"]
    pd.testing.assert_frame_equal(a["videos"][cols], b["videos"][cols])
    assert (a["videos"]["status"] == "ok").sum() == 3
    for table, exact in {
        "segments": ["seg_index", "start_s", "end_s", "selected", "shot_index"],
        "keyframes": ["rank", "time_s", "ocr_text"],
        "summaries": ["text", "summary_duration_s", "transcript_excerpt"],
        "transcripts": ["start_s", "end_s", "text"],
    }.items():
        pd.testing.assert_frame_equal(a[table][["name", *exact]], b[table][["name", *exact]])
    # The CNN sees its frames in other batches here: equal up to float rounding.
    for ray_scores, here_scores in zip(a["scores"]["score"], b["scores"]["score"], strict=True):
        np.testing.assert_allclose(ray_scores, here_scores, atol=1e-4)


def test_auto_runs_a_few_videos_in_process_and_more_or_a_given_cluster_on_ray(monkeypatch):
    import ray.data

    from pipeline.run import _executor

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr("pipeline.ray_runtime.ensure_ray", lambda cfg: None)
    monkeypatch.setattr("pipeline.ray_runtime.check_fits", lambda res, shots_pool: None)
    cfg = load_config("local.yaml", ["run.in_process_max=2"])
    assert _executor(cfg, 2, print) is in_process
    assert _executor(cfg, 3, print) is ray.data
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert _executor(cfg, 1, print) is ray.data
    forced = load_config("local.yaml", ["run.executor=in_process"])
    assert _executor(forced, 100, print) is in_process
