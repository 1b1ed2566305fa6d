"""Which videos a run sees: listing inputs, stable ids, fingerprints, what is already done.

`video_id` is a hash of the canonical URI (an absolute file path), so the same file keeps
its id across runs and machines that mount it at the same place. The fingerprint (size
and mtime, plus a content hash when asked) tells a changed file from an unchanged one.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from stages.records import VideoRef

VIDEO_EXTENSIONS = {
    ".mp4",
    ".m4v",
    ".mov",
    ".mkv",
    ".webm",
    ".avi",
    ".mpg",
    ".mpeg",
    ".ts",
    ".flv",
    ".wmv",
}
MANIFEST_EXTENSIONS = {".txt", ".csv", ".parquet", ".jsonl"}


@functools.lru_cache(maxsize=1 << 16)
def _real_folder(folder: str) -> str:
    return os.path.realpath(folder)


def canonical_uri(uri: str) -> str:
    """The absolute path with every symlink resolved (what Path.resolve gives), computed
    with one lstat per file: folders are resolved once and remembered, which makes a
    million inputs cost seconds, not minutes."""
    if "://" in uri and not uri.startswith("file://"):
        return uri
    path = uri[len("file://") :] if uri.startswith("file://") else uri
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.islink(path):
        return os.path.realpath(path)
    folder, name = os.path.split(path)
    return os.path.join(_real_folder(folder), name)


def video_id_of(uri: str) -> str:
    return hashlib.sha256(canonical_uri(uri).encode()).hexdigest()[:16]


def fingerprint_of(uri: str, content_hash: bool = False) -> str:
    """size-mtime_ns (and sha256 of the bytes when asked); empty for remote URIs."""
    if "://" in uri:
        return ""
    try:
        st = os.stat(uri)
    except OSError:
        return "missing"
    fp = f"{st.st_size}-{st.st_mtime_ns}"
    if content_hash:
        h = hashlib.sha256()
        with open(uri, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        fp += f"-{h.hexdigest()[:16]}"
    return fp


def _read_manifest(path: Path) -> list[str]:
    if path.suffix == ".txt":
        lines = [x.strip() for x in path.read_text().splitlines()]
        return [x for x in lines if x and not x.startswith("#")]
    if path.suffix == ".jsonl":
        rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        return [r["uri"] for r in rows]
    frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    if "uri" not in frame.columns:
        raise ValueError(f"manifest {path} has no 'uri' column")
    return frame["uri"].astype(str).tolist()


def list_inputs(spec: str) -> list[str]:
    """Canonical URIs from a file, a directory (recursive), a glob or a manifest."""
    path = Path(spec).expanduser()
    if path.is_dir():
        # Paths under a resolved folder are canonical already (symlinks resolved below).
        return sorted(set(_video_files(os.path.realpath(path))))
    elif path.is_file() and path.suffix.lower() in MANIFEST_EXTENSIONS:
        base = path.parent
        uris = [
            u if ("://" in u or os.path.isabs(u)) else str(base / u) for u in _read_manifest(path)
        ]
    elif path.is_file():
        uris = [str(path)]
    elif any(ch in spec for ch in "*?["):
        uris = sorted(
            p for p in glob.glob(os.path.expanduser(spec), recursive=True) if os.path.isfile(p)
        )
    else:
        raise FileNotFoundError(f"input not found: {spec}")
    seen: dict[str, None] = {}
    for u in uris:
        seen.setdefault(canonical_uri(u), None)
    return list(seen)


def _video_files(folder: str) -> Iterator[str]:
    """Video files under `folder`, recursively (symlinked folders are not followed)."""
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                yield from _video_files(entry.path)
            elif os.path.splitext(entry.name)[1].lower() in VIDEO_EXTENSIONS and entry.is_file():
                yield os.path.realpath(entry.path) if entry.is_symlink() else entry.path


def make_sources(uris: list[str], content_hash: bool = False) -> list[VideoRef]:
    return [VideoRef(video_id_of(u), u, fingerprint_of(u, content_hash)) for u in uris]


def split_done(
    sources: list[VideoRef], done: set[tuple[str, str]]
) -> tuple[list[VideoRef], list[VideoRef]]:
    """(to do, skipped): a source is skipped when (video_id, fingerprint) is already done."""
    todo, skipped = [], []
    for s in sources:
        (skipped if (s.video_id, s.fingerprint) in done else todo).append(s)
    return todo, skipped
