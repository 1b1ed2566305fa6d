"""`vidgist report`: a static HTML site of committed outputs, in OUT/report/.

No server and no network: pages, images and the script are files beside each other (the
importance plots are inline SVG), so the folder can be opened from disk, copied, or
served as it is. The index holds every video's row as JSON and shows 100 at a time, with
sorting and a status filter over all of them; thumbnails load lazily. One page per video
holds its summary, skim, importance curve, keyframes, captions and transcript.

Only committed runs are read (`Store.read_committed`); by default each video's latest.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass

import pandas as pd

from pipeline.store import Store
from stages.text import clock, span

PAGE_ROWS = 100  # index rows shown at once (the script pages through the rest)
SEGMENT_COLUMNS = ["video_id", "run_id", "seg_index", "start_s", "end_s", "selected", "boundary"]
SEGMENT_COLUMNS += ["summary_start_s", "summary_end_s"]


@dataclass(frozen=True)
class Report:
    index: str  # path or URI of index.html
    n_videos: int
    n_files: int
    n_bytes: int


def build_report(out: str, run_id: str | None = None) -> Report:
    """Write OUT/report/ for each video's latest committed run (or for `run_id` only)."""
    store = Store(out)
    videos = _chosen_videos(store, run_id)
    pairs = videos[["video_id", "run_id"]]

    def rows(table: str, columns: list[str] | None = None) -> pd.DataFrame:
        frame = store.read_committed(table, columns)
        return frame.merge(pairs, on=["video_id", "run_id"])

    summaries = rows("summaries", ["video_id", "run_id", "text", "captions", "skim_path"])
    summaries = summaries.set_index("video_id")
    segments = rows("segments", SEGMENT_COLUMNS)
    scores = rows("scores").set_index("video_id")
    keyframes = rows("keyframes", ["video_id", "run_id", "rank", "time_s", "score", "jpeg"])
    transcripts = rows("transcripts")

    site = _Site(store)
    site.clear()
    index_rows = []
    by_video = {
        "segments": dict(tuple(segments.groupby("video_id"))),
        "keyframes": dict(tuple(keyframes.sort_values("rank").groupby("video_id"))),
        "transcripts": dict(tuple(transcripts.sort_values("start_s").groupby("video_id"))),
    }
    for v in videos.itertuples():
        segs = by_video["segments"].get(v.video_id, segments.iloc[:0])
        kfs = by_video["keyframes"].get(v.video_id, keyframes.iloc[:0])
        images = []
        for k in kfs.itertuples():
            name = f"img/{v.video_id}-{int(k.rank)}.jpg"
            site.write_bytes(name, k.jpeg)
            images.append((name, float(k.time_s), float(k.score)))
        summary = summaries.loc[v.video_id] if v.video_id in summaries.index else None
        score = scores.loc[v.video_id] if v.video_id in scores.index else None
        page = _video_page(v, summary, segs, score, images, by_video["transcripts"].get(v.video_id))
        site.write_text(f"v/{v.video_id}.html", page)
        index_rows.append(
            {
                "id": v.video_id,
                "name": _name(v.uri),
                "status": v.status,
                "error": _text(v.error),
                "duration": None if _missing(v.duration_s) else round(float(v.duration_s), 1),
                "segments": len(segs),
                "keyframes": len(images),
                "summary": "" if summary is None else _text(summary["text"]),
                "thumb": images[0][0] if images else "",
                "run": v.run_id,
            }
        )
    title = f"vidgist report: {out}" + (f", run {run_id}" if run_id else "")
    site.write_text("index.html", _index_page(title, index_rows))
    return Report(site.folder.full("report/index.html"), len(index_rows), site.files, site.bytes)


def _chosen_videos(store: Store, run_id: str | None) -> pd.DataFrame:
    columns = ["video_id", "run_id", "uri", "status", "error", "duration_s"]
    videos = store.read_committed("videos", columns)
    runs = store.committed_runs(["run_id", "finished_at"])
    if run_id is not None:
        if run_id not in set(runs["run_id"]):
            raise ValueError(f"run {run_id} is not a committed run of {store.root}")
        videos = videos[videos["run_id"] == run_id]
    order = {r: i for i, r in enumerate(runs.sort_values("finished_at")["run_id"])}
    videos = videos.assign(order=videos["run_id"].map(order)).sort_values("order")
    latest = videos.groupby("video_id").tail(1)
    return latest.assign(name=latest["uri"].map(_name)).sort_values("name").reset_index(drop=True)


