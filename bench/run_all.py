"""`make bench`: every benchmark in one go; figures land in bench/results/*.json."""

from __future__ import annotations

from bench import decode, encoders, pipeline


def main() -> None:
    print("== decode vs ffmpeg ==")
    decode.main([])
    print("\n== model stages vs bare models ==")
    encoders.main([])
    print("\n== whole pipeline ==")
    pipeline.main([])


if __name__ == "__main__":
    main()
