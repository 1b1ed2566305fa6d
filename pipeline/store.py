"""The output store: per-run staging, an atomic-by-journal commit, and committed reads.

Layout under OUT:

    videos/ segments/ ... features/ transcripts/   committed Parquet files
    runs/<run_id>.parquet                            one row per committed run (or batch)
    _journal/<run_id>.json                           what each commit published: files,
                                                     their rows and bytes, the runs row
    skims/<run_id>-<video_id>.mp4                    summary videos (published like tables)
    _staging/<run_id>/<table>/<file>.parquet         a run's files until commit
    _quarantine/<run_id>/<table>/<file>.parquet      damaged files set aside by repair

A run writes only under `_staging/<run_id>/`. Commit writes a journal listing the
staged files, moves each into its table folder (a rename on local disk; a copy and a
delete in an object store), keeps the journal in `_journal/`, and writes the run's
`runs` row last: that row is the commit, on either kind of store. A run
killed before the journal leaves only its staging folder, which the next run deletes; a
run killed during the moves is rolled forward by the next run from its journal. Readers
that go through `read_committed` only ever see rows of runs whose `runs` row exists.
The kept journals are what `inspect` checks committed files against.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline.folder import Folder
from pipeline.schemas import RUNS, TABLES

STAGING = "_staging"
JOURNALS = "_journal"
QUARANTINE = "_quarantine"
RUN_ID = re.compile(r"^(\d{8}T\d{6}Z-[0-9a-f]{6})")
# Outputs that are files, not table rows: folder -> suffix. Commit, check and vacuum
# treat them as they treat Parquet files (their journal entry has 0 rows).
FILE_OUTPUTS = {"skims": ".mp4"}


class StoreLocked(RuntimeError):
    """Another run holds the output folder."""


class OutputUnusable(ValueError):
    """OUT cannot hold a run's outputs (a file, not writable), or is damaged."""


@dataclass(frozen=True)
class Problem:
    kind: str  # damaged | missing | orphaned | unrecorded
    rel: (
        str  # the file, relative to OUT (for `unrecorded`: the journal of a run without a runs row)
    )
    run_id: str
    detail: str

    def line(self) -> str:
        return f"{self.kind}: {self.rel} ({self.detail})"


JOURNAL = "_commit.json"


