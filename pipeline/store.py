"""The output store: per-run staging, an atomic-by-journal commit, and committed reads.

Layout under OUT:

    videos/ segments/ ... features/ transcripts/   committed Parquet files
    runs/<run_id>.parquet                            one row per committed run (or batch)
    _journal/<run_id>.json                           what each commit published: files,
                                                     their rows and bytes, the runs row
    _staging/<run_id>/<table>/<file>.parquet         a run's files until commit
    _quarantine/<run_id>/<table>/<file>.parquet      damaged files set aside by repair

A run writes only under `_staging/<run_id>/`. Commit writes a journal listing the
staged files, moves each into its table folder (same filesystem, so each move is a
rename), keeps the journal in `_journal/`, and writes the run's `runs` row last. A run
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
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pipeline.schemas import RUNS, TABLES

STAGING = "_staging"
JOURNALS = "_journal"
QUARANTINE = "_quarantine"
RUN_ID = re.compile(r"^(\d{8}T\d{6}Z-[0-9a-f]{6})")


class StoreLocked(RuntimeError):
    """Another run holds the output folder."""


class OutputUnusable(ValueError):
    """OUT cannot hold a run's outputs (a file, not writable), or is damaged."""


@dataclass(frozen=True)
class Problem:
    kind: str  # damaged | missing | orphaned | unrecorded
    path: Path  # the file (for `unrecorded`: the journal of a run without a runs row)
    run_id: str
    detail: str

    def line(self, root: Path) -> str:
        return f"{self.kind}: {self.path.relative_to(root)} ({self.detail})"


JOURNAL = "_commit.json"


