"""The extraction stage's commands: ``move extract``, ``move fetch-weights``, ``move merge-features``.

Each ``*_command`` runs the stage on parsed arguments and returns the line the CLI prints; the
options come from ``ExtractSettings`` (one place for their defaults). Torch is imported when a
command runs, not when the CLI lists them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from move.arguments import (
    INPUT,
    Command,
    arg,
    input_file,
    output_file,
    settings_arguments,
    settings_from,
)
from move.errors import MoveError
from move.extraction.settings import ExtractSettings


def extract_command(args: argparse.Namespace) -> str:
    """Extract the (shard's) videos of an annotations CSV into a feature file."""
    from move.extraction.decoding import decode_workers, list_videos
    from move.extraction.embedding import set_compute_threads
    from move.extraction.extract import extract_features
    from move.extraction.shards import parse_shard, select_shard
    from move.extraction.weights import default_weights, is_random

    settings = settings_from(ExtractSettings, args, num_workers=decode_workers(args.num_workers))
    videos = list_videos(args.annotations, args.videos)
    if args.shard:
        videos = select_shard(videos, *parse_shard(args.shard))
    failures = args.failures or Path(args.out).with_suffix(".failures.csv")
    threads = set_compute_threads(args.threads)
    counts = extract_features(
        videos, args.out, failures, settings, progress=not args.quiet, reuse=args.reuse or []
    )
    if is_random(settings.for_backbone().weights):
        print(
            f"warning: --weights none: a randomly initialised {args.backbone}, whose features "
            f"mean nothing (use --weights {default_weights(args.backbone)} for real data)",
            file=sys.stderr,
        )
    return (
        f"{counts['extracted']} videos in {args.out} ({counts['new']} new, the others reused) "
        f"with {threads} torch thread(s); {counts['failed']} failed (see {failures})"
    )


def fetch_weights_command(args: argparse.Namespace) -> str:
    """Download named weights (or a URL) once into torch.hub's cache and verify them."""
    from move.extraction.backbones import checkpoint_check
    from move.extraction.weights import fetch_weights, weights_url

    if weights_url(args.backbone, args.weights) is None:
        raise MoveError(f"'{args.weights}' is not a weights name or URL for {args.backbone}")
    weights = fetch_weights(args.backbone, args.weights, checkpoint_check(args.backbone))
    return f"{weights.path} (sha256 {weights.sha256})"


def merge_features_command(args: argparse.Namespace) -> str:
    """Join shard feature files and their failures CSVs."""
    from move.extraction.shards import merge_feature_files

    failures = args.failures or Path(args.out).with_suffix(".failures.csv")
    counts = merge_feature_files(args.parts, args.out, failures)
    return (
        f"merged {len(args.parts)} part(s): {counts['extracted']} videos in {args.out}; "
        f"{counts['failed']} failed (see {failures})"
    )


def commands() -> list[Command]:
    """This stage's commands, declared anew on each call (backbones registered since are listed)."""
    from move.extraction.backbones import backbones_help

    return [
        Command(
            "extract",
            "Decode T uniformly sampled frames per video and write backbone features to HDF5 "
            "(one per frame; a video model's: one per clip).",
            [
                input_file(
                    "--annotations",
                    required=True,
                    help="annotations CSV (label,youtube_id,time_start,time_end,split)",
                ),
                arg("--videos", required=True, help="root folder of the videos"),
                output_file(
                    "--out",
                    required=True,
                    help="output HDF5 file (features/<dataset>/<backbone>.h5)",
                ),
                output_file(
                    "--failures",
                    help="CSV of videos that failed to decode (default: <out>.failures.csv)",
                ),
                *settings_arguments(
                    ExtractSettings, defaults={"num_workers": None}, roles={"weights": INPUT}
                ),
                arg(
                    "--threads",
                    type=int,
                    help="torch threads computing the features (default: torch's own, "
                    "OMP_NUM_THREADS or all cores); features are bit-identical only between runs "
                    "with the same count",
                ),
                arg(
                    "--shard",
                    help="i/n: extract only the deterministic i-th of n parts of the videos (0 <= i < n)",
                ),
                input_file(
                    "--reuse",
                    nargs="+",
                    metavar="H5",
                    help="finished feature files (e.g. the previous merged file) whose videos made "
                    "with the same settings are copied instead of extracted (read only)",
                ),
            ],
            extract_command,
        ),
        Command(
            "fetch-weights",
            "Download named weights (or a URL) once into torch.hub's cache and verify their sha256.",
            [
                arg("backbone", help=backbones_help()),
                arg(
                    "weights",
                    help="a named weight of the backbone (imagenet: resnet50/101; kinetics: "
                    "tsm_resnet50 and the video models; timm: timm:<model>) or a URL",
                ),
            ],
            fetch_weights_command,
        ),
        Command(
            "merge-features",
            "Join shard feature files (from extract --shard) into one HDF5 and one failures CSV.",
            [
                input_file(
                    "parts", nargs="+", help="shard HDF5 files (their .failures.csv beside them)"
                ),
                output_file("--out", required=True, help="merged HDF5 file"),
                output_file("--failures", help="merged failures CSV (default: <out>.failures.csv)"),
            ],
            merge_features_command,
        ),
    ]
