"""The `vidgist` command: samples, run, check, vacuum, report, eval, train."""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

RUN_HELP = """Summarize videos: decode, encode, fuse, select, write Parquet under OUTPUT.

Examples:
  vidgist run --input samples/ --output out/
  vidgist run --input 'archive/**/*.mp4' --output out/ --config conf/cluster.yaml
  vidgist run --input manifest.txt --output out/ select.budget=0.1 run.limit=1000
  vidgist run --input s3://bucket/archive --output s3://bucket/vidgist
"""


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--input",
        required=True,
        help="a video, a folder, a glob, a manifest (.txt, or .csv/.jsonl/.parquet with uri), "
        "or an object-store prefix (s3://bucket/prefix)",
    )
    p.add_argument(
        "--output",
        required=True,
        help="output folder or s3://bucket/prefix (Parquet tables and the run ledger)",
    )
    p.add_argument("--config", default="local.yaml", help="YAML profile (default: conf/local.yaml)")
    p.add_argument(
        "--address", help="join this Ray cluster (default: RAY_ADDRESS, else a local Ray)"
    )
    p.add_argument("--fail-on-error", action="store_true", help="exit 1 when any video fails")
    p.add_argument(
        "--force", action="store_true", help="redo videos that a committed run already holds"
    )
    p.add_argument(
        "--report", action="store_true", help="write OUTPUT/report/ (HTML) when the run ends"
    )
    p.add_argument(
        "overrides", nargs="*", metavar="key=value", help="config overrides, e.g. select.budget=0.1"
    )


def cmd_run(args: argparse.Namespace) -> int:
    # Only the config (torch-free) is imported before it is checked: a typo in a key is
    # reported in well under a second, before torch and Ray load.
    from pipeline.config import load_config

    overrides = list(args.overrides)
    if args.address:
        overrides.append(f"ray.address={args.address}")
    if args.force:
        overrides.append("run.force=true")
    if args.fail_on_error:
        overrides.append("run.fail_on_error=true")
    try:
        cfg = load_config(args.config, overrides)
    except Exception as exc:  # a bad profile or override is the user's to fix: say so in a line
        print(f"vidgist: config error: {exc}", file=sys.stderr)
        return 2
    from stages.devices import wait_policy

    wait_policy(cfg.visual.threads)  # before torch loads (below)
    from pipeline.ray_runtime import ClusterLacks
    from pipeline.run import Interrupted, SystemicFault, format_report, run_pipeline
    from pipeline.store import Store, StoreLocked

    try:
        result = run_pipeline(cfg, args.input, args.output)
    except ClusterLacks as exc:
        print(f"vidgist: error: {exc}", file=sys.stderr)
        _shutdown_ray()
        return 2
    except (FileNotFoundError, ValueError, StoreLocked) as exc:
        # Missing inputs or weights, an unknown backbone, a mismatched checkpoint, an OUT
        # that is a file, unwritable or damaged, another run on the same OUT: all are
        # found before any work starts.
        print(f"vidgist: error: {exc}", file=sys.stderr)
        return 2
    except SystemicFault as exc:
        print(f"vidgist: stopped: {exc}", file=sys.stderr)
        _shutdown_ray()
        return 1
    except Interrupted as exc:
        # Committed batches stay; the one in flight was discarded.
        print(f"vidgist: stopped by {exc}: committed batches are kept", file=sys.stderr)
        _shutdown_ray()
        return 128 + exc.signum
    print()
    print(format_report(result))
    print()
    print(describe_outputs(Store(result.out), result.run_ids))
    if getattr(args, "report", False):
        _write_report(result.out, None)
    return 1 if (cfg.run.fail_on_error and result.n_error) else 0


def _write_report(out: str, run_id: str | None) -> str:
    from pipeline.report import build_report

    t0 = time.monotonic()
    report = build_report(out, run_id)
    print(
        f"report: {report.index} ({report.n_videos} videos, {report.n_files} files, "
        f"{report.n_bytes / 2**20:.1f} MB, {time.monotonic() - t0:.1f} s)"
    )
    return report.index


