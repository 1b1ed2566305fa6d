"""Stage times: what each timed block cost, summed per stage across processes."""

import subprocess
import sys
import threading
import time

from pipeline.timings import StageTimer, Timed, format_totals, pool_running, read_table


def test_timed_blocks_sum_per_stage_with_wall_cpu_items_and_when(tmp_path):
    timer = StageTimer(str(tmp_path), time.time())
    for _ in range(2):
        with timer.time("busy", items=3):
            end = time.process_time() + 0.05
            while time.process_time() < end:
                pass
    with timer.time("idle"):
        time.sleep(0.05)
    totals = timer.totals()
    assert (totals["busy"]["calls"], totals["busy"]["items"]) == (2, 6)
    # os.times counts in clock ticks (10 ms): 0.1 s of spinning can read as 0.09.
    assert totals["busy"]["cpu"] >= 0.08 and totals["busy"]["processes"] == 1
    assert totals["idle"]["wall"] >= 0.05 and totals["idle"]["cpu"] < 0.04
    # The idle block came last: it started after both busy ones had ended.
    assert 0 <= totals["busy"]["first"] < totals["busy"]["last"] <= totals["idle"]["first"]


def test_the_cpu_of_a_child_process_counts_for_the_stage_that_ran_it(tmp_path):
    timer = StageTimer(str(tmp_path))
    spin = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"
    with timer.time("ffmpeg-like"):
        subprocess.run([sys.executable, "-c", spin], check=True)
    assert timer.totals()["ffmpeg-like"]["cpu"] >= 0.25


def _idle_call_beside_a_busy_thread(timer: StageTimer, stage: str) -> None:
    def spin():
        end = time.thread_time() + 0.3
        while time.thread_time() < end:
            pass

    busy = threading.Thread(target=spin)
    with timer.time(stage):
        busy.start()
        busy.join()  # this thread waits, using no CPU of its own


def test_while_an_actor_pool_runs_a_call_counts_its_own_thread_s_cpu_not_its_neighbours(
    tmp_path,
):
    timer = StageTimer(str(tmp_path))
    _idle_call_beside_a_busy_thread(timer, "alone")
    with pool_running():
        _idle_call_beside_a_busy_thread(timer, "beside a pool")
    totals = timer.totals()
    assert totals["alone"]["cpu"] >= 0.25  # the process's CPU: the busy thread's too
    assert totals["beside a pool"]["cpu"] < 0.1


def test_a_timed_batch_function_counts_its_rows_and_returns_its_result(tmp_path):
    timer = StageTimer(str(tmp_path))
    write = Timed(lambda batch: {"n": len(batch["a"])}, "write", timer)
    assert write({"a": [1, 2, 3]}) == {"n": 3}
    assert timer.totals()["write"]["items"] == 3
    assert Timed(len, "write", None)({"a": [1]}) == 1  # untimed runs write nothing more
    assert timer.totals()["write"]["calls"] == 1


def test_the_table_puts_the_costliest_stage_first_and_its_share_of_the_cores():
    totals = {
        "cheap": {"calls": 1, "items": 1, "processes": 1, "wall": 1.0, "cpu": 1.0},
        "dear": {"calls": 1, "items": 1, "processes": 1, "wall": 3.0, "cpu": 3.0},
    }
    for t in totals.values():
        t.update(first=0.5, last=3.5)
    text = format_totals("pass 1", totals, wall_s=4.0)
    lines = text.splitlines()
    assert "4.0 of them in stages" in lines[0]
    assert lines[2].split()[0] == "dear" and lines[2].split()[-3:] == ["75%", "0.5", "3.5"]
    # ...and reads back, from a log with other lines around it.
    rows = read_table(f"pass 1/2\n{text}\npass 2/2", "pass 1")
    assert rows["dear"]["cpu"] == 3.0 and rows["cheap"]["share"] == 25.0
