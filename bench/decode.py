"""vidgist's decode stage vs the ffmpeg CLI doing the same work, on the sample clips.

Same work: every frame decoded, sampled at 2 fps, scaled to 224x224 RGB, and the audio
resampled to 16 kHz mono float32. Both use FFmpeg's decoders with their default
threading; the ratio is wall time per clip, summed over the clips, in one run.
`--shot-frames` has vidgist also keep every decoded frame at 48x27, as a run with the
content shot detector does (the ffmpeg side does not: that is vidgist's extra work).

    python -m bench.decode [--samples samples] [--shot-frames]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from bench.common import ROOT, ensure_samples, save, timed
from bench.reference import audio_mono, sampled_frames
from pipeline.sources import make_sources
from stages.decode import Decoder, probe
from stages.settings import DecodeConfig


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", default=str(ROOT / "samples"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--shot-frames", action="store_true")
    args = ap.parse_args(argv)
    videos = ensure_samples(Path(args.samples))
    cfg = DecodeConfig()
    dec = Decoder(cfg, replace(cfg.shared(), shot_frames=args.shot_frames))
    rows, ours_total, ref_total, seconds = [], 0.0, 0.0, 0.0
    for v, source in zip(videos, make_sources([str(v) for v in videos]), strict=True):
        meta = probe(str(v))

        def ours(ref=source):
            return sum(int(w.n_frames[0]) for w in dec.windows(ref))

        def ref(v=v, has_audio=meta.has_audio):
            n = len(sampled_frames(str(v), cfg.fps, cfg.frame_size))
            if has_audio:
                audio_mono(str(v), cfg.sample_rate)
            return n

        t_ours, n_ours = timed(ours, args.repeat)
        t_ref, n_ref = timed(ref, args.repeat)
        rows.append(
            {
                "clip": v.name,
                "seconds": meta.duration_s,
                "size": f"{meta.width}x{meta.height}",
                "ours_s": t_ours,
                "ffmpeg_s": t_ref,
                "frames_ours": n_ours,
                "frames_ffmpeg": n_ref,
            }
        )
        ours_total += t_ours
        ref_total += t_ref
        seconds += meta.duration_s
    result = {
        "clips": rows,
        "video_seconds": seconds,
        "ours_wall_s": ours_total,
        "ffmpeg_wall_s": ref_total,
        "ours_video_s_per_s": seconds / ours_total,
        "ffmpeg_video_s_per_s": seconds / ref_total,
        "speed_vs_ffmpeg": ref_total / ours_total,
        "shot_frames": args.shot_frames,
    }
    for r in rows:
        print(
            f"{r['clip']:<16} {r['size']:>9} {r['seconds']:6.1f}s  vidgist {r['ours_s']:.2f}s  "
            f"ffmpeg {r['ffmpeg_s']:.2f}s  frames {r['frames_ours']}/{r['frames_ffmpeg']}"
        )
    ours_rate, ref_rate = seconds / ours_total, seconds / ref_total
    print(f"decode: vidgist {ours_rate:.0f} video-s/s, ffmpeg CLI {ref_rate:.0f} video-s/s")
    print(f"vidgist decodes at {ref_total / ours_total:.2f}x the ffmpeg CLI's speed")
    save("decode-shot-frames" if args.shot_frames else "decode", result)
    return result


if __name__ == "__main__":
    main()
