"""Scale rehearsal: every stage at Imbalanced-MiniKinetics200's real size, through the real code,
with stand-in inputs, on this machine; per stage wall time, CPU time, peak memory, disk written.

Stand-ins: lists with the authors' shape (64,846 train ids over 200 classes, 123 to 399 a class;
4,999 val ids, 25 a class; ids generated), a Kinetics CSV naming them, synthetic float16 features
(150 frames x 2048) for the IR 0.01 split's train videos and the test set (~13.6 GB), a sample of
real-resolution videos (340x256 and 1280x720, 10 s at 25 fps, written with PyAV). Stages, each in
its own process (so its peak memory is its own):

  lists        move list-annotations over the 69,845 ids
  split_lists  move split at IR 0.01 from the lists alone
  features     the synthetic feature file of the split's train and test videos
  missing      move missing: the listed videos without features (full list against the file)
  split        move split at IR 0.01 from the videos with features (their stored values checked)
  decode       decoding + resize + crop of the sample videos (the extraction's CPU side; the
               backbone is left out: model-free stand-in), extrapolated to 69,845 videos
  loader       one epoch of the training loader (60 frames a video, 2 workers): videos/s
  evaluation   one full evaluation pass (150 frames of each test video) with a shrunk model (said)
  checkpoint   the full-size model's kept checkpoint (float16) and resume state written, then
               the resume state read back
  tables       move paper-table over 168 results files (Table 3: 56 runs x 3 seeds)

    python benchmarks/scale.py --dir /big/disk/scale      # ~20 GB there, ~25 minutes here
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

STAGES = (
    "lists",
    "split_lists",
    "features",
    "missing",
    "split",
    "decode",
    "loader",
    "evaluation",
    "checkpoint",
    "tables",
)
CLASSES, TRAIN_IDS, VAL_PER_CLASS, IR = 200, 64846, 25, 0.01


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="working folder (~20 GB)")
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset")
    parser.add_argument("--videos", type=int, default=4, help="sample videos per resolution")
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    return parser.parse_args()


def train_counts() -> np.ndarray:
    """Train ids per class in the authors' shape: 399 down to 123, 64,846 in all."""
    x = (np.arange(CLASSES) + 0.5) / CLASSES
    counts = np.round(399 - 276 * x**2.68).astype(int)
    counts[0] += TRAIN_IDS - counts.sum()
    return counts


def video_id(c: int, i: int) -> str:
    return (
        f"{'-' if i % 7 == 0 else 'y'}{c:03d}k{i:06d}"[:11] + f"_{i % 900:06d}_{i % 900 + 10:06d}"
    )


def stage_lists(root: Path) -> str:
    rows, train, val = [], [], []
    for c, n in enumerate(train_counts()):
        for i in range(n + VAL_PER_CLASS - (c == 0)):
            vid = video_id(c, i)
            split = "train" if i < n else "val"
            (train if split == "train" else val).append(f"{vid} {c}")
            rows.append(f"class {c:03d},{vid[:11]},{i % 900},{i % 900 + 10},{split}")
    (root / "train.lst").write_text("\n".join(train) + "\n")
    (root / "val.lst").write_text("\n".join(val) + "\n")
    (root / "k400.csv").write_text(
        "label,youtube_id,time_start,time_end,split\n" + "\n".join(rows) + "\n"
    )
    return cli(["list-annotations", "--train-list", root / "train.lst", "--val-list", root / "val.lst",
                "--kinetics", root / "k400.csv", "--out", root / "annotations.csv"])  # fmt: skip


def split_args(root: Path, out: str) -> list:
    return ["split", "--annotations", root / "annotations.csv", "--ir", str(IR), "--max-per-class",
            "400", "--head-min", "301", "--tail-max", "40", "--out", root / f"{out}.csv",
            "--class-counts", root / f"{out}.class_counts.csv"]  # fmt: skip


def stage_features(root: Path) -> str:
    import pandas as pd

    from move.features import create_feature_file, write_video_features

    split = pd.read_csv(root / "split_lists.csv", dtype=str)
    rng = np.random.default_rng(0)
    pool = (rng.standard_normal((150 * 64, 2048)) + 1).astype(np.float16)
    attrs = {"backbone": "resnet50", "weights": "synthetic", "frames": 150, "feature_dim": 2048}
    with create_feature_file(root / "f.h5", attrs) as handle:
        for video, label in zip(split.video_id, split.label, strict=True):
            start = int(rng.integers(0, len(pool) - 150))
            write_video_features(handle, video, pool[start : start + 150], label, 150)
        handle.attrs["complete"] = True
    (root / "f.failures.csv").write_text("video_id,path,reason\n")
    return f"{len(split)} videos, {(root / 'f.h5').stat().st_size / 1e9:.1f} GB"