class Store:
    def __init__(self, root: str | Path):
        self.folder = Folder(root)
        self.root = self.folder.uri  # a local path or an s3:// URI

    def staging(self, run_id: str) -> str:
        return f"{STAGING}/{run_id}"

    def stage(self, run_id: str, table: str, name: str, rows: pa.Table) -> str:
        """Write a run's file into its staging; returns its path or URI (what tasks report)."""
        if table not in TABLES:
            raise KeyError(f"unknown table {table!r}")
        rel = f"{self.staging(run_id)}/{table}/{name}.parquet"
        self.folder.write_parquet(rel, rows.cast(TABLES[table]))
        return self.folder.full(rel)

    def stage_file(self, run_id: str, folder: str, name: str, data: bytes) -> str:
        """Write a run's non-table output (a skim) into its staging; returns its URI."""
        rel = f"{self.staging(run_id)}/{folder}/{name}{FILE_OUTPUTS[folder]}"
        self.folder.write_bytes(rel, data)
        return self.folder.full(rel)

    def commit(self, run_id: str, run_row: dict, keep: set[str] | None = None) -> None:
        """Publish the run's staged files (only those in `keep`, when given) and its row.

        `keep` lets the driver publish exactly the files its tasks reported as written: a
        task that died half-way may have left a file that belongs to no finished video.
        """
        f = self.folder
        staging = self.staging(run_id)
        kept = None if keep is None else {f.rel(k) for k in keep}
        moves = []
        for rel in f.files(staging, suffix="", recursive=True):
            inside = rel[len(staging) + 1 :]
            if not _is_output(inside) or (kept is not None and rel not in kept):
                continue  # not the watchdog's notes, nor a file no finished task reported
            rows = pq.read_metadata(f.at(rel), filesystem=f.fs).num_rows if _rows(inside) else 0
            moves.append([inside, inside, rows, f.size(rel)])
        journal = {"run_id": run_id, "moves": moves, "run_row": _jsonable(run_row)}
        f.write_text(f"{staging}/{JOURNAL}", json.dumps(journal))
        self._publish(staging, journal)

    def _publish(self, staging: str, journal: dict) -> None:
        f = self.folder
        for src, dst, *_ in journal["moves"]:
            if f.exists(f"{staging}/{src}"):
                f.move(f"{staging}/{src}", dst)
        self._write_journal(journal)
        self._write_run_row(journal)
        f.delete_tree(staging)
        f.remove_if_empty(STAGING)  # only when no other run is staging

    def _write_journal(self, journal: dict) -> None:
        self.folder.write_text(f"{JOURNALS}/{journal['run_id']}.json", json.dumps(journal))

    def _write_run_row(self, journal: dict) -> None:
        table = pa.Table.from_pylist([_from_jsonable(journal["run_row"])], schema=RUNS)
        self.folder.write_parquet(f"runs/{journal['run_id']}.parquet", table)

    def discard(self, run_id: str) -> None:
        """Drop a run's staging: nothing of it was published."""
        self.folder.delete_tree(self.staging(run_id))
        self.folder.remove_if_empty(STAGING)

    def check_usable(self) -> None:
        """Refuse an OUT that is a file or cannot be written, before anything is created."""
        if self.folder.remote:
            self._check_bucket()
            return
        root = Path(self.root)
        if root.exists() and not root.is_dir():
            raise OutputUnusable(f"output {root} is a file, not a folder")
        existing = root
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            raise OutputUnusable(f"output {root}: {existing} is a file, not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise OutputUnusable(f"output {root}: {existing} is not writable")

    def _check_bucket(self) -> None:
        bucket = self.folder.base.split("/", 1)[0]
        try:
            kind = self.folder.fs.get_file_info(bucket).type
            if kind == pafs.FileType.NotFound:
                raise OutputUnusable(f"output {self.root}: bucket {bucket!r} does not exist")
            if self.folder.kind() == pafs.FileType.File:
                raise OutputUnusable(f"output {self.root} is an object, not a prefix")
        except OSError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise OutputUnusable(f"output {self.root}: {first}") from None

    def journals(self) -> dict[str, dict]:
        f = self.folder
        return {
            rel.rsplit("/", 1)[1][: -len(".json")]: json.loads(f.read_text(rel))
            for rel in f.files(JOURNALS, ".json")
        }

    def inspect(self, deep: bool = False) -> list[Problem]:
        """What is wrong with the committed outputs: a file missing, damaged (unreadable,
        or not the size/rows its journal recorded), orphaned (in a table folder but
        published by no committed run), or a journal whose run lost its `runs` row.

        `deep` reads every file whole and counts its rows; otherwise sizes are compared
        (cheap on any archive: a truncated or rewritten file changes size).
        """
        f = self.folder
        problems: list[Problem] = []
        journals = self.journals()
        recorded: dict[str, bool] = {}
        for rel in f.files("runs"):
            run_id = _stem(rel)
            try:
                if deep:
                    pq.read_table(f.at(rel), schema=RUNS, filesystem=f.fs)
                else:
                    pq.read_metadata(f.at(rel), filesystem=f.fs)
                recorded[run_id] = True
            except Exception as exc:
                problems.append(Problem("damaged", rel, run_id, _short(exc)))
        listed: set[str] = set()
        for run_id, journal in journals.items():
            if not recorded.get(run_id) and not f.exists(f"runs/{run_id}.parquet"):
                where = f"{JOURNALS}/{run_id}.json"
                problems.append(Problem("unrecorded", where, run_id, "its runs row is missing"))
            for _, dst, rows, size in journal["moves"]:
                listed.add(dst)
                problem = _check_file(f, dst, rows, size, deep)
                if problem:
                    problems.append(Problem(problem[0], dst, run_id, problem[1]))
        committed = set(recorded) | set(journals)
        folders = [(t, ".parquet") for t in TABLES if t != "runs"] + list(FILE_OUTPUTS.items())
        for table, suffix in folders:
            for rel in f.files(table, suffix):
                if rel in listed:
                    continue
                match = RUN_ID.match(rel.rsplit("/", 1)[1])
                run_id = match.group(1) if match else ""
                if run_id not in committed:
                    problems.append(
                        Problem("orphaned", rel, run_id, "published by no committed run")
                    )
        return problems

    def repair(self, problems: list[Problem]) -> list[str]:
        """Set damaged files aside in _quarantine (with the files written with them, so
        their videos are redone), restore lost runs rows from the journals, delete
        orphaned files. Returns one line per action."""
        f = self.folder
        actions: list[str] = []
        journals = self.journals()
        for p in problems:
            if p.kind == "orphaned":
                f.delete(p.rel)
                actions.append(f"deleted orphaned {p.rel}")
            elif p.kind == "unrecorded" or p.rel.startswith("runs/"):
                self._write_run_row(journals[p.run_id])
                actions.append(f"restored runs row of {p.run_id} from its journal")
        for run_id in sorted({p.run_id for p in problems if p.kind in ("damaged", "missing")}):
            journal = journals.get(run_id)
            bad = {
                p.rel.rsplit("/", 1)[1]
                for p in problems
                if p.run_id == run_id
                and p.kind in ("damaged", "missing")
                and not p.rel.startswith("runs/")
            }
            if journal is None or not bad:
                continue
            # Files written together share a name across tables (one writer task, one
            # batch of videos): set the whole group aside, so no video keeps an `ok` row
            # whose results are gone, and the next run redoes those videos.
            kept = []
            for move in journal["moves"]:
                dst = move[1]
                if dst.rsplit("/", 1)[1] in bad:
                    if f.exists(dst):
                        f.move(dst, f"{QUARANTINE}/{run_id}/{dst}")
                        actions.append(f"quarantined {dst}")
                else:
                    kept.append(move)
            self._write_journal({**journal, "moves": kept})
        return actions

    def vacuum(self, keep: int) -> list[str]:
        """Drop rows that later runs superseded: for each video, rows of all but its
        `keep` latest committed runs, in every table but `runs` (the ledger keeps them).

        Per run: the smaller files are written beside the old ones, then an intent (the
        replacements and the run's new journal) is written, then the files are replaced
        and the journal rewritten. `recover` finishes an intent a kill left behind, so a
        killed vacuum never leaves a file its journal disagrees with.
        """
        f = self.folder
        runs = self._runs(["run_id", "finished_at"]).to_pandas()
        order = {r: i for i, r in enumerate(runs.sort_values("finished_at")["run_id"])}
        videos = self._committed("videos", ["video_id", "run_id"]).to_pandas()
        videos["rank"] = videos["run_id"].map(order)
        latest = videos.sort_values("rank").groupby("video_id").tail(keep)
        kept = set(zip(latest["video_id"], latest["run_id"], strict=True))
        actions = []
        for run_id, journal in self.journals().items():
            moves, swaps = [], []
            for src, dst, rows, size in journal["moves"]:
                if not _rows(dst):  # a skim: kept while its video's run is
                    video_id = _stem(dst)[len(run_id) + 1 :]
                    if (video_id, run_id) in kept:
                        moves.append([src, dst, rows, size])
                    else:
                        actions.append(f"{dst}: superseded, deleted")
                        swaps.append([dst, None])
                    continue
                table = pq.read_table(f.at(dst), filesystem=f.fs)
                pairs = zip(table["video_id"].to_pylist(), table["run_id"].to_pylist(), strict=True)
                mask = pa.array([p in kept for p in pairs], pa.bool_())
                if table.num_rows == 0 or pc.all(mask).as_py():
                    moves.append([src, dst, rows, size])
                    continue
                smaller = table.filter(mask)
                actions.append(f"{dst}: {rows - smaller.num_rows} superseded rows dropped")
                if not smaller.num_rows:
                    swaps.append([dst, None])
                    continue
                folder, name = dst.rsplit("/", 1)
                new = f"{folder}/.{name}.vacuum"
                f.write_parquet(new, smaller)
                swaps.append([dst, new])
                moves.append([src, dst, smaller.num_rows, f.size(new)])
            if swaps:
                intent = f"{JOURNALS}/.{run_id}.vacuum.json"
                f.write_text(
                    intent, json.dumps({"swaps": swaps, "journal": {**journal, "moves": moves}})
                )
                self._finish_vacuum(intent)
        return actions

    def _finish_vacuum(self, intent: str) -> None:
        f = self.folder
        plan = json.loads(f.read_text(intent))
        for dst, new in plan["swaps"]:
            if new is None:
                f.delete(dst)
            elif f.exists(new):
                f.move(new, dst)
        self._write_journal(plan["journal"])
        f.delete(intent)

    def check_committed(self) -> None:
        """Refuse to run on an OUT whose committed files are not as their journals say."""
        problems = self.inspect(deep=False)
        if problems:
            more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
            raise OutputUnusable(
                f"{problems[0].line()}{more}; run `vidgist check {self.root} --repair` first"
            )

    def recover(self) -> list[str]:
        """Finish or discard runs left behind by a crash; returns what was done, per run."""
        f = self.folder
        notes = []
        for intent in _hidden(f, JOURNALS, ".vacuum.json"):
            self._finish_vacuum(intent)
            notes.append(
                f"vacuum of {intent.rsplit('/', 1)[1].split('.')[1]}: finished from its intent"
            )
        for staging in f.folders(STAGING):
            run_id = staging.rsplit("/", 1)[1]
            if f.exists(f"{staging}/{JOURNAL}"):
                self._publish(staging, json.loads(f.read_text(f"{staging}/{JOURNAL}")))
                notes.append(f"run {run_id}: commit completed from its journal")
            else:
                f.delete_tree(staging)
                notes.append(f"run {run_id}: uncommitted files discarded")
        f.remove_if_empty(STAGING)
        return notes

    def committed_runs(self, columns: list[str] | None = None) -> pd.DataFrame:
        return self._runs(columns).to_pandas()

    def _runs(self, columns: list[str] | None = None) -> pa.Table:
        f = self.folder
        if not f.files("runs"):
            return RUNS.empty_table().select(columns or RUNS.names)
        return pq.read_table(f.at("runs"), schema=RUNS, columns=columns, filesystem=f.fs)

    def read_committed(self, table: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Rows of `table` from committed runs only."""
        return self._committed(table, columns).to_pandas()

    def _committed(
        self, table: str, columns: list[str] | None = None, runs: set[str] | None = None
    ) -> pa.Table:
        f = self.folder
        schema = TABLES[table]
        if runs is None:
            runs = set(self._runs(["run_id"])["run_id"].to_pylist())
        if not runs or not f.files(table):
            return schema.empty_table().select(columns or schema.names)
        cols = None if columns is None else list(dict.fromkeys([*columns, "run_id"]))
        rows = pq.read_table(f.at(table), schema=schema, columns=cols, filesystem=f.fs)
        rows = rows.filter(pc.is_in(rows["run_id"], pa.array(sorted(runs), pa.string())))
        return rows.select(columns) if columns else rows

    def video_states(self, model_version: str) -> tuple[set, set]:
        """(ok, error): the (video_id, fingerprint) pairs that full committed runs with this
        model version recorded as ok and as error. Features-only runs do not count. One
        columnar read of `videos` and `runs` (an archive's ledger is millions of rows)."""
        f = self.folder
        runs = self._runs(["run_id", "status", "model_version"])
        full = pc.and_(
            pc.equal(runs["model_version"], model_version), pc.equal(runs["status"], "committed")
        )
        mine = pa.array(sorted(set(runs.filter(full)["run_id"].to_pylist())), pa.string())
        ok: set[tuple[str, str]] = set()
        error: set[tuple[str, str]] = set()
        if not len(mine) or not f.files("videos"):
            return ok, error
        # Scanned batch by batch into the sets: the table itself is never held whole.
        scan = ds.dataset(
            f.at("videos"), schema=TABLES["videos"], format="parquet", filesystem=f.fs
        ).to_batches(
            columns=["video_id", "fingerprint", "status"], filter=ds.field("run_id").isin(mine)
        )
        for batch in scan:
            ids, prints = batch["video_id"].to_pylist(), batch["fingerprint"].to_pylist()
            for key, status in zip(
                zip(ids, prints, strict=True), batch["status"].to_pylist(), strict=True
            ):
                if status == "ok":
                    ok.add(key)
                elif status == "error":
                    error.add(key)
        return ok, error

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold OUT/.lock for a run: a second run on the same OUT stops at once rather than
        discarding the first one's staging as if it had crashed. An object store has no
        lock to take: there, one run per OUT is the scheduler's to ensure (README)."""
        if self.folder.remote:
            yield
            return
        os.makedirs(self.root, exist_ok=True)
        with open(os.path.join(self.root, ".lock"), "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreLocked(f"another vidgist run is writing to {self.root}") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _is_output(inside: str) -> bool:
    """Is a path inside a run's staging an output: <table>/<x>.parquet or skims/<x>.mp4?"""
    parts = inside.split("/")
    if len(parts) != 2:
        return False
    return (parts[0] in TABLES and parts[1].endswith(".parquet")) or (
        parts[0] in FILE_OUTPUTS and parts[1].endswith(FILE_OUTPUTS[parts[0]])
    )


def _rows(rel: str) -> bool:
    """Does the file hold table rows (Parquet), as opposed to a file output?"""
    return rel.endswith(".parquet")


def _stem(rel: str) -> str:
    return rel.rsplit("/", 1)[1].rsplit(".", 1)[0]


def _hidden(f: Folder, rel: str, suffix: str) -> list[str]:
    """Hidden files (a leading dot) under `rel` ending in `suffix`."""
    selector = pafs.FileSelector(f.at(rel), allow_not_found=True)
    cut = len(f.base) + 1
    return sorted(
        i.path[cut:]
        for i in f.fs.get_file_info(selector)
        if i.base_name.startswith(".") and i.base_name.endswith(suffix)
    )


def _check_file(f: Folder, rel: str, rows: int, size: int, deep: bool) -> tuple[str, str] | None:
    actual = f.size(rel)
    if actual is None:
        return "missing", "listed by its run's journal"
    if actual != size:
        return "damaged", f"{actual} bytes, the journal says {size}"
    if deep and _rows(rel):
        try:
            n = pq.read_table(f.at(rel), filesystem=f.fs).num_rows
        except Exception as exc:
            return "damaged", _short(exc)
        if n != rows:
            return "damaged", f"{n} rows, the journal says {rows}"
    return None


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text if len(text) <= 160 else text[:157] + "..."


def _jsonable(row: dict) -> dict:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}


def _from_jsonable(row: dict) -> dict:
    out = dict(row)
    for k in ("started_at", "finished_at"):
        if isinstance(out.get(k), str):
            out[k] = pd.Timestamp(out[k]).to_pydatetime()
    return out