def cmd_report(args: argparse.Namespace) -> int:
    """`vidgist report OUT [--run RUN_ID] [--open]`."""
    from pipeline.store import Store

    if not Store(args.out).folder.is_folder():
        print(f"vidgist: error: {args.out} is not a folder", file=sys.stderr)
        return 2
    try:
        index = _write_report(args.out, args.run)
    except ValueError as exc:
        print(f"vidgist: error: {exc}", file=sys.stderr)
        return 2
    if args.open:
        import webbrowser

        webbrowser.open(Path(index).as_uri() if Path(index).is_absolute() else index)
    return 0


SHOWN_SUMMARIES = 8


def _shutdown_ray() -> None:
    ray = sys.modules.get("ray")  # a run in process never imported it
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def cmd_check(args: argparse.Namespace) -> int:
    """`vidgist check OUT [--repair]`: exit 0 when clean (or repaired), 1 when not."""
    from pipeline.store import Store

    store = Store(args.out)
    if not store.folder.is_folder():
        print(f"vidgist: error: {store.root} is not a folder", file=sys.stderr)
        return 2
    with store.lock():
        notes = store.recover()
        problems = store.inspect(deep=True)
        for line in notes:
            print(line)
        for p in problems:
            print(p.line())
        if not problems:
            print(f"{store.root}: every committed file is as its run recorded it")
            return 0
        if not args.repair:
            print(f"{len(problems)} problems; `vidgist check {store.root} --repair` fixes them")
            return 1
        for line in store.repair(problems):
            print(line)
        left = store.inspect(deep=True)
        print(f"repaired; {len(left)} problems left" if left else "repaired: clean now")
        return 1 if left else 0


def cmd_vacuum(args: argparse.Namespace) -> int:
    """`vidgist vacuum OUT --keep N`: drop rows superseded by later runs."""
    from pipeline.store import Store

    if args.keep < 1:
        print(f"vidgist: error: --keep={args.keep}: must be >= 1", file=sys.stderr)
        return 2
    store = Store(args.out)
    if not store.folder.is_folder():
        print(f"vidgist: error: {store.root} is not a folder", file=sys.stderr)
        return 2
    with store.lock():
        for line in store.recover():
            print(line)
        problems = store.inspect()
        if problems:
            print(
                f"vidgist: error: {problems[0].line()}; run `vidgist check "
                f"{store.root} --repair` first",
                file=sys.stderr,
            )
            return 2
        actions = store.vacuum(args.keep)
    for line in actions:
        print(line)
    print(f"{len(actions)} files rewritten; each video keeps its {args.keep} latest runs")
    return 0


def describe_outputs(store, run_ids: list[str]) -> str:
    """Row counts of every table, then the summaries this run wrote, by file name."""
    from pipeline.schemas import TABLES

    lines = [f"outputs in {store.root} (committed runs only):"]
    for table in TABLES:
        frame = store.read_committed(table, ["run_id"])
        lines.append(f"  {table + '/':<12} {len(frame):>6} row{'' if len(frame) == 1 else 's'}")
    summaries = store.read_committed("summaries", ["video_id", "text", "run_id", "skim_path"])
    n_skims = int(summaries["skim_path"].notna().sum())
    lines.append(f"  {'skims/':<12} {n_skims:>6} summary video{'' if n_skims == 1 else 's'}")
    videos = store.read_committed("videos", ["video_id", "uri", "run_id"])
    mine = summaries[summaries["run_id"].isin(run_ids)].merge(
        videos[videos["run_id"].isin(run_ids)], on=["video_id", "run_id"]
    )
    mine = mine.assign(name=mine["uri"].map(lambda u: Path(u).name)).sort_values("name")
    if len(mine):
        lines.append("summaries of this run:")
        for row in mine.head(SHOWN_SUMMARIES).itertuples():
            lines.append(f"  {row.name}: {row.text}")
        if len(mine) > SHOWN_SUMMARIES:
            lines.append(f"  ... and {len(mine) - SHOWN_SUMMARIES} more")
    lines.append(f"read them with pandas.read_parquet('{store.root}/summaries') or DuckDB")
    return "\n".join(lines)


