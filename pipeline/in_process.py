"""The plans of both passes run in this process, without Ray: for runs of up to
`run.in_process_max` videos, where starting Ray and its workers (each importing torch and
loading its models) and Ray's own processes cost more than they give on one machine
(`run.executor`, README "Up to 128 videos: in process").

Only the calls the plans make are here: `from_items`, `map`, `map_batches` and
`iter_batches`, with Ray Data's batch semantics (numpy columns, `batch_size` rows per
call, actor classes built once from `fn_constructor_args`). Resource arguments are
accepted and ignored: one process has what it has.

Calls given `processes` run in child processes instead, as Ray runs a task pool in
worker processes (pipeline/adapters.py says which): the decoder in one, for the reason
Ray runs it in a recycled task: a native decoder can hang or crash on a hostile file, and
that must cost the video, never the run. It decodes ahead while this process encodes,
through a bounded queue (so on two cores the CNN and the decoder each have one), and
holds its next video before it finishes the last. Pass 2's
per-video stages (OCR and speech, mostly) run in one child per core when there are
several videos, each child taking the next video when it has finished one. A child that
dies is replaced and its video given again, up to `max_retries` times, as Ray retries a
task; the watchdog and crash records it leaves then turn that video into an error row as
on Ray. Actor pools (the models of the CNN, the audio encoder, fusion) run here: a pool
of several as that many instances, each on a thread of its own (native code such as
torch's releases the GIL, so they compute at once).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from pipeline import timings

Batch = dict[str, np.ndarray]

# Windows the decoder child may run ahead of the CNN: enough to hide a slow window,
# few enough that memory stays bounded by the window (a window is ~1-3 MB of pixels).
AHEAD_WINDOWS = 4
POLL_S = 0.2


def from_items(items: list[dict[str, Any]], override_num_blocks: int | None = None) -> Dataset:
    """A dataset of one single-row batch per item (as Ray Data with one block per row)."""
    return Dataset(lambda: (_batch([item]) for item in items), len(items))


class Dataset:
    """A lazy chain of calls over batches of numpy columns, run when iterated; `rows`:
    how many rows it holds, where that is known before it runs."""

    def __init__(self, batches: Callable[[], Iterator[Batch]], rows: int | None = None):
        self._batches = batches
        self.rows = rows

    def map_batches(
        self,
        fn: Any,
        *,
        batch_size: int | None = None,
        fn_constructor_args: tuple = (),
        processes: int = 0,
        threads: int = 0,
        max_retries: int = 0,
        **_resources: Any,
    ) -> Dataset:
        """`processes` >= 1: the calls run in that many child processes (the decoder).
        `threads` >= 2, for a class (an actor pool of that size): that many instances,
        each called from a thread of its own; outputs keep their inputs' order."""
        upstream = self._batches

        def run() -> Iterator[Batch]:
            batches = _rebatch(upstream(), batch_size)
            if processes:
                yield from _in_children(fn, batches, processes, max_retries)
                return
            if threads >= 2 and isinstance(fn, type):
                calls = [_built(fn, fn_constructor_args) for _ in range(threads)]
                yield from _in_threads(calls, batches)
                return
            call = _built(fn, fn_constructor_args)
            for batch in batches:
                out = call(batch)
                # A generator call (the decoder) yields several batches per input.
                yield from (out if isinstance(out, Iterator) else [out])

        return Dataset(run)

    def map(
        self,
        fn: Any,
        *,
        fn_constructor_args: tuple = (),
        processes: int = 0,
        max_retries: int = 0,
        **_resources: Any,
    ) -> Dataset:
        """`processes` >= 2 and as many rows: the rows are shared out among that many
        child processes; one row runs here (a worker would only add its start-up)."""
        upstream = self._batches
        workers = min(processes, self.rows or 0)

        def run() -> Iterator[Batch]:
            if workers >= 2:
                rows = (row for batch in upstream() for row in _rows(batch))
                for row in _in_children(fn, rows, workers, max_retries, rows=True):
                    yield _batch([row])
                return
            call = _built(fn, fn_constructor_args)
            for batch in upstream():
                yield _batch([call(row) for row in _rows(batch)])

        return Dataset(run, self.rows)

    def iter_batches(self, batch_size: int | None = None, batch_format: str = "numpy") -> Iterator:
        if batch_format != "numpy":
            raise ValueError(f"in-process datasets give numpy batches, not {batch_format!r}")
        return _rebatch(self._batches(), batch_size)


