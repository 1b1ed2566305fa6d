"""End to end, the way the README says: `vidgist samples`, then `vidgist run`."""

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from stages.metrics import word_errors

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _vidgist(*args, check=True):
    return subprocess.run(
        [str(BIN / "vidgist"), *args], capture_output=True, text=True, check=check
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    base = tmp_path_factory.mktemp("e2e")
    samples, out = base / "samples", base / "out"
    made = _vidgist("samples", str(samples), "--count", "3", "--seed", "0")
    assert "3 clips" in made.stdout
    (samples / "broken.mp4").write_bytes(b"\x00" * 1000)
    # Output to a pipe, as in a scheduled job's log.
    ran = _vidgist(
        "run", "--input", str(samples), "--output", str(out), "--report", "run.progress_s=2"
    )
    return samples, out, ran


def test_run_prints_a_per_video_table_and_where_the_outputs_are(demo):
    _, out, ran = demo
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "3 ok, 1 error, 0 skipped" in ran.stdout
    assert "broken.mp4" in ran.stdout and f"outputs in {out}" in ran.stdout
    assert f"report: {out}/report/index.html (4 videos," in ran.stdout


def test_a_run_logging_to_a_pipe_prints_compact_progress_lines_not_ray_blocks(demo):
    _, _, ran = demo
    lines = [x for x in ran.stdout.splitlines() if x.startswith("progress: ")]
    assert lines and re.fullmatch(
        r"progress: \d+/4 videos done, \d+ errors; \d+ s of video decoded at [\d.]+ s/s; "
        r"ETA (-|\d+m\d\ds)",
        lines[-1],
    )
    for noise in ("Execution plan", "Starting execution of Dataset", "Running Dataset"):
        assert noise not in ran.stdout + ran.stderr


def _readme_python(heading: str) -> list[str]:
    """The ```python blocks of README.md that follow `heading`'s paragraph."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index(heading) :]
    return re.findall(r"```python\n(.*?)```", section[: section.index("`videos/`")], re.S)


def test_the_readme_duckdb_and_pandas_snippets_run_as_written(demo, tmp_path, monkeypatch):
    _, out, _ = demo
    (tmp_path / "out").symlink_to(out)
    monkeypatch.chdir(tmp_path)
    blocks = _readme_python("The latest committed summary of each video")
    assert len(blocks) == 2
    frames = []
    for code in blocks:
        scope: dict = {}
        exec(compile(code, "README.md", "exec"), scope)
        frames.append(scope["latest"])
    videos = pd.read_parquet(out / "videos")
    ok = set(videos.loc[videos["status"] == "ok", "video_id"])
    for latest in frames:
        assert len(latest) == len(ok) == 3
        assert latest["jpeg"].map(len).min() > 1000 and latest["skim_path"].notna().all()


def test_every_good_video_has_a_summary_and_keyframes_at_display_size(demo):
    samples, out, _ = demo
    videos = pd.read_parquet(out / "videos")
    keyframes = pd.read_parquet(out / "keyframes")
    summaries = pd.read_parquet(out / "summaries").set_index("video_id")
    good = videos[videos["status"] == "ok"]
    assert len(good) == 3
    for v in good.itertuples():
        truth = json.loads((samples / Path(v.uri).name).with_suffix(".gt.json").read_text())
        assert (v.width, v.height) == (truth["width"], truth["height"])
        assert summaries.loc[v.video_id, "text"]
        kf = keyframes[keyframes["video_id"] == v.video_id]
        assert len(kf) >= 1
        for jpeg in kf["jpeg"]:
            img = Image.open(io.BytesIO(jpeg))
            assert img.format == "JPEG" and img.size == (truth["width"], truth["height"])


def test_segments_are_the_true_shots_and_the_summary_keeps_its_budget(demo):
    samples, out, _ = demo
    videos = pd.read_parquet(out / "videos")
    segments = pd.read_parquet(out / "segments")
    for v in videos[videos["status"] == "ok"].itertuples():
        truth = json.loads((samples / Path(v.uri).name).with_suffix(".gt.json").read_text())
        seg = segments[segments["video_id"] == v.video_id].sort_values("seg_index")
        cuts = np.asarray(truth["cut_times"])
        # Shots of at most 10 s: one segment per shot, each beginning at its cut.
        assert v.n_shots == len(seg) == len(cuts) + 1, (v.uri, cuts, list(seg["start_s"]))
        np.testing.assert_allclose(seg["start_s"].to_numpy()[1:], cuts, atol=0.5)
        kinds = [t["transition"] for t in truth["shots"][1:]]
        assert list(seg["boundary"].iloc[1:]) == [
            "gradual" if k == "dissolve" else k for k in kinds
        ]
        chosen = seg[seg["selected"]]
        kept = (chosen["summary_end_s"] - chosen["summary_start_s"]).sum()
        assert 0 < kept <= 0.15 * truth["duration_s"] + 0.5


def test_what_the_clips_say_comes_back_in_transcripts_and_the_summaries_quote_it(demo):
    from jobs.samples.render import can_speak

    if not can_speak():
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng): the clips are mute")
    samples, out, _ = demo
    videos = pd.read_parquet(out / "videos")
    transcripts = pd.read_parquet(out / "transcripts")
    summaries = pd.read_parquet(out / "summaries").set_index("video_id")
    spoken_clips = errors = words = 0
    for v in videos[videos["status"] == "ok"].itertuples():
        truth = json.loads((samples / Path(v.uri).name).with_suffix(".gt.json").read_text())
        rows = transcripts[(transcripts["video_id"] == v.video_id)].sort_values("start_s")
        heard = " ".join(rows.loc[rows["kind"] == "speech", "text"])
        said = " ".join(s["text"] for s in truth["spoken"])
        if not said:
            assert heard == "", (v.uri, heard)  # no words where nothing is said
            continue
        spoken_clips += 1
        e, n = word_errors(said, heard)
        errors, words = errors + e, words + n
        summary = summaries.loc[v.video_id]
        assert summary["transcript_excerpt"] and summary["transcript_excerpt"] in heard
        assert summary["text"].startswith("Speech: \u201c")
    assert spoken_clips >= 2
    assert errors <= 0.25 * words  # word error rate over the clips (espeak's voice)


def test_a_clip_without_audio_has_an_empty_transcript(demo):
    _, out, _ = demo
    videos = pd.read_parquet(out / "videos")
    transcripts = pd.read_parquet(out / "transcripts")
    mute = videos[(videos["status"] == "ok") & ~videos["has_audio"]]
    assert len(mute) == 1
    assert not transcripts["video_id"].isin(mute["video_id"]).any()


def test_title_cards_come_back_as_on_screen_text(demo):
    samples, out, _ = demo
    videos = pd.read_parquet(out / "videos")
    summaries = pd.read_parquet(out / "summaries").set_index("video_id")
    keyframes = pd.read_parquet(out / "keyframes")
    titles = 0
    for v in videos[videos["status"] == "ok"].itertuples():
        truth = json.loads((samples / Path(v.uri).name).with_suffix(".gt.json").read_text())
        for title in truth["titles"]:
            titles += 1
            assert f"\u201c{title['text']}\u201d" in summaries.loc[v.video_id, "text"]
            kf = keyframes[keyframes["video_id"] == v.video_id]
            on_title = kf[(kf["time_s"] >= title["start_s"]) & (kf["time_s"] < title["end_s"])]
            assert (on_title["ocr_text"] == title["text"]).all()
    assert titles >= 1
    assert keyframes["ocr_text"].notna().all()


def test_duckdb_and_pandas_read_the_tables_as_they_are(demo):
    _, out, _ = demo
    n = duckdb.sql(f"select count(*) from read_parquet('{out}/summaries/*.parquet')").fetchall()[0][
        0
    ]
    assert n == len(pd.read_parquet(out / "summaries")) == 3
    caps = duckdb.sql(
        f"select unnest(captions).text from read_parquet('{out}/summaries/*.parquet')"
    ).fetchall()
    assert caps and all(isinstance(c[0], str) for c in caps)


def test_a_second_run_skips_everything_done_and_fail_on_error_sets_the_exit_status(demo):
    samples, out, _ = demo
    again = _vidgist(
        "run",
        "--input",
        str(samples),
        "--output",
        str(out),
        "--fail-on-error",
        "ray.progress=false",
        check=False,
    )
    assert again.returncode == 1
    assert "0 ok, 1 error, 3 skipped" in again.stdout


def test_every_command_has_help_and_ray_job_entry_point_matches_run():
    for args in (["--help"], ["samples", "--help"], ["run", "--help"], ["train", "--help"]):
        assert _vidgist(*args).returncode == 0
    helped = subprocess.run(
        [sys.executable, "-m", "jobs.summarize", "--help"], capture_output=True, text=True
    )
    assert helped.returncode == 0 and "--input" in helped.stdout


def test_a_bad_override_is_a_one_line_config_error(tmp_path):
    bad = _vidgist(
        "run", "--input", ".", "--output", str(tmp_path), "select.budgett=1", check=False
    )
    assert bad.returncode == 2 and bad.stderr.startswith("vidgist: config error:")


def test_a_missing_input_or_checkpoint_is_a_one_line_error(tmp_path):
    missing = _vidgist(
        "run", "--input", "/nonexistent/videos", "--output", str(tmp_path), check=False
    )
    assert (
        missing.returncode == 2
        and missing.stderr.strip() == "vidgist: error: input not found: /nonexistent/videos"
    )
    ckpt = _vidgist(
        "run",
        "--input",
        ".",
        "--output",
        str(tmp_path),
        "fusion.checkpoint=/no/such.pt",
        check=False,
    )
    assert ckpt.returncode == 2 and "checkpoint not found: /no/such.pt" in ckpt.stderr
