"""Extraction throughput on realistic videos, before and after, in one run.

Writes textured, moving H.264 videos with PyAV (Kinetics-like: 10 s at 30 fps, High profile,
B-frames) at 340x256 and 1280x720, then measures, for the code of this checkout and for a
baseline git ref (default ``main``, its ``move/`` unpacked to a temporary folder), each in its
own process: frames/s of decode, preprocess (what a decode worker does after decoding), model
(an identity stand-in by default: the model-free ceiling) and the full pipeline
(``extract_features`` with ``--workers`` decode workers, HDF5 written), the frames per
CPU-second of each (per core; robust on a shared machine), the ratio full / min(stages) and the
peak memory of decoding and preprocessing one video. Also compares decoding strategies and
decoders (decord batch/seek/sequential, torchcodec when importable, PyAV) on the same frames.

    python benchmarks/extract.py                         # both sizes, 6 videos each, T = 150
    python benchmarks/extract.py --sizes 1920x1080 --videos 2 --baseline none
    python benchmarks/extract.py --backbone resnet50 --device cuda --workers 8 --videos 32
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from common import REPO, baseline_code, cpu_seconds, run_measurement

STAGES = ("decode", "preprocess", "model", "full")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="340x256,1280x720", help="WxH list (default both)")
    parser.add_argument("--videos", type=int, default=6, help="videos per size (default 6)")
    parser.add_argument("--video-frames", type=int, default=300, help="frames per video (300)")
    parser.add_argument("--frames", type=int, default=150, help="frames T sampled (150)")
    parser.add_argument("--resize", type=int, default=256)
    parser.add_argument("--crop", type=int, default=224)
    parser.add_argument("--backbone", default="identity", help="identity (default) or a name")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1, help="decode workers, full pipeline (1)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--repeat", type=int, default=2, help="rounds; best kept (default 2)")
    parser.add_argument("--baseline", default="main", help="git ref to compare, or 'none'")
    parser.add_argument("--dir", help="keep the videos here (default: a temporary folder)")
    parser.add_argument("--no-decoders", action="store_true", help="skip the decoder comparison")
    parser.add_argument("--child", choices=["stages", "memory", "decoders"], help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    return parser.parse_args()


def texture(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A natural-looking uint8 image: noise at three scales plus oriented waves."""
    image = np.zeros((height, width, 3), np.float32)
    for scale in (4, 16, 64):
        coarse = rng.random((height // scale + 2, width // scale + 2, 3), dtype=np.float32)
        image += np.repeat(np.repeat(coarse, scale, 0), scale, 1)[:height, :width] * scale / 84
    yy, xx = np.mgrid[0:height, 0:width]
    image += 0.15 * np.sin(xx[..., None] / 7.0 + yy[..., None] / 11.0 + np.arange(3))
    image = (image - image.min()) / (image.max() - image.min())
    return (image * 255).astype(np.uint8)


def write_video(path: Path, width: int, height: int, n_frames: int, seed: int) -> None:
    """H.264 (x264 defaults: High profile, B-frames, keyint 250) of a panning texture + an object."""
    import av

    rng = np.random.default_rng(seed)
    scene = texture(height + 200, width + 400, rng)
    tmp = path.with_name(path.name + ".tmp.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        for t in range(n_frames):
            dx, dy = int(t * 1.3) % 400, int(100 + 60 * np.sin(t / 20 + seed))
            frame = scene[dy : dy + height, dx : dx + width].copy()
            cy = int(height / 2 + height / 3 * np.sin(t / 15 + seed))
            cx = int(width / 2 + width / 3 * np.cos(t / 23))
            r = height // 8
            frame[max(0, cy - r) : cy + r, max(0, cx - r) : cx + r] = (230, 60, 40)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)


def make_videos(root: Path, width: int, height: int, count: int, n_frames: int) -> Path:
    """``root/<W>x<H>/{videos/<label>/<id>.mp4, annotations.csv}``; existing videos are reused."""
    folder = root / f"{width}x{height}"
    rows = ["label,youtube_id,time_start,time_end,split"]
    for i in range(count):
        youtube_id = f"bench{width}x{height}v{i:03d}"
        path = folder / "videos" / "synthetic" / f"{youtube_id}_000000_000010.mp4"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_video(path, width, height, n_frames, seed=i)
        rows.append(f"synthetic,{youtube_id},0,10,train")
    (folder / "annotations.csv").write_text("\n".join(rows) + "\n")
    return folder


class IdentityBackbone:
    """The model-free stand-in: mean of each frame's channels as its 'feature' (free to run)."""

    n_segment = 1

    def to(self, *args, **kwargs):
        return self

    def forward_features(self, frames):
        return frames.float().mean((2, 3))


def timed(run) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of ``run()``."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    run()
    return time.perf_counter() - wall, cpu_seconds() - cpu


class CodeUnderTest:
    """The extraction functions of the ``move`` under test, wherever that version keeps them
    (one ``extract.py`` before it was split by concern; ``decoding``, ``preprocess``,
    ``embedding`` beside it since)."""

    def __init__(self) -> None:
        import importlib

        self.modules = []
        for name in ("extract", "decoding", "preprocess", "embedding", "video"):
            try:
                self.modules.append(importlib.import_module(f"move.extraction.{name}"))
            except ImportError:
                continue

    def __getattr__(self, name: str):
        for module in self.modules:
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(name)

    def patch(self, name: str, value) -> None:
        """Replace ``name`` in every module that holds it (each calls its own global)."""
        for module in self.modules:
            if hasattr(module, name):
                setattr(module, name, value)


def child_setup(args: argparse.Namespace):
    """The ``move`` under test (PYTHONPATH), its videos and settings, in a child process."""
    import torch

    extract = CodeUnderTest()
    torch.set_num_threads(args.threads)
    root = Path(args.root)
    videos = extract.list_videos(root / "annotations.csv", root / "videos")
    workers = {"num_workers": args.workers} if args.child == "stages" else {"num_workers": 0}
    settings = extract.ExtractSettings(
        backbone="resnet50" if args.backbone == "identity" else args.backbone,
        frames=args.frames,
        resize=args.resize,
        crop=args.crop,
        batch_size=args.batch_size,
        device=args.device,
        weights="none",  # random init: speed only (no download on an offline node)
        **workers,
    )
    if args.backbone == "identity":
        extract.patch("create_backbone", lambda name, weights: IdentityBackbone())
    return extract, videos, settings


def worker_preprocess(extract, settings):
    """What a decode worker does to decoded frames in this version of the code."""
    import torch

    from move.extraction.backbones import IMAGENET_MEAN, IMAGENET_STD

    if hasattr(extract, "resize_and_crop"):  # uint8 resize/crop; normalised on the device
        return lambda frames: extract.resize_and_crop(
            torch.from_numpy(frames), settings.resize, settings.crop
        )
    return lambda frames: extract.preprocess_frames(
        frames, settings.resize, settings.crop, IMAGENET_MEAN, IMAGENET_STD
    )


def decoded_videos(extract, videos, settings):
    """The version's Dataset of decoded videos (its signature changed with normalisation)."""
    from move.extraction.backbones import IMAGENET_MEAN, IMAGENET_STD

    if len(inspect.signature(extract.DecodedVideos).parameters) == 2:
        return extract.DecodedVideos(videos, settings)
    return extract.DecodedVideos(videos, settings, IMAGENET_MEAN, IMAGENET_STD)


def measure_model(extract, settings, model, device, n_videos: int) -> tuple[float, float]:
    """(wall, CPU) seconds of the model stage on ``n_videos`` preprocessed videos."""
    import torch

    from move.extraction.backbones import IMAGENET_MEAN, IMAGENET_STD

    T, crop = settings.frames, settings.crop
    if hasattr(extract, "embed_videos"):
        items = [{"frames": torch.zeros(T, 3, crop, crop, dtype=torch.uint8)}] * n_videos
        run = lambda: list(  # noqa: E731
            extract.embed_videos(
                model, items, settings.batch_size, device, IMAGENET_MEAN, IMAGENET_STD
            )
        )
    else:
        frames = torch.zeros(T, 3, crop, crop)
        run = lambda: [  # noqa: E731
            extract.embed_frames(model, frames, settings.batch_size, device)
            for _ in range(n_videos)
        ]
    run()  # warm-up
    return timed(run)


def child_stages(args: argparse.Namespace) -> dict:
    """Seconds (wall, CPU) of each stage over all videos of one size, in this process."""
    import torch

    from move.device import resolve_device

    extract, videos, settings = child_setup(args)
    device = resolve_device(args.device)
    preprocess = worker_preprocess(extract, settings)
    decode = [0.0, 0.0]
    prep = [0.0, 0.0]
    for path in videos.path:
        decoded = []
        wall, cpu = timed(lambda: decoded.append(extract.read_frames(path, settings.frames)[0]))  # noqa: B023
        decode[0], decode[1] = decode[0] + wall, decode[1] + cpu
        wall, cpu = timed(lambda: preprocess(decoded[0]))  # noqa: B023
        prep[0], prep[1] = prep[0] + wall, prep[1] + cpu
    model = extract.create_backbone(settings.backbone, "none").to(device)
    model_seconds = measure_model(extract, settings, model, device, len(videos))
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "features.h5"
        full = timed(
            lambda: extract.extract_features(
                videos, out, out.with_suffix(".csv"), settings, progress=False
            )
        )
    if device.type == "cuda":
        torch.cuda.synchronize()
    return {
        "frames": len(videos) * settings.frames,
        "decode": decode,
        "preprocess": prep,
        "model": list(model_seconds),
        "full": list(full),
    }


def child_memory(args: argparse.Namespace) -> dict:
    """Peak resident memory (MB) added by decoding and preprocessing one video, as a worker."""
    extract, videos, settings = child_setup(args)
    dataset = decoded_videos(extract, videos.iloc[:1], settings)
    dataset[0]  # warm-up: imports, decoder libraries
    with open("/proc/self/statm") as statm:
        before = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    item = dataset[0]
    assert item["error"] is None, item["error"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    return {"peak_mb": peak, "before_mb": before, "added_mb": peak - before}


def child_decoders(args: argparse.Namespace) -> dict:
    """CPU seconds per video of each decoding strategy, and whether it gives decord's frames."""
    import decord

    from move.extraction.video import uniform_segment_indices

    root = Path(args.root)
    paths = sorted((root / "videos").rglob("*.mp4"))
    strategies = {
        "decord get_batch, all at once (seek across GOPs, forward within)": decord_batch,
        "decord get_batch, 16 at a time, zero-copy (move.extraction.video)": decord_chunks,
        "decord seek per index": decord_per_index,
        "decord sequential (skip, no seek)": decord_sequential,
        "PyAV decode all, convert the needed": pyav_sequential,
    }
    try:
        import torchcodec  # noqa: F401

        strategies["torchcodec get_frames_at (exact seek)"] = torchcodec_frames
    except Exception:  # not installed, or no FFmpeg libraries for it
        pass
    seconds = {name: [] for name in strategies}
    same = dict.fromkeys(strategies, True)
    for path in paths:
        reader = decord.VideoReader(str(path), num_threads=1)
        indices = uniform_segment_indices(len(reader), args.frames)
        reference = reader.get_batch(indices.tolist()).asnumpy()
        best = dict.fromkeys(strategies, float("inf"))
        for _ in range(args.repeat + 1):  # strategies interleaved: shared-machine noise
            for name, strategy in strategies.items():
                cpu = cpu_seconds()
                frames = strategy(str(path), indices)
                best[name] = min(best[name], cpu_seconds() - cpu)
                same[name] &= bool(np.array_equal(frames, reference))
        for name in strategies:
            seconds[name].append(best[name])
    return {
        name: {"cpu_s_per_video": float(np.mean(seconds[name])), "same_frames": same[name]}
        for name in strategies
    }


def decord_batch(path: str, indices: np.ndarray) -> np.ndarray:
    import decord

    return decord.VideoReader(path, num_threads=1).get_batch(indices.tolist()).asnumpy()


def decord_chunks(path: str, indices: np.ndarray) -> np.ndarray:
    from move.extraction.video import DECODE_CHUNK, decode_chunks, open_video

    chunks = decode_chunks(open_video(path), indices, DECODE_CHUNK)
    return np.concatenate([chunk.numpy() for chunk in chunks])


def decord_per_index(path: str, indices: np.ndarray) -> np.ndarray:
    import decord

    reader = decord.VideoReader(path, num_threads=1)
    return np.stack([reader[int(i)].asnumpy() for i in indices])


def decord_sequential(path: str, indices: np.ndarray) -> np.ndarray:
    import decord

    reader, frames, position = decord.VideoReader(path, num_threads=1), [], 0
    for index in indices:
        if index < position:  # a repeated frame
            frames.append(frames[-1])
            continue
        if index > position:
            reader.skip_frames(int(index - position))
        frames.append(reader.next().asnumpy())
        position = index + 1
    return np.stack(frames)


def pyav_sequential(path: str, indices: np.ndarray) -> np.ndarray:
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type, stream.thread_count = "NONE", 1
        wanted, frames = set(indices.tolist()), {}
        for number, frame in enumerate(container.decode(stream)):
            if number in wanted:
                frames[number] = frame.to_ndarray(format="rgb24")
            if number >= indices[-1]:
                break
    return np.stack([frames[i] for i in indices])


def torchcodec_frames(path: str, indices: np.ndarray) -> np.ndarray:
    from torchcodec.decoders import VideoDecoder

    decoder = VideoDecoder(path, num_ffmpeg_threads=1, dimension_order="NHWC", device="cpu")
    return decoder.get_frames_at(indices.tolist()).data.numpy()


def run_child(kind: str, code: Path, root: Path, args: argparse.Namespace) -> dict:
    """Run one measurement in a fresh process with ``code`` first on PYTHONPATH."""
    arguments = ["--child", kind, "--root", str(root)]
    for key in ("frames", "resize", "crop", "backbone", "batch_size", "workers", "device"):
        arguments += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    arguments += ["--threads", str(args.threads), "--repeat", str(args.repeat)]
    return run_measurement(__file__, arguments, code)


def best_rounds(rounds: list[dict]) -> dict:
    """Per stage, the round with the least wall time (CPU time from that same round)."""
    best = {"frames": rounds[0]["frames"]}
    for stage in STAGES:
        best[stage] = min((r[stage] for r in rounds), key=lambda seconds: seconds[0])
    return best


def stage_table(size: str, versions: dict[str, dict], memory: dict[str, dict]) -> list[str]:
    """Markdown rows: frames/s (wall) and frames per CPU-second of each stage, each version."""
    lines = []
    for version, result in versions.items():
        n = result["frames"]
        rate = {s: n / result[s][0] for s in STAGES}
        per_core = {s: n / result[s][1] for s in STAGES}
        ratio = rate["full"] / min(rate["decode"], rate["preprocess"], rate["model"])
        cells = " | ".join(f"{rate[s]:.0f} ({per_core[s]:.0f})" for s in STAGES)
        lines.append(
            f"| {size} | {version} | {cells} | {ratio:.2f} | {rate['full'] / rate['decode']:.2f} "
            f"| {memory[version]['added_mb']:.0f} |"
        )
    return lines


def main() -> None:
    args = parse_args()
    if args.child:
        child = {"stages": child_stages, "memory": child_memory, "decoders": child_decoders}
        print(json.dumps(child[args.child](args)))
        return
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        root = Path(args.dir) if args.dir else scratch / "videos"
        codes = {"this checkout": REPO}
        if args.baseline != "none":
            codes = {f"baseline ({args.baseline})": baseline_code(args.baseline, scratch)} | codes
        rows, decoders = [], {}
        for size in args.sizes.split(","):
            width, height = (int(v) for v in size.split("x"))
            folder = make_videos(root, width, height, args.videos, args.video_frames)
            rounds = {name: [] for name in codes}
            for _ in range(args.repeat):  # rounds interleave versions: shared-machine noise
                for name, code in codes.items():
                    rounds[name].append(run_child("stages", code, folder, args))
            memory = {name: run_child("memory", code, folder, args) for name, code in codes.items()}
            rows += stage_table(size, {n: best_rounds(r) for n, r in rounds.items()}, memory)
            if not args.no_decoders:
                decoders[size] = run_child("decoders", REPO, folder, args)
    print(
        f"{args.videos} videos per size x {args.video_frames} frames (H.264, 30 fps), T = "
        f"{args.frames} sampled, resize {args.resize}, crop {args.crop}, backbone "
        f"{args.backbone} on {args.device}, {args.threads} torch thread(s), full pipeline with "
        f"{args.workers} decode worker(s), best of {args.repeat}, {os.cpu_count()} CPU cores\n"
    )
    print("frames/s wall (frames per CPU-second); stages in one process; memory: peak added by")
    print("decoding + preprocessing one video in a worker\n")
    print(
        "| size | code | decode | preprocess | model | full | full / min(stages) | full / decode | memory MB |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    for size, results in decoders.items():
        print(
            f"\nDecoding {args.frames} of {args.video_frames} frames at {size} (CPU s per video):\n"
        )
        print("| strategy | CPU s | frames/s per core | same frames as decord |")
        print("|---|---:|---:|---|")
        for name, result in results.items():
            seconds = result["cpu_s_per_video"]
            print(
                f"| {name} | {seconds:.3f} | {args.frames / seconds:.0f} | {result['same_frames']} |"
            )


if __name__ == "__main__":
    main()
