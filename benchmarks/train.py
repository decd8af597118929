"""Training input and epoch breakdown of MOVE: the loader before/after, and where an epoch goes.

Writes a float16 feature file like extraction's (``--stored-frames`` 150 per video, 2048 dims)
with ``--train-videos`` + ``--test-videos`` videos, then:

1. Loader alone: one pass of the training loader (``make_loaders``, 60 random frames per video,
   batch 128) of this checkout and of a baseline git ref (default ``main``, its ``move/``
   unpacked to a temporary folder), each in its own process, for each ``--workers`` count:
   videos/s and videos per CPU-second (workers included), best of ``--repeat``.
2. Epoch breakdown (this checkout): loading = the loader's full pass; compute = ``--steps`` real
   MOVE steps (forward, backward, Adam) timed and scaled to the epoch's step count; evaluation =
   the test loader's full pass (150 frames) plus ``--eval-batches`` forward passes scaled to
   all test batches; checkpoint = one real write of the per-epoch checkpoint. Evaluation runs
   every ``eval_every`` (5) epochs, so its per-epoch share is a fifth of it.

Scaled parts are marked in the output. The authors' MiniKinetics size (IR 0.01):

    python benchmarks/train.py --train-videos 17000 --test-videos 5000
    python benchmarks/train.py --train-videos 2000 --test-videos 500 --steps 3   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from common import REPO, baseline_code, cpu_seconds, run_measurement

EPOCH_TRAIN_VIDEOS, EPOCH_TEST_VIDEOS = 17000, 5000  # MiniKinetics200 at IR 0.01 (authors)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-videos", type=int, default=EPOCH_TRAIN_VIDEOS)
    parser.add_argument("--test-videos", type=int, default=EPOCH_TEST_VIDEOS)
    parser.add_argument("--stored-frames", type=int, default=150, help="frames per video (150)")
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", default="0,2", help="loader workers to compare (0,2)")
    parser.add_argument("--repeat", type=int, default=2, help="loader rounds; best kept (2)")
    parser.add_argument("--steps", type=int, default=5, help="MOVE steps timed (default 5)")
    parser.add_argument("--eval-batches", type=int, default=3, help="test forwards timed (3)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--baseline", default="main", help="git ref to compare, or 'none'")
    parser.add_argument("--dir", help="where to write the features (default: a temp folder)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def write_features(folder: Path, args: argparse.Namespace) -> None:
    """Random float16 features (content does not matter for speed) and a train/test split."""
    from move.features import create_feature_file, write_video_features
    from move.files import write_csv_atomic

    rng = np.random.default_rng(0)
    n = args.train_videos + args.test_videos
    labels = (rng.pareto(1.0, n) * 10).astype(int) % args.classes
    labels[: args.classes] = np.arange(args.classes)  # every class has a training video
    pool = rng.standard_normal((args.stored_frames * 64, args.dim), np.float32).astype(np.float16)
    attrs = {"backbone": "synthetic", "frames": args.stored_frames, "feature_dim": args.dim}
    with create_feature_file(folder / "f.h5", attrs) as handle:
        for i in range(n):
            start = rng.integers(0, len(pool) - args.stored_frames)
            features = pool[start : start + args.stored_frames]
            write_video_features(handle, f"v{i:06d}", features, f"class{labels[i]}", len(features))
        handle.attrs["complete"] = True
    split = ["train" if i < args.train_videos else "test" for i in range(n)]
    table = pd.DataFrame(
        {
            "video_id": [f"v{i:06d}" for i in range(n)],
            "class_index": labels.astype(str),
            "label": [f"class{c}" for c in labels],
            "split": split,
        }
    )
    write_csv_atomic(table, folder / "split.csv")


def settings_for(args: argparse.Namespace, workers: int):
    from move.training.settings import TrainSettings

    return TrainSettings.from_dict(
        {
            "batch_size": args.batch_size,
            "frames_train": 60,
            "frames_test": args.stored_frames,
            "feature_dim": args.dim,
            "device": args.device,
            "num_workers": workers,
        }
    )


def method_loader_args(args: argparse.Namespace, workers: int) -> tuple:
    """``make_loaders``' settings, sampler and options for MOVE (its method resolved)."""
    from move.training.methods import resolve_settings

    method, settings = resolve_settings(settings_for(args, workers))
    return settings, method.sampler, method.options(settings.method_settings)


