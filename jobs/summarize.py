"""Entry point for `ray job submit`: the same as `vidgist run`.

    ray job submit --working-dir . -- python -m jobs.summarize \\
        --input /data/archive --output /data/vidgist --config conf/cluster.yaml
"""

from __future__ import annotations

import sys

from jobs.cli import main


def run(argv: list[str] | None = None) -> int:
    return main(["run", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(run())