def _in_threads(calls: list[Callable], batches: Iterator[Batch]) -> Iterator[Batch]:
    """Each batch to whichever of `calls` is free, each call always on the same thread of
    its own; outputs in input order. Up to two batches per call are taken ahead, so
    memory stays bounded and no call waits for the consumer."""
    free: queue.SimpleQueue = queue.SimpleQueue()
    for call in calls:
        free.put(call)
    mine = threading.local()

    def start() -> None:
        mine.call = free.get()

    def run(batch: Batch) -> list[Batch]:
        out = mine.call(batch)
        return list(out) if isinstance(out, Iterator) else [out]  # a generator call's all

    pending: deque[Future] = deque()
    with (
        timings.pool_running(),  # stage times count each call's own thread
        ThreadPoolExecutor(len(calls), "vidgist-pool", initializer=start) as pool,
    ):
        try:
            for batch in batches:
                pending.append(pool.submit(run, batch))
                while len(pending) > 2 * len(calls) or (pending and pending[0].done()):
                    yield from pending.popleft().result()
            while pending:
                yield from pending.popleft().result()
        finally:  # the consumer stopped early, or a call failed: run nothing more
            for future in pending:
                future.cancel()


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


Item = tuple[int, Any]  # (index, a batch or a row)


def _in_children(
    call: Any, items: Iterator[Any], processes: int, max_retries: int, rows: bool = False
) -> Iterator[Any]:
    """`call`'s outputs over `items`, made in up to `processes` child processes (see the
    module's doc). `rows`: `call` takes a row and returns one; else it takes a batch and
    yields outputs.

    A batch child (the decoder) is given its next item before it has finished the last:
    it learns of its end only when this process has taken the outputs queued before it,
    and without an item in hand it would wait that long (measured: 23 s idle in a 43 s
    pass 1 of 24 clips). Row children are given one at a time, so the last videos go
    to whichever child is free.

    A child that dies is replaced: the item it was working on is given again up to
    `max_retries` times, then dropped, as Ray drops a task that keeps failing (the driver
    reports its video); items it held but had not begun are given on as they are."""
    depth = 1 if rows else 2  # items a child holds: the one it works on, and the next
    inbox: queue.Queue = queue.Queue(maxsize=AHEAD_WINDOWS)
    pending = enumerate(items)
    again: list[Item] = []
    deaths: Counter[int] = Counter()
    workers: dict[int, _Worker] = {}
    held: dict[int, list[Item]] = {}  # each worker's items, the one it works on first
    left = True  # `items` may hold more
    tags = itertools.count()

    def spawn() -> int:
        # Started before it is given anything: its imports overlap the work upstream.
        tag = next(tags)
        workers[tag] = _Worker(call, rows, tag, inbox)
        held[tag] = []
        return tag

    def top_up(tag: int) -> None:
        nonlocal left
        while len(held[tag]) < depth and not workers[tag].finished:
            item = again.pop(0) if again else next(pending, None)
            if item is None:
                left = False
                workers[tag].finish()
                return
            held[tag].append(item)
            workers[tag].send(item[1])  # the index stays here, in `held`

    try:
        for tag in [spawn() for _ in range(processes)]:
            top_up(tag)
        while workers:
            tag, message = inbox.get()
            if message is None:  # its pipe ended: done with its last item, or dead
                workers.pop(tag).close()
                unfinished = held.pop(tag)
                if unfinished:
                    died_on, *unbegun = unfinished
                    deaths[died_on[0]] += 1
                    retry = [died_on] if deaths[died_on[0]] <= max_retries else []
                    again[:0] = retry + unbegun
                if again or left:
                    top_up(spawn())
            elif message[0] == "out":
                yield message[1]
            else:  # "done" (with a row's result): the next item, or no more
                held[tag].pop(0)
                if message[1] is not None:
                    yield message[1]
                top_up(tag)
    finally:
        for worker in workers.values():  # the consumer stopped early (an error, a signal)
            worker.close()


