"""Shared fixtures: tiny generated clips, bad inputs, one local Ray per test session."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jobs.samples import write_clip
from jobs.samples.render import render_clip
from jobs.samples.world import ClipSpec, ObjectSpec, ShotSpec, SoundSpec

ROOT = Path(__file__).resolve().parent.parent


def tiny_spec(
    name: str = "tiny",
    *,
    width: int = 320,
    height: int = 240,
    fps: int = 24,
    has_audio: bool = True,
    seed: int = 7,
) -> ClipSpec:
    """Three short shots with known content: a silent empty scene, a red circle moving
    right with a high tone, and a blue square standing still with noise."""
    shots = (
        ShotSpec(0.0, 3.0, "solid", ("green", "white"), 1, (), SoundSpec("silence")),
        ShotSpec(
            3.0,
            3.0,
            "solid",
            ("blue", "white"),
            2,
            (ObjectSpec("circle", "red", 0.3, (0.25, 0.5), (0.75, 0.5), "right"),),
            SoundSpec("tone", "high", 0.0, 3.0, -10.0) if has_audio else SoundSpec("silence"),
        ),
        ShotSpec(
            6.0,
            3.0,
            "gradient",
            ("yellow", "black"),
            3,
            (ObjectSpec("square", "blue", 0.3, (0.5, 0.5), (0.5, 0.5), "still"),),
            SoundSpec("noise", None, 0.5, 2.0, -12.0) if has_audio else SoundSpec("silence"),
        ),
    )
    return ClipSpec(name, width, height, fps, False, has_audio, shots, seed, 0)


TITLE = "Chapter 2: The Harbour"
SPOKEN = "Welcome back to the evening news."


def talking_spec(name: str = "talking") -> ClipSpec:
    """A title card (still, silent), then a person-less shot where a voice says one
    sentence, then a shot with a high tone and no words."""
    shots = (
        ShotSpec(0.0, 3.0, "solid", ("blue", "white"), 1, (), SoundSpec("silence"), title=TITLE),
        ShotSpec(
            3.0,
            4.5,
            "gradient",
            ("green", "yellow"),
            2,
            (ObjectSpec("circle", "red", 0.25, (0.3, 0.5), (0.7, 0.5), "right"),),
            SoundSpec("speech", None, 0.3, 4.0, -6.0, text=SPOKEN),
        ),
        ShotSpec(
            7.5, 2.5, "solid", ("purple", "white"), 3, (), SoundSpec("tone", "high", 0.2, 2.0)
        ),
    )
    return ClipSpec(name, 320, 240, 24, False, True, shots, 9, 0)


@pytest.fixture(scope="session")
def clips_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def tiny_clip(clips_dir) -> Path:
    return write_clip(tiny_spec(), clips_dir)


@pytest.fixture(scope="session")
def talking_clip(clips_dir) -> Path:
    """`talking_spec` rendered; skips where espeak-ng is missing (its voice would be silent)."""
    from jobs.samples.render import can_speak

    if not can_speak():
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng): no speech to test")
    return write_clip(talking_spec(), clips_dir)


@pytest.fixture(scope="session")
def silent_clip(clips_dir) -> Path:
    return write_clip(tiny_spec("tiny-noaudio", has_audio=False), clips_dir)


@pytest.fixture(scope="session")
def rotated_clip(clips_dir) -> Path:
    path = clips_dir / "tiny-rotated.mp4"
    render_clip(tiny_spec("tiny-rotated"), path, rotation=90)
    return path


@pytest.fixture(scope="session")
def bad_inputs(clips_dir, tiny_clip) -> dict[str, Path]:
    """An empty file, random bytes and a truncated MP4 (its index cut off)."""
    empty = clips_dir / "empty.mp4"
    empty.write_bytes(b"")
    noise = clips_dir / "random.mp4"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 64_000, dtype=np.uint8).tobytes())
    truncated = clips_dir / "truncated.mp4"
    data = tiny_clip.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    return {"empty": empty, "random": noise, "truncated": truncated}


def truth_of(video: Path) -> dict:
    return json.loads(video.with_suffix("").with_suffix(".gt.json").read_text())


def in_a_fresh_process(code: str) -> str:
    """What `code` prints, run by a new Python: for what a process holds from its start
    (the modules it imported, its threads' floating-point modes), which this one has mixed."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for every integration test: 2 CPUs, a small object store."""
    import ray

    ray.init(
        address="local",  # never a `ray start` cluster another test runs
        num_cpus=2,
        object_store_memory=400 * 2**20,
        include_dashboard=False,
        logging_level="ERROR",
    )
    yield ray
    ray.shutdown()


def local_overrides() -> list[str]:
    return ["ray.progress=false"]


@pytest.fixture(scope="session")
def inputs(tmp_path_factory, tiny_clip, silent_clip, rotated_clip, bad_inputs):
    """Three good clips and three broken files in one folder."""
    folder = tmp_path_factory.mktemp("inputs")
    for p in (tiny_clip, silent_clip, rotated_clip, *bad_inputs.values()):
        shutil.copy(p, folder / p.name)
    return folder


@pytest.fixture(scope="session")
def first_run_log() -> list[str]:
    """What `first_run` logged, line by line."""
    return []


@pytest.fixture(scope="session")
def first_run(ray_session, inputs, tmp_path_factory, first_run_log):
    """One pipeline run over `inputs`, with stage times on (shared by the pipeline and
    report tests; later pipeline tests add runs to its OUT)."""
    from pipeline.config import load_config
    from pipeline.run import run_pipeline

    out = tmp_path_factory.mktemp("out")
    # On Ray: the path of archives and clusters (six videos alone would run in process).
    picks = [*local_overrides(), "run.stage_times=true", "run.executor=ray"]
    cfg = load_config("local.yaml", picks)
    return run_pipeline(cfg, str(inputs), str(out), log=first_run_log.append), out
