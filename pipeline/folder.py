"""An output folder on local disk or in an object store: the few file operations the
store needs, with paths relative to the folder.

The two differ in what is atomic. Locally a file is written under a hidden temporary
name and renamed, and a move is a rename. In an object store an object appears whole
when its upload completes (so it is written in place), but a move is a copy and a
delete: the store's commit protocol therefore never relies on a move being atomic, only
on the `runs` record being written last.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from stages.files import filesystem, in_object_store, is_remote


class Folder:
    def __init__(self, root: str | Path):
        root = str(root)
        self.remote = in_object_store(root)
        if self.remote:
            self.uri = root.rstrip("/")
        elif is_remote(root):
            raise ValueError(
                f"output {root}: only local folders and object stores can hold outputs"
            )
        else:
            self.uri = str(Path(root).expanduser().resolve())
        self.fs, self.base = filesystem(self.uri)

    def __str__(self) -> str:
        return self.uri

    def at(self, rel: str) -> str:
        """The path within the file system (what pyarrow calls take with `filesystem=`)."""
        return f"{self.base}/{rel}" if rel else self.base

    def full(self, rel: str) -> str:
        """The path or URI a person (or another process) uses for `rel`."""
        return f"{self.uri}/{rel}" if rel else self.uri

    def rel(self, full: str) -> str:
        """`full` (a path or URI under this folder) relative to it."""
        prefix = self.uri + "/"
        if not full.startswith(prefix):
            raise ValueError(f"{full} is not under {self.uri}")
        return full[len(prefix) :]

    def kind(self, rel: str = "") -> pafs.FileType:
        return self.fs.get_file_info(self.at(rel)).type

    def is_folder(self) -> bool:
        return self.kind() == pafs.FileType.Directory

    def exists(self, rel: str) -> bool:
        return self.kind(rel) != pafs.FileType.NotFound

    def size(self, rel: str) -> int | None:
        info = self.fs.get_file_info(self.at(rel))
        return None if info.type == pafs.FileType.NotFound else info.size

    def files(self, rel: str, suffix: str = ".parquet", recursive: bool = False) -> list[str]:
        """Files under `rel` ending in `suffix` (relative paths, sorted); hidden
        temporaries (a leading dot) are not listed."""
        selector = pafs.FileSelector(self.at(rel), allow_not_found=True, recursive=recursive)
        try:
            infos = self.fs.get_file_info(selector)
        except (FileNotFoundError, NotADirectoryError):
            return []
        cut = len(self.base) + 1
        return sorted(
            i.path[cut:]
            for i in infos
            if i.type == pafs.FileType.File
            and i.path.endswith(suffix)
            and not i.base_name.startswith(".")
        )

    def folders(self, rel: str) -> list[str]:
        selector = pafs.FileSelector(self.at(rel), allow_not_found=True)
        cut = len(self.base) + 1
        infos = self.fs.get_file_info(selector)
        return sorted(i.path[cut:] for i in infos if i.type == pafs.FileType.Directory)

    def read_text(self, rel: str) -> str:
        with self.fs.open_input_stream(self.at(rel)) as f:
            return f.read().decode()

    def read_bytes(self, rel: str) -> bytes:
        with self.fs.open_input_stream(self.at(rel)) as f:
            return f.read()

    def write_text(self, rel: str, text: str) -> None:
        self.write_bytes(rel, text.encode())

    def write_bytes(self, rel: str, data: bytes) -> None:
        self._write(rel, lambda dest: self._put(dest, data))

    def write_parquet(self, rel: str, table: pa.Table) -> None:
        """No reader ever sees half a file."""
        self._write(
            rel, lambda dest: pq.write_table(table, dest, filesystem=self.fs, compression="zstd")
        )

    def _put(self, dest: str, data: bytes) -> None:
        with self.fs.open_output_stream(dest) as f:
            f.write(data)

    def _write(self, rel: str, write) -> None:
        path = self.at(rel)
        if self.remote:
            write(path)  # an object appears whole when its upload completes
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        parent, name = os.path.split(path)
        tmp = os.path.join(parent, f".{name}.part")
        write(tmp)
        os.replace(tmp, path)

    def move(self, src: str, dst: str) -> None:
        """A rename locally; a copy and a delete in an object store."""
        if not self.remote:
            os.makedirs(os.path.dirname(self.at(dst)), exist_ok=True)
            os.replace(self.at(src), self.at(dst))
        else:
            self.fs.move(self.at(src), self.at(dst))

    def delete(self, rel: str) -> None:
        if self.exists(rel):
            self.fs.delete_file(self.at(rel))

    def delete_tree(self, rel: str) -> None:
        if self.exists(rel):
            self.fs.delete_dir(self.at(rel))

    def remove_if_empty(self, rel: str) -> None:
        """A local folder left empty (object stores have no empty folders to keep)."""
        if not self.remote:
            with contextlib.suppress(OSError):
                os.rmdir(self.at(rel))
