"""Training speed of MOVE: seconds per epoch, peak memory, share of time loading vs. computing.

Writes N synthetic videos x 60 frames x 2048 dims (float16, the extraction default) to an HDF5
feature file, then trains MOVE with the authors' architecture and batch size (128) for a few
epochs through ``move.train.train`` (the real loader and loop). Loading time is the time the loop
waits for the next batch (all of it with ``--workers 0``); compute is forward + backward + step.

    python benchmarks/train.py --videos 10000            # the issue's size
    python benchmarks/train.py --videos 1000 --epochs 1  # quick
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from move.features import create_feature_file, write_video_features
from move.splits import write_csv_atomic
from move.train import TrainSettings, train


def write_features(
    path: Path, split_path: Path, videos: int, test: int, frames: int, dim: int, classes: int
) -> None:
    """Random long-tailed-ish features (content does not matter for speed), float16."""
    rng = np.random.default_rng(0)
    labels = (rng.pareto(1.0, videos + test) * 10).astype(int) % classes
    rows = []
    with create_feature_file(
        path, {"backbone": "synthetic", "frames": frames, "feature_dim": dim}
    ) as handle:
        for i in range(videos + test):
            x = rng.standard_normal((frames, dim), dtype=np.float32).astype(np.float16)
            write_video_features(handle, f"v{i:06d}", x, f"class{labels[i]}", frames)
            rows.append(
                (
                    f"v{i:06d}",
                    str(labels[i]),
                    f"class{labels[i]}",
                    "train" if i < videos else "test",
                )
            )
        handle.attrs["complete"] = True
    table = pd.DataFrame(rows, columns=["video_id", "class_index", "label", "split"])
    write_csv_atomic(table, split_path)


def load_only(tmp: Path, settings: TrainSettings, args: argparse.Namespace, size_gb: float) -> None:
    """One epoch of the real training loader without the model: seconds and videos/s."""
    from move.train import load_problem, make_loaders

    problem = load_problem(tmp / "split.csv", tmp / "f.h5", 10**9, 0)
    loader, _ = make_loaders(problem, tmp / "f.h5", settings)
    for cold in (True, False):
        started = time.perf_counter()
        batches = sum(1 for _ in loader)
        seconds = time.perf_counter() - started
        print(
            f"loader only ({'first' if cold else 'second'} pass, {size_gb:.2f} GB file): {batches} batches of "
            f"{args.batch_size}, {seconds:.1f} s, {batches * args.batch_size / seconds:.0f} videos/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=10000, help="training videos")
    parser.add_argument("--test-videos", type=int, default=256)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--method", default="move")
    parser.add_argument("--dir", help="where to write the features (default: a temp folder)")
    parser.add_argument(
        "--load-only",
        action="store_true",
        help="only iterate the training loader for one epoch (the loading side at full size)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        write_features(
            tmp / "f.h5",
            tmp / "split.csv",
            args.videos,
            args.test_videos,
            args.frames,
            args.dim,
            args.classes,
        )
        write_seconds = time.perf_counter() - started
        size_gb = (tmp / "f.h5").stat().st_size / 1e9
        settings = TrainSettings.from_dict(
            {
                "method": args.method,
                "aggregators": True,
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "frames_train": args.frames,
                "frames_test": args.frames,
                "eval_every": 10**6,
                "feature_dim": args.dim,
                "device": args.device,
                "num_workers": args.workers,
            }
        )
        if args.load_only:
            load_only(tmp, settings, args, size_gb)
            return
        if args.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        results = train(
            tmp / "f.h5",
            tmp / "split.csv",
            tmp / "r.json",
            tmp / "r.pt",
            settings,
            10**9,
            0,
            progress=False,
        )
        total = time.perf_counter() - started
    peak_rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    history = results["history"]
    print(
        f"MOVE training speed: {args.videos} train videos x {args.frames} frames x {args.dim} "
        f"(HDF5 float16, {size_gb:.2f} GB, written in {write_seconds:.0f} s), batch {args.batch_size}, "
        f"device {args.device}, {args.threads} thread(s), {args.workers} loader worker(s)\n"
    )
    print("| epoch | seconds | loading s | compute s | loading share | videos/s |")
    print("|---:|---:|---:|---:|---:|---:|")
    for record in history:
        load, compute = record["seconds_loading"], record["seconds_compute"]
        seconds = load + compute
        print(
            f"| {record['epoch']} | {seconds:.1f} | {load:.1f} | {compute:.1f} | "
            f"{load / seconds:.1%} | {args.videos / seconds:.1f} |"
        )
    print(f"\npeak resident memory (process): {peak_rss_gb:.2f} GB")
    if args.device.startswith("cuda"):
        print(f"peak GPU memory allocated: {torch.cuda.max_memory_allocated() / 1e9:.2f} GB")
    print(f"total train() time incl. final test evaluation and checkpoint: {total:.1f} s")


if __name__ == "__main__":
    main()
