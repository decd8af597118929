"""The ``move`` command: one subcommand per workflow stage (what the Snakemake rules call).

Errors print one line (``move <command>: error: ...``) and exit 1; ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import errno
import sys
from pathlib import Path

from move.errors import MoveError, disk_full


def cmd_demo_videos(args: argparse.Namespace) -> None:
    from move.demo import DemoSpec, make_demo_dataset

    spec = DemoSpec(
        n_classes=args.classes,
        train_per_class=args.train_per_class,
        val_per_class=args.val_per_class,
        n_frames=args.frames,
        size=args.size,
        fps=args.fps,
        seed=args.seed,
    )
    csv = make_demo_dataset(args.out, spec, progress=not args.quiet)
    print(f"wrote {csv} and {spec.n_classes * (spec.train_per_class + spec.val_per_class)} videos")


def cmd_extract(args: argparse.Namespace) -> None:
    from move.extract import (
        ExtractSettings,
        extract_features,
        list_videos,
        parse_shard,
        select_shard,
    )

    settings = ExtractSettings(
        backbone=args.backbone,
        weights=args.weights,
        frames=args.frames,
        resize=args.resize,
        crop=args.crop,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        device=args.device,
        dtype=args.dtype,
    )
    videos = list_videos(args.annotations, args.videos)
    if args.shard:
        videos = select_shard(videos, *parse_shard(args.shard))
    failures = args.failures or Path(args.out).with_suffix(".failures.csv")
    counts = extract_features(videos, args.out, failures, settings, progress=not args.quiet)
    print(
        f"extracted {counts['extracted']} videos to {args.out}; {counts['failed']} failed (see {failures})"
    )


def cmd_merge_features(args: argparse.Namespace) -> None:
    from move.extract import merge_feature_files

    failures = args.failures or Path(args.out).with_suffix(".failures.csv")
    counts = merge_feature_files(args.parts, args.out, failures)
    print(
        f"merged {len(args.parts)} part(s): {counts['extracted']} videos in {args.out}; "
        f"{counts['failed']} failed (see {failures})"
    )


def _missing_videos(args: argparse.Namespace):
    """Annotations, missing videos and the summary line, stopping when too many are missing."""
    from move.extract import read_annotations
    from move.features import open_feature_file, video_ids
    from move.splits import check_missing_share, find_missing, read_failures

    table = read_annotations(args.annotations)
    with open_feature_file(args.features) as handle:
        have = set(video_ids(handle))
    missing = find_missing(table, have, read_failures(args.failures))
    line = check_missing_share(missing, len(table), args.max_missing_share, args.share_key)
    return table, missing, line


def cmd_missing(args: argparse.Namespace) -> None:
    from move.splits import write_csv_atomic

    _, missing, line = _missing_videos(args)
    write_csv_atomic(missing, args.out)
    print(f"wrote {args.out}: {line}")


def cmd_split(args: argparse.Namespace) -> None:
    from move.splits import (
        build_long_tailed_split,
        lost_per_class,
        read_class_order,
        write_csv_atomic,
    )

    table, missing, line = _missing_videos(args)
    if len(missing):
        print(f"warning: {line}", file=sys.stderr)
    train = table[table.split == "train"][["video_id", "label"]]
    test = table[table.split.isin(["val", "test"])][["video_id", "label"]]
    class_indices = None
    if "class_index" in table.columns:
        pairs = table[["label", "class_index"]].drop_duplicates()
        class_indices = dict(zip(pairs.label, pairs.class_index.astype(int), strict=True))
    order = None
    if args.class_order:
        classes = sorted(set(train.label) | set(test.label))
        index = class_indices or {name: i for i, name in enumerate(classes)}
        order = read_class_order(args.class_order, classes, index)
    split, counts = build_long_tailed_split(
        train,
        test,
        args.ir,
        args.max_per_class,
        args.head_min,
        args.tail_max,
        args.selection,
        args.seed,
        class_indices=class_indices,
        class_order=order,
        missing=set(missing.video_id),
    )
    if counts.lost.sum():
        print(f"warning: {lost_per_class(counts)}", file=sys.stderr)
    write_csv_atomic(counts, args.class_counts)
    write_csv_atomic(split, args.out)
    n_train = int((split.split == "train").sum())
    print(
        f"wrote {args.out}: {n_train} train videos over {len(counts)} classes "
        f"(head {counts['count'].iloc[0]} -> tail {counts['count'].iloc[-1]}), {len(split) - n_train} test"
    )


def cmd_fetch_list(args: argparse.Namespace) -> None:
    from move.kinetics import fetch_list

    digest = fetch_list(args.source, args.out, args.sha256)
    print(f"wrote {args.out} (sha256 {digest})")


def cmd_list_annotations(args: argparse.Namespace) -> None:
    from move.kinetics import list_annotations
    from move.splits import write_csv_atomic

    table = list_annotations(args.train_list, args.val_list, args.kinetics)
    write_csv_atomic(table, args.out)
    n_train = int((table.split == "train").sum())
    print(
        f"wrote {args.out}: {n_train} train + {len(table) - n_train} val videos, "
        f"{table.class_index.nunique()} classes"
    )


def cmd_imbalance_table(args: argparse.Namespace) -> None:
    from move.files import write_text_atomic
    from move.tables import imbalance_table

    text = imbalance_table(args.results)
    out = Path(args.out)
    write_text_atomic(text, out)
    print(f"wrote {out} from {len(args.results)} result file(s)")


def cmd_videolt_convert(args: argparse.Namespace) -> None:
    from move.videolt import convert_videolt

    counts = convert_videolt(
        args.features_dir,
        args.labels,
        args.out,
        args.split_out,
        backbone=args.backbone,
        test_list=args.test_list,
        dtype=args.dtype,
        max_missing_share=args.max_missing_share,
        class_names_file=args.class_names,
        progress=not args.quiet,
    )
    print(
        f"wrote {args.out} ({counts['converted']} videos, {counts['missing']} missing) and {args.split_out}"
    )


def cmd_train(args: argparse.Namespace) -> None:
    from move.training.artefacts import RunInfo
    from move.training.commands import settings_from_options, train_command

    settings = settings_from_options(args.settings, args.seed, args.method)
    run = RunInfo(args.dataset, args.imbalance_ratio)
    paths = (args.features, args.split, args.out, args.checkpoint)
    groups = (args.head_min, args.tail_max)
    print(train_command(*paths, settings, groups, run, progress=not args.quiet))


def cmd_evaluate(args: argparse.Namespace) -> None:
    from move.training.commands import evaluate_command

    print(evaluate_command(args.checkpoint, args.features, args.split, args.out, args.device))


def cmd_table(args: argparse.Namespace) -> None:
    from move.tables import write_methods_table

    results = {}
    for item in args.results:
        variant, sep, path = item.partition("=")
        if not sep:
            raise MoveError(
                f"results argument {item!r} must be VARIANT=PATH (e.g. move=results/x.json)"
            )
        results[variant] = path
    table = write_methods_table(results, args.out_md, args.out_csv, args.title or "")
    print(f"wrote {args.out_md} and {args.out_csv}: {len(table)} methods")


def cmd_plot(args: argparse.Namespace) -> None:
    from move import plots

    needed = ["results"] if args.figure in ("per-class-ap", "map-vs-ir", "curves") else []
    needed = needed or (["benchmarks"] if args.figure == "runtimes" else [])
    needed = needed or ["checkpoint", "features", "split"]
    missing = [f"--{name}" for name in needed if not getattr(args, name)]
    if missing:
        raise MoveError(f"'move plot {args.figure}' needs {', '.join(missing)}")
    if args.figure == "per-class-ap":
        csv = plots.per_class_ap(args.results, args.out)
    elif args.figure == "map-vs-ir":
        csv = plots.map_vs_ir(args.results, args.out)
    elif args.figure == "curves":
        csv = plots.training_curves(args.results, args.out)
    elif args.figure == "runtimes":
        csv = plots.runtimes(args.benchmarks, args.out)
    elif args.figure == "attention":
        from move.inspect import inspected_videos

        source = (args.annotations, args.videos) if args.annotations and args.videos else None
        videos = inspected_videos(
            args.checkpoint, args.features, args.split, args.video, args.count, source
        )
        csv = plots.attention_maps(videos, args.out)
    else:
        from move.inspect import interpolation_confidence, load_model
        from move.splits import read_split

        model, state = load_model(args.checkpoint)
        table = interpolation_confidence(
            model,
            args.features,
            read_split(args.split),
            state.n_classes,
            args.subset,
            args.lam,
            args.seed,
        )
        csv = plots.confidence(table, state.train_counts, args.out)
    print(f"wrote {args.out} and {csv}")


def cmd_check_config(args: argparse.Namespace) -> None:
    from move.config import load_config

    load_config(args.config)
    print(f"{args.config}: valid")


def _method_variants() -> tuple[str, ...]:
    """The method registry's variants (``move train --method`` help)."""
    from move.training.registry import variant_names

    return variant_names()


