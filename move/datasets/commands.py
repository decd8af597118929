"""The datasets stage's commands: the demo videos, the authors' lists, VideoLT's features, and the
long-tailed splits (``move demo-videos``, ``fetch-list``, ``list-annotations``,
``videolt-convert``, ``missing``, ``split``).

Each ``*_command`` runs the stage on parsed arguments and returns the line the CLI prints.
"""

from __future__ import annotations

import argparse
import sys

from move.arguments import Command, arg, input_file, output_file, settings_arguments, settings_from
from move.datasets.demo import DemoSpec
from move.errors import MoveError

REEXTRACT = "delete it and rerun the extract stage (features from working weights)"


def demo_videos_command(args: argparse.Namespace) -> str:
    """Write the synthetic demo dataset."""
    from move.datasets.demo import make_demo_dataset

    spec = settings_from(DemoSpec, args)
    csv = make_demo_dataset(args.out, spec, progress=not args.quiet)
    return f"wrote {csv} and {spec.classes * (spec.train_per_class + spec.val_per_class)} videos"


def missing_videos(args: argparse.Namespace):
    """Annotations, missing videos and the summary line, stopping when too many are missing."""
    from move.annotations import read_annotations
    from move.datasets.splits import missing_from_features

    table = read_annotations(args.annotations)
    missing, line = missing_from_features(
        table, args.features, args.failures, args.max_missing_share, args.share_key
    )
    return table, missing, line


def missing_command(args: argparse.Namespace) -> str:
    """List the annotated videos without features."""
    from move.files import write_csv_atomic

    _, missing, line = missing_videos(args)
    write_csv_atomic(missing, args.out)
    return f"wrote {args.out}: {line}"


def split_command(args: argparse.Namespace) -> str:
    """The long-tailed train split and the balanced test split at one imbalance ratio."""
    from move.datasets.splits import lost_per_class, split_from_annotations
    from move.files import write_csv_atomic

    table, missing, line = missing_videos(args)
    if len(missing):
        print(f"warning: {line}", file=sys.stderr)
    if args.features is not None:
        from move.features import check_stored_features

        present = table[~table.video_id.isin(set(missing.video_id))]
        labels = dict(zip(present.video_id, present.label.astype(str), strict=True))
        for warning in check_stored_features(args.features, labels, REEXTRACT):
            print(f"warning: {warning}", file=sys.stderr)
    groups = (args.head_min, args.tail_max)
    split, counts = split_from_annotations(
        table, args.annotations, missing, args.ir, groups, args.max_per_class,
        args.selection, args.seed, args.class_order,
    )  # fmt: skip
    if counts.lost.sum():
        print(f"warning: {lost_per_class(counts)}", file=sys.stderr)
    write_csv_atomic(counts, args.class_counts)
    write_csv_atomic(split, args.out)
    n_train = int((split.split == "train").sum())
    return (
        f"wrote {args.out}: {n_train} train videos over {len(counts)} classes (head "
        f"{counts['count'].iloc[0]} -> tail {counts['count'].iloc[-1]}), {len(split) - n_train} test"
    )


def fetch_list_command(args: argparse.Namespace) -> str:
    """Copy a list once and pin its sha256."""
    from move.datasets.kinetics import fetch_list

    return f"wrote {args.out} (sha256 {fetch_list(args.source, args.out, args.sha256)})"


def list_annotations_command(args: argparse.Namespace) -> str:
    """Join the authors' lists with the Kinetics-400 CSVs into one annotations CSV."""
    from move.datasets.kinetics import list_annotations
    from move.files import write_csv_atomic

    table = list_annotations(args.train_list, args.val_list, args.kinetics)
    write_csv_atomic(table, args.out)
    n_train = int((table.split == "train").sum())
    return (
        f"wrote {args.out}: {n_train} train + {len(table) - n_train} val videos, "
        f"{table.class_index.nunique()} classes"
    )


