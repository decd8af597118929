"""Frame folders as a video source: a folder of numbered images per video (the authors' raw
frames, ``img_%05d.jpg`` at ffmpeg ``-qscale:v 2``, i.e. JPEG quality about 95; mmaction2's
rawframes), found by the same id rule as video files, read in numeric order, with the same frame
choice and preprocessing: features within cosine 0.99 of the video's."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from move.extraction.decoding import list_videos
from move.extraction.extract import ExtractSettings, extract_features
from move.extraction.video import VideoDecodeError, read_frames
from move.extraction.video_files import frame_files, index_video_files
from tests.snakemake_runs import TINY_CONFIG, merged_config, snakemake

JPEG_QUALITY = 95  # ffmpeg's -qscale:v 2, the authors' setting
# the frames are written with torchvision's encoder, deprecated in 0.29 (move reads them silenced)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def write_frame_folders(videos: Path, out: Path, name=lambda i: f"img_{i:05d}.jpg") -> Path:
    """Every video under ``videos`` as a folder of all its frames, in the same layout."""
    import decord
    from torchvision.io import encode_jpeg

    for video in sorted(videos.rglob("*.mp4")):
        folder = out / video.relative_to(videos).with_suffix("")
        folder.mkdir(parents=True)
        reader = decord.VideoReader(str(video))
        for i in range(len(reader)):
            image = torch.from_numpy(reader[i].asnumpy()).permute(2, 0, 1).contiguous()
            jpeg = encode_jpeg(image, quality=JPEG_QUALITY)
            (folder / name(i + 1)).write_bytes(jpeg.numpy().tobytes())
    return out


@pytest.fixture(scope="module")
def frames(tiny_videos, tmp_path_factory):
    return write_frame_folders(tiny_videos / "videos", tmp_path_factory.mktemp("frames"))


def features_of(tiny_videos, root, out, frames_per_video=4) -> dict[str, np.ndarray]:
    videos = list_videos(tiny_videos / "annotations.csv", root).head(8)
    assert (videos.path != "").all()
    settings = ExtractSettings(
        frames=frames_per_video, resize=40, crop=32, device="cpu", weights="none"
    )
    extract_features(videos, out, out.with_suffix(".failures.csv"), settings, progress=False)
    with h5py.File(out, "r") as handle:
        return {v: handle["videos"][v][()].astype(np.float32) for v in videos.video_id}


def test_frame_folders_give_the_features_of_their_videos(tiny_videos, frames, tmp_path):
    from_videos = features_of(tiny_videos, tiny_videos / "videos", tmp_path / "videos.h5")
    from_frames = features_of(tiny_videos, frames, tmp_path / "frames.h5")
    assert from_videos.keys() == from_frames.keys()
    for video_id, a in from_videos.items():
        b = from_frames[video_id]
        cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        assert cosine.min() >= 0.99, (video_id, cosine)


def test_frames_are_read_in_numeric_order_whatever_the_listing(tiny_videos, tmp_path):
    """frame_5, frame_10, ... frame_40: listed (and globbed, sorted) as 10, 15, ..., 40, 5; read
    as 5, 10, ..., 40, the same frames as the zero-padded img_00001.jpg folder."""
    video = sorted((tiny_videos / "videos").rglob("*.mp4"))[0]
    padded = write_frame_folders(video.parent, tmp_path / "padded")
    bare = write_frame_folders(video.parent, tmp_path / "bare", name=lambda i: f"frame_{5 * i}.jpg")
    folder = bare / video.stem
    (folder / "notes.txt").write_text("not a frame")
    assert sorted(p.name for p in folder.glob("*.jpg"))[:2] == ["frame_10.jpg", "frame_15.jpg"]
    order = [p.name for p in frame_files(folder)]
    assert order == [f"frame_{5 * i}.jpg" for i in range(1, 9)]
    a, n = read_frames(padded / video.stem, 8)
    b, m = read_frames(folder, 8)
    assert n == m == 8 and np.array_equal(a, b)
    found = index_video_files(bare)
    assert found[video.stem] == folder and len(found) == len(list(video.parent.glob("*.mp4")))


def test_an_empty_or_broken_frame_folder_is_a_logged_failure(tmp_path):
    empty = tmp_path / "empty_000001_000011"
    empty.mkdir()
    (empty / "notes.txt").write_text("no frames here")
    with pytest.raises(VideoDecodeError, match="holds no numbered frames"):
        read_frames(empty, 4)
    broken = tmp_path / "broken_000001_000011"
    broken.mkdir()
    (broken / "img_00001.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(VideoDecodeError, match="could not read frame images in broken_000001"):
        read_frames(broken, 4)


@pytest.mark.slow
def test_the_demo_runs_from_frame_folders_alone(tiny_videos, frames, tmp_path):
    annotations = tmp_path / "frames_annotations.csv"
    shutil.copy(tiny_videos / "annotations.csv", annotations)
    config = merged_config(
        {
            **TINY_CONFIG,
            "datasets": {
                "demo": {
                    **TINY_CONFIG["datasets"]["demo"],
                    "videos": str(frames),
                    "annotations": str(annotations),
                }
            },
        }
    )
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    done = snakemake(tmp_path, "results/demo_ir0.5.json")
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (tmp_path / "data" / "demo" / "videos").exists()  # no video was written or read
    failures = pd.read_csv(tmp_path / "features" / "demo" / "resnet50.failures.csv")
    assert failures.empty


# --- issue 32: one bad video never stops the others ------------------------------------------


def write_png16(path: Path, image: np.ndarray) -> None:
    """A 16-bit-a-channel RGB PNG (Pillow writes none): ``image`` uint16 ``[H, W, 3]``."""
    import struct
    import zlib

    height, width, _ = image.shape
    raw = b"".join(b"\0" + image[y].astype(">u2").tobytes() for y in range(height))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)


def write_kind(folder: Path, kind: str, rgb: np.ndarray) -> None:
    """Four frames of one image kind: 16-bit RGB or grey PNG, palette, grey, RGBA, CMYK JPEG."""
    from PIL import Image

    folder.mkdir(parents=True)
    for i in range(1, 5):
        frame = np.roll(rgb, 3 * i, axis=1)
        if kind == "rgb16":
            write_png16(folder / f"img_{i:05d}.png", frame.astype(np.uint16) * 257)
            continue
        image = {
            "grey16": lambda f: Image.fromarray(f[..., 0].astype(np.uint16) * 257),
            "palette": lambda f: Image.fromarray(f).convert("P"),
            "grey": lambda f: Image.fromarray(f[..., 0], mode="L"),
            "alpha": lambda f: Image.fromarray(np.dstack([f, f[..., :1]]), mode="RGBA"),
            "cmyk": lambda f: Image.fromarray(f).convert("CMYK"),
        }[kind](frame)
        image.save(folder / f"img_{i:05d}.{'jpg' if kind == 'cmyk' else 'png'}")


KINDS = ("rgb16", "grey16", "palette", "grey", "alpha", "cmyk")


def test_frame_folders_of_every_image_kind_are_read_as_8_bit_rgb(tmp_path):
    """16-bit levels map to the nearest 8-bit one: a 16-bit copy of an 8-bit frame reads back
    exactly; grey, palette, alpha and CMYK frames come back as 8-bit RGB."""
    rgb = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    for kind in KINDS:
        write_kind(tmp_path / kind, kind, rgb)
        frames, n_frames = read_frames(tmp_path / kind, 4)
        assert frames.dtype == np.uint8 and frames.shape == (4, 32, 32, 3) and n_frames == 4, kind
    exact, _ = read_frames(tmp_path / "rgb16", 4)
    np.testing.assert_array_equal(exact[0], np.roll(rgb, 3, axis=1))


def test_one_folder_of_each_image_kind_among_videos_extracts_every_video(tiny_videos, tmp_path):
    """Cause 4 of issue 32 through `move extract`: six of eight videos are frame folders of
    16-bit, grey, palette, alpha and CMYK images, one more a folder whose frames are not images:
    every readable one is extracted, the other is its own logged failure, the run ends 0. On
    4e1bccc the 16-bit folder stopped the whole run (NotImplementedError in the resize)."""
    from tests.conftest import run_move

    root = tmp_path / "videos"
    shutil.copytree(tiny_videos / "videos", root)
    table = pd.read_csv(tiny_videos / "annotations.csv").iloc[:8]
    table.to_csv(tmp_path / "annotations.csv", index=False)
    videos = list_videos(tmp_path / "annotations.csv", root)
    rgb = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    kinds = dict(zip(videos.video_id, [*KINDS, "not images"], strict=False))
    for row in videos.itertuples():
        if row.video_id in kinds:
            Path(row.path).unlink()
            folder = Path(row.path).with_suffix("")
            if kinds[row.video_id] == "not images":
                folder.mkdir()
                for i in range(1, 5):
                    (folder / f"img_{i:05d}.png").write_bytes(b"not a png at all")
            else:
                write_kind(folder, kinds[row.video_id], rgb)
    out = tmp_path / "resnet50.h5"
    done = run_move("extract", "--annotations", tmp_path / "annotations.csv", "--videos", root,
                    "--out", out, "--frames", "3", "--resize", "40", "--crop", "32",
                    "--batch-size", "8", "--device", "cpu", "--weights", "none", "--quiet")  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    failures = pd.read_csv(tmp_path / "resnet50.failures.csv").set_index("video_id").reason
    broken = next(v for v, kind in kinds.items() if kind == "not images")
    assert list(failures.index) == [broken]
    assert failures[broken].startswith("could not read frame images in "), failures[broken]
    with h5py.File(out, "r") as handle:
        assert set(handle["videos"]) == set(videos.video_id) - {broken}


def test_any_exception_reading_one_video_is_that_videos_failure(tiny_videos, tmp_path, monkeypatch):
    """Not only a decoder's error: whatever one video raises is its logged failure in words."""
    import move.extraction.decoding as decoding

    videos = list_videos(tiny_videos / "annotations.csv", tiny_videos / "videos").head(3)
    victim, real = videos.video_id.iloc[1], decoding.read_frames

    def fails_for_one(path, *args, **kwargs):
        if Path(path).stem == victim:
            raise NotImplementedError("resize of uint16 frames")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(decoding, "read_frames", fails_for_one)
    settings = ExtractSettings(
        frames=3, resize=40, crop=32, device="cpu", num_workers=0, weights="none"
    )
    out = tmp_path / "f.h5"
    counts = extract_features(videos, out, tmp_path / "f.failures.csv", settings, progress=False)
    assert counts["failed"] == 1 and counts["extracted"] == 2
    reason = pd.read_csv(tmp_path / "f.failures.csv").set_index("video_id").reason[victim]
    assert reason == "could not read (NotImplementedError: resize of uint16 frames)"


def test_a_stray_numbered_image_in_a_class_folder_hides_none_of_its_videos(
    tiny_videos, tmp_path, capsys
):
    """Weak spot of issue 32: one `00001.jpg` beside a class's videos made the class folder a
    "frame folder" and its videos `file missing`; now the folder's videos are found and one line
    says the image is ignored."""
    root = tmp_path / "videos"
    shutil.copytree(tiny_videos / "videos", root)
    class_folder = next(p for p in sorted(root.iterdir()) if p.is_dir())
    shutil.copy(next(class_folder.glob("*.mp4")), tmp_path / "any.mp4")
    (class_folder / "00001.jpg").write_bytes(b"\xff\xd8 a stray image")
    found = index_video_files(root)
    assert {p.stem for p in class_folder.glob("*.mp4")} <= set(found)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"warning: {class_folder} holds "), err
    assert "read as a folder of videos, the images ignored" in err[0]
