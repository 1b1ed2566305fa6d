"""The plans of both passes run in this process, without Ray: for runs of a few videos,
where starting Ray and its workers (each importing torch and loading its models) costs
more than the work (`run.executor`, README "A few clips: in process").

Only the calls the plans make are here: `from_items`, `map`, `map_batches` and
`iter_batches`, with Ray Data's batch semantics (numpy columns, `batch_size` rows per
call, actor classes built once from `fn_constructor_args`). Resource arguments are
accepted and ignored: one process has what it has.

A call marked `isolated` (the decoder, pipeline/adapters.py) runs in a child process
instead, for the reason Ray runs it in a recycled task: a native decoder can hang or
crash on a hostile file, and that must cost the video, never the run. The child
decodes ahead while this process encodes, through a bounded queue (so on two cores the
CNN and the decoder each have one), and a child that dies is started again on the video
it died on, up to `max_retries` times, as Ray retries a task; the watchdog and crash
records it leaves behind then turn that video into an error row exactly as on Ray.
"""

from __future__ import annotations

import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

Batch = dict[str, np.ndarray]

# Windows the decoder child may run ahead of the CNN: enough to hide a slow window,
# few enough that memory stays bounded by the window (a window is ~1-3 MB of pixels).
AHEAD_WINDOWS = 4
POLL_S = 0.2


def from_items(items: list[dict[str, Any]], override_num_blocks: int | None = None) -> Dataset:
    """A dataset of one single-row batch per item (as Ray Data with one block per row)."""
    return Dataset(lambda: (_batch([item]) for item in items))


class Dataset:
    """A lazy chain of calls over batches of numpy columns, run when iterated."""

    def __init__(self, batches: Callable[[], Iterator[Batch]]):
        self._batches = batches

    def map_batches(
        self,
        fn: Any,
        *,
        batch_size: int | None = None,
        fn_constructor_args: tuple = (),
        isolated: bool = False,
        max_retries: int = 0,
        **_resources: Any,
    ) -> Dataset:
        upstream = self._batches

        def run() -> Iterator[Batch]:
            call = _built(fn, fn_constructor_args)
            batches = _rebatch(upstream(), batch_size)
            if isolated:
                yield from _in_child(call, list(batches), max_retries)
                return
            for batch in batches:
                out = call(batch)
                # A generator call (the decoder) yields several batches per input.
                yield from (out if isinstance(out, Iterator) else [out])

        return Dataset(run)

    def map(self, fn: Any, *, fn_constructor_args: tuple = (), **_resources: Any) -> Dataset:
        upstream = self._batches

        def run() -> Iterator[Batch]:
            call = _built(fn, fn_constructor_args)
            for batch in upstream():
                yield _batch([call(row) for row in _rows(batch)])

        return Dataset(run)

    def iter_batches(self, batch_size: int | None = None, batch_format: str = "numpy") -> Iterator:
        if batch_format != "numpy":
            raise ValueError(f"in-process datasets give numpy batches, not {batch_format!r}")
        return _rebatch(self._batches(), batch_size)


def _built(fn: Any, constructor_args: tuple) -> Callable:
    """A class is built once, as Ray Data builds one per actor; a function is itself."""
    return fn(*constructor_args) if isinstance(fn, type) else fn


def _batch(rows: list[dict[str, Any]]) -> Batch:
    """Rows as numpy columns; strings and bytes as object arrays (fixed-width numpy
    strings would drop trailing NUL bytes of a pickled record)."""
    columns: Batch = {}
    for key in rows[0] if rows else []:
        values = [row[key] for row in rows]
        if isinstance(values[0], str | bytes):
            column = np.empty(len(values), dtype=object)
            column[:] = values
        else:
            column = np.asarray(values)
        columns[key] = column
    return columns


def _rows(batch: Batch) -> Iterator[dict[str, Any]]:
    for i in range(_length(batch)):
        yield {k: v[i] for k, v in batch.items()}


def _length(batch: Batch) -> int:
    return len(next(iter(batch.values()))) if batch else 0


