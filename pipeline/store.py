"""The output store: per-run staging, an atomic-by-journal commit, and committed reads.

Layout under OUT:

    videos/ segments/ scores/ keyframes/ summaries/ features/   committed Parquet files
    runs/<run_id>.parquet                                        one row per committed run
    _staging/<run_id>/<table>/<file>.parquet                     a run's files until commit

A run writes only under `_staging/<run_id>/`. Commit writes a journal listing the
staged files, moves each into its table folder (same filesystem, so each move is a
rename), and writes the run's `runs` row last. A run killed before the journal leaves
only its staging folder, which the next run deletes; a run killed during the moves is
rolled forward by the next run from its journal. Readers that go through
`read_committed` only ever see rows of runs whose `runs` row exists.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.schemas import RUNS, TABLES

STAGING = "_staging"


class StoreLocked(RuntimeError):
    """Another run holds the output folder."""


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
            [str(p.relative_to(staging)), str(p.relative_to(staging))]
            for p in sorted(staging.glob("*/*.parquet"))
            if kept is None or str(p.resolve()) in kept
        ]
        journal = {"run_id": run_id, "moves": moves, "run_row": _jsonable(run_row)}
        tmp = staging / f".{JOURNAL}.part"
        tmp.write_text(json.dumps(journal))
        os.replace(tmp, staging / JOURNAL)
        self._publish(staging, journal)

    def _publish(self, staging: Path, journal: dict) -> None:
        for src, dst in journal["moves"]:
            s, d = staging / src, self.root / dst
            if s.exists():
                d.parent.mkdir(parents=True, exist_ok=True)
                os.replace(s, d)
        row = journal["run_row"]
        table = pa.Table.from_pylist([_from_jsonable(row)], schema=RUNS)
        write_parquet_atomic(table, self.root / "runs" / f"{journal['run_id']}.parquet")
        shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(OSError):
            staging.parent.rmdir()  # only when no other run is staging

    def recover(self) -> list[str]:
        """Finish or discard runs left behind by a crash; returns what was done, per run."""
        notes = []
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

    def committed_runs(self) -> pd.DataFrame:
        path = self.root / "runs"
        if not path.exists() or not any(path.glob("*.parquet")):
            return pd.DataFrame(columns=RUNS.names)
        return pq.read_table(path, schema=RUNS).to_pandas()

    def read_committed(self, table: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Rows of `table` from committed runs only."""
        schema = TABLES[table]
        path = self.root / table
        runs = set(self.committed_runs()["run_id"])
        if not path.exists() or not runs or not any(path.glob("*.parquet")):
            return schema.empty_table().to_pandas()[columns or schema.names]
        cols = None if columns is None else list(dict.fromkeys([*columns, "run_id"]))
        frame = pq.read_table(path, schema=schema, columns=cols).to_pandas()
        frame = frame[frame["run_id"].isin(runs)]
        return frame[columns] if columns else frame

    def video_status(self, model_version: str, status: str) -> set[tuple[str, str]]:
        """(video_id, fingerprint) pairs that a full committed run with this model version
        recorded with `status` ('ok' or 'error'). Features-only runs do not count."""
        videos = self.read_committed("videos", ["video_id", "fingerprint", "status", "run_id"])
        runs = self.committed_runs()
        full = (runs["model_version"] == model_version) & (runs["status"] == "committed")
        same = set(runs.loc[full, "run_id"])
        rows = videos[(videos["status"] == status) & videos["run_id"].isin(same)]
        return set(zip(rows["video_id"], rows["fingerprint"], strict=True))

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


def _jsonable(row: dict) -> dict:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}


def _from_jsonable(row: dict) -> dict:
    out = dict(row)
    for k in ("started_at", "finished_at"):
        if isinstance(out.get(k), str):
            out[k] = pd.Timestamp(out[k]).to_pydatetime()
    return out
