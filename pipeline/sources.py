"""Which videos a run sees: listing inputs, stable ids, fingerprints, what is already done.

`video_id` is a hash of the canonical URI (an absolute file path, or `s3://bucket/key`),
so the same file keeps its id across runs and machines that mount it at the same place.
The fingerprint (size and mtime, plus a content hash when asked) tells a changed file
from an unchanged one; for an object, mtime is its Last-Modified time, which S3 sets
anew whenever the object is written.
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
import pyarrow.fs as pafs

from stages.files import filesystem, in_object_store, is_remote
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
    if is_remote(uri):
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
    """size-mtime_ns (and sha256 of the bytes when asked); "missing" when it is gone."""
    return fingerprints([uri], content_hash)[0]


def fingerprints(uris: list[str], content_hash: bool = False) -> list[str]:
    """`fingerprint_of` for many URIs: local files by stat, objects by one metadata
    request per file system for the whole list."""
    out = {}
    remote: dict[int, list[tuple[str, str]]] = {}
    by_id: dict[int, pafs.FileSystem] = {}
    for uri in uris:
        if in_object_store(uri):
            fs, path = filesystem(uri)
            by_id[id(fs)] = fs
            remote.setdefault(id(fs), []).append((uri, path))
            continue
        if is_remote(uri):  # a URL FFmpeg reads: nothing tells its versions apart
            out[uri] = ""
            continue
        try:
            st = os.stat(uri)
            out[uri] = f"{st.st_size}-{st.st_mtime_ns}"
        except OSError:
            out[uri] = "missing"
    for key, pairs in remote.items():
        infos = by_id[key].get_file_info([path for _, path in pairs])
        for (uri, _), info in zip(pairs, infos, strict=True):
            found = info.type == pafs.FileType.File
            out[uri] = f"{info.size}-{info.mtime_ns}" if found else "missing"
    if content_hash:
        for uri in uris:
            if out[uri] not in ("missing", ""):
                out[uri] += f"-{_content_hash(uri)}"
    return [out[u] for u in uris]


def _content_hash(uri: str) -> str:
    fs, path = filesystem(uri)
    h = hashlib.sha256()
    with fs.open_input_stream(path) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


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
    """Canonical URIs from a file, a directory (recursive), a glob, a manifest, or an
    object-store prefix (`s3://bucket/prefix`: its video objects, recursively)."""
    if in_object_store(spec):
        return _remote_videos(spec)
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


def _remote_videos(spec: str) -> list[str]:
    fs, path = filesystem(spec)
    scheme = spec.split("://", 1)[0]
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.File:
        return [f"{scheme}://{path}"]
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"input not found: {spec}")
    listed = fs.get_file_info(pafs.FileSelector(path, recursive=True))
    return sorted(
        f"{scheme}://{i.path}"
        for i in listed
        if i.type == pafs.FileType.File and os.path.splitext(i.path)[1].lower() in VIDEO_EXTENSIONS
    )


def make_sources(uris: list[str], content_hash: bool = False) -> list[VideoRef]:
    prints = fingerprints(uris, content_hash)
    return [VideoRef(video_id_of(u), u, fp) for u, fp in zip(uris, prints, strict=True)]


def split_done(
    sources: list[VideoRef], done: set[tuple[str, str]]
) -> tuple[list[VideoRef], list[VideoRef]]:
    """(to do, skipped): a source is skipped when (video_id, fingerprint) is already done."""
    todo, skipped = [], []
    for s in sources:
        (skipped if (s.video_id, s.fingerprint) in done else todo).append(s)
    return todo, skipped