class _Site:
    """OUT/report/ written through the store's folder (local disk or an object store)."""

    def __init__(self, store: Store):
        self.folder = store.folder
        self.files = 0
        self.bytes = 0

    def clear(self) -> None:
        self.folder.delete_tree("report")  # pages of videos no longer reported go too

    def write_text(self, rel: str, text: str) -> None:
        self.write_bytes(rel, text.encode())

    def write_bytes(self, rel: str, data: bytes) -> None:
        self.folder.write_bytes(f"report/{rel}", data)
        self.files += 1
        self.bytes += len(data)


def _name(uri: str) -> str:
    return str(uri).rstrip("/").rsplit("/", 1)[-1]


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _text(x) -> str:
    """A string column's value; "" for null (which pandas may hand over as NaN)."""
    return "" if _missing(x) else str(x)


STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#222;
padding:0 16px}table{border-collapse:collapse;width:100%}
th,td{padding:6px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
th{cursor:pointer;background:#f4f4f4;user-select:none}
.ok{color:#1a7f37}.error{color:#c62828}img.thumb{width:160px;border-radius:3px}
.kf{display:inline-block;margin:0 12px 12px 0}.kf img{max-width:100%;display:block}
.muted{color:#666;font-size:13px}video{max-width:100%;background:#000}
svg text{font:11px system-ui,sans-serif;fill:#444}nav button{margin-right:6px}
"""

# The index's rows live in a JSON block; this script sorts, filters and pages them.
INDEX_JS = """
const ALL = JSON.parse(document.getElementById("data").textContent);
const PAGE = +document.getElementById("data").dataset.page;
let key = "name", dir = 1, page = 0;
const esc = s => String(s).replace(/[&<>"]/g,
  c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})[c]);
const cmp = (a, b) => {
  a = a[key] ?? -1; b = b[key] ?? -1; return a < b ? -dir : a > b ? dir : 0;
};
function row(r) {
  const link = `v/${r.id}.html`;
  const thumb = r.thumb
    ? `<a href="${link}"><img class="thumb" loading="lazy" src="${r.thumb}" alt=""></a>` : "";
  const duration = r.duration === null ? "" : r.duration + " s";
  return `<tr><td>${thumb}</td><td><a href="${link}">${esc(r.name)}</a></td>
    <td class="${r.status}">${r.status}</td><td>${duration}</td><td>${r.segments}</td>
    <td>${r.keyframes}</td><td>${esc(r.status === "ok" ? r.summary : r.error)}</td></tr>`;
}
function render() {
  const want = document.getElementById("status").value;
  const rows = ALL.filter(r => !want || r.status === want).sort(cmp);
  const pages = Math.max(1, Math.ceil(rows.length / PAGE));
  page = Math.min(page, pages - 1);
  document.getElementById("count").textContent = `${rows.length} of ${ALL.length} videos`;
  document.getElementById("rows").innerHTML =
    rows.slice(page * PAGE, (page + 1) * PAGE).map(row).join("");
  const buttons = Array.from({length: pages}, (_, i) =>
    `<button ${i === page ? "disabled" : ""} data-page="${i}">${i + 1}</button>`);
  document.getElementById("pages").innerHTML = pages < 2 ? "" : buttons.join("");
}
document.querySelectorAll("th[data-key]").forEach(th => th.onclick = () => {
  dir = key === th.dataset.key ? -dir : 1; key = th.dataset.key; render();
});
document.getElementById("status").onchange = () => { page = 0; render(); };
document.getElementById("pages").onclick = e => {
  if (e.target.dataset.page) { page = +e.target.dataset.page; render(); }
};
render();
"""


def _index_page(title: str, rows: list[dict]) -> str:
    data = json.dumps(rows).replace("</", "<\\/")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="muted"><span id="count"></span> · status
<select id="status"><option value="">all</option><option>ok</option><option>error</option>
</select> · click a column to sort</p>
<table><thead><tr><th></th><th data-key="name">video</th><th data-key="status">status</th>
<th data-key="duration">duration</th><th data-key="segments">segments</th>
<th data-key="keyframes">keyframes</th><th data-key="summary">summary or error</th></tr>
</thead><tbody id="rows"></tbody></table>
<nav id="pages"></nav>
<script id="data" type="application/json" data-page="{PAGE_ROWS}">{data}</script>
<script>{INDEX_JS}</script></body></html>
"""


def _video_page(v, summary, segs: pd.DataFrame, score, images, transcript) -> str:
    esc = html.escape
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{esc(_name(v.uri))}"
        f"</title><style>{STYLE}</style></head><body>",
        "<p><a href='../index.html'>&larr; all videos</a></p>",
        f"<h1>{esc(_name(v.uri))}</h1>",
        f"<p class='muted'>{esc(str(v.uri))} · run {esc(v.run_id)} · "
        f"<span class='{v.status}'>{esc(v.status)}</span></p>",
    ]
    if v.status != "ok":
        parts.append(f"<p class='error'>{esc(_text(v.error))}</p></body></html>")
        return "\n".join(parts)
    if summary is not None:
        parts.append(f"<h2>Summary</h2><p>{esc(_text(summary['text']))}</p>")
        if _text(summary["skim_path"]):
            parts.append(
                f"<video controls preload='metadata' src='../../{esc(summary['skim_path'])}'>"
                "</video>"
            )
    if score is not None:
        parts.append("<h2>Importance</h2>")
        parts.append(importance_svg(score["time_s"], score["score"], segs, images, v.duration_s))
    if images:
        parts.append("<h2>Keyframes</h2>")
        for name, t, s in images:
            parts.append(
                f"<div class='kf'><img src='../{name}' alt='keyframe at {clock(t, True)}'>"
                f"<span class='muted'>{clock(t, True)} · importance {s:.2f}</span></div>"
            )
    if summary is not None and len(summary["captions"]):
        parts.append("<h2>Captions</h2><table><tr><th>time</th><th>caption</th></tr>")
        for c in summary["captions"]:
            parts.append(
                f"<tr><td>{span(c['start_s'], c['end_s'])}</td><td>{esc(c['text'])}</td></tr>"
            )
        parts.append("</table>")
    if transcript is not None and len(transcript):
        parts.append("<h2>Transcript</h2><table><tr><th>time</th><th>said</th></tr>")
        for t in transcript.itertuples():
            said = esc(t.text) if t.kind == "speech" else "<i class='muted'>(unclear)</i>"
            parts.append(f"<tr><td>{span(t.start_s, t.end_s)}</td><td>{said}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def importance_svg(times, scores, segs: pd.DataFrame, images, duration) -> str:
    """The importance curve over time, the summary's spans shaded, shot cuts as lines,
    keyframes as dots, with time and score axes."""
    w, h, left, right, top, bottom = 1000, 240, 40, 10, 10, 30
    end = float(duration) if not _missing(duration) and duration else float(max(times, default=1))
    end = max(end, 1e-6)

    def x(t: float) -> float:
        return left + (w - left - right) * float(t) / end

    def y(s: float) -> float:
        return top + (h - top - bottom) * (1.0 - float(s))

    out = [
        f"<svg id='importance' viewBox='0 0 {w} {h}' width='100%' role='img' "
        "aria-label='importance over time'>"
    ]
    for seg in segs[segs["selected"]].itertuples():
        x0, x1 = x(seg.summary_start_s), x(seg.summary_end_s)
        out.append(
            f"<rect class='selected' x='{x0:.1f}' y='{top}' width='{max(x1 - x0, 1):.1f}' "
            f"height='{h - top - bottom}' fill='#ffd54f' fill-opacity='0.45'/>"
        )
    for seg in segs.itertuples():
        if seg.boundary in ("cut", "gradual", "split"):
            dash = {"cut": "", "gradual": "5,3", "split": "1,3"}[seg.boundary]
            out.append(
                f"<line class='{seg.boundary}' x1='{x(seg.start_s):.1f}' x2='{x(seg.start_s):.1f}'"
                f" y1='{top}' y2='{h - bottom}' stroke='#90a4ae' stroke-dasharray='{dash}'/>"
            )
    points = " ".join(f"{x(t):.1f},{y(s):.1f}" for t, s in zip(times, scores, strict=True))
    out.append(
        f"<polyline class='curve' points='{points}' fill='none' stroke='#1565c0' stroke-width='2'/>"
    )
    for _, t, s in images:
        out.append(
            f"<circle class='keyframe' cx='{x(t):.1f}' cy='{y(s):.1f}' r='4' fill='#c62828'/>"
        )
    out.append(
        f"<line x1='{left}' x2='{w - right}' y1='{h - bottom}' y2='{h - bottom}' stroke='#444'/>"
    )
    step = _tick_step(end)
    for k in range(int(end // step) + 1):
        t = k * step
        out.append(f"<text x='{x(t):.1f}' y='{h - 10}' text-anchor='middle'>{clock(t)}</text>")
    for s in (0.0, 0.5, 1.0):
        out.append(f"<text x='{left - 6}' y='{y(s) + 4:.1f}' text-anchor='end'>{s:.1f}</text>")
    out.append("</svg>")
    out.append(
        "<p class='muted'>blue: importance · shaded: what the summary keeps · lines: shot "
        "cuts (dashed: gradual, dotted: split in a long shot) · red: keyframes</p>"
    )
    return "\n".join(out)


def _tick_step(end: float) -> float:
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600):
        if end / step <= 12:
            return float(step)
    return 7200.0
