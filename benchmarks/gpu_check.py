"""The GPU check in one command: what a first GPU run of Table 3 needs to know, measured.

On one GPU (about 5 minutes on an H100/H200) it reports, as a markdown table and a JSON file:

1. extraction: ResNet-50 frames/s on the device (bf16 + channels_last on CUDA, as `move extract`)
   against the decode rate of real-resolution videos (340x256, 10 s, written with PyAV) with the
   decode workers a job of the profile gets; the workers ``move extract`` sizes from the two
   rates, its end-to-end rate against the decode ceiling (workers x one worker's rate), and
   JPEG frames (the authors' frame folders) decoded on the device against one CPU worker;
2. GPU utilisation while the backbone runs (``torch.cuda.utilization``, where pynvml is there);
3. the full-size MOVE training step (batch 128, 60 frames, 200 classes) and a full epoch at
   MiniKinetics200's IR 0.01 size (17,216 train videos): steps x step time, and the loader's
   pass over synthetic float16 features at that size; step and epoch time for every
   ``train.precision`` (float32, tf32, bf16), eager and compiled (``train.compile``), with the
   GPU's utilisation while stepping;
4. evaluation of the 4,999 test videos (150 frames): forwards x time, plus the test loader;
5. checkpoint writes: the kept float16 checkpoint and the resume state;
6. throughput with 1, 2 and 4 runs sharing the GPU (separate processes, MOVE steps/s in all);
7. CPU-vs-device agreement: ResNet-50 feature cosine per frame, the metrics of a short
   training run on the CPU and on the device, and of a bf16 run against float32 on the device.

``--reduced`` shrinks every size (a tiny model, a few videos and steps) so the whole script runs
on the CPU in about a minute (tests/test_benchmarks.py runs it so). Sizes scaled from a
measurement are marked "scaled".

    python benchmarks/gpu_check.py --out gpu_check.json              # on a GPU
    python benchmarks/gpu_check.py --reduced --device cpu --out x.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

FULL = {"train_videos": 17216, "test_videos": 4999, "classes": 200, "dim": 2048, "frames": 150}
REDUCED = {"train_videos": 64, "test_videos": 16, "classes": 8, "dim": 64, "frames": 8}
TINY_MODEL = {"heads": 2, "d_k": 8, "d_v": 8, "clusters": 4, "codebook_dim": 16, "hidden_dim": 32}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--reduced", action="store_true", help="tiny sizes: a CPU smoke run")
    parser.add_argument("--out", default="gpu_check.json", help="JSON of every figure")
    parser.add_argument("--workers", type=int, default=3, help="decode workers (profile: 3)")
    parser.add_argument(
        "--feature-videos",
        type=int,
        default=2000,
        help="videos written for the loader (scaled to full size)",
    )
    parser.add_argument(
        "--no-compile",
        action="store_true",
        help="leave out the compiled variants (torch.compile takes a minute or more per variant)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(run, device: torch.device, repeat: int = 3) -> float:
    """Best of ``repeat`` wall times of ``run()`` (the device synchronised)."""
    best = float("inf")
    for _ in range(repeat):
        synchronize(device)
        started = time.perf_counter()
        run()
        synchronize(device)
        best = min(best, time.perf_counter() - started)
    return best


def extraction(args, device: torch.device, scratch: Path) -> dict:
    """Backbone frames/s on the device, decode frames/s with the workers, GPU utilisation."""
    from move.extraction.backbones import IMAGENET_MEAN, IMAGENET_STD, create_backbone
    from move.extraction.preprocess import normalise_frames

    model = create_backbone("resnet50", None).to(device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    crop, batch = (224, 64) if not args.reduced else (64, 8)
    frames = torch.randint(0, 255, (batch, 3, crop, crop), dtype=torch.uint8, device=device)

    def forward():
        with (
            torch.no_grad(),
            torch.autocast(device.type, dtype=dtype, enabled=device.type == "cuda"),
        ):
            x = normalise_frames(frames, IMAGENET_MEAN, IMAGENET_STD)
            if device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            model(x)

    forward()
    utilisation = []
    seconds = timed(forward, device)
    if device.type == "cuda":
        try:
            for _ in range(5):
                forward()
                utilisation.append(torch.cuda.utilization(device))
        except Exception:  # pynvml missing
            utilisation = []
    videos = write_videos(args, scratch)
    decode = decode_rate(args, videos)
    return {
        "backbone_frames_per_s": batch / seconds,
        "decode_frames_per_s": decode,
        "decode_workers": args.workers,
        "gpu_utilisation_percent": float(np.mean(utilisation)) if utilisation else None,
        **extraction_throughput(args, device, scratch, videos, batch / seconds),
    }


def write_videos(args, scratch: Path):
    """Real-resolution test videos (340x256, H.264 written with PyAV): the listing extraction
    takes (``video_id, label, split, path``)."""
    import av
    import pandas as pd

    folder = scratch / "videos"
    folder.mkdir(exist_ok=True)
    n_videos, n_frames = (8, 250) if not args.reduced else (2, 16)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n_videos):
        path = folder / f"v{i}.mp4"
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = 340, 256, "yuv420p"
            base = rng.integers(0, 255, (256, 340, 3), dtype=np.uint8)
            for t in range(n_frames):
                image = np.roll(base, 3 * t, axis=1)
                container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            container.mux(stream.encode())
        rows.append((f"v{i}", "x", "train", str(path)))
    return pd.DataFrame(rows, columns=["video_id", "label", "split", "path"])


def extract_settings(args, device: torch.device, workers: int):
    from move.extraction.settings import ExtractSettings

    frames = 150 if not args.reduced else 8
    shape = {} if not args.reduced else {"resize": 72, "crop": 64, "batch_size": 8}
    return ExtractSettings(
        frames=frames, weights="none", num_workers=workers, device=str(device), **shape
    )


def decode_rate(args, videos) -> float:
    """Frames/s of decoding, resizing and cropping real-resolution videos with the workers."""
    from move.extraction.decoding import decode_loader

    settings = extract_settings(args, torch.device("cpu"), args.workers)
    started = time.perf_counter()
    for _ in decode_loader(videos, settings, torch.device("cpu")):
        pass
    return len(videos) * settings.frames / (time.perf_counter() - started)


def extraction_throughput(args, device, scratch: Path, videos, backbone_rate: float) -> dict:
    """``move extract`` end to end (random ResNet-50; its log names the workers it sized) against
    the decode ceiling (the allowed workers x one worker's measured rate), and the JPEG frames
    of a frame folder decoded on the device against one CPU worker decoding them."""
    from move.extraction.decoding import DecodedVideos
    from move.extraction.extract import extract_features
    from move.extraction.preprocess import crop_transform
    from move.extraction.throughput import (
        decode_video_jpegs,
        encoded_jpeg_frames,
        measure_decode_rate,
        workers_for,
    )

    settings = extract_settings(args, device, args.workers)
    one_worker = measure_decode_rate(DecodedVideos(videos, settings))
    sizing = workers_for(one_worker, backbone_rate, args.workers)
    started = time.perf_counter()
    out = scratch / "extracted.h5"
    extract_features(videos, out, scratch / "extracted.failures.csv", settings)  # logs sizing
    extract_rate = len(videos) * settings.frames / (time.perf_counter() - started)
    folder = write_jpeg_folder(videos.path.iloc[0], scratch / "jpeg_frames" / "v0")
    jpegs = videos.head(1).assign(path=str(folder))
    cpu_jpeg = measure_decode_rate(DecodedVideos(jpegs, settings))
    encoded = encoded_jpeg_frames(folder, settings.frames)
    transform = crop_transform(settings)
    decode_video_jpegs(encoded, folder.name, device, transform)  # warm-up
    seconds = timed(lambda: decode_video_jpegs(encoded, folder.name, device, transform), device)
    return {
        "decode_one_worker_frames_per_s": one_worker,
        "decode_ceiling_frames_per_s": (one_worker or 0.0) * args.workers,
        "sized_decode_workers": sizing.workers,
        "decode_workers_to_keep_the_backbone_busy": sizing.needed,
        "extract_frames_per_s (end to end, with model load)": extract_rate,
        "jpeg_cpu_worker_frames_per_s": cpu_jpeg,
        "jpeg_device_decode_frames_per_s": len(encoded["jpegs"]) / seconds,
    }


def write_jpeg_folder(video: str, folder: Path) -> Path:
    """Every frame of ``video`` as ``img_00001.jpg`` ... at quality 95 (the authors' frames)."""
    import decord
    from torchvision.io import encode_jpeg

    folder.mkdir(parents=True)
    reader = decord.VideoReader(video)
    for i in range(len(reader)):
        image = torch.from_numpy(reader[i].asnumpy()).permute(2, 0, 1).contiguous()
        (folder / f"img_{i + 1:05d}.jpg").write_bytes(encode_jpeg(image, quality=95).numpy())
    return folder


def sizes(args) -> dict:
    return REDUCED if args.reduced else FULL


def features(args, scratch: Path) -> tuple[Path, Path, int]:
    """Synthetic float16 features (``--feature-videos`` of the full train split, scaled) and a
    split; returns (features, split, train videos written)."""
    import pandas as pd

    from move.features import create_feature_file, write_video_features
    from move.files import write_csv_atomic

    size = sizes(args)
    train = (
        min(args.feature_videos, size["train_videos"]) if not args.reduced else size["train_videos"]
    )
    test = max(size["classes"], int(train * size["test_videos"] / size["train_videos"]))
    rng = np.random.default_rng(0)
    pool = rng.standard_normal((size["frames"] * 32, size["dim"])).astype(np.float16)
    labels = np.arange(train + test) % size["classes"]
    path = scratch / "f.h5"
    attrs = {"backbone": "synthetic", "frames": size["frames"], "feature_dim": size["dim"]}
    with create_feature_file(path, attrs) as handle:
        for i, label in enumerate(labels):
            start = rng.integers(0, len(pool) - size["frames"])
            write_video_features(
                handle,
                f"v{i:06d}",
                pool[start : start + size["frames"]],
                f"c{label}",
                size["frames"],
            )
        handle.attrs["complete"] = True
    table = pd.DataFrame(
        {
            "video_id": [f"v{i:06d}" for i in range(len(labels))],
            "class_index": labels.astype(str),
            "label": [f"c{c}" for c in labels],
            "split": ["train" if i < train else "test" for i in range(len(labels))],
        }
    )
    write_csv_atomic(table, scratch / "split.csv")
    return path, scratch / "split.csv", train


def train_settings(args, device: torch.device, **changes):
    from move.training.settings import TrainSettings

    size = sizes(args)
    values = {
        "batch_size": 128 if not args.reduced else 8,
        "frames_train": 60 if not args.reduced else 4,
        "frames_test": size["frames"],
        "feature_dim": size["dim"],
        "device": str(device),
        "num_workers": 2,
        "resume_every_minutes": 0,
    } | (TINY_MODEL if args.reduced else {})
    return TrainSettings.from_dict(values | changes)


def training(args, device: torch.device, scratch: Path) -> dict:
    """MOVE step, epoch and evaluation at the benchmark's size; checkpoint writes."""
    from move.files import atomic_output
    from move.training.artefacts import compact_state
    from move.training.context import Batch
    from move.training.loading import load_problem
    from move.training.loop import Run, train_step
    from move.training.methods import resolve_settings

    path, split, written = features(args, scratch)
    size = sizes(args)
    problem = load_problem(split, path, 10**9, 0)
    method, settings = resolve_settings(train_settings(args, device))
    run = Run(problem, path, settings, method)
    loader_started = time.perf_counter()
    batches = []
    for i, batch in enumerate(run.train_loader):
        if i < 4:
            batches.append(batch)
    loader_seconds = time.perf_counter() - loader_started
    steps = []
    for i, (x, y, index, anchor) in enumerate(batches * 2):
        batch = Batch(x.to(device).float(), y.to(device), index, anchor.to(device))
        synchronize(device)
        started = time.perf_counter()
        train_step(run.model, run.method, batch, run.context, run.optimizer, None)
        synchronize(device)
        if i:  # the first step warms up
            steps.append(time.perf_counter() - started)
    step = float(np.median(steps))
    full_steps = size["train_videos"] // settings.batch_size
    scale = size["train_videos"] / written
    run.model.eval()
    test_started = time.perf_counter()
    forwards = []
    with torch.no_grad():
        for x, _, _ in run.test_loader:
            x = x.to(device).float()
            synchronize(device)
            started = time.perf_counter()
            torch.sigmoid(run.model(x)).cpu()
            forwards.append(time.perf_counter() - started)
    test_seconds = time.perf_counter() - test_started
    test_scale = size["test_videos"] / len(problem.test)
    saved = {}
    for name, state in (
        ("checkpoint_float16", {"model": compact_state(run.model.state_dict(), "float16")}),
        (
            "resume_state",
            {"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict()},
        ),
    ):
        started = time.perf_counter()
        with atomic_output(scratch / f"{name}.pt") as tmp:
            torch.save(state, tmp)
        saved[name] = {
            "seconds": time.perf_counter() - started,
            "mb": (scratch / f"{name}.pt").stat().st_size / 1e6,
        }
    loader_epoch = loader_seconds * scale
    variants = precision_variants(args, device, problem, path, batches, full_steps, loader_epoch)
    return {
        "step_ms": step * 1e3,
        "epoch_compute_s": step * full_steps,
        "epoch_loader_s (scaled)": loader_epoch,
        "epoch_s (max of the two, scaled)": max(step * full_steps, loader_epoch),
        "loader_videos_per_s": written / loader_seconds,
        "evaluation_s (scaled)": test_seconds * test_scale,
        "evaluation_forward_s (scaled)": float(np.sum(forwards)) * test_scale,
        **{
            f"{name}_{key}": value
            for name, result in saved.items()
            for key, value in result.items()
        },
        **variants,
    }


def precision_variants(args, device, problem, path, batches, full_steps, loader_epoch) -> dict:
    """Step time (median after two warm-up steps: a compiled model compiles in them), the full
    epoch it gives (against the loader's), and the GPU's utilisation while stepping, for every
    ``train.precision``, eager and compiled (unless ``--no-compile``)."""
    from move.training.context import Batch
    from move.training.loop import Run, train_step
    from move.training.methods import resolve_settings
    from move.training.precision import matmul_precision
    from move.training.settings import PRECISIONS

    result = {}
    for compiled in (False,) if args.no_compile else (False, True):
        for precision in PRECISIONS:
            changes = {"precision": precision, "compile": compiled, "num_workers": 0}
            method, settings = resolve_settings(train_settings(args, device, **changes))
            torch.manual_seed(0)
            run = Run(problem, path, settings, method)
            name = f"{precision}{' compiled' if compiled else ''}"
            steps, utilisation = [], []
            started_all = time.perf_counter()
            with matmul_precision(precision, device):
                for i, (x, y, index, anchor) in enumerate(batches * 2):
                    batch = Batch(x.to(device).float(), y.to(device), index, anchor.to(device))
                    synchronize(device)
                    started = time.perf_counter()
                    train_step(run.model, run.method, batch, run.context, run.optimizer, None)
                    synchronize(device)
                    if i >= 2:
                        steps.append(time.perf_counter() - started)
                        utilisation.append(gpu_utilisation(device))
            step = float(np.median(steps))
            used = [u for u in utilisation if u is not None]
            result[f"step_ms {name}"] = step * 1e3
            result[f"epoch_s {name} (max of compute and loader, scaled)"] = max(
                step * full_steps, loader_epoch
            )
            result[f"warmup_s {name} (two steps; compiled: with compiling)"] = (
                time.perf_counter() - started_all - float(np.sum(steps))
            )
            result[f"gpu_utilisation_percent {name}"] = float(np.mean(used)) if used else None
    return result


def gpu_utilisation(device: torch.device) -> float | None:
    """``torch.cuda.utilization`` of the device (None on the CPU, or without pynvml)."""
    if device.type != "cuda":
        return None
    try:
        return float(torch.cuda.utilization(device))
    except Exception:  # pynvml missing
        return None


CHILD_STEPS = """
import json, sys, time, torch
sys.path.insert(0, sys.argv[1])
from move.training.model import VideoClassifier
from move.training.settings import ModelSettings
reduced, device, steps = sys.argv[2] == "1", torch.device(sys.argv[3]), int(sys.argv[4])
model_settings = ModelSettings(**({"feature_dim": 64, "heads": 2, "d_k": 8, "d_v": 8, "clusters": 4,
    "codebook_dim": 16, "hidden_dim": 32} if reduced else {}))
model = VideoClassifier(8 if reduced else 200, model_settings).to(device)
optimizer = torch.optim.Adam(model.parameters(), 1e-4)
x = torch.randn(8 if reduced else 128, 4 if reduced else 60, model_settings.feature_dim, device=device)
y = torch.randint(0, 2, (x.shape[0], 8 if reduced else 200), device=device).float()
def step():
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
    optimizer.zero_grad(); loss.backward(); optimizer.step()
step()
if device.type == "cuda": torch.cuda.synchronize()
started = time.perf_counter()
for _ in range(steps): step()
if device.type == "cuda": torch.cuda.synchronize()
print(json.dumps({"steps": steps, "seconds": time.perf_counter() - started}))
"""


def sharing(args, device: torch.device) -> dict:
    """Steps/s of 1, 2 and 4 training processes sharing the device (all processes together)."""
    steps = 20 if not args.reduced else 3
    result = {}
    for runs in (1, 2, 4):
        command = [
            sys.executable,
            "-c",
            CHILD_STEPS,
            str(REPO),
            "1" if args.reduced else "0",
            str(device),
            str(steps),
        ]
        jobs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(runs)]
        outputs = [json.loads(job.communicate()[0].strip().splitlines()[-1]) for job in jobs]
        result[f"{runs}_runs_steps_per_s"] = sum(o["steps"] / o["seconds"] for o in outputs)
    return result


def agreement(args, device: torch.device, scratch: Path) -> dict:
    """ResNet-50 features on the CPU (float32) and on the device (as extraction runs), and a short
    training run's metrics on both."""
    from move.extraction.backbones import IMAGENET_MEAN, IMAGENET_STD, create_backbone
    from move.extraction.preprocess import normalise_frames
    from move.training.loop import train

    crop = 224 if not args.reduced else 64
    frames = torch.randint(0, 255, (8, 3, crop, crop), dtype=torch.uint8)
    model = create_backbone("resnet50", None)
    with torch.no_grad():
        cpu = model(normalise_frames(frames, IMAGENET_MEAN, IMAGENET_STD)).float()
        on_device = model.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            other = (
                on_device(normalise_frames(frames.to(device), IMAGENET_MEAN, IMAGENET_STD))
                .float()
                .cpu()
            )
    cosine = torch.nn.functional.cosine_similarity(cpu, other, dim=1)
    path, split = scratch / "f.h5", scratch / "split.csv"
    metrics = {}
    for name, where in (("cpu", torch.device("cpu")), ("device", device)):
        settings = train_settings(args, where, epochs=2, eval_every=1, num_workers=0, **TINY_MODEL)
        results = train(
            path,
            split,
            scratch / f"{name}.json",
            scratch / f"{name}.pt",
            settings,
            10**9,
            0,
            progress=False,
        )
        metrics[name] = results["final"]["mAP"]
    settings = train_settings(
        args, device, epochs=2, eval_every=1, num_workers=0, precision="bf16", **TINY_MODEL
    )
    bf16 = train(path, split, scratch / "bf16.json", scratch / "bf16.pt", settings, 10**9, 0, False)
    return {
        "feature_cosine_min": float(cosine.min()),
        "train_mAP_cpu": metrics["cpu"],
        "train_mAP_device": metrics["device"],
        "train_mAP_difference": abs(metrics["cpu"] - metrics["device"]),
        "train_mAP_device_bf16": bf16["final"]["mAP"],
        "train_mAP_bf16_difference": abs(bf16["final"]["mAP"] - metrics["device"]),
    }


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    started = time.perf_counter()
    report = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "reduced": args.reduced,
    }
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        for name, part in (
            ("extraction", extraction),
            ("training", training),
            ("agreement", agreement),
        ):
            report[name] = part(args, device, scratch)
            print(f"{name}: done after {time.perf_counter() - started:.0f} s", file=sys.stderr)
        report["sharing"] = sharing(args, device)
    report["seconds"] = time.perf_counter() - started
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"| GPU check on {report['device']}{' (reduced sizes)' if args.reduced else ''} | value |"
    )
    print("|---|---:|")
    for section in ("extraction", "training", "agreement", "sharing"):
        for key, value in report[section].items():
            shown = (
                "n/a" if value is None else f"{value:.4g}" if isinstance(value, float) else value
            )
            print(f"| {section}: {key} | {shown} |")
    print(f"| total seconds | {report['seconds']:.0f} |")


if __name__ == "__main__":
    main()
