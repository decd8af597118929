"""The embedded demo dataset: tiny synthetic videos in a Kinetics-like layout.

Writes ``<root>/videos/<label>/<youtube_id>_<start:06d>_<end:06d>.mp4`` (H.264 via PyAV) and
``<root>/annotations.csv`` with Kinetics-400's columns ``label,youtube_id,time_start,time_end,
split``. Classes come in threes (a group), the way the paper's rows differ: a group owns two
colours A and B and a shape; its first class shows a moving object in colour A in every frame, its
second in colour B, its third switches from A to B at a random frame. A single frame shows the
group (appearance, which averaging over frames keeps) and, for the first two, the class; only the
sequence of frames tells the third class from the other two (a change over time, which a
classifier averaging its frames' scores cannot see: the switching class's score is an average of
the two steady classes' frame scores). So the frame-wise rows learn most classes and the rows with
aggregators learn more. Per-video jitter (position, size, speed, brightness, background, noise)
keeps the task from being trivial, and even a frozen, randomly initialised CNN sees the colours.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from move.annotations import kinetics_video_id
from move.errors import MoveError
from move.files import atomic_output, write_csv_atomic

SHAPES = ("square", "disc", "bar")
ID_ALPHABET = np.array(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"))


@dataclass(frozen=True)
class DemoSpec:
    """How many classes/videos to make and how they look."""

    classes: int = field(default=20, metadata={"help": "number of classes"})
    train_per_class: int = field(default=24, metadata={"help": "train videos per class"})
    val_per_class: int = field(default=8, metadata={"help": "val (test) videos per class"})
    frames: int = field(default=16, metadata={"help": "frames per video"})
    size: int = field(default=64, metadata={"help": "frame width and height in pixels, even"})
    fps: int = field(default=8, metadata={"help": "frame rate"})
    seed: int = field(default=0, metadata={"help": "random seed"})


def class_name(index: int) -> str:
    """Label of demo class ``index``: sortable, so alphabetical order equals index order."""
    return f"class_{index:03d}"


def class_group(index: int) -> tuple[int, int]:
    """(group, member) of demo class ``index``: member 0 steady in colour A, 1 steady in colour
    B, 2 switching from A to B."""
    return divmod(index, 3)


def group_colours(group: int, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Colours A and B (RGB uint8) of a group: hues spread over the wheel, a group's two half
    a turn apart, so that no two colours of the demo are close."""
    groups = -(-n_classes // 3)
    hues = ((group / groups) * 0.5, (group / groups) * 0.5 + 0.5)
    return tuple(
        (np.array(colorsys.hsv_to_rgb(hue, 0.9, 0.95)) * 255).astype(np.uint8) for hue in hues
    )


def class_appearance(index: int, n_classes: int) -> tuple[np.ndarray, np.ndarray, str, np.ndarray]:
    """Colours (RGB uint8) of the object before and after the switch (equal for a steady class),
    its shape (the group's) and the class's unit motion direction."""
    group, member = class_group(index)
    first, second = group_colours(group, n_classes)
    before, after = {0: (first, first), 1: (second, second), 2: (first, second)}[member]
    angle = 2 * np.pi * ((index * 0.618034) % 1.0)
    return before, after, SHAPES[group % len(SHAPES)], np.array([np.cos(angle), np.sin(angle)])


def render_video(index: int, spec: DemoSpec, rng: np.random.Generator) -> np.ndarray:
    """Frames ``[frames, size, size, 3]`` (uint8) of one video of class ``index``.

    A switching class changes colour after a random frame in ``[1, frames - 1)``, so both of its
    colours show in every video of two frames or more.
    """
    before, after, shape, direction = class_appearance(index, spec.classes)
    size = spec.size
    yy, xx = np.mgrid[0:size, 0:size]
    background = np.full(3, rng.integers(50, 100))
    radius = size * rng.uniform(0.22, 0.32)
    speed = size * rng.uniform(0.02, 0.05)
    centre = rng.uniform(0.3, 0.7, size=2) * size
    brightness = rng.uniform(0.85, 1.0)
    switch = int(rng.integers(1, spec.frames)) if spec.frames > 1 else spec.frames
    frames = np.empty((spec.frames, size, size, 3), dtype=np.uint8)
    for t in range(spec.frames):
        cy, cx = (centre + (t - spec.frames / 2) * speed * direction) % size
        if shape == "square":
            mask = (np.abs(yy - cy) < radius) & (np.abs(xx - cx) < radius)
        elif shape == "disc":
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 < radius**2
        else:
            mask = (np.abs(yy - cy) < radius / 2) & (np.abs(xx - cx) < radius * 1.6)
        noise = rng.integers(-12, 13, size=(size, size, 3))
        frame = np.clip(background + noise, 0, 255)
        frame[mask] = (before if t < switch else after) * brightness
        frames[t] = frame
    return frames


def write_video(frames: np.ndarray, path: Path, fps: int) -> None:
    """Encode RGB frames as H.264/yuv420p MP4, atomically (temp file, then rename).

    The same frames give the same video in any process on any machine: x264's macroblock-tree
    rate control (`mbtree`) reads memory it never wrote, so with it a video differed from one
    run to the next (about 40% of the demo's videos), and so did the features extracted from
    it; and one encoder thread, since x264 picks its thread count from the machine's cores.
    """
    import av

    with atomic_output(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.height, stream.width = frames.shape[1], frames.shape[2]
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "18", "preset": "veryfast", "x264-params": "mbtree=0"}
            stream.codec_context.thread_count = 1
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)


def make_demo_dataset(root: str | Path, spec: DemoSpec = DemoSpec(), progress: bool = True) -> Path:
    """Write the demo videos and ``annotations.csv`` under ``root``; returns the CSV's path.

    Deterministic by ``spec.seed``: the same spec gives the same ids, labels and pixels.
    """
    if spec.size < 16 or spec.size % 2:
        raise MoveError(f"demo frame size {spec.size} must be even and >= 16 (H.264 needs it)")
    if min(spec.classes, spec.train_per_class, spec.val_per_class, spec.frames) < 1:
        raise MoveError("demo classes, train/val videos per class and frames must be >= 1")
    if spec.seed < 0:
        raise MoveError(f"demo seed {spec.seed} is negative: use a seed >= 0")
    root = Path(root)
    rng = np.random.default_rng(spec.seed)
    rows = []
    for c in range(spec.classes):
        for split, count in (("train", spec.train_per_class), ("val", spec.val_per_class)):
            for _ in range(count):
                youtube_id = "".join(rng.choice(ID_ALPHABET, size=11))
                rows.append((class_name(c), youtube_id, 0, 10, split, c))
    for label, youtube_id, start, end, _split, c in tqdm(
        rows, desc="demo videos", disable=not progress
    ):
        video_rng = np.random.default_rng(
            [spec.seed, c, int.from_bytes(youtube_id.encode(), "little") % 2**32]
        )
        frames = render_video(c, spec, video_rng)
        write_video(
            frames,
            root / "videos" / label / f"{kinetics_video_id(youtube_id, start, end)}.mp4",
            spec.fps,
        )
    table = pd.DataFrame(
        [r[:5] for r in rows], columns=["label", "youtube_id", "time_start", "time_end", "split"]
    )
    csv = root / "annotations.csv"
    write_csv_atomic(table, csv)
    return csv
