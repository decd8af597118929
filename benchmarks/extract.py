"""Extraction throughput: decode only, model only, full pipeline, on the same videos in one run.

Prints a markdown table of frames/s and the ratio full / min(decode, model): how close the
pipeline (DataLoader decode workers overlapping the backbone) runs to its slower stage.
Without --videos it writes synthetic demo videos (move.demo) to a temporary folder.

    python benchmarks/extract.py --videos 24 --size 128 --crop 112 --threads 1
    python benchmarks/extract.py --root data/demo/videos --annotations data/demo/annotations.csv \\
        --device cuda --crop 224 --resize 256 --frames 8 --num-workers 8
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from move.backbones import IMAGENET_MEAN, IMAGENET_STD, create_backbone
from move.demo import DemoSpec, make_demo_dataset
from move.device import resolve_device
from move.extract import DecodedVideos, ExtractSettings, embed_frames, extract_features, list_videos


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="video folder (default: synthetic demo videos)")
    parser.add_argument("--annotations", help="annotations CSV for --root")
    parser.add_argument("--videos", type=int, default=16, help="number of videos (default 16)")
    parser.add_argument("--size", type=int, default=128, help="synthetic video side (default 128)")
    parser.add_argument("--frames", type=int, default=8, help="frames T per video (default 8)")
    parser.add_argument("--resize", type=int, default=128, help="shorter side (default 128)")
    parser.add_argument("--crop", type=int, default=112, help="centre crop (default 112)")
    parser.add_argument("--backbone", default="resnet50", help="backbone name (default resnet50)")
    parser.add_argument("--batch-size", type=int, default=64, help="frames per forward (64)")
    parser.add_argument("--num-workers", type=int, default=1, help="decode workers (default 1)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds of the three measurements; best kept (1)"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        if args.root:
            root, annotations = Path(args.root), Path(args.annotations)
        else:
            per_class = max(1, args.videos // 4)
            spec = DemoSpec(
                n_classes=4, train_per_class=per_class, val_per_class=0, n_frames=32, size=args.size
            )
            annotations = make_demo_dataset(Path(scratch) / "demo", spec, progress=False)
            root = annotations.parent / "videos"
        videos = list_videos(annotations, root).iloc[: args.videos]
        videos = videos[videos.path != ""].reset_index(drop=True)
        settings = ExtractSettings(
            backbone=args.backbone,
            frames=args.frames,
            resize=args.resize,
            crop=args.crop,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            device=args.device,
        )
        n_frames = len(videos) * args.frames
        device = resolve_device(args.device)

        model = create_backbone(args.backbone, "none").to(device)
        if device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        dataset = DecodedVideos(videos, settings, IMAGENET_MEAN, IMAGENET_STD)
        synthetic = torch.randn(args.frames, 3, args.crop, args.crop)
        decode = model_rate = full = 0.0
        for round_ in range(args.repeat):  # rounds interleave stages: shared-machine noise
            # Decode only: the same Dataset the pipeline uses (decode + resize/crop/normalise),
            # in the main process, so it is one decoder's rate.
            start = time.perf_counter()
            for index in range(len(dataset)):
                assert dataset[index]["error"] is None
            decode = max(decode, n_frames / (time.perf_counter() - start))

            # Model only: synthetic preprocessed frames, same batches as the pipeline.
            embed_frames(model, synthetic, args.batch_size, device)  # warm-up
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(len(videos)):
                embed_frames(model, synthetic, args.batch_size, device)
            model_rate = max(model_rate, n_frames / (time.perf_counter() - start))

            # Full pipeline: extract_features (workers decode while the model runs), HDF5 written.
            out = Path(scratch) / f"bench{round_}.h5"
            start = time.perf_counter()
            counts = extract_features(
                videos, out, out.with_suffix(".failures.csv"), settings, progress=False
            )
            full = max(full, n_frames / (time.perf_counter() - start))
            assert counts["failed"] == 0

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"{len(videos)} videos x {args.frames} frames, {args.backbone} at {args.crop}px, "
        f"device {device_name}, {args.threads} torch thread(s), {args.num_workers} decode "
        f"worker(s), best of {args.repeat}"
    )
    print()
    print("| stage | frames/s |")
    print("|---|---|")
    print(f"| decode only (1 process) | {decode:.1f} |")
    print(f"| model only (synthetic) | {model_rate:.1f} |")
    print(f"| full pipeline | {full:.1f} |")
    print(f"| full / min(decode, model) | {full / min(decode, model_rate):.2f} |")


if __name__ == "__main__":
    main()
