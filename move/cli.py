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
    from move.datasets.demo import DemoSpec, make_demo_dataset

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
    from move.extraction.extract import (
        ExtractSettings,
        decode_workers,
        extract_features,
        list_videos,
        parse_shard,
        select_shard,
        set_compute_threads,
    )
    from move.extraction.weights import default_weights, is_random

    settings = ExtractSettings(
        backbone=args.backbone,
        weights=args.weights,
        frames=args.frames,
        resize=args.resize,
        crop=args.crop,
        batch_size=args.batch_size,
        num_workers=decode_workers(args.num_workers),
        device=args.device,
        dtype=args.dtype,
    )
    videos = list_videos(args.annotations, args.videos)
    if args.shard:
        videos = select_shard(videos, *parse_shard(args.shard))
    failures = args.failures or Path(args.out).with_suffix(".failures.csv")
    threads = set_compute_threads(args.threads)
    counts = extract_features(
        videos, args.out, failures, settings, progress=not args.quiet, reuse=args.reuse or []
    )
    print(
        f"{counts['extracted']} videos in {args.out} ({counts['new']} new, the others reused) "
        f"with {threads} torch thread(s); {counts['failed']} failed (see {failures})"
    )
    if is_random(args.weights):
        print(
            f"warning: --weights none: a randomly initialised {args.backbone}, whose features "
            f"mean nothing (use --weights {default_weights(args.backbone)} for real data)",
            file=sys.stderr,
        )


def cmd_fetch_weights(args: argparse.Namespace) -> None:
    from move.extraction.weights import fetch_weights, weights_url

    if weights_url(args.backbone, args.weights) is None:
        raise MoveError(f"'{args.weights}' is not a weights name or URL for {args.backbone}")
    weights = fetch_weights(args.backbone, args.weights)
    print(f"{weights.path} (sha256 {weights.sha256})")


def cmd_merge_features(args: argparse.Namespace) -> None:
    from move.extraction.extract import merge_feature_files

    failures = args.failures or Path(args.out).with_suffix(".failures.csv")
    counts = merge_feature_files(args.parts, args.out, failures)
    print(
        f"merged {len(args.parts)} part(s): {counts['extracted']} videos in {args.out}; "
        f"{counts['failed']} failed (see {failures})"
    )


def _missing_videos(args: argparse.Namespace):
    """Annotations, missing videos and the summary line, stopping when too many are missing."""
    from move.datasets.splits import missing_from_features
    from move.extraction.extract import read_annotations

    table = read_annotations(args.annotations)
    missing, line = missing_from_features(
        table, args.features, args.failures, args.max_missing_share, args.share_key
    )
    return table, missing, line


def cmd_missing(args: argparse.Namespace) -> None:
    from move.datasets.splits import write_csv_atomic

    _, missing, line = _missing_videos(args)
    write_csv_atomic(missing, args.out)
    print(f"wrote {args.out}: {line}")