def loader_pass(folder: Path, args: argparse.Namespace, workers: int) -> dict:
    """Two epochs of the training loader of the ``move`` on PYTHONPATH: seconds, CPU seconds.

    The first epoch includes starting the workers and opening the file; the second is what the
    other 99 epochs of a run cost (persistent workers).
    """
    from move.training.loading import load_problem, make_loaders

    torch.set_num_threads(args.threads)
    problem = load_problem(folder / "split.csv", folder / "f.h5", 10**9, 0)
    loader, _ = make_loaders(problem, folder / "f.h5", *method_loader_args(args, workers))
    result = {"videos": 0, "wall": [], "cpu": []}
    cpu = cpu_seconds()
    for epoch in range(2):
        if hasattr(loader.dataset, "set_epoch"):  # the baseline's loader
            loader.dataset.set_epoch(epoch)
        loader.sampler.set_epoch(epoch)
        wall, videos = time.perf_counter(), 0
        for batch in loader:  # (x, y, index) before, (x, y, index, anchor) after
            videos += len(batch[0])
        result["videos"] = videos
        result["wall"].append(time.perf_counter() - wall)
    del loader  # workers exit and are reaped: their CPU time counts
    result["cpu"] = cpu_seconds() - cpu
    return result


def run_loader(code: Path, folder: Path, args: argparse.Namespace, workers: int) -> dict:
    """``loader_pass`` in a fresh process with ``code`` first on PYTHONPATH."""
    arguments = ["--child", "--dir", str(folder), "--workers", str(workers)]
    arguments += ["--threads", str(args.threads), "--batch-size", str(args.batch_size)]
    arguments += ["--stored-frames", str(args.stored_frames), "--dim", str(args.dim)]
    return run_measurement(__file__, arguments, code)


def timed_steps(problem, folder: Path, args: argparse.Namespace) -> dict:
    """Seconds per MOVE step, per test forward pass, and of one checkpoint write (this checkout)."""
    from move.files import atomic_output
    from move.training.context import Batch
    from move.training.loop import Run, train_step
    from move.training.methods import resolve_settings

    method, settings = resolve_settings(settings_for(args, 0))
    device = torch.device(args.device)
    run = Run(problem, folder / "f.h5", settings, method)
    model, test_loader = run.model, run.test_loader
    batches = iter(run.train_loader)
    step_seconds = []
    for step in range(args.steps + 1):  # the first step warms up (allocations, Adam state)
        x, y, index, anchor = next(batches)
        batch = Batch(x.to(device).float(), y.to(device), index, anchor.to(device))
        started = time.perf_counter()
        train_step(model, run.method, batch, run.context, run.optimizer, None)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step:
            step_seconds.append(time.perf_counter() - started)
    model.eval()
    forward_seconds = []
    with torch.no_grad():
        for _, (x, _, _) in zip(range(args.eval_batches), test_loader, strict=False):
            x = x.to(device).float()
            started = time.perf_counter()
            torch.sigmoid(model(x)).cpu()
            forward_seconds.append(time.perf_counter() - started)
    state = {"model": model.state_dict(), "optimizer": run.optimizer.state_dict()}
    started = time.perf_counter()
    with atomic_output(folder / "checkpoint.pt") as tmp:
        torch.save(state, tmp)
    checkpoint_seconds = time.perf_counter() - started
    size_gb = (folder / "checkpoint.pt").stat().st_size / 1e9
    return {
        "step": float(np.median(step_seconds)),
        "test_forward": float(np.median(forward_seconds)),
        "checkpoint": checkpoint_seconds,
        "checkpoint_gb": size_gb,
    }


def test_pass(problem, folder: Path, args: argparse.Namespace, workers: int) -> float:
    """Seconds of one pass of the test loader (150 frames per video), this checkout."""
    from move.training.loading import make_loaders

    _, loader = make_loaders(problem, folder / "f.h5", *method_loader_args(args, workers))
    started = time.perf_counter()
    for _ in loader:
        pass
    return time.perf_counter() - started