def stage_decode(root: Path, per_size: int) -> str:
    import av
    import pandas as pd
    import torch

    from move.extraction.decoding import decode_loader
    from move.extraction.settings import ExtractSettings

    rows, rng = [], np.random.default_rng(0)
    for width, height in ((340, 256), (1280, 720)):
        for i in range(per_size):
            path = root / "videos" / f"v{width}_{i}.mp4"
            path.parent.mkdir(exist_ok=True)
            if not path.is_file():
                with av.open(str(path), "w") as container:
                    stream = container.add_stream("libx264", rate=25)
                    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                    base = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
                    for t in range(250):
                        frame = np.roll(base, 4 * t, axis=1)
                        container.mux(
                            stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24"))
                        )
                    container.mux(stream.encode())
            rows.append((path.stem, "x", "train", str(path)))
    videos = pd.DataFrame(rows, columns=["video_id", "label", "split", "path"])
    settings = ExtractSettings(
        frames=150, weights="none", resize=256, crop=224, num_workers=1, device="cpu"
    )
    started = time.perf_counter()
    for _ in decode_loader(videos, settings, torch.device("cpu")):
        pass
    seconds = time.perf_counter() - started
    per_video = seconds / len(videos)
    return (f"{len(videos) / seconds:.2f} videos/s with 1 worker ({per_video:.1f} s a video, half "
            f"340x256, half 1280x720): {69845 * per_video / 3600:.0f} worker-hours for 69,845 videos")  # fmt: skip


def train_settings(**changes):
    from move.training.settings import TrainSettings

    return TrainSettings.from_dict({"batch_size": 128, "frames_train": 60, "frames_test": 150,
                                    "num_workers": 2, "device": "cpu"} | changes)  # fmt: skip


def stage_loader(root: Path) -> str:
    from move.training.loading import load_problem, make_loaders
    from move.training.methods import resolve_settings

    problem = load_problem(root / "split.csv", root / "f.h5", 301, 40)
    method, settings = resolve_settings(train_settings())
    loader, _ = make_loaders(
        problem, root / "f.h5", settings, method.sampler, method.options(settings.method_settings)
    )
    started, videos = time.perf_counter(), 0
    for batch in loader:
        videos += len(batch[0])
    seconds = time.perf_counter() - started
    return f"{videos} train videos in {seconds:.0f} s: {videos / seconds:.0f} videos/s (first epoch, workers starting)"


def stage_evaluation(root: Path) -> str:
    import torch

    from move.training.evaluation import evaluate_model
    from move.training.loading import load_problem
    from move.training.loop import Run
    from move.training.methods import resolve_settings

    torch.set_num_threads(1)
    problem = load_problem(root / "split.csv", root / "f.h5", 301, 40)
    shrunk = {"heads": 2, "d_k": 32, "d_v": 32, "clusters": 8, "codebook_dim": 64, "hidden_dim": 64}
    method, settings = resolve_settings(train_settings(**shrunk))
    run = Run(problem, root / "f.h5", settings, method)
    started = time.perf_counter()
    metrics = evaluate_model(run.model, run.test_loader, problem, run.device)
    return (f"{len(problem.test)} test videos x 150 frames in {time.perf_counter() - started:.0f} s "
            f"(model shrunk: {shrunk}); mAP {metrics['mAP']:.3f} (random)")  # fmt: skip


def stage_checkpoint(root: Path) -> str:
    import torch

    from move.training.artefacts import compact_state
    from move.training.model import VideoClassifier
    from move.training.settings import ModelSettings

    model = VideoClassifier(CLASSES, ModelSettings())
    optimizer = torch.optim.Adam(model.parameters())
    for parameter in model.parameters():
        parameter.grad = torch.zeros_like(parameter)
    optimizer.step()
    times = {}
    for name, state in (("kept float16", {"model": compact_state(model.state_dict(), "float16")}),
                        ("resume state", {"model": model.state_dict(), "optimizer": optimizer.state_dict()})):  # fmt: skip
        started = time.perf_counter()
        torch.save(state, root / f"{name.replace(' ', '_')}.pt")
        times[name] = (
            time.perf_counter() - started,
            (root / f"{name.replace(' ', '_')}.pt").stat().st_size / 1e6,
        )
    started = time.perf_counter()
    torch.load(root / "resume_state.pt", weights_only=False)
    read = time.perf_counter() - started
    return (
        "; ".join(f"{n}: {mb:.0f} MB in {s:.1f} s" for n, (s, mb) in times.items())
        + f"; resume read {read:.1f} s"
    )