def cmd_samples(args: argparse.Namespace) -> int:
    from jobs.samples import generate_samples

    t0 = time.monotonic()
    paths = generate_samples(Path(args.out), count=args.count, seed=args.seed, progress=print)
    took = time.monotonic() - t0
    print(f"{len(paths)} clips with .gt.json ground truth in {args.out} ({took:.0f} s)")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from jobs.evaluate import run

    return run(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vidgist", description="Video summarization batch pipeline."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "samples",
        help="render sample clips with ground truth",
        description="Render deterministic sample clips (H.264/AAC MP4) with SumMe/TVSum-style "
        "<name>.gt.json ground truth beside each. The same seed gives the same frames, sound "
        "and truth.",
    )
    p.add_argument("out", help="folder for the clips")
    p.add_argument("--count", type=int, default=8, help="number of clips (default 8)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the set (default 0)")
    p.set_defaults(func=cmd_samples)

    p = sub.add_parser(
        "run",
        help="summarize videos into Parquet",
        description=RUN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_run_args(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "check",
        help="verify committed outputs; --repair sets damaged files aside",
        description="Verify every committed file of OUT against its run's journal (it opens "
        "and has the rows recorded) and find orphaned files. With --repair: damaged files "
        "(and the files written with them) move to OUT/_quarantine/ so the next run redoes "
        "their videos, lost runs rows are restored from the journals, orphaned files are "
        "deleted. Exit 0 when clean (or repaired), 1 when problems remain.",
    )
    p.add_argument("out", help="the output folder of vidgist run")
    p.add_argument("--repair", action="store_true", help="fix what is found")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser(
        "vacuum",
        help="drop rows superseded by later runs",
        description="Rewrite OUT's tables keeping, for each video, the rows of its N latest "
        "committed runs (runs/ keeps every row). Safe to kill: the next vidgist command "
        "finishes it.",
    )
    p.add_argument("out", help="the output folder of vidgist run")
    p.add_argument("--keep", type=int, default=1, help="runs kept per video (default 1)")
    p.set_defaults(func=cmd_vacuum)

    p = sub.add_parser(
        "report",
        help="write an HTML report of committed outputs",
        description="Write OUT/report/: an index of every video (thumbnail, status, error, "
        "summary; sortable, filterable by status) and a page per video (summary, skim, "
        "importance curve with segments and cuts, keyframes, captions, transcript). Static "
        "files: open OUT/report/index.html from disk.",
    )
    p.add_argument("out", help="the output folder of vidgist run")
    p.add_argument("--run", help="only this committed run (default: each video's latest)")
    p.add_argument("--open", action="store_true", help="open the index in a web browser")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "eval",
        help="score summaries with the SumMe/TVSum protocol",
        description="F1 (knapsack over the annotated shots, 15%% of the frames), Kendall tau "
        "and Spearman rho (Otani et al.), the random floor and PoR, per video and on "
        "average, with the definitions of the public reference code (DR-DSN, DSNet).",
    )
    from jobs.evaluate import add_arguments as add_eval_arguments

    add_eval_arguments(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "train",
        help="train the audio encoder and fusion checkpoints on sample clips",
        add_help=False,
    )
    p.set_defaults(func=None)

    args, rest = parser.parse_known_args(argv)
    if args.command == "train":
        from jobs.train import main as train_main

        return train_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    code = args.func(args)
    if argv is None:
        # The process exits next. Its last garbage collections would walk every object
        # that torch and torchvision made at import (~0.8 s of every command, measured);
        # frozen, they are skipped. (Not when called with argv: a test process goes on.)
        gc.freeze()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
