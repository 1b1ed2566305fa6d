"""Ground truth for a sample clip, in the SumMe/TVSum h5 vocabulary.

`gtscore` says how much happens at each 2 fps pick, in both modalities: a moving object
with a sound matters most, an empty silent shot least. `user_summary` simulates several
annotators who each pick about 15% of the clip from their own noisy view of that score,
the way SumMe/TVSum users did, so F1 against them has the same meaning as on those sets;
`user_scores` is each annotator's view per frame (TVSum's per-user annotations), which
rank correlation after Otani et al. compares with.
"""

from __future__ import annotations

import numpy as np

from jobs.samples.render import can_speak
from jobs.samples.world import ClipSpec, caption, frame_times, shot_index_at
from stages.select import knapsack

PICK_FPS = 2.0
N_ANNOTATORS = 6
SUMMARY_FRACTION = 0.15
CHUNK_S = 2.0  # annotators choose among ~2 s pieces of shots (shorter in short clips)


def _shot_importance(spec: ClipSpec, k: int, t: np.ndarray) -> np.ndarray:
    shot = spec.shots[k]
    visual = min(1.0, sum(0.6 if o.moving else 0.3 for o in shot.objects))
    if shot.title:
        visual = max(visual, 0.5)  # a title card tells the viewer what comes
    audible = shot.sound.active(t - shot.start_s).astype(np.float64)
    if shot.sound.kind == "noise":
        audible *= 0.8
    return 0.05 + 0.35 * visual + 0.3 * audible + 0.3 * visual * audible


def importance(spec: ClipSpec, t: np.ndarray) -> np.ndarray:
    """Ground-truth importance in [0, 1] at times t (seconds)."""
    t = np.asarray(t, dtype=np.float64)
    idx = shot_index_at(spec, t)
    out = np.empty(len(t))
    for k in range(len(spec.shots)):
        sel = idx == k
        if sel.any():
            out[sel] = _shot_importance(spec, k, t[sel])
    # Inside a dissolve the viewer sees both shots: blend their scores as the pixels are.
    for k, shot in enumerate(spec.shots):
        if k == 0 or shot.transition != "dissolve":
            continue
        begin = shot.start_s - shot.dissolve_s / 2
        sel = (t >= begin) & (t < begin + shot.dissolve_s)
        if sel.any():
            alpha = (t[sel] - begin) / shot.dissolve_s
            before = _shot_importance(spec, k - 1, t[sel])
            out[sel] = before * (1 - alpha) + _shot_importance(spec, k, t[sel]) * alpha
    return np.clip(out, 0.0, 1.0)


def ground_truth(spec: ClipSpec) -> dict:
    times = frame_times(spec)
    n_frames = len(times)
    duration = spec.duration_s
    pick_times = np.arange(0.0, duration - 1e-9, 1.0 / PICK_FPS)
    # The pick is the frame on screen at the pick time.
    picks = np.clip(np.searchsorted(times, pick_times + 1e-9, side="right") - 1, 0, n_frames - 1)
    starts = [int(np.searchsorted(times, s.start_s - 1e-9, side="left")) for s in spec.shots]
    ends = [*(s - 1 for s in starts[1:]), n_frames - 1]
    change_points = [[a, b] for a, b in zip(starts, ends, strict=True)]
    frame_score = importance(spec, times)

    rng = np.random.default_rng([spec.seed, spec.index, 7919])
    chunks: list[tuple[int, int]] = []
    # At least two pieces must fit the budget, or a short clip's annotators pick nothing.
    chunk_s = min(CHUNK_S, SUMMARY_FRACTION * duration / 2)
    for a, b in change_points:
        shot_len = (times[b] - times[a]) if b > a else 0.0
        pieces = max(1, int(np.ceil(shot_len / chunk_s)))
        edges = np.linspace(a, b + 1, pieces + 1).round().astype(int)
        chunks.extend(
            (int(edges[i]), int(edges[i + 1])) for i in range(pieces) if edges[i + 1] > edges[i]
        )
    weights = np.array([e - s for s, e in chunks])
    capacity = int(np.floor(SUMMARY_FRACTION * n_frames))
    user_summary, user_scores = [], []
    shot_of_chunk = (
        np.searchsorted([c[0] for c in change_points], [c[0] for c in chunks], side="right") - 1
    )
    for _ in range(N_ANNOTATORS):
        shot_bias = rng.normal(0.0, 0.08, len(change_points))
        values = np.array([frame_score[s:e].mean() for s, e in chunks])
        values = values + shot_bias[shot_of_chunk] + rng.normal(0.0, 0.05, len(chunks))
        # Knapsack values are per-frame means times length: annotators weigh long pieces fairly.
        chosen = knapsack(np.maximum(values, 0.0) * weights, weights, capacity)
        summary = np.zeros(n_frames, dtype=np.int8)
        for (s, e), c in zip(chunks, chosen, strict=True):
            if c:
                summary[s:e] = 1
        user_summary.append(summary.tolist())
        view = np.zeros(n_frames)
        for (s, e), v in zip(chunks, values, strict=True):
            view[s:e] = v
        user_scores.append([round(float(x), 3) for x in view])

    truth = {
        "name": spec.name,
        "seed": spec.seed,
        "n_frames": n_frames,
        "fps": float(spec.fps) if not spec.vfr else round(n_frames / duration, 4),
        "duration_s": round(duration, 4),
        "width": spec.width,
        "height": spec.height,
        "vfr": spec.vfr,
        "has_audio": spec.has_audio,
        "picks": picks.tolist(),
        "pick_times": [round(float(x), 4) for x in pick_times],
        "change_points": change_points,
        "n_frame_per_seg": [b - a + 1 for a, b in change_points],
        "cut_times": [round(s.start_s, 4) for s in spec.shots[1:]],
        "gtscore": [round(float(x), 4) for x in importance(spec, pick_times)],
        "user_summary": user_summary,
        "user_scores": user_scores,
        "shots": [
            {
                "start_s": round(s.start_s, 4),
                "end_s": round(s.end_s, 4),
                "transition": s.transition,
                "background": s.background,
                "colours": list(s.colours),
                "objects": [
                    {
                        "shape": o.shape,
                        "colour": o.colour,
                        "motion": o.motion,
                        "size": round(o.size, 3),
                    }
                    for o in s.objects
                ],
                "sound": {
                    "kind": s.sound.kind,
                    "pitch": s.sound.pitch,
                    "onset_s": round(s.start_s + s.sound.onset_s, 4),
                    "end_s": round(s.start_s + s.sound.onset_s + s.sound.duration_s, 4),
                },
                "caption": caption(s),
                "title": s.title,
                "speech": s.sound.text if s.sound.kind == "speech" else None,
            }
            for s in spec.shots
        ],
        # What is said and shown, for speech recognition and OCR benchmarks. Speech is
        # only in the audio where espeak-ng was there to render it.
        "speech_rendered": spec.has_audio and can_speak(),
        "spoken": [
            {"start_s": round(s.start_s + s.sound.onset_s, 4), "text": s.sound.text}
            for s in spec.shots
            if s.sound.kind == "speech"
        ],
        "titles": [
            {"start_s": round(s.start_s, 4), "end_s": round(s.end_s, 4), "text": s.title}
            for s in spec.shots
            if s.title
        ],
    }
    if spec.vfr:
        truth["frame_times"] = [round(float(x), 4) for x in times]
    return truth