def stage_tables(root: Path) -> str:
    from move.reporting.paper import MINIKINETICS_RATIOS, TABLE_3_ROWS
    from move.training.methods import variant_settings

    folder = root / "results"
    folder.mkdir(exist_ok=True)
    rng, paths = np.random.default_rng(0), []
    for variant in TABLE_3_ROWS:
        switches = variant_settings(variant)
        for backbone in ("resnet50", "resnet101"):
            for ratio in MINIKINETICS_RATIOS:
                for seed in (0, 1, 2):
                    final = {
                        k: float(rng.uniform(0.4, 0.7))
                        for k in ("mAP", "head_mAP", "medium_mAP", "tail_mAP", "top1", "top5")
                    }
                    document = {**switches, "dataset": "minikinetics", "backbone": backbone,
                                "imbalance_ratio": ratio, "seed": seed, "final": final | {"epoch": 100},
                                "best": final | {"epoch": 95}, "settings": {**switches, "seed": seed},
                                "history": [{"epoch": e, "loss": 0.1} for e in range(100)]}  # fmt: skip
                    path = folder / f"{variant}_{backbone}_{ratio}_{seed}.json"
                    path.write_text(json.dumps(document))
                    paths.append(path)
    return cli(
        ["paper-table", *paths, "--out-md", root / "paper.md", "--out-csv", root / "paper.csv"]
    )


def cli(argv: list) -> str:
    """Run a ``move`` command in this process; its printed line."""
    import contextlib
    import io

    from move.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([str(a) for a in argv] + ["--quiet"])
    if code != 0:
        raise SystemExit(f"move {argv[0]} failed")
    return out.getvalue().strip().splitlines()[-1]


def run_stage(name: str, root: Path, args: argparse.Namespace) -> str:
    if name == "lists":
        return stage_lists(root)
    if name == "split_lists":
        return cli(split_args(root, "split_lists"))
    if name == "missing":
        return cli(["missing", "--annotations", root / "annotations.csv", "--features", root / "f.h5",
                    "--failures", root / "f.failures.csv", "--max-missing-share", "1.0",
                    "--out", root / "missing.csv"])  # fmt: skip
    if name == "split":
        return cli([*split_args(root, "split"), "--features", root / "f.h5", "--failures",
                    root / "f.failures.csv", "--max-missing-share", "1.0"])  # fmt: skip
    if name == "decode":
        return stage_decode(root, args.videos)
    return globals()[f"stage_{name}"](root)


def written_bytes() -> int:
    """Bytes this process has caused to be written to storage (``/proc/self/io``)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def child(name: str, root: Path, args: argparse.Namespace) -> None:
    started, written = time.perf_counter(), written_bytes()
    note = run_stage(name, root, args)
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    print(json.dumps({
        "stage": name, "wall_s": time.perf_counter() - started,
        "cpu_s": own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime,
        "peak_rss_gb": max(own.ru_maxrss, kids.ru_maxrss) / 1e6,
        "written_gb": (written_bytes() - written) / 1e9, "note": note,
    }))  # fmt: skip


def main() -> None:
    args = parse_args()
    root = Path(args.dir)
    root.mkdir(parents=True, exist_ok=True)
    if args.stage:
        return child(args.stage, root, args)
    load = os.getloadavg()[0]
    print(f"scale rehearsal in {root} on {os.cpu_count()} cores, load {load:.1f} at the start\n")
    print("| stage | wall (s) | CPU (s) | peak memory (GB) | disk written (GB) | what |")
    print("|---|---:|---:|---:|---:|---|")
    results = []
    for name in args.stages.split(","):
        command = [
            sys.executable,
            __file__,
            "--dir",
            str(root),
            "--stage",
            name,
            "--videos",
            str(args.videos),
        ]
        done = subprocess.run(
            command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}
        )
        if done.returncode != 0:
            raise SystemExit(f"stage {name} failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(result)
        print(f"| {name} | {result['wall_s']:.1f} | {result['cpu_s']:.1f} | {result['peak_rss_gb']:.2f} "
              f"| {result['written_gb']:.2f} | {result['note']} |", flush=True)  # fmt: skip
    (root / "scale.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