def cmd_split(args: argparse.Namespace) -> None:
    from move.datasets.splits import lost_per_class, split_from_annotations, write_csv_atomic

    table, missing, line = _missing_videos(args)
    if len(missing):
        print(f"warning: {line}", file=sys.stderr)
    split, counts = split_from_annotations(
        table,
        args.annotations,
        missing,
        args.ir,
        (args.head_min, args.tail_max),
        args.max_per_class,
        args.selection,
        args.seed,
        args.class_order,
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
    from move.datasets.kinetics import fetch_list

    digest = fetch_list(args.source, args.out, args.sha256)
    print(f"wrote {args.out} (sha256 {digest})")


def cmd_list_annotations(args: argparse.Namespace) -> None:
    from move.datasets.kinetics import list_annotations
    from move.datasets.splits import write_csv_atomic

    table = list_annotations(args.train_list, args.val_list, args.kinetics)
    write_csv_atomic(table, args.out)
    n_train = int((table.split == "train").sum())
    print(
        f"wrote {args.out}: {n_train} train + {len(table) - n_train} val videos, "
        f"{table.class_index.nunique()} classes"
    )


def cmd_imbalance_table(args: argparse.Namespace) -> None:
    from move.files import write_text_atomic
    from move.reporting.tables import imbalance_table

    text = imbalance_table(args.results)
    out = Path(args.out)
    write_text_atomic(text, out)
    print(f"wrote {out} from {len(args.results)} result file(s)")


def cmd_videolt_convert(args: argparse.Namespace) -> None:
    from move.datasets.videolt import convert_videolt

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
    from move.training.commands import settings_from_options, train_command
    from move.training.results import RunInfo

    settings = settings_from_options(args.settings, args.seed, args.method)
    run = RunInfo(args.dataset, args.imbalance_ratio)
    paths = (args.features, args.split, args.out, args.checkpoint)
    groups = (args.head_min, args.tail_max)
    print(train_command(*paths, settings, groups, run, progress=not args.quiet))


def cmd_evaluate(args: argparse.Namespace) -> None:
    from move.training.commands import evaluate_command

    print(evaluate_command(args.checkpoint, args.features, args.split, args.out, args.device))


def cmd_table(args: argparse.Namespace) -> None:
    from move.reporting.tables import write_methods_table

    results = {}
    for item in args.results:
        variant, sep, path = item.partition("=")
        if not sep:
            raise MoveError(
                f"results argument {item!r} must be VARIANT=PATH (e.g. move=results/x.json)"
            )
        if variant in results:
            raise MoveError(
                f"variant '{variant}' is given twice ({results[variant]} and {path}): "
                "a table shows one run per variant; pass one"
            )
        results[variant] = path
    table = write_methods_table(results, args.out_md, args.out_csv, args.title or "")
    print(f"wrote {args.out_md} and {args.out_csv}: {len(table)} methods")


def cmd_plot(args: argparse.Namespace) -> None:
    from move.reporting import plots

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
        csv = plots.runtimes(args.benchmarks, args.out, args.dataset)
    elif args.figure == "attention":
        from move.reporting.diagnostics import inspected_videos

        source = (args.annotations, args.videos) if args.annotations and args.videos else None
        videos = inspected_videos(
            args.checkpoint, args.features, args.split, args.video, args.count, source
        )
        csv = plots.attention_maps(videos, args.out)
    else:
        from move.reporting.diagnostics import confidence_figure

        csv = confidence_figure(
            args.checkpoint, args.features, args.split, args.out, args.subset, args.lam, args.seed
        )
    print(f"wrote {args.out} and {csv}")


def cmd_check_config(args: argparse.Namespace) -> None:
    from move.config import load_config

    load_config(args.config)
    print(f"{args.config}: valid")


# The files each command reads and writes (argument dests): an output that is an input or another
# output is refused before any work ('train --checkpoint features.h5' would overwrite features).
FILE_ARGUMENTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "demo-videos": ((), ("out",)),
    "extract": (("annotations", "weights"), ("out", "failures")),
    "merge-features": (("parts",), ("out", "failures")),
    "split": (("annotations", "features", "failures", "class_order"), ("out", "class_counts")),
    "missing": (("annotations", "features", "failures"), ("out",)),
    "fetch-list": (("source",), ("out",)),
    "list-annotations": (("train_list", "val_list", "kinetics"), ("out",)),
    "imbalance-table": (("results",), ("out",)),
    "videolt-convert": (("class_names",), ("out", "split_out")),
    "train": (("features", "split"), ("out", "checkpoint")),
    "evaluate": (("checkpoint", "features", "split"), ("out",)),
    "table": (("results",), ("out_md", "out_csv")),
    "plot": (("results", "checkpoint", "features", "split", "annotations"), ("out",)),
}
POSITIONAL = {"parts": "one of the parts", "results": "one of the results", "source": "the source"}


def _argument_paths(args: argparse.Namespace, dest: str) -> list[str]:
    value = getattr(args, dest, None)
    values = [] if value is None else [value] if isinstance(value, str) else list(value)
    if args.command == "table" and dest == "results":  # VARIANT=PATH
        values = [v.partition("=")[2] or v for v in values]
    return [str(v) for v in values]


