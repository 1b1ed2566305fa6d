"""What a run's outputs depend on, as version strings stored with them."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from pipeline.config import VidgistConfig
from stages import checkpoint as ckpt
from stages import fusion, registry, visual
from stages.ocr import ScreenReader
from stages.speech import SpeechRecognizer


def code_version() -> str:
    try:
        v = version("vidgist")
    except PackageNotFoundError:
        v = "0+unknown"
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{v}+g{sha}" if sha else v


def encoder_version(cfg: VidgistConfig) -> tuple[str, bool]:
    """(version of pass 1's features, is the visual encoder trained?)."""
    v, trained = visual.describe(cfg.visual)
    a, _ = registry.resolve("audio.encoder", cfg.audio.encoder).describe(cfg.audio)
    d = cfg.decode
    return f"{v}|{a}|{d.fps:g}fps-{d.frame_size}px", trained


def features_version(cfg: VidgistConfig) -> str:
    """Version of everything pass 1 writes: the encoders, plus the shot detector's
    per-frame signals when it computes any (the features table is a cache keyed by it)."""
    enc, _ = encoder_version(cfg)
    scorer = registry.pass1_part(registry.resolve("shots.detector", cfg.shots.detector))
    return f"{enc}|shots-{cfg.shots.detector}" if scorer is not None else enc


def check_fusion_matches_encoder(cfg: VidgistConfig) -> None:
    """Refuse a fusion checkpoint trained on other features than this config produces."""
    path = ckpt.resolve(cfg.fusion.checkpoint, fusion.BUNDLED)
    if path is None:
        return
    _, meta = ckpt.load(path)
    fusion.refuse_other_features(meta, encoder_version(cfg)[0], path)


def model_version(cfg: VidgistConfig) -> str:
    """One short id for everything that shapes pass 2's outputs."""
    enc, _ = encoder_version(cfg)
    fus, _ = registry.resolve("fusion.model", cfg.fusion.model).describe(cfg.fusion)
    speech, _ = SpeechRecognizer.describe(cfg.speech)
    ocr, _ = ScreenReader.describe(cfg.ocr)
    # The sections hold the chosen names (shots.detector, text.writer), so they count too.
    parts = {
        "speech": [speech, asdict(cfg.speech)],
        "ocr": [ocr, asdict(cfg.ocr)],
        "tags": asdict(cfg.tags),
        "encoder": enc,
        "fusion": fus,
        "shots": asdict(cfg.shots),
        "select": asdict(cfg.select),
        "keyframes": asdict(cfg.keyframes),
        "text": asdict(cfg.text),
    }
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]
    return f"{fus}-{digest}"