def add_missing_options(parser: argparse.ArgumentParser) -> None:
    """Options of the missing-videos check shared by 'split' and 'missing'."""
    parser.add_argument(
        "--failures", help="extraction failures CSV: its reasons go into the missing list"
    )
    parser.add_argument(
        "--max-missing-share",
        type=float,
        default=1.0,
        help="stop when more than this share of listed videos has no features (default 1: never)",
    )
    parser.add_argument(
        "--share-key",
        default="--max-missing-share",
        help="name of the setting to quote in the message (the config key)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="move",
        description="Video long-tailed recognition with MOVE: the stages of the workflow.",
        epilog="Run 'move <command> --help' for a command's options. Usually called by Snakemake rules.",
    )
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    def add(name: str, func, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "--debug",
            action="store_true",
            default=argparse.SUPPRESS,
            help="show Python tracebacks on errors",
        )
        sub.add_argument("--quiet", action="store_true", help="no progress bar")
        sub.set_defaults(func=func)
        return sub

    demo = add(
        "demo-videos",
        cmd_demo_videos,
        "Write the synthetic demo dataset: videos/<label>/<id>.mp4 and annotations.csv.",
    )
    demo.add_argument("--out", required=True, help="dataset folder to create (e.g. data/demo)")
    demo.add_argument("--classes", type=int, default=20, help="number of classes (default 20)")
    demo.add_argument(
        "--train-per-class", type=int, default=24, help="train videos per class (default 24)"
    )
    demo.add_argument(
        "--val-per-class", type=int, default=8, help="val (test) videos per class (default 8)"
    )
    demo.add_argument("--frames", type=int, default=16, help="frames per video (default 16)")
    demo.add_argument(
        "--size", type=int, default=64, help="frame width and height in pixels, even (default 64)"
    )
    demo.add_argument("--fps", type=int, default=8, help="frame rate (default 8)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")

    extract = add(
        "extract",
        cmd_extract,
        "Decode T uniformly sampled frames per video and write 2048-d backbone features to HDF5.",
    )
    extract.add_argument(
        "--annotations",
        required=True,
        help="annotations CSV (label,youtube_id,time_start,time_end,split)",
    )
    extract.add_argument("--videos", required=True, help="root folder of the videos")
    extract.add_argument(
        "--out", required=True, help="output HDF5 file (features/<dataset>/<backbone>.h5)"
    )
    extract.add_argument(
        "--failures", help="CSV of videos that failed to decode (default: <out>.failures.csv)"
    )
    extract.add_argument(
        "--backbone",
        default="resnet50",
        help="resnet50, resnet101 or tsm_resnet50 (default resnet50)",
    )
    extract.add_argument(
        "--weights", default="none", help="local checkpoint file, or 'none' for random init"
    )
    extract.add_argument("--frames", type=int, default=8, help="frames T per video (default 8)")
    extract.add_argument(
        "--resize", type=int, default=256, help="shorter side before cropping (default 256)"
    )
    extract.add_argument("--crop", type=int, default=224, help="centre crop size (default 224)")
    extract.add_argument(
        "--batch-size", type=int, default=64, help="frames per forward pass (default 64)"
    )
    extract.add_argument(
        "--num-workers", type=int, default=0, help="decoding worker processes (default 0)"
    )
    extract.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default auto)")
    extract.add_argument(
        "--dtype", default="float16", choices=["float16", "float32"], help="stored dtype"
    )
    extract.add_argument(
        "--shard",
        help="i/n: extract only the deterministic i-th of n parts of the videos (0 <= i < n)",
    )

    merge = add(
        "merge-features",
        cmd_merge_features,
        "Join shard feature files (from extract --shard) into one HDF5 and one failures CSV.",
    )
    merge.add_argument(
        "parts", nargs="+", help="shard HDF5 files (their .failures.csv beside them)"
    )
    merge.add_argument("--out", required=True, help="merged HDF5 file")
    merge.add_argument("--failures", help="merged failures CSV (default: <out>.failures.csv)")

    split = add(
        "split",
        cmd_split,
        "Build the long-tailed train split and balanced test split at one imbalance ratio.",
    )
    split.add_argument(
        "--annotations",
        required=True,
        help="annotations CSV (train rows -> train, val rows -> test)",
    )
    split.add_argument(
        "--features", required=True, help="feature HDF5: videos without features are left out"
    )
    split.add_argument(
        "--ir", type=float, required=True, help="imbalance ratio in (0, 1], e.g. 0.01"
    )
    split.add_argument(
        "--max-per-class",
        type=int,
        default=400,
        help="n_max, videos of the head class (default 400)",
    )
    split.add_argument(
        "--head-min",
        type=int,
        required=True,
        help="head classes have at least this many train videos",
    )
    split.add_argument(
        "--tail-max",
        type=int,
        required=True,
        help="tail classes have at most this many train videos",
    )
    split.add_argument(
        "--selection",
        default="first",
        choices=["first", "random"],
        help="first n_c in list order (authors) or a seeded random n_c",
    )
    split.add_argument("--seed", type=int, default=0, help="seed for --selection random")
    split.add_argument("--out", required=True, help="split CSV to write")
    split.add_argument("--class-counts", required=True, help="per-class counts CSV to write")
    split.add_argument(
        "--class-order",
        help="file with the head -> tail class order (names or original indices, one a line)",
    )
    add_missing_options(split)

    missing = add(
        "missing",
        cmd_missing,
        "List the annotated videos that have no features; stop when too many are missing.",
    )
    missing.add_argument("--annotations", required=True, help="annotations CSV")
    missing.add_argument("--features", required=True, help="feature HDF5 file")
    missing.add_argument("--out", required=True, help="missing-videos CSV to write")
    add_missing_options(missing)

    fetch = add(
        "fetch-list",
        cmd_fetch_list,
        "Copy a list from a URL (http, https, file) or path once; pin its sha256 beside it.",
    )
    fetch.add_argument("source", help="URL or local path of the list")
    fetch.add_argument("--out", required=True, help="where to keep the list")
    fetch.add_argument("--sha256", help="refuse the list unless its sha256 is this")

    annotations = add(
        "list-annotations",
        cmd_list_annotations,
        "Join the authors' train/val lists with Kinetics-400 CSVs into one annotations CSV.",
    )
    annotations.add_argument("--train-list", required=True, help="authors' train list")
    annotations.add_argument("--val-list", required=True, help="authors' val list")
    annotations.add_argument(
        "--kinetics", required=True, nargs="+", help="Kinetics-400 annotation CSV(s)"
    )
    annotations.add_argument("--out", required=True, help="annotations CSV to write")

    table = add(
        "imbalance-table",
        cmd_imbalance_table,
        "Gather results JSONs at several imbalance ratios into a Table-3-style markdown table.",
    )
    table.add_argument("results", nargs="+", help="results/<dataset>_ir<IR>.json files")
    table.add_argument("--out", required=True, help="markdown file to write")

    videolt = add(
        "videolt-convert",
        cmd_videolt_convert,
        "Convert VideoLT's released per-video .npy features and label lists to HDF5 + a split.",
    )
    videolt.add_argument(
        "--features-dir", required=True, help="folder of <video_id>.npy files (one backbone)"
    )
    videolt.add_argument(
        "--labels", required=True, help="folder with train.lst, test.lst, count-labels-train.lst"
    )
    videolt.add_argument("--backbone", required=True, help="name stored in the file (resnet50 ...)")
    videolt.add_argument("--out", required=True, help="HDF5 file (features/videolt/<backbone>.h5)")
    videolt.add_argument("--split-out", required=True, help="split CSV to write")
    videolt.add_argument(
        "--test-list", default="test", help="list evaluated on: test or validate (default test)"
    )
    videolt.add_argument("--class-names", help="optional file: one class name a line, by index")
    videolt.add_argument(
        "--dtype", default="float16", choices=["float16", "float32"], help="stored dtype"
    )
    videolt.add_argument(
        "--max-missing-share",
        type=float,
        default=0.05,
        help="stop when more than this share of listed videos has no feature file",
    )

    train = add(
        "train",
        cmd_train,
        "Train MOVE (or a baseline) on features + split; write results JSON and checkpoint.",
    )
    train.add_argument("--features", required=True, help="feature HDF5 file")
    train.add_argument("--split", required=True, help="split CSV from 'move split'")
    train.add_argument(
        "--out", required=True, help="results JSON (a per-class CSV is written beside it)"
    )
    train.add_argument("--checkpoint", help="checkpoint file (default: <out>.pt)")
    train.add_argument("--settings", help="training settings as JSON (the config's train section)")
    train.add_argument("--seed", type=int, help="override the seed in --settings")
    train.add_argument(
        "--head-min",
        type=int,
        required=True,
        help="head classes have at least this many train videos",
    )
    train.add_argument(
        "--tail-max",
        type=int,
        required=True,
        help="tail classes have at most this many train videos",
    )

    evaluate = add(
        "evaluate", cmd_evaluate, "Reload a checkpoint and evaluate it on a split's test videos."
    )
    evaluate.add_argument("--checkpoint", required=True, help="checkpoint written by 'move train'")
    evaluate.add_argument("--features", required=True, help="feature HDF5 file")
    evaluate.add_argument("--split", required=True, help="split CSV")
    evaluate.add_argument("--out", help="write the metrics JSON here too")
    evaluate.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")

    train.add_argument(
        "--method",
        help="method variant overriding --settings: a registered method, '<method>_agg' for its "
        "Agg variant (choices: " + ", ".join(_method_variants()) + ")",
    )
    train.add_argument("--dataset", help="dataset name recorded in the results (tables, plots)")
    train.add_argument(
        "--imbalance-ratio",
        type=float,
        help="imbalance ratio of the split, recorded in the results (tables, plots)",
    )

    table = add(
        "table", cmd_table, "Gather results JSONs of several methods into a Table-3-style table."
    )
    table.add_argument("results", nargs="+", help="VARIANT=results.json, one per method")
    table.add_argument("--out-md", required=True, help="markdown table to write")
    table.add_argument("--out-csv", required=True, help="CSV table to write")
    table.add_argument("--title", help="heading above the markdown table")

    plot = add("plot", cmd_plot, "Draw a figure of trained runs: a PNG and the CSV of its data.")
    plot.add_argument(
        "figure",
        choices=["per-class-ap", "map-vs-ir", "attention", "confidence", "curves", "runtimes"],
        help="per-class-ap: AP per class head->tail; map-vs-ir: mAP (all/H/M/T) per method vs IR; "
        "attention: PSA attention and codebook assignments of test videos (Fig. 2); confidence: "
        "original vs interpolated confidence per class (Fig. 4); curves: loss and mAP per epoch; runtimes: seconds per workflow job",
    )
    plot.add_argument("--out", required=True, help="PNG to write (its data goes to <out>.csv)")
    plot.add_argument(
        "--results", nargs="+", help="results JSON(s) (per-class-ap, map-vs-ir, curves)"
    )
    plot.add_argument("--benchmarks", help="folder of Snakemake benchmark files (runtimes)")
    plot.add_argument("--checkpoint", help="checkpoint .pt (attention, confidence)")
    plot.add_argument("--features", help="feature HDF5 file (attention, confidence)")
    plot.add_argument("--split", help="split CSV (attention, confidence)")
    plot.add_argument(
        "--annotations", help="annotations CSV, to find the videos for the frame strip"
    )
    plot.add_argument("--videos", help="video root folder, for the frame strip (attention)")
    plot.add_argument("--video", nargs="+", help="test video ids to show (attention)")
    plot.add_argument(
        "--count",
        type=int,
        default=2,
        help="without --video: show this many test videos, head to tail",
    )
    plot.add_argument(
        "--subset", default="train", choices=["train", "test"], help="videos for confidence"
    )
    plot.add_argument("--lam", type=float, default=0.5, help="interpolation weight (confidence)")
    plot.add_argument(
        "--seed", type=int, default=0, help="seed of the partner shuffle (confidence)"
    )

    check = add(
        "check-config", cmd_check_config, "Validate a config file against the workflow's schema."
    )
    check.add_argument(
        "config", nargs="?", default="config.yaml", help="config file (default config.yaml)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except MoveError as error:
        if args.debug:
            raise
        # raised in a DataLoader worker, torch re-raises it with the worker's traceback text
        message = str(error).strip().splitlines()[-1].removeprefix("move.errors.MoveError: ")
        print(f"move {args.command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"move {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # unexpected: still one line unless --debug
        if args.debug:
            raise
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            print(f"move {args.command}: error: {disk_full(error.filename)}", file=sys.stderr)
            return 1
        print(
            f"move {args.command}: error: {type(error).__name__}: {error} (rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
