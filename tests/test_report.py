"""`vidgist report`: a static site of committed outputs, checked as files and in a real
browser (headless Chromium: every image loads, the plot is drawn, the skim plays, the
console stays clean)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.report import build_report
from pipeline.schemas import TABLES
from pipeline.store import Store
from tests.browser import Browser, find_chromium

# Evaluated in each page: what loaded, what was drawn, whether the skim can play.
CHECKS = """(() => {
  const images = [...document.images];
  const video = document.querySelector("video");
  const curve = document.querySelector("#importance polyline");
  return {
    rows: document.querySelectorAll("#rows tr").length,
    images: images.length,
    broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
    curve_width: curve ? curve.getBBox().width : null,
    shaded: document.querySelectorAll("#importance rect.selected").length,
    video: video ? {ready: video.readyState, error: video.error && video.error.code,
                    duration: video.duration} : null,
  };
})()"""


def _index_rows(report_dir: Path) -> list[dict]:
    page = (report_dir / "index.html").read_text()
    return json.loads(re.search(r'<script id="data"[^>]*>(.*?)</script>', page, re.S).group(1))


@pytest.fixture(scope="module")
def report(first_run):
    _, out = first_run
    return build_report(str(out)), out


def test_the_report_has_a_row_and_a_page_per_video_and_its_files_beside_them(report):
    built, out = report
    rows = _index_rows(out / "report")
    assert built.n_videos == len(rows) == 6
    assert sorted(r["status"] for r in rows) == ["error"] * 3 + ["ok"] * 3
    assert all(r["error"] for r in rows if r["status"] == "error")
    for r in rows:
        page = (out / "report" / "v" / f"{r['id']}.html").read_text()
        for src in re.findall(r"src='([^']+)'", page):
            assert (out / "report" / "v" / src).resolve().is_file(), src
        if r["status"] == "ok":
            assert r["keyframes"] >= 1 and (out / "report" / r["thumb"]).is_file()
            assert "<polyline class='curve'" in page and "<video" in page


@pytest.fixture(scope="module")
def browser():
    exe = find_chromium()
    if exe is None:
        pytest.skip("Chromium is not installed (apt-get install chromium; `make chromium`)")
    b = Browser(exe)
    yield b
    b.close()


def test_every_report_page_renders_in_chromium_with_images_plot_and_skim(report, browser):
    _, out = report
    index = browser.visit((out / "report" / "index.html").as_uri(), CHECKS)
    assert index["errors"] == [] and index["checks"]["rows"] == 6
    assert index["checks"]["broken"] == [] and index["checks"]["images"] == 3
    for r in _index_rows(out / "report"):
        seen = browser.visit((out / "report" / "v" / f"{r['id']}.html").as_uri(), CHECKS)
        assert seen["errors"] == [], (r["name"], seen["errors"])
        checks = seen["checks"]
        assert checks["broken"] == [] and checks["images"] == r["keyframes"]
        if r["status"] == "ok":
            assert checks["curve_width"] > 500 and checks["shaded"] >= 1
            # The skim's metadata loaded (readyState >= 1) and it lasts what it should.
            assert checks["video"]["error"] is None and checks["video"]["ready"] >= 1
            assert 0 < checks["video"]["duration"] < 3


def _failed(vid: str, run_id: str) -> pa.Table:
    row = {k: None for k in TABLES["videos"].names}
    row.update(video_id=vid, run_id=run_id, status="error", uri=f"/v/{vid}.mp4")
    row.update(fingerprint="1-2", error="decode: InvalidDataError: Invalid data")
    return pa.Table.from_pylist([row], schema=TABLES["videos"])


def test_a_report_of_an_out_whose_every_video_failed_lists_their_errors(tmp_path, request):
    store = Store(tmp_path)
    for vid in ("a", "b"):
        store.stage("r1", "videos", f"r1-{vid}", _failed(vid, "r1"))
    now = datetime.now(timezone.utc)
    store.commit(
        "r1",
        dict(run_id="r1", started_at=now, finished_at=now, status="committed", config="{}")
        | dict(n_videos=2, n_ok=0, n_error=2, n_skipped=0, code_version="t", model_version="m"),
    )
    built = build_report(str(tmp_path))
    rows = _index_rows(tmp_path / "report")
    assert built.n_videos == 2 and {r["status"] for r in rows} == {"error"}
    assert "Invalid data" in (tmp_path / "report" / "v" / "a.html").read_text()
    if find_chromium():
        seen = request.getfixturevalue("browser").visit(
            (tmp_path / "report" / "index.html").as_uri(), CHECKS
        )
        assert seen["errors"] == [] and seen["checks"]["rows"] == 2
    with pytest.raises(ValueError, match="not a committed run"):
        build_report(str(tmp_path), run_id="r9")