# The child's first statement drops the working folder ('') that `-c` puts first on its
# path: its modules must be this process's (PYTHONPATH), not a user's own `pipeline/`
# or `stages/` in the folder vidgist was started from (as `python -m` would have them).
# Its first line names it where `ps` and `top` show command lines.
_CHILD = (
    "# vidgist in-process worker\n"
    "import sys; sys.path[:] = [p for p in sys.path if p]; "
    "from pipeline.in_process import _child_main; _child_main()"
)


class _Worker:
    """A fresh interpreter running `_child_main` (not a fork of this one, which holds
    torch's and the OCR runtime's threads; not multiprocessing's spawn, which imports the
    caller's main module again). It is sent the call, then one item at a time on its
    stdin, and sends pickled messages back on a pipe of its own (its stdout stays the
    user's); a reader thread puts them, tagged, into the shared `inbox`."""

    def __init__(self, call: Any, rows: bool, tag: int, inbox: queue.Queue):
        read_fd, write_fd = os.pipe()
        # Absolute: this process's '' (its working folder) means nothing in the child.
        path = os.pathsep.join(os.path.abspath(p) for p in sys.path)
        env = dict(os.environ, PYTHONPATH=path)
        self.process = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(write_fd)],
            stdin=subprocess.PIPE,
            pass_fds=(write_fd,),
            env=env,
        )
        os.close(write_fd)
        self.tag, self.inbox = tag, inbox
        self.stop = threading.Event()
        self.finished = False  # told there are no more items
        self.reader = threading.Thread(target=self._read, args=(read_fd,), daemon=True)
        self.reader.start()
        self.send((call, rows))

    def send(self, message: Any) -> None:
        """The call and its kind first (the constructor sends them), then one item."""
        assert self.process.stdin is not None
        try:
            pickle.dump(message, self.process.stdin, protocol=5)
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError):  # it died; its reader reports the end
            pass

    def finish(self) -> None:
        """No more items: it exits when its last is done."""
        self.finished = True
        self._close_stdin()

    def _close_stdin(self) -> None:
        """Closing flushes what a send to a child that had died left in the buffer; the
        pipe is closed even when that flush fails, and the death is its reader's to
        report."""
        assert self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError, ValueError):
            self.process.stdin.close()

    def _read(self, fd: int) -> None:
        with os.fdopen(fd, "rb") as pipe:
            while not self.stop.is_set():
                try:
                    message = pickle.load(pipe)
                except (EOFError, pickle.UnpicklingError):  # ended, or died mid-message
                    message = None
                while not self.stop.is_set():
                    try:
                        self.inbox.put((self.tag, message), timeout=POLL_S)
                        break
                    except queue.Full:
                        continue
                if message is None:
                    return

    def close(self) -> None:
        self.stop.set()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._close_stdin()
        self.reader.join()


def _child_main() -> None:
    """The child's side (its one argument: the pipe's descriptor): items from stdin until
    it closes, each output and each item's end sent as they are made."""
    fd = int(sys.argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent ends it; no second traceback
    source = sys.stdin.buffer
    call, rows = pickle.load(source)
    with os.fdopen(fd, "wb") as out:

        def send(message: tuple[Any, ...]) -> None:
            pickle.dump(message, out, protocol=5)
            out.flush()

        while True:
            try:
                item = pickle.load(source)
            except EOFError:
                return
            if rows:  # the row and its end in one message: a death never leaves half
                send(("done", call(item)))
                continue
            for result in call(item):
                send(("out", result))
            send(("done", None))
