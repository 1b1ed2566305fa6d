"""Entry point for `ray job submit`: the same as `vidgist run`.

    RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 --working-dir . \\
        --runtime-env-json '{"excludes": [".venv", ".git", "samples", "out"]}' \\
        -- python -m jobs.summarize --input /data/archive --output /data/vidgist \\
        --config conf/cluster.yaml

(README.md, "On a Ray cluster", has the whole recipe.)
"""

from __future__ import annotations

import sys

from jobs.cli import main


def run(argv: list[str] | None = None) -> int:
    return main(["run", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(run())
