"""Deterministic sample clips with ground truth: `vidgist samples OUT`.

Each clip is an MP4 (H.264, AAC stereo where it has audio) with a `<name>.gt.json`
sidecar holding SumMe/TVSum-style ground truth. The same seed gives the same frames,
sound and truth (and almost always the same bytes: render.py says when not).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from jobs.samples.render import render_clip
from jobs.samples.truth import ground_truth
from jobs.samples.world import ClipSpec, make_clip_spec

__all__ = ["VERSION", "ClipSpec", "generate_samples", "make_clip_spec", "write_clip"]

# Bumped whenever the same (seed, index) would render other bytes or other ground truth.
VERSION = 3  # 2: spoken sentences (espeak-ng) and title cards; 3: user_scores


def write_clip(spec: ClipSpec, out_dir: Path) -> Path:
    """Render one clip and its sidecar into out_dir; returns the video path."""
    out_dir = Path(out_dir)
    video = out_dir / f"{spec.name}.mp4"
    render_clip(spec, video)
    sidecar = out_dir / f"{spec.name}.gt.json"
    tmp = sidecar.with_name(sidecar.name + ".part")
    tmp.write_text(json.dumps(ground_truth(spec), separators=(",", ":")))
    tmp.replace(sidecar)
    return video


def _extras(spec: ClipSpec) -> str:
    spoken = sum(s.sound.kind == "speech" for s in spec.shots)
    titles = sum(bool(s.title) for s in spec.shots)
    return (f", {spoken} spoken" if spoken else "") + (f", {titles} title" if titles else "")


def generate_samples(
    out_dir: Path,
    count: int = 8,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    long: bool = False,
) -> list[Path]:
    """Render clips 0..count-1 of the set drawn with `seed` into out_dir (`long`: clips of
    1-3 minutes, for held-out evaluation on longer videos than training saw)."""
    paths = []
    for index in range(count):
        spec = make_clip_spec(seed, index, long)
        path = write_clip(spec, Path(out_dir))
        if progress:
            progress(
                f"{path.name}: {spec.width}x{spec.height} "
                f"{'VFR' if spec.vfr else f'{spec.fps} fps'} {spec.duration_s:.1f} s, "
                f"{len(spec.shots)} shots{'' if spec.has_audio else ', no audio'}"
                f"{_extras(spec)}"
            )
        paths.append(path)
    return paths