def videolt_convert_command(args: argparse.Namespace) -> str:
    """Convert VideoLT's released features and lists to HDF5 + a split."""
    from move.datasets.videolt.conversion import convert_videolt

    counts = convert_videolt(
        args.features_dir, args.labels, args.out, args.split_out, backbone=args.backbone,
        test_list=args.test_list, dtype=args.dtype, max_missing_share=args.max_missing_share,
        class_names_file=args.class_names, progress=not args.quiet,
    )  # fmt: skip
    return (
        f"wrote {args.out} ({counts['converted']} videos, {counts['missing']} missing) "
        f"and {args.split_out}"
    )


def npy_features_command(args: argparse.Namespace) -> str:
    """Convert per-video .npy features of an annotated dataset to HDF5."""
    from move.annotations import read_annotations
    from move.datasets.npy_features import convert_npy_features

    counts = convert_npy_features(
        args.features_dir, read_annotations(args.annotations), args.out, args.backbone,
        args.dtype, progress=not args.quiet,
    )  # fmt: skip
    return f"wrote {args.out}: {counts['converted']} videos converted, {counts['missing']} missing"


def fetch_kinetics_command(args: argparse.Namespace) -> str:
    """Fetch the listed videos from the Kinetics mirror's shards."""
    from move.datasets.mirror import fetch_kinetics, listed_video_ids

    if not args.all and args.annotations is None:
        raise MoveError("give --annotations (the videos to keep) or --all")
    wanted = None if args.all else listed_video_ids(args.annotations)
    counts = fetch_kinetics(args.path_lists, wanted, args.out, args.parallel, not args.quiet)
    return (
        f"{args.out}: {counts['videos']} videos ({counts['fetched']} of {counts['shards']} shards "
        f"fetched now, the others before); {counts['not_in_shards']} listed videos in no shard "
        f"({args.out}/not_in_shards.csv)"
    )


def group_arguments() -> list:
    """--head-min / --tail-max: the class groups of the evaluation."""
    return [
        arg("--head-min", type=int, required=True, help="head: at least this many train videos"),
        arg("--tail-max", type=int, required=True, help="tail: at most this many train videos"),
    ]


def missing_arguments() -> list:
    """Options of the missing-videos check shared by 'split' and 'missing'."""
    return [
        input_file("--failures", help="extraction failures CSV: its reasons go into the list"),
        arg(
            "--max-missing-share",
            type=float,
            default=1.0,
            help="stop when more than this share of listed videos has no features (default 1: "
            "never; the workflow passes datasets.<d>.max_missing_share)",
        ),
        arg(
            "--share-key",
            default="--max-missing-share",
            help="name of the setting to quote in the message (the config key)",
        ),
    ]


