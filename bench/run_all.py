"""`make bench`: every benchmark in one go; figures land in bench/results/*.json."""

from __future__ import annotations

from bench import (
    cluster,
    decode,
    encoders,
    kill,
    ledger,
    long_video,
    pipeline,
    quality,
    recognition,
    report,
    shots,
)


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
    print("\n== a kill at 90% of a batched run, and what batches cost ==")
    kill.main([])
    print("\n== the ledger with 1,000,000 inputs ==")
    ledger.main([])
    print("\n== skims and the HTML report ==")
    report.main([])
    print("\n== two Ray nodes against one on the same cores ==")
    cluster.main([])
    print("\n== summary quality against baselines (fits four models) ==")
    quality.main([])


if __name__ == "__main__":
    main()
