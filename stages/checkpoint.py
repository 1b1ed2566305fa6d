"""Checkpoints: weights plus JSON metadata in one file, loaded with weights_only=True.

The metadata names the architecture and its dimensions, so a stage can refuse a
checkpoint that does not match its config with a message that says which field differs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

FORMAT = "vidgist-checkpoint/1"
BUNDLED_DIR = Path(__file__).parent / "checkpoints"


class CheckpointMismatch(ValueError):
    """The checkpoint was trained for a different architecture or config."""


def save(path: Path, state_dict: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "meta_json": json.dumps(meta, sort_keys=True),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in state_dict.items()},
    }
    tmp = path.with_name(path.name + ".part")
    torch.save(payload, tmp)
    tmp.replace(path)


def load(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointMismatch(f"{path} is not a {FORMAT} file")
    return payload["state_dict"], json.loads(payload["meta_json"])


def check_matches(
    meta: dict[str, Any], expected: dict[str, Any], path: Path, defaults: dict | None = None
) -> None:
    """Raise CheckpointMismatch naming every architecture field that differs; `defaults`
    stand in for fields that checkpoints written before them lack."""
    arch = {**(defaults or {}), **meta.get("architecture", {})}
    diffs = [
        f"{k}: checkpoint {arch.get(k)!r} vs config {v!r}"
        for k, v in expected.items()
        if arch.get(k) != v
    ]
    if diffs:
        raise CheckpointMismatch(f"{path} does not match the config ({'; '.join(diffs)})")


def load_into(
    model: torch.nn.Module,
    spec: str,
    bundled_name: str,
    architecture: dict[str, Any],
    defaults: dict | None = None,
) -> dict[str, Any]:
    """Load checkpoint `spec` ('bundled', 'none' or a path) into `model` after checking that
    it was trained for `architecture`; returns its metadata ({} for a seeded init)."""
    path = resolve(spec, bundled_name)
    if path is None:
        return {}
    state, meta = load(path)
    check_matches(meta, architecture, path, defaults)
    model.load_state_dict(state)
    return meta


def resolve(spec: str, bundled_name: str) -> Path | None:
    """'bundled' -> the checkpoint shipped in stages/checkpoints; 'none' -> None; else a path."""
    if spec == "none":
        return None
    path = BUNDLED_DIR / bundled_name if spec == "bundled" else Path(spec).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    return path


def file_digest(path: Path | None, length: int = 12) -> str:
    if path is None:
        return "untrained"
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:length]