def refuse_output_over_input(args: argparse.Namespace) -> None:
    """Stop when an output path names one of the command's inputs or another of its outputs."""
    from move.files import same_file

    inputs, outputs = FILE_ARGUMENTS.get(args.command, ((), ()))
    seen: list[tuple[str, str]] = [(d, p) for d in inputs for p in _argument_paths(args, d)]
    for dest in outputs:
        for path in _argument_paths(args, dest):
            for other, known in seen:
                if same_file(path, known):
                    name = POSITIONAL.get(other, "--" + other.replace("_", "-"))
                    raise MoveError(
                        f"--{dest.replace('_', '-')} {path} is the same file as {name}: an "
                        "output must not overwrite an input or another output; choose another path"
                    )
            seen.append((dest, path))


def bind_dash_values(argv: list[str], option: str, parser: argparse.ArgumentParser) -> list[str]:
    """``--video -abc x`` -> ``--video=-abc --video=x``: values of ``option`` may start with '-'
    (YouTube ids do); they run until the next option any command knows."""
    commands = parser._subparsers._group_actions[0].choices.values()
    known = {s for sub in [parser, *commands] for s in sub._option_string_actions}
    result: list[str] = []
    binding = False
    for token in argv:
        if token == option:
            binding = True
            result.append(token)
        elif binding and token.split("=")[0] not in known:
            if result[-1] == option:
                result.pop()
            result.append(f"{option}={token}")
        else:
            binding = False
            result.append(token)
    return result


def _method_variants() -> tuple[str, ...]:
    """The method registry's variants (``move train --method`` help)."""
    from move.training.methods import variant_names

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