def commands() -> list[Command]:
    """This stage's commands, declared anew on each call (methods registered since are listed)."""
    return [
        Command(
            "demo-videos",
            "Write the synthetic demo dataset: videos/<label>/<id>.mp4 and annotations.csv.",
            [
                output_file(
                    "--out", required=True, help="dataset folder to create (e.g. data/demo)"
                ),
                *settings_arguments(DemoSpec),
            ],
            demo_videos_command,
        ),
        Command(
            "split",
            "Build the long-tailed train split and balanced test split at one imbalance ratio.",
            [
                input_file(
                    "--annotations",
                    required=True,
                    help="annotations CSV (train -> train, val -> test)",
                ),
                input_file(
                    "--features",
                    help="feature HDF5: selected videos without features are dropped (lost); "
                    "without it, the split from the lists alone",
                ),
                arg("--ir", type=float, required=True, help="imbalance ratio in (0, 1], e.g. 0.01"),
                arg(
                    "--max-per-class",
                    type=int,
                    default=400,
                    help="n_max, videos of the head class (default 400, the paper's)",
                ),
                *group_arguments(),
                arg(
                    "--selection",
                    default="first",
                    choices=["first", "random"],
                    help="first n_c in list order (authors) or a seeded random n_c",
                ),
                arg("--seed", type=int, default=0, help="seed for --selection random"),
                output_file("--out", required=True, help="split CSV to write"),
                output_file("--class-counts", required=True, help="per-class counts CSV to write"),
                input_file(
                    "--class-order",
                    help="file with the head -> tail class order (names or original indices)",
                ),
                *missing_arguments(),
            ],
            split_command,
        ),
        Command(
            "missing",
            "List the annotated videos that have no features; stop when too many are missing.",
            [
                input_file("--annotations", required=True, help="annotations CSV"),
                input_file("--features", required=True, help="feature HDF5 file"),
                output_file("--out", required=True, help="missing-videos CSV to write"),
                *missing_arguments(),
            ],
            missing_command,
        ),
        Command(
            "fetch-list",
            "Copy a list from a URL (http, https, file) or path once; pin its sha256 beside it.",
            [
                input_file("source", help="URL or local path of the list"),
                output_file("--out", required=True, help="where to keep the list"),
                arg("--sha256", help="refuse the list unless its sha256 is this"),
            ],
            fetch_list_command,
        ),
        Command(
            "list-annotations",
            "Join the authors' train/val lists with Kinetics-400 CSVs into one annotations CSV.",
            [
                input_file("--train-list", required=True, help="authors' train list"),
                input_file("--val-list", required=True, help="authors' val list"),
                input_file("--kinetics", required=True, nargs="+", help="Kinetics-400 CSV(s)"),
                output_file("--out", required=True, help="annotations CSV to write"),
            ],
            list_annotations_command,
        ),
        Command(
            "videolt-convert",
            "Convert VideoLT's released per-video .npy features and label lists to HDF5 + a split.",
            [
                arg(
                    "--features-dir", required=True, help="folder of <video_id>.npy (one backbone)"
                ),
                arg(
                    "--labels",
                    required=True,
                    help="folder with train.lst, test.lst, count-labels-train.lst",
                ),
                arg("--backbone", required=True, help="name stored in the file (resnet50 ...)"),
                output_file(
                    "--out", required=True, help="HDF5 file (features/videolt/<backbone>.h5)"
                ),
                output_file("--split-out", required=True, help="split CSV to write"),
                arg("--test-list", default="test", help="list evaluated on: test or validate"),
                input_file("--class-names", help="optional file: one class name a line, by index"),
                arg(
                    "--dtype",
                    default="float16",
                    choices=["float16", "float32"],
                    help="stored dtype",
                ),
                arg(
                    "--max-missing-share",
                    type=float,
                    default=0.05,
                    help="stop when more than this share of listed videos has no feature file",
                ),
            ],
            videolt_convert_command,
        ),
        Command(
            "fetch-kinetics",
            "Fetch a dataset's videos from the Kinetics-400 mirror: stream each tar.gz shard of "
            "the path lists (verified, retried, resumed), keep the listed members as "
            "<out>/<video_id>.mp4, record each finished shard so a rerun skips it.",
            [
                arg(
                    "path_lists",
                    nargs="+",
                    help="the mirror's path lists (URL or path), e.g. train and val",
                ),
                input_file(
                    "--annotations", help="annotations CSV of the videos to keep (video_id)"
                ),
                arg("--all", action="store_true", help="keep every member, not only the listed"),
                output_file("--out", required=True, help="folder of the kept videos"),
                arg("--parallel", type=int, default=4, help="shards downloaded at once"),
            ],
            fetch_kinetics_command,
        ),
        Command(
            "npy-features",
            "Convert one backbone's per-video .npy features (the authors' MiniKinetics200 layout: "
            "<root>/ResNet50/{train,val}/<video_id>.npy) into move's HDF5 + failures CSV, so "
            "split, train and tables run without videos.",
            [
                arg(
                    "--features-dir", required=True, help="folder of <video_id>.npy (one backbone)"
                ),
                input_file("--annotations", required=True, help="the dataset's annotations CSV"),
                arg("--backbone", required=True, help="name stored in the file (resnet50 ...)"),
                output_file(
                    "--out", required=True, help="HDF5 file (features/<dataset>/<backbone>.h5)"
                ),
                arg(
                    "--dtype",
                    default="float16",
                    choices=["float16", "float32"],
                    help="stored dtype",
                ),
            ],
            npy_features_command,
        ),
    ]