def _rebatch(batches: Iterable[Batch], size: int | None) -> Iterator[Batch]:
    """Exactly `size` rows per batch (the last may be short); None: as they come."""
    if size is None:
        yield from batches
        return
    held: list[Batch] = []
    n = 0
    for batch in batches:
        held.append(batch)
        n += _length(batch)
        while n >= size:
            whole = _concat(held)
            yield {k: v[:size] for k, v in whole.items()}
            rest = {k: v[size:] for k, v in whole.items()}
            n -= size
            held = [rest] if n else []
    if n:
        yield _concat(held)


def _concat(batches: list[Batch]) -> Batch:
    if len(batches) == 1:
        return batches[0]
    return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


def _in_child(call: Any, batches: list[Batch], max_retries: int) -> Iterator[Batch]:
    """`call`'s outputs over `batches`, made in a child process (see the module's doc)."""
    deaths: Counter[int] = Counter()
    i = 0
    while i < len(batches):
        child = _Child(call, batches, i)
        try:
            for kind, index, result in child.messages():
                if kind == "out":
                    yield result
                else:  # "done" with one input, or the "end" of all
                    i = index + 1 if kind == "done" else index
        finally:
            child.close()  # ends it too when the consumer stopped early (an error, a signal)
        if i < len(batches) and child.exitcode != 0:
            deaths[i] += 1
            if deaths[i] > max_retries:
                i += 1  # given up, as Ray gives up on a task: the driver reports the video


class _Child:
    """`python -m pipeline.in_process`: a fresh interpreter (not a fork of this one, which
    holds torch's and the OCR runtime's threads; not multiprocessing's spawn, which
    imports the caller's main module again) that runs the call over `batches[start:]`
    and sends back pickled messages on a pipe of its own (its stdout stays the user's).
    A reader thread keeps at most AHEAD_WINDOWS of them waiting."""

    def __init__(self, call: Any, batches: list[Batch], start: int):
        read_fd, write_fd = os.pipe()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pipeline.in_process", str(write_fd)],
            stdin=subprocess.PIPE,
            pass_fds=(write_fd,),
            env=env,
        )
        os.close(write_fd)
        self.inbox: queue.Queue = queue.Queue(maxsize=AHEAD_WINDOWS)
        self.stop = threading.Event()
        self.reader = threading.Thread(target=self._read, args=(read_fd,), daemon=True)
        self.reader.start()
        assert self.process.stdin is not None
        try:
            pickle.dump((call, batches, start), self.process.stdin, protocol=5)
            self.process.stdin.close()
        except BrokenPipeError:  # it died at once; messages() sees it end
            pass

    def _read(self, fd: int) -> None:
        with os.fdopen(fd, "rb") as pipe:
            while not self.stop.is_set():
                try:
                    message = pickle.load(pipe)
                except (EOFError, pickle.UnpicklingError):  # ended, or died mid-message
                    message = None
                while not self.stop.is_set():
                    try:
                        self.inbox.put(message, timeout=POLL_S)
                        break
                    except queue.Full:
                        continue
                if message is None:
                    return

    def messages(self) -> Iterator[tuple[str, int, Any]]:
        while (message := self.inbox.get()) is not None:
            yield message

    def close(self) -> None:
        self.stop.set()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.reader.join()

    @property
    def exitcode(self) -> int | None:
        return self.process.returncode


def _child_main(fd: int) -> None:
    """The child's side: the call over its batches, each output and each input's end sent
    as they are made."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent ends it; no second traceback
    call, batches, start = pickle.load(sys.stdin.buffer)
    with os.fdopen(fd, "wb") as out:

        def send(message: tuple[str, int, Any]) -> None:
            pickle.dump(message, out, protocol=5)
            out.flush()

        for i in range(start, len(batches)):
            for result in call(batches[i]):
                send(("out", i, result))
            send(("done", i, None))
        send(("end", len(batches), None))


if __name__ == "__main__":
    _child_main(int(sys.argv[1]))
