"""Where a model stage runs, and the CUDA habits that make it fast there.

On CUDA: inference_mode, bf16 autocast, channels_last, pinned host memory. On CPU the
model stays fp32 (bf16 on CPU is slower than fp32 on most hosts and changes results).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported where a model runs: OCR and speech workers need none
    import torch


def pick_device(name: str) -> torch.device:
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} asked for, but torch sees no CUDA device")
    return device


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    import torch

    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """Host array to device tensor; through pinned memory on CUDA so the copy is async."""
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor


def worker_threads(configured: int) -> int:
    """Threads for a native runtime: the config's, else what Ray gave the worker."""
    if configured > 0:
        return configured
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "0")))
    except ValueError:
        return 1


def wait_policy(cnn_threads: int) -> None:
    """Have OpenMP's threads sleep at their barriers, not spin, when the CNN's threads
    fill every core: then the decoder beside it (a child process in process, tasks on a
    local Ray) preempts threads that spin while they wait for it. On 2 cores, 24 clips
    in process, three runs each way (with the audio encoder on one thread):
    the CNN's CPU seconds 46-58 -> 32-40 and pass 1 35.5-42.0 s -> 30.7-36.1 s. With
    cores to spare the spinning costs no one and sleeping costs the CNN its wake-ups
    (alone on 2 idle cores: 15.0-18.1 s -> 26.6-27.6 s for the same frames), so it is
    left alone there. OpenMP reads the setting once, when torch loads: call this before.
    A value the user set is kept."""
    if 0 < (os.cpu_count() or 1) <= cnn_threads:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op threads set to `n` for the block (0: left as they are)."""
    import torch

    before = torch.get_num_threads()
    if n <= 0 or n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
