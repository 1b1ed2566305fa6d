"""The run configuration: one OmegaConf structured config built from the stages' own
sections plus the pipeline's resources, merged from a YAML profile and key=value
overrides. Unknown keys and wrongly typed values are rejected when they are merged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from stages import registry
from stages.settings import (
    AudioConfig,
    DecodeConfig,
    FusionConfig,
    KeyframeConfig,
    MeasureConfig,
    OcrConfig,
    SelectConfig,
    ShotsConfig,
    SkimConfig,
    SpeechConfig,
    TagsConfig,
    TextConfig,
    VisualConfig,
)

# The profiles in conf/ ship inside the package as `vidgist_conf` (see pyproject.toml),
# so a plain `pip install .` finds them from any working folder.
PROFILES = "vidgist_conf"


@dataclass
class StageResources:
    """How the adapter runs a stage (or a group of stages) in Ray Data."""

    # tasks: short-lived, cheap to start, recycled every `max_calls`;
    # actors: a pool that builds the stage (its model) once per actor and keeps it.
    pool: str = "tasks"
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    min_size: int = 1  # actor pool bounds
    max_size: int = 1
    batch_size: int = 1  # windows per call in pass 1 (videos are always one per call)
    max_calls: int = 0  # recycle a task worker after this many tasks (0: never)
    # Ray Data retries a task whose worker died forever by default; a file that crashes
    # its decoder would then hang the run. After this many retries the block is dropped
    # and its videos are reported as errors.
    max_retries: int = 1


@dataclass
class Resources:
    # Decoding runs in short-lived tasks: native decoders can leak, hang or crash on
    # hostile files, and a recycled worker takes that with it.
    decode: StageResources = field(default_factory=lambda: StageResources(max_calls=8))
    visual: StageResources = field(
        default_factory=lambda: StageResources(pool="actors", batch_size=2)
    )
    # pool "visual": the audio encoder runs in the CNN's actors, after the CNN on each
    # batch, and the rest of this section is unused.
    audio: StageResources = field(
        default_factory=lambda: StageResources(pool="actors", batch_size=4, num_cpus=0.5)
    )
    fusion: StageResources = field(
        default_factory=lambda: StageResources(pool="actors", num_cpus=0.5)
    )
    # The shot detector's per-frame scorer: `tasks` runs it inside the decode task (cheap
    # numpy, or a model on CPU); `actors` gives it its own pool (a model on a GPU).
    shots: StageResources = field(default_factory=lambda: StageResources(batch_size=4))
    # shots, select, tags, keyframes, ocr, speech and text: CPU work per video, run in
    # turn in one task (the OCR and speech models load once per worker, 1 s together).
    summarize: StageResources = field(default_factory=lambda: StageResources(max_calls=32))
    write_batch: int = 64  # videos per output file in pass 2, windows per file in pass 1


# The table writers of both passes: light I/O tasks. Their CPU share differs from every
# stage's on purpose: Ray Data fuses consecutive task maps with equal resources, and a
# writer fused into pass 2's per-video task made that task take `write_batch` videos at
# once, so one worker ran a whole batch's OCR and speech in turn (8 videos: 28.8 s of
# pass 2 on one of two cores).
WRITE_CPUS = 0.25


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
    # Commit batches: each goes through both passes and commits on its own, so a killed
    # run loses at most the batch in flight. A batch closes at `batch_videos` videos or
    # `batch_minutes` minutes of video (container durations), whichever comes first;
    # 0 turns a limit off (both 0: one batch).
    batch_videos: int = 64
    batch_minutes: float = 0.0
    # When at least this fraction of a batch (of 4 or more videos) fails with the same
    # error, the fault is the run's (a setting, the output folder, a missing library),
    # not the videos': the run stops with that error instead of committing error rows.
    max_same_error: float = 0.9
    # When stdout is not a terminal: one progress line every this many seconds (0: none),
    # and no Ray Data progress bars.
    progress_s: float = 10.0
    # Log, after each pass, the wall and CPU seconds of every stage (and of building it),
    # summed over the workers of this node (pipeline/timings.py).
    stage_times: bool = False
    # Where the passes run. "ray": Ray Data, on a new local Ray or the cluster that
    # ray.address / RAY_ADDRESS names. "in_process": in this process, task pools (the
    # decoder, pass 2's video stages) in child processes (pipeline/in_process.py): no Ray
    # to start and no worker per pool loading its libraries, which is most of a short run.
    # "auto": in_process when no Ray address is given and the run has at most
    # `in_process_max` videos to do, else ray. On 2 cores in process was faster at every
    # size measured (24 clips: 56.6 s against 77.7 s on Ray; 64: 134.1 against 192.3 s;
    # 128, two commit batches: 269-282 s against 372 s), in 1.1-1.3 GB less, its peak PSS
    # within 8% for 128 as for 64 (README "Up to 128 videos: in process"), hence 128:
    # past it the choice is unmeasured, and a bigger archive goes to Ray, whose pools a
    # bigger machine or a cluster can widen.
    executor: str = "auto"
    in_process_max: int = 128


@dataclass
class VidgistConfig:
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    visual: VisualConfig = field(default_factory=VisualConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    shots: ShotsConfig = field(default_factory=ShotsConfig)
    select: SelectConfig = field(default_factory=SelectConfig)
    keyframes: KeyframeConfig = field(default_factory=KeyframeConfig)
    tags: TagsConfig = field(default_factory=TagsConfig)
    ocr: OcrConfig = field(default_factory=OcrConfig)
    speech: SpeechConfig = field(default_factory=SpeechConfig)
    text: TextConfig = field(default_factory=TextConfig)
    skims: SkimConfig = field(default_factory=SkimConfig)
    resources: Resources = field(default_factory=Resources)
    ray: RayConfig = field(default_factory=RayConfig)
    run: RunConfig = field(default_factory=RunConfig)


def find_profile(path: str | Path) -> Path:
    """A profile by path, or by name among the shipped ones (`local.yaml`, `cluster.yaml`)."""
    path = Path(path)
    if path.exists():
        return path
    shipped = importlib_resources.files(PROFILES) / path.name
    if shipped.is_file():
        return Path(str(shipped))
    names = sorted(
        p.name for p in importlib_resources.files(PROFILES).iterdir() if p.name.endswith(".yaml")
    )
    raise FileNotFoundError(f"config file not found: {path} (shipped profiles: {', '.join(names)})")


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None
) -> VidgistConfig:
    """Defaults <- YAML profile <- `key=value` overrides, validated against the schema and
    the registries (an unknown detector, writer or model name is refused here)."""
    cfg = OmegaConf.structured(VidgistConfig)
    if path is not None:
        cfg = OmegaConf.merge(cfg, OmegaConf.load(find_profile(path)))
    if overrides:
        bad = [o for o in overrides if "=" not in o]
        if bad:
            raise ValueError(f"overrides must look like key=value, got: {' '.join(bad)}")
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(overrides))
    config: VidgistConfig = OmegaConf.to_object(cfg)  # type: ignore[assignment]
    for slot in registry.slots():
        section, key = slot.split(".")
        registry.check(slot, getattr(getattr(config, section), key))
    from pipeline.validate import validate  # it imports this module

    validate(config)
    return config


def to_dict(cfg: VidgistConfig) -> dict[str, Any]:
    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)  # type: ignore[return-value]
