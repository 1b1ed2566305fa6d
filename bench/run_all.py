"""`make bench`: every benchmark in one go; figures land in bench/results/*.json."""

from __future__ import annotations

from bench import decode, encoders, long_video, pipeline, recognition, shots


def main() -> None:
    print("== decode vs ffmpeg ==")
    decode.main([])
    print("\n== model stages vs bare models ==")
    encoders.main([])
    print("\n== whole pipeline ==")
    pipeline.main([])
    print("\n== one 10-minute video ==")
    long_video.main([])
    print("\n== shot detection vs the true cuts and PySceneDetect ==")
    shots.main(["--pipeline", "2"])
    print("\n== speech, on-screen text and tags vs known truth, and their cost ==")
    recognition.main(["--pipeline", "1"])


if __name__ == "__main__":
    main()
