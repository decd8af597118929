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

from move.extraction.extract import ExtractSettings, extract_features, list_videos
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
    settings = ExtractSettings(frames=frames_per_video, resize=40, crop=32, device="cpu")
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
