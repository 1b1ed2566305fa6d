"""The run configuration: one OmegaConf structured config built from the stages' own
sections plus the pipeline's resources, merged from a YAML profile and key=value
overrides. Unknown keys and wrongly typed values are rejected when they are merged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from stages.audio import AudioConfig
from stages.decode import DecodeConfig
from stages.fusion import FusionConfig
from stages.keyframes import KeyframeConfig
from stages.measure import MeasureConfig
from stages.select import SelectConfig
from stages.text import TextConfig
from stages.visual import VisualConfig

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


@dataclass
class TaskResources:
    num_cpus: float = 1.0
    max_calls: int = 0  # recycle the worker process after this many tasks (0: never)
    # Ray Data retries a task whose worker died forever by default; a file that crashes
    # its decoder would then hang the run. After this many retries the block is dropped
    # and its videos are reported as errors.
    max_retries: int = 1

    def remote_args(self) -> dict:
        return {
            "num_cpus": self.num_cpus,
            "max_calls": self.max_calls or None,
            "max_retries": self.max_retries,
        }


@dataclass
class PoolResources:
    min_size: int = 1
    max_size: int = 1
    batch_size: int = 1  # rows (windows in pass 1, videos in pass 2) per call
    num_cpus: float = 1.0
    num_gpus: float = 0.0


@dataclass
class Resources:
    # Decoding runs in short-lived tasks: native decoders can leak, hang or crash on
    # hostile files, and a recycled worker takes that with it.
    decode: TaskResources = field(default_factory=lambda: TaskResources(num_cpus=1.0, max_calls=8))
    visual: PoolResources = field(default_factory=lambda: PoolResources(batch_size=2))
    audio: PoolResources = field(default_factory=lambda: PoolResources(batch_size=4, num_cpus=0.5))
    fusion: PoolResources = field(default_factory=lambda: PoolResources(num_cpus=0.5))
    summarize: TaskResources = field(
        default_factory=lambda: TaskResources(num_cpus=1.0, max_calls=32)
    )
    write_batch: int = 64  # videos per output file in pass 2, windows per file in pass 1


@dataclass
class RayConfig:
    address: str | None = None  # None: start a local Ray (or join RAY_ADDRESS when set)
    num_cpus: int | None = None  # local Ray only; None: all cores
    object_store_mb: int | None = None  # local Ray only
    progress: bool = True  # Ray Data's progress bars


@dataclass
class RunConfig:
    force: bool = False  # redo videos that a committed run already holds
    content_hash: bool = False  # add a SHA-256 of the bytes to each fingerprint
    limit: int = 0  # process at most this many new videos (0: all); the rest wait for the next run
    fail_on_error: bool = False  # exit non-zero when any video fails


@dataclass
class VidgistConfig:
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    visual: VisualConfig = field(default_factory=VisualConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    select: SelectConfig = field(default_factory=SelectConfig)
    keyframes: KeyframeConfig = field(default_factory=KeyframeConfig)
    text: TextConfig = field(default_factory=TextConfig)
    resources: Resources = field(default_factory=Resources)
    ray: RayConfig = field(default_factory=RayConfig)
    run: RunConfig = field(default_factory=RunConfig)


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None
) -> VidgistConfig:
    """Defaults <- YAML profile <- `key=value` overrides, validated against the schema."""
    cfg = OmegaConf.structured(VidgistConfig)
    if path is not None:
        path = Path(path)
        if not path.exists() and (CONF_DIR / path).exists():
            path = CONF_DIR / path
        if not path.exists():
            raise FileNotFoundError(f"config file not found: {path}")
        cfg = OmegaConf.merge(cfg, OmegaConf.load(path))
    if overrides:
        bad = [o for o in overrides if "=" not in o]
        if bad:
            raise ValueError(f"overrides must look like key=value, got: {' '.join(bad)}")
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(overrides))
    return OmegaConf.to_object(cfg)  # type: ignore[return-value]


def to_dict(cfg: VidgistConfig) -> dict[str, Any]:
    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)  # type: ignore[return-value]


def to_yaml(cfg: VidgistConfig | DictConfig) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