def epoch_breakdown(folder: Path, args: argparse.Namespace, loading: float, workers: int) -> None:
    """Print where an epoch at the authors' sizes goes (loading measured, the rest scaled)."""
    from move.training.loading import load_problem

    problem = load_problem(folder / "split.csv", folder / "f.h5", 10**9, 0)
    timings = timed_steps(problem, folder, args)
    scale_train = EPOCH_TRAIN_VIDEOS / args.train_videos
    scale_test = EPOCH_TEST_VIDEOS / args.test_videos
    steps = EPOCH_TRAIN_VIDEOS // args.batch_size
    test_batches = -(-EPOCH_TEST_VIDEOS // args.batch_size)
    test_loading = test_pass(problem, folder, args, workers) * scale_test
    evaluation = test_loading + timings["test_forward"] * test_batches
    parts = {
        f"loading (train loader, {workers} workers, measured on {args.train_videos} videos"
        f"{', scaled' if scale_train != 1 else ''})": loading * scale_train,
        f"compute ({steps} MOVE steps; {args.steps} timed: {timings['step']:.2f} s each)": (
            timings["step"] * steps
        ),
        f"evaluation / 5 (test loading {test_loading:.1f} s + {test_batches} forwards; every "
        "5th epoch)": evaluation / 5,
        f"checkpoint write ({timings['checkpoint_gb']:.2f} GB, measured once)": timings[
            "checkpoint"
        ],
    }
    total = sum(parts.values())
    print(
        f"\nEpoch at the authors' size ({EPOCH_TRAIN_VIDEOS} train / {EPOCH_TEST_VIDEOS} test "
        f"videos, batch {args.batch_size}, 60 / {args.stored_frames} frames), device "
        f"{args.device}, {args.threads} torch thread(s):\n"
    )
    print("| part | seconds per epoch | share |")
    print("|---|---:|---:|")
    for name, seconds in parts.items():
        print(f"| {name} | {seconds:.1f} | {seconds / total:.1%} |")
    print(f"| total | {total:.1f} | {EPOCH_TRAIN_VIDEOS / total:.0f} train videos/s |")
    print(f"\nevaluation of all {EPOCH_TEST_VIDEOS} test videos: {evaluation:.1f} s")


def main() -> None:
    args = parse_args()
    if args.child:
        print(json.dumps(loader_pass(Path(args.dir), args, int(args.workers))))
        return
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        scratch = Path(scratch)
        started = time.perf_counter()
        write_features(scratch, args)
        size_gb = (scratch / "f.h5").stat().st_size / 1e9
        print(
            f"{args.train_videos} train + {args.test_videos} test videos x {args.stored_frames} "
            f"frames x {args.dim} (float16, {size_gb:.2f} GB, written in "
            f"{time.perf_counter() - started:.0f} s, page-cached), batch {args.batch_size}, 60 "
            f"frames drawn per training video, {args.threads} torch thread(s), "
            f"{os.cpu_count()} CPU cores\n"
        )
        codes = {"this checkout": REPO}
        if args.baseline != "none":
            codes = {f"baseline ({args.baseline})": baseline_code(args.baseline, scratch)} | codes
        print(
            "| loader | workers | epoch 1 s | epoch 2 s | videos/s (epoch 2) | videos per CPU-second (both) | speed-up (epoch 2) |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        loading = {}
        for workers in (int(w) for w in args.workers.split(",")):
            best = {name: None for name in codes}
            for _ in range(args.repeat):  # interleaved rounds: shared-machine noise
                for name, code in codes.items():
                    result = run_loader(code, scratch, args, workers)
                    if best[name] is None or sum(result["wall"]) < sum(best[name]["wall"]):
                        best[name] = result
            first = next(iter(best.values()))
            for name, result in best.items():
                first_s, second_s = result["wall"]
                print(
                    f"| {name} | {workers} | {first_s:.1f} | {second_s:.1f} | "
                    f"{result['videos'] / second_s:.0f} | "
                    f"{2 * result['videos'] / result['cpu']:.0f} | "
                    f"{first['wall'][1] / second_s:.1f}x |"
                )
            loading[workers] = best["this checkout"]["wall"][1]
        workers = max(loading)
        epoch_breakdown(scratch, args, loading[workers], workers)


if __name__ == "__main__":
    main()
