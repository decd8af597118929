"""The ``move`` command: one subcommand per workflow stage (what the Snakemake rules call).

Errors print one line (``move <command>: error: ...``) and exit 1; ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from move.errors import MoveError


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
    from move.extract import ExtractSettings, extract_features, list_videos

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
    failures = args.failures or Path(args.out).with_suffix(".failures.csv")
    counts = extract_features(videos, args.out, failures, settings, progress=not args.quiet)
    print(
        f"extracted {counts['extracted']} videos to {args.out}; {counts['failed']} failed (see {failures})"
    )


def cmd_split(args: argparse.Namespace) -> None:
    from move.extract import read_annotations
    from move.features import open_feature_file, video_ids
    from move.splits import build_long_tailed_split, drop_videos_without_features, write_csv_atomic

    table = read_annotations(args.annotations)
    with open_feature_file(args.features) as handle:
        have = set(video_ids(handle))
    kept, missing = drop_videos_without_features(table, have)
    if len(missing):
        print(
            f"warning: {len(missing)} of {len(table)} videos have no features in {args.features} "
            "and are left out",
            file=sys.stderr,
        )
    train = kept[kept.split == "train"][["video_id", "label"]]
    test = kept[kept.split.isin(["val", "test"])][["video_id", "label"]]
    split, counts = build_long_tailed_split(
        train,
        test,
        args.ir,
        args.max_per_class,
        args.head_min,
        args.tail_max,
        args.selection,
        args.seed,
    )
    write_csv_atomic(counts, args.class_counts)
    write_csv_atomic(split, args.out)
    n_train = int((split.split == "train").sum())
    print(
        f"wrote {args.out}: {n_train} train videos over {len(counts)} classes "
        f"(head {counts['count'].iloc[0]} -> tail {counts['count'].iloc[-1]}), {len(split) - n_train} test"
    )


def cmd_train(args: argparse.Namespace) -> None:
    from move.train import TrainSettings, train

    values = json.loads(args.settings) if args.settings else {}
    if args.seed is not None:
        values["seed"] = args.seed
    settings = TrainSettings.from_dict(values)
    checkpoint = args.checkpoint or Path(args.out).with_suffix(".pt")
    results = train(
        args.features,
        args.split,
        args.out,
        checkpoint,
        settings,
        args.head_min,
        args.tail_max,
        progress=not args.quiet,
    )
    final = results["final"]
    print(
        f"wrote {args.out}: mAP {final['mAP']:.4f} (head {final['head_mAP']}, medium {final['medium_mAP']}, "
        f"tail {final['tail_mAP']}), top-1 {final['top1']:.4f}"
    )


def cmd_evaluate(args: argparse.Namespace) -> None:
    from move.train import evaluate_checkpoint, summary

    metrics = summary(
        evaluate_checkpoint(args.checkpoint, args.features, args.split, device=args.device)
    )
    text = json.dumps(metrics, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)


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
        csv = plots.attention_maps(_inspected_videos(args), args.out)
    else:
        from move.inspect import interpolation_confidence, load_model
        from move.splits import read_split

        model, state = load_model(args.checkpoint)
        table = interpolation_confidence(
            model,
            args.features,
            read_split(args.split),
            state["n_classes"],
            args.subset,
            args.lam,
            args.seed,
        )
        csv = plots.confidence(table, state["train_counts"], args.out)
    print(f"wrote {args.out} and {csv}")


def _inspected_videos(args: argparse.Namespace) -> list[dict]:
    """Attention/assignment maps (and decoded frames) of the chosen test videos."""
    from move.extract import list_videos
    from move.inspect import aggregator_maps, load_model, pick_videos, read_features
    from move.splits import read_split
    from move.video import VideoDecodeError, read_frames

    model, state = load_model(args.checkpoint)
    split = read_split(args.split)
    if args.video:
        chosen = [(v, None) for v in args.video]
    else:
        chosen = pick_videos(split, state["train_counts"], args.count)
    features = read_features(args.features, [v for v, _ in chosen])
    paths = {}
    if args.annotations and args.videos:
        listed = list_videos(args.annotations, args.videos)
        paths = dict(zip(listed.video_id, listed.path, strict=True))
    labels = dict(zip(split.video_id, split.label, strict=False))
    videos = []
    for video_id, _ in chosen:
        maps = aggregator_maps(model, features[video_id])
        frames = None
        if paths.get(video_id):
            try:
                frames, _ = read_frames(paths[video_id], maps["attention"].shape[1])
            except VideoDecodeError as error:
                print(f"warning: no frame strip for {video_id}: {error}", file=sys.stderr)
        videos.append(
            {"video_id": video_id, "label": labels.get(video_id, "?"), "frames": frames} | maps
        )
    return videos


def cmd_check_config(args: argparse.Namespace) -> None:
    from move.config import load_config

    load_config(args.config)
    print(f"{args.config}: valid")


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
        "--backbone", default="resnet50", help="resnet50 or resnet101 (default resnet50)"
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
        print(f"move {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"move {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # unexpected: still one line unless --debug
        if args.debug:
            raise
        print(
            f"move {args.command}: error: {type(error).__name__}: {error} (rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
