"""Range, type and cross-field rules for every setting, checked before anything starts.

Types are OmegaConf's job (a string where a number belongs is refused when merged);
this module refuses values of the right type that make no sense: `select.budget=2`
would summarize the whole video, `decode.fps=0` would divide by zero inside Ray. Each
refusal is one line that names the key, the value and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from typing import Any

from pipeline.config import StageResources, VidgistConfig


class SettingError(ValueError):
    """A setting is out of its range or contradicts another."""


Rule = tuple[Callable[[Any], bool], str]


def _at_least(lo: float) -> Rule:
    return (lambda v: v is not None and v >= lo, f"must be >= {lo:g}")


def _above(lo: float) -> Rule:
    return (lambda v: v is not None and v > lo, f"must be > {lo:g}")


def _within(lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> Rule:
    def ok(v: Any) -> bool:
        if v is None:
            return False
        return (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)

    text = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    return (ok, f"must be in {text}")


def _one_of(*names: str) -> Rule:
    return (lambda v: v in names, f"must be one of: {', '.join(names)}")


def _none_or(rule: Rule) -> Rule:
    check, text = rule
    return (lambda v: v is None or check(v), f"{text} (or null)")


FRACTION = _within(0, 1)
COUNT = _at_least(0)
POSITIVE = _above(0)

RULES: dict[str, Rule] = {
    "decode.fps": _within(0, 120, lo_open=True),
    # The measure stage averages sampled frames down to 32x32 thumbnails.
    "decode.frame_size": _within(32, 4096),
    "decode.window": _within(1, 4096),
    "decode.sample_rate": _within(1000, 192000),
    "decode.threads": COUNT,
    "decode.timeout_s": POSITIVE,
    "decode.min_decoded_fraction": _within(0, 1, lo_open=True),
    "measure.min_loudness_db": _within(-200, 0),
    "visual.batch_size": _at_least(1),
    "visual.top_k": _within(1, 1000),
    "visual.threads": COUNT,
    "audio.threads": COUNT,
    "audio.n_mels": _within(1, 512),
    "audio.win_ms": POSITIVE,
    "audio.hop_ms": POSITIVE,
    "audio.rnn": _one_of("gru", "lstm"),
    "audio.hidden": _at_least(1),
    "audio.layers": _at_least(1),
    "fusion.d_model": _at_least(1),
    "fusion.heads": _at_least(1),
    "fusion.layers": _at_least(1),
    "fusion.ff": _at_least(1),
    "fusion.dropout": _within(0, 1, hi_open=True),
    "fusion.max_context": _at_least(2),
    "shots.min_cut_change": COUNT,
    "shots.cut_ratio": POSITIVE,
    "shots.min_gradual_change": COUNT,
    "shots.max_gradual_s": POSITIVE,
    "shots.min_shot_s": COUNT,
    "shots.transnet_threshold": _within(0, 1, lo_open=True, hi_open=True),
    "shots.transnet_batch": _at_least(1),
    "shots.min_segment_s": POSITIVE,
    "shots.max_segment_s": POSITIVE,
    "shots.max_change_points": _at_least(1),
    "shots.max_mean_segment_s": POSITIVE,
    "shots.fallback_segment_s": POSITIVE,
    "shots.max_steps": _at_least(2),
    "select.budget": _within(0, 1, lo_open=True, hi_open=True),
    "select.resolution_s": POSITIVE,
    "keyframes.jpeg_quality": _within(1, 100),
    "keyframes.max_keyframes": COUNT,
    "tags.min_prob": FRACTION,
    "tags.min_fraction": _within(0, 1, lo_open=True),
    "tags.min_frames": _at_least(1),
    "tags.max_tags": COUNT,
    "ocr.still_motion": COUNT,
    "ocr.min_confidence": FRACTION,
    "ocr.min_chars": _at_least(1),
    "ocr.detect_max_side": _within(64, 8192),
    "ocr.min_edge": _within(0, 255),
    "ocr.threads": COUNT,
    "speech.threads": COUNT,
    "speech.beam_size": _within(1, 20),
    "speech.chunk_s": _within(5, 600),
    "speech.max_pause_s": POSITIVE,
    "speech.min_avg_logprob": _within(-20, 0),
    "speech.min_word_prob": FRACTION,
    "speech.max_no_speech_prob": FRACTION,
    "speech.min_distinct_words": FRACTION,
    "speech.timeout_s": POSITIVE,
    "text.max_quotes": COUNT,
    "text.max_titles": COUNT,
    "text.max_caption_chars": _at_least(20),
    "text.colour_min_fraction": FRACTION,
    "text.motion_threshold": COUNT,
    "text.noise_flatness": FRACTION,
    "skims.max_height": _within(16, 4320),
    "skims.crf": _within(0, 51),
    "skims.preset": _one_of(
        "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower"
    ),
    "skims.threads": COUNT,
    "skims.timeout_s": POSITIVE,
    "resources.write_batch": _at_least(1),
    "ray.num_cpus": _none_or(_at_least(1)),
    "ray.object_store_mb": _none_or(_at_least(64)),
    "run.limit": COUNT,
    "run.batch_videos": COUNT,
    "run.batch_minutes": COUNT,
    "run.max_same_error": _within(0, 1, lo_open=True),
    "run.progress_s": COUNT,
    "run.executor": _one_of("auto", "ray", "in_process"),
    "run.in_process_max": COUNT,
}

# Pools a stage may share instead of having its own: the audio encoder may run in the
# CNN's actors (pipeline/encode.py).
SHARED_POOLS = {"audio": ("visual",)}

RESOURCE_RULES: dict[str, Rule] = {
    "pool": _one_of("tasks", "actors"),
    "num_cpus": COUNT,
    "num_gpus": COUNT,
    "min_size": _at_least(1),
    "max_size": _at_least(1),
    "batch_size": _at_least(1),
    "max_calls": COUNT,
    "max_retries": COUNT,
}


def _get(cfg: Any, key: str) -> Any:
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg


def _refuse(key: str, value: Any, why: str) -> None:
    raise SettingError(f"{key}={value!r}: {why}")


def validate(cfg: VidgistConfig) -> None:
    """Raise SettingError (one line) for the first setting that is out of range."""
    for key, (ok, why) in RULES.items():
        value = _get(cfg, key)
        if isinstance(value, float) and not math.isfinite(value):
            _refuse(key, value, "must be a finite number")
        if not ok(value):
            _refuse(key, value, why)
    for f in fields(cfg.resources):
        pool = getattr(cfg.resources, f.name)
        if not (is_dataclass(pool) and isinstance(pool, StageResources)):
            continue
        for name, (ok, why) in RESOURCE_RULES.items():
            if name == "pool" and f.name in SHARED_POOLS:
                ok, why = _one_of("tasks", "actors", *SHARED_POOLS[f.name])
            if not ok(getattr(pool, name)):
                _refuse(f"resources.{f.name}.{name}", getattr(pool, name), why)
        if pool.max_size < pool.min_size:
            _refuse(
                f"resources.{f.name}.max_size",
                pool.max_size,
                f"must be >= resources.{f.name}.min_size ({pool.min_size})",
            )
    # Cross-field rules.
    d = cfg.decode
    if abs(d.sample_rate / d.fps - round(d.sample_rate / d.fps)) > 1e-9:
        _refuse("decode.fps", d.fps, f"decode.sample_rate ({d.sample_rate}) / fps must be whole")
    if cfg.audio.hop_ms > cfg.audio.win_ms:
        _refuse("audio.hop_ms", cfg.audio.hop_ms, f"must be <= audio.win_ms ({cfg.audio.win_ms})")
    if cfg.fusion.d_model % cfg.fusion.heads:
        _refuse(
            "fusion.heads", cfg.fusion.heads, f"must divide fusion.d_model ({cfg.fusion.d_model})"
        )
    s = cfg.shots
    if s.max_segment_s < s.min_segment_s:
        _refuse(
            "shots.max_segment_s",
            s.max_segment_s,
            f"must be >= shots.min_segment_s ({s.min_segment_s})",
        )