def write_parquet_atomic(table: pa.Table, path: Path) -> None:
    """Write to a hidden temporary name, then rename: no reader ever sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


class Store:
    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()

    def staging(self, run_id: str) -> Path:
        return self.root / STAGING / run_id

    def staged_path(self, run_id: str, table: str, name: str) -> Path:
        if table not in TABLES:
            raise KeyError(f"unknown table {table!r}")
        return self.staging(run_id) / table / f"{name}.parquet"

    def stage(self, run_id: str, table: str, name: str, rows: pa.Table) -> Path:
        path = self.staged_path(run_id, table, name)
        write_parquet_atomic(rows.cast(TABLES[table]), path)
        return path

    def commit(self, run_id: str, run_row: dict, keep: set[str] | None = None) -> None:
        """Publish the run's staged files (only those in `keep`, when given) and its row.

        `keep` lets the driver publish exactly the files its tasks reported as written: a
        task that died half-way may have left a file that belongs to no finished video.
        """
        staging = self.staging(run_id)
        staging.mkdir(parents=True, exist_ok=True)
        kept = None if keep is None else {str(Path(k).resolve()) for k in keep}
        moves = [
            [
                str(p.relative_to(staging)),
                str(p.relative_to(staging)),
                pq.read_metadata(p).num_rows,
                p.stat().st_size,
            ]
            for p in sorted(staging.glob("*/*.parquet"))
            if kept is None or str(p.resolve()) in kept
        ]
        journal = {"run_id": run_id, "moves": moves, "run_row": _jsonable(run_row)}
        tmp = staging / f".{JOURNAL}.part"
        tmp.write_text(json.dumps(journal))
        os.replace(tmp, staging / JOURNAL)
        self._publish(staging, journal)

    def _publish(self, staging: Path, journal: dict) -> None:
        for src, dst, *_ in journal["moves"]:
            s, d = staging / src, self.root / dst
            if s.exists():
                d.parent.mkdir(parents=True, exist_ok=True)
                os.replace(s, d)
        self._write_journal(journal)
        self._write_run_row(journal)
        shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(OSError):
            staging.parent.rmdir()  # only when no other run is staging

    def _write_journal(self, journal: dict) -> None:
        path = self.root / JOURNALS / f"{journal['run_id']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.part")
        tmp.write_text(json.dumps(journal))
        os.replace(tmp, path)

    def _write_run_row(self, journal: dict) -> None:
        table = pa.Table.from_pylist([_from_jsonable(journal["run_row"])], schema=RUNS)
        write_parquet_atomic(table, self.root / "runs" / f"{journal['run_id']}.parquet")

    def discard(self, run_id: str) -> None:
        """Drop a run's staging: nothing of it was published."""
        shutil.rmtree(self.staging(run_id), ignore_errors=True)
        with contextlib.suppress(OSError):
            (self.root / STAGING).rmdir()

    def check_usable(self) -> None:
        """Refuse an OUT that is a file or cannot be written, before anything is created."""
        root = self.root
        if root.exists() and not root.is_dir():
            raise OutputUnusable(f"output {root} is a file, not a folder")
        existing = root
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            raise OutputUnusable(f"output {root}: {existing} is a file, not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise OutputUnusable(f"output {root}: {existing} is not writable")

    def journals(self) -> dict[str, dict]:
        folder = self.root / JOURNALS
        if not folder.exists():
            return {}
        return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}

    def inspect(self, deep: bool = False) -> list[Problem]:
        """What is wrong with the committed outputs: a file missing, damaged (unreadable,
        or not the size/rows its journal recorded), orphaned (in a table folder but
        published by no committed run), or a journal whose run lost its `runs` row.

        `deep` reads every file whole and counts its rows; otherwise sizes are compared
        (cheap on any archive: a truncated or rewritten file changes size).
        """
        problems: list[Problem] = []
        journals = self.journals()
        recorded: dict[str, bool] = {}
        for path in sorted((self.root / "runs").glob("*.parquet")):
            try:
                pq.read_table(path, schema=RUNS) if deep else pq.read_metadata(path)
                recorded[path.stem] = True
            except Exception as exc:
                problems.append(Problem("damaged", path, path.stem, _short(exc)))
        listed: set[Path] = set()
        for run_id, journal in journals.items():
            if not recorded.get(run_id):
                runs_file = self.root / "runs" / f"{run_id}.parquet"
                if not runs_file.exists():
                    where = self.root / JOURNALS / f"{run_id}.json"
                    problems.append(Problem("unrecorded", where, run_id, "its runs row is missing"))
            for _, dst, rows, size in journal["moves"]:
                path = self.root / dst
                listed.add(path)
                problem = _check_file(path, rows, size, deep)
                if problem:
                    problems.append(Problem(problem[0], path, run_id, problem[1]))
        committed = set(recorded) | set(journals)
        for table in TABLES:
            if table == "runs":
                continue
            for path in sorted((self.root / table).glob("*.parquet")):
                if path in listed:
                    continue
                match = RUN_ID.match(path.name)
                run_id = match.group(1) if match else ""
                if run_id not in committed:
                    problems.append(
                        Problem("orphaned", path, run_id, "published by no committed run")
                    )
        return problems

    def repair(self, problems: list[Problem]) -> list[str]:
        """Set damaged files aside in _quarantine (with the files written with them, so
        their videos are redone), restore lost runs rows from the journals, delete
        orphaned files. Returns one line per action."""
        actions: list[str] = []
        journals = self.journals()
        for p in problems:
            if p.kind == "orphaned":
                p.path.unlink(missing_ok=True)
                actions.append(f"deleted orphaned {p.path.relative_to(self.root)}")
            elif p.kind == "unrecorded" or p.path.parent.name == "runs":
                self._write_run_row(journals[p.run_id])
                actions.append(f"restored runs row of {p.run_id} from its journal")
        for run_id in sorted({p.run_id for p in problems if p.kind in ("damaged", "missing")}):
            journal = journals.get(run_id)
            bad = {
                p.path.name
                for p in problems
                if p.run_id == run_id
                and p.kind in ("damaged", "missing")
                and p.path.parent.name != "runs"
            }
            if journal is None or not bad:
                continue
            # Files written together share a name across tables (one writer task, one
            # batch of videos): set the whole group aside, so no video keeps an `ok` row
            # whose results are gone, and the next run redoes those videos.
            kept = []
            for move in journal["moves"]:
                path = self.root / move[1]
                if path.name in bad:
                    if path.exists():
                        target = self.root / QUARANTINE / run_id / move[1]
                        target.parent.mkdir(parents=True, exist_ok=True)
                        os.replace(path, target)
                        actions.append(f"quarantined {move[1]}")
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
                path = self.root / dst
                table = pq.read_table(path)
                pairs = zip(table["video_id"].to_pylist(), table["run_id"].to_pylist(), strict=True)
                mask = pa.array([p in kept for p in pairs], pa.bool_())
                if table.num_rows == 0 or pc.all(mask).as_py():
                    moves.append([src, dst, rows, size])
                    continue
                smaller = table.filter(mask)
                actions.append(f"{dst}: {rows - smaller.num_rows} superseded rows dropped")
                if not smaller.num_rows:
                    swaps.append([str(path), None])
                    continue
                new = path.with_name(f".{path.name}.vacuum")
                pq.write_table(smaller, new, compression="zstd")
                swaps.append([str(path), str(new)])
                moves.append([src, dst, smaller.num_rows, new.stat().st_size])
            if swaps:
                intent = self.root / JOURNALS / f".{run_id}.vacuum.json"
                tmp = intent.with_name(intent.name + ".part")
                tmp.write_text(json.dumps({"swaps": swaps, "journal": {**journal, "moves": moves}}))
                os.replace(tmp, intent)
                self._finish_vacuum(intent)
        return actions

    def _finish_vacuum(self, intent: Path) -> None:
        plan = json.loads(intent.read_text())
        for path, new in plan["swaps"]:
            if new is None:
                Path(path).unlink(missing_ok=True)
            elif Path(new).exists():
                os.replace(new, path)
        self._write_journal(plan["journal"])
        intent.unlink()

    def check_committed(self) -> None:
        """Refuse to run on an OUT whose committed files are not as their journals say."""
        problems = self.inspect(deep=False)
        if problems:
            more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
            raise OutputUnusable(
                f"{problems[0].line(self.root)}{more}; "
                f"run `vidgist check {self.root} --repair` first"
            )

    def recover(self) -> list[str]:
        """Finish or discard runs left behind by a crash; returns what was done, per run."""
        notes = []
        for intent in sorted((self.root / JOURNALS).glob(".*.vacuum.json")):
            self._finish_vacuum(intent)
            notes.append(f"vacuum of {intent.name.split('.')[1]}: finished from its intent")
        base = self.root / STAGING
        if not base.exists():
            return notes
        for staging in sorted(p for p in base.iterdir() if p.is_dir()):
            journal = staging / JOURNAL
            if journal.exists():
                self._publish(staging, json.loads(journal.read_text()))
                notes.append(f"run {staging.name}: commit completed from its journal")
            else:
                shutil.rmtree(staging, ignore_errors=True)
                notes.append(f"run {staging.name}: uncommitted files discarded")
        return notes

    def committed_runs(self, columns: list[str] | None = None) -> pd.DataFrame:
        return self._runs(columns).to_pandas()

    def _runs(self, columns: list[str] | None = None) -> pa.Table:
        path = self.root / "runs"
        if not path.exists() or not any(path.glob("*.parquet")):
            return RUNS.empty_table().select(columns or RUNS.names)
        return pq.read_table(path, schema=RUNS, columns=columns)

    def read_committed(self, table: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Rows of `table` from committed runs only."""
        return self._committed(table, columns).to_pandas()

    def _committed(
        self, table: str, columns: list[str] | None = None, runs: set[str] | None = None
    ) -> pa.Table:
        schema = TABLES[table]
        path = self.root / table
        if runs is None:
            runs = set(self._runs(["run_id"])["run_id"].to_pylist())
        if not path.exists() or not runs or not any(path.glob("*.parquet")):
            return schema.empty_table().select(columns or schema.names)
        cols = None if columns is None else list(dict.fromkeys([*columns, "run_id"]))
        rows = pq.read_table(path, schema=schema, columns=cols)
        rows = rows.filter(pc.is_in(rows["run_id"], pa.array(sorted(runs), pa.string())))
        return rows.select(columns) if columns else rows

    def video_states(self, model_version: str) -> tuple[set, set]:
        """(ok, error): the (video_id, fingerprint) pairs that full committed runs with this
        model version recorded as ok and as error. Features-only runs do not count. One
        columnar read of `videos` and `runs` (an archive's ledger is millions of rows)."""
        runs = self._runs(["run_id", "status", "model_version"])
        full = pc.and_(
            pc.equal(runs["model_version"], model_version), pc.equal(runs["status"], "committed")
        )
        mine = pa.array(sorted(set(runs.filter(full)["run_id"].to_pylist())), pa.string())
        ok: set[tuple[str, str]] = set()
        error: set[tuple[str, str]] = set()
        path = self.root / "videos"
        if not len(mine) or not path.exists():
            return ok, error
        # Scanned batch by batch into the sets: the table itself is never held whole.
        scan = ds.dataset(path, schema=TABLES["videos"], format="parquet").to_batches(
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
        discarding the first one's staging as if it had crashed."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreLocked(f"another vidgist run is writing to {self.root}") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _check_file(path: Path, rows: int, size: int, deep: bool) -> tuple[str, str] | None:
    if not path.exists():
        return "missing", "listed by its run's journal"
    actual = path.stat().st_size
    if actual != size:
        return "damaged", f"{actual} bytes, the journal says {size}"
    if deep:
        try:
            n = pq.read_table(path).num_rows
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
