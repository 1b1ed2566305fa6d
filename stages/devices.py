"""Where a model stage runs, and the CUDA habits that make it fast there.

On CUDA: inference_mode, bf16 autocast, channels_last, pinned host memory. On CPU the
model stays fp32 (bf16 on CPU is slower than fp32 on most hosts and changes results).
"""

from __future__ import annotations

import contextlib
import os
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