def _demo_videos_options(parser: argparse.ArgumentParser) -> None:
    """Options of 'move demo-videos'."""
    parser.add_argument("--out", required=True, help="dataset folder to create (e.g. data/demo)")
    parser.add_argument("--classes", type=int, default=20, help="number of classes (default 20)")
    parser.add_argument(
        "--train-per-class", type=int, default=24, help="train videos per class (default 24)"
    )
    parser.add_argument(
        "--val-per-class", type=int, default=8, help="val (test) videos per class (default 8)"
    )
    parser.add_argument("--frames", type=int, default=16, help="frames per video (default 16)")
    parser.add_argument(
        "--size", type=int, default=64, help="frame width and height in pixels, even (default 64)"
    )
    parser.add_argument("--fps", type=int, default=8, help="frame rate (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def _extract_options(parser: argparse.ArgumentParser) -> None:
    """Options of 'move extract'."""
    parser.add_argument(
        "--annotations",
        required=True,
        help="annotations CSV (label,youtube_id,time_start,time_end,split)",
    )
    parser.add_argument("--videos", required=True, help="root folder of the videos")
    parser.add_argument(
        "--out", required=True, help="output HDF5 file (features/<dataset>/<backbone>.h5)"
    )
    parser.add_argument(
        "--failures", help="CSV of videos that failed to decode (default: <out>.failures.csv)"
    )
    parser.add_argument(
        "--backbone",
        default="resnet50",
        help="resnet50, resnet101 or tsm_resnet50 (default resnet50)",
    )
    parser.add_argument(
        "--weights",
        default="none",
        help="imagenet (resnet50/101), kinetics (tsm_resnet50), a URL or a local checkpoint "
        "(downloads are cached in torch.hub's folder and verified), or 'none' (random init)",
    )
    parser.add_argument("--frames", type=int, default=8, help="frames T per video (default 8)")
    parser.add_argument(
        "--resize", type=int, default=256, help="shorter side before cropping (default 256)"
    )
    parser.add_argument("--crop", type=int, default=224, help="centre crop size (default 224)")
    parser.add_argument(
        "--batch-size", type=int, default=64, help="frames per forward pass (default 64)"
    )
    parser.add_argument(
        "--num-workers",
        type=int,
        default=None,
        help="decoding worker processes (default: one per CPU core of the job, less one)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="torch threads computing the features (default: torch's own, OMP_NUM_THREADS or "
        "all cores); features are bit-identical only between runs with the same count",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default auto)")
    parser.add_argument(
        "--dtype", default="float16", choices=["float16", "float32"], help="stored dtype"
    )
    parser.add_argument(
        "--shard",
        help="i/n: extract only the deterministic i-th of n parts of the videos (0 <= i < n)",
    )
    parser.add_argument(
        "--reuse",
        nargs="+",
        metavar="H5",
        help="finished feature files (e.g. the previous merged file) whose videos made with the "
        "same settings are copied instead of extracted (read only)",
    )


def _fetch_weights_options(parser: argparse.ArgumentParser) -> None:
    """Options of 'move fetch-weights'."""
    parser.add_argument("backbone", help="resnet50, resnet101 or tsm_resnet50")
    parser.add_argument("weights", help="imagenet (resnet50/101), kinetics (tsm_resnet50) or a URL")


def _merge_features_options(parser: argparse.ArgumentParser) -> None:
    """Options of 'move merge-features'."""
    parser.add_argument(
        "parts", nargs="+", help="shard HDF5 files (their .failures.csv beside them)"
    )
    parser.add_argument("--out", required=True, help="merged HDF5 file")
    parser.add_argument("--failures", help="merged failures CSV (default: <out>.failures.csv)")


def _split_options(parser: argparse.ArgumentParser) -> None:
    """Options of 'move split'."""
    parser.add_argument(
        "--annotations",
        required=True,
        help="annotations CSV (train rows -> train, val rows -> test)",
    )
    parser.add_argument(
        "--features",
        help="feature HDF5: selected videos without features are dropped (lost); "
        "without it, the split from the lists alone",
    )
    parser.add_argument(
        "--ir", type=float, required=True, help="imbalance ratio in (0, 1], e.g. 0.01"
    )
    parser.add_argument(
        "--max-per-class",
        type=int,
        default=400,
        help="n_max, videos of the head class (default 400)",
    )
    parser.add_argument(
        "--head-min",
        type=int,
        required=True,
        help="head classes have at least this many train videos",
    )
    parser.add_argument(
        "--tail-max",
        type=int,
        required=True,
        help="tail classes have at most this many train videos",
    )
    parser.add_argument(
        "--selection",
        default="first",
        choices=["first", "random"],
        help="first n_c in list order (authors) or a seeded random n_c",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for --selection random")
    parser.add_argument("--out", required=True, help="split CSV to write")
    parser.add_argument("--class-counts", required=True, help="per-class counts CSV to write")
    parser.add_argument(
        "--class-order",
        help="file with the head -> tail class order (names or original indices, one a line)",
    )
    add_missing_options(parser)


def _missing_options(parser: argparse.ArgumentParser) -> None:
    """Options of 'move missing'."""
    parser.add_argument("--annotations", required=True, help="annotations CSV")
    parser.add_argument("--features", required=True, help="feature HDF5 file")
    parser.add_argument("--out", required=True, help="missing-videos CSV to write")
    add_missing_options(parser)


def _fetch_list_options(parser: argparse.ArgumentParser) -> None:
    """Options of 'move fetch-list'."""
    parser.add_argument("source", help="URL or local path of the list")
    parser.add_argument("--out", required=True, help="where to keep the list")
    parser.add_argument("--sha256", help="refuse the list unless its sha256 is this")


def _list_annotations_options(parser: argparse.ArgumentParser) -> None:
    """Options of 'move list-annotations'."""
    parser.add_argument("--train-list", required=True, help="authors' train list")
    parser.add_argument("--val-list", required=True, help="authors' val list")
    parser.add_argument(
        "--kinetics", required=True, nargs="+", help="Kinetics-400 annotation CSV(s)"
    )
    parser.add_argument("--out", required=True, help="annotations CSV to write")


def _imbalance_table_options(parser: argparse.ArgumentParser) -> None:
    """Options of 'move imbalance-table'."""
    parser.add_argument("results", nargs="+", help="results/<dataset>_ir<IR>.json files")
    parser.add_argument("--out", required=True, help="markdown file to write")


def _videolt_convert_options(parser: argparse.ArgumentParser) -> None:
    """Options of 'move videolt-convert'."""
    parser.add_argument(
        "--features-dir", required=True, help="folder of <video_id>.npy files (one backbone)"
    )
    parser.add_argument(
        "--labels", required=True, help="folder with train.lst, test.lst, count-labels-train.lst"
    )
    parser.add_argument("--backbone", required=True, help="name stored in the file (resnet50 ...)")
    parser.add_argument("--out", required=True, help="HDF5 file (features/videolt/<backbone>.h5)")
    parser.add_argument("--split-out", required=True, help="split CSV to write")
    parser.add_argument(
        "--test-list", default="test", help="list evaluated on: test or validate (default test)"
    )
    parser.add_argument("--class-names", help="optional file: one class name a line, by index")
    parser.add_argument(
        "--dtype", default="float16", choices=["float16", "float32"], help="stored dtype"
    )
    parser.add_argument(
        "--max-missing-share",
        type=float,
        default=0.05,
        help="stop when more than this share of listed videos has no feature file",
    )


def _train_options(parser: argparse.ArgumentParser) -> None:
    """Options of 'move train'."""
    parser.add_argument("--features", required=True, help="feature HDF5 file")
    parser.add_argument("--split", required=True, help="split CSV from 'move split'")
    parser.add_argument(
        "--out", required=True, help="results JSON (a per-class CSV is written beside it)"
    )
    parser.add_argument("--checkpoint", help="checkpoint file (default: <out>.pt)")
    parser.add_argument("--settings", help="training settings as JSON (the config's train section)")
    parser.add_argument("--seed", type=int, help="override the seed in --settings")
    parser.add_argument(
        "--head-min",
        type=int,
        required=True,
        help="head classes have at least this many train videos",
    )
    parser.add_argument(
        "--tail-max",
        type=int,
        required=True,
        help="tail classes have at most this many train videos",
    )
    parser.add_argument(
        "--method",
        help="method variant overriding --settings: a registered method, '<method>_agg' for its "
        "Agg variant (choices: " + ", ".join(_method_variants()) + ")",
    )
    parser.add_argument("--dataset", help="dataset name recorded in the results (tables, plots)")
    parser.add_argument(
        "--imbalance-ratio",
        type=float,
        help="imbalance ratio of the split, recorded in the results (tables, plots)",
    )


def _evaluate_options(parser: argparse.ArgumentParser) -> None:
    """Options of 'move evaluate'."""
    parser.add_argument("--checkpoint", required=True, help="checkpoint written by 'move train'")
    parser.add_argument("--features", required=True, help="feature HDF5 file")
    parser.add_argument("--split", required=True, help="split CSV")
    parser.add_argument("--out", help="write the metrics JSON here too")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")


def _table_options(parser: argparse.ArgumentParser) -> None:
    """Options of 'move table'."""
    parser.add_argument("results", nargs="+", help="VARIANT=results.json, one per method")
    parser.add_argument("--out-md", required=True, help="markdown table to write")
    parser.add_argument("--out-csv", required=True, help="CSV table to write")
    parser.add_argument("--title", help="heading above the markdown table")


def _plot_options(parser: argparse.ArgumentParser) -> None:
    """Options of 'move plot'."""
    parser.add_argument(
        "figure",
        choices=["per-class-ap", "map-vs-ir", "attention", "confidence", "curves", "runtimes"],
        help="per-class-ap: AP per class head->tail; map-vs-ir: mAP (all/H/M/T) per method vs IR; "
        "attention: PSA attention and codebook assignments of test videos (Fig. 2); confidence: "
        "original vs interpolated confidence per class (Fig. 4); curves: loss and mAP per epoch; runtimes: seconds per workflow job",
    )
    parser.add_argument("--out", required=True, help="PNG to write (its data goes to <out>.csv)")
    parser.add_argument(
        "--results", nargs="+", help="results JSON(s) (per-class-ap, map-vs-ir, curves)"
    )
    parser.add_argument("--benchmarks", help="folder of Snakemake benchmark files (runtimes)")
    parser.add_argument(
        "--dataset", help="only the jobs of this dataset (job name <dataset> or <dataset>_...)"
    )
    parser.add_argument("--checkpoint", help="checkpoint .pt (attention, confidence)")
    parser.add_argument("--features", help="feature HDF5 file (attention, confidence)")
    parser.add_argument("--split", help="split CSV (attention, confidence)")
    parser.add_argument(
        "--annotations", help="annotations CSV, to find the videos for the frame strip"
    )
    parser.add_argument("--videos", help="video root folder, for the frame strip (attention)")
    parser.add_argument(
        "--video",
        nargs="+",
        action="extend",
        help="test video ids to show (attention); ids may start with '-' as YouTube ids do",
    )
    parser.add_argument(
        "--count",
        type=int,
        default=2,
        help="without --video: show this many test videos, head to tail",
    )
    parser.add_argument(
        "--subset", default="train", choices=["train", "test"], help="videos for confidence"
    )
    parser.add_argument("--lam", type=float, default=0.5, help="interpolation weight (confidence)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the partner shuffle (confidence)"
    )


def _check_config_options(parser: argparse.ArgumentParser) -> None:
    """Options of 'move check-config'."""
    parser.add_argument(
        "config", nargs="?", default="config.yaml", help="config file (default config.yaml)"
    )


# name, handler, help (also the description) and options of every command, in --help's order
COMMANDS = [
    (
        "demo-videos",
        cmd_demo_videos,
        "Write the synthetic demo dataset: videos/<label>/<id>.mp4 and annotations.csv.",
        _demo_videos_options,
    ),
    (
        "extract",
        cmd_extract,
        "Decode T uniformly sampled frames per video and write 2048-d backbone features to HDF5.",
        _extract_options,
    ),
    (
        "fetch-weights",
        cmd_fetch_weights,
        "Download named weights (or a URL) once into torch.hub's cache and verify their sha256.",
        _fetch_weights_options,
    ),
    (
        "merge-features",
        cmd_merge_features,
        "Join shard feature files (from extract --shard) into one HDF5 and one failures CSV.",
        _merge_features_options,
    ),
    (
        "split",
        cmd_split,
        "Build the long-tailed train split and balanced test split at one imbalance ratio.",
        _split_options,
    ),
    (
        "missing",
        cmd_missing,
        "List the annotated videos that have no features; stop when too many are missing.",
        _missing_options,
    ),
    (
        "fetch-list",
        cmd_fetch_list,
        "Copy a list from a URL (http, https, file) or path once; pin its sha256 beside it.",
        _fetch_list_options,
    ),
    (
        "list-annotations",
        cmd_list_annotations,
        "Join the authors' train/val lists with Kinetics-400 CSVs into one annotations CSV.",
        _list_annotations_options,
    ),
    (
        "imbalance-table",
        cmd_imbalance_table,
        "Gather results JSONs at several imbalance ratios into a Table-3-style markdown table: the paper's numbers, best and final epoch side by side.",
        _imbalance_table_options,
    ),
    (
        "videolt-convert",
        cmd_videolt_convert,
        "Convert VideoLT's released per-video .npy features and label lists to HDF5 + a split.",
        _videolt_convert_options,
    ),
    (
        "train",
        cmd_train,
        "Train MOVE (or a baseline) on features + split; write results JSON and checkpoint.",
        _train_options,
    ),
    (
        "evaluate",
        cmd_evaluate,
        "Reload a checkpoint and evaluate it on a split's test videos.",
        _evaluate_options,
    ),
    (
        "table",
        cmd_table,
        "Gather results JSONs of several methods into a Table-3-style table.",
        _table_options,
    ),
    (
        "plot",
        cmd_plot,
        "Draw a figure of trained runs: a PNG and the CSV of its data.",
        _plot_options,
    ),
    (
        "check-config",
        cmd_check_config,
        "Validate a config file against the workflow's schema.",
        _check_config_options,
    ),
]


def build_parser() -> argparse.ArgumentParser:
    """The ``move`` command line: one sub-command per stage (``COMMANDS``)."""
    parser = argparse.ArgumentParser(
        prog="move",
        description="Video long-tailed recognition with MOVE: the stages of the workflow.",
        epilog="Run 'move <command> --help' for a command's options. Usually called by Snakemake rules.",
    )
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, handler, help_text, add_options in COMMANDS:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "--debug",
            action="store_true",
            default=argparse.SUPPRESS,
            help="show Python tracebacks on errors",
        )
        sub.add_argument("--quiet", action="store_true", help="no progress bar")
        sub.set_defaults(func=handler)
        add_options(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(bind_dash_values(argv, "--video", parser))
    try:
        refuse_output_over_input(args)
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
