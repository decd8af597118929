"""Extraction that keeps the device busy, exercised on the CPU: JPEG frame folders decoded by the
device path (the CPU standing in for CUDA: the same batching, repeats and fallback, the same
frames as the CPU path), and decode workers sized from the measured rates."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from move.extraction import throughput
from move.extraction.decoding import DecodedVideos, decode_loader, list_videos
from move.extraction.extract import ExtractSettings, extract_features
from move.extraction.preprocess import crop_transform
from move.extraction.throughput import DeviceDecodeCount, decode_on_device, workers_for
from tests.test_frame_folders import write_frame_folders

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
CPU = torch.device("cpu")
# 12 segments of 8-frame videos: frames repeat (the positions path)
SETTINGS = ExtractSettings(
    frames=12, resize=40, crop=32, batch_size=8, device="cpu", weights="none"
)
CROP = crop_transform(SETTINGS)


@pytest.fixture(scope="module")
def frame_videos(tiny_videos, tmp_path_factory) -> pd.DataFrame:
    """Six of the demo's videos as JPEG frame folders, listed as extraction lists them."""
    root = write_frame_folders(tiny_videos / "videos", tmp_path_factory.mktemp("jpeg_frames"))
    return list_videos(tiny_videos / "annotations.csv", root).head(6)


def _frames(items) -> dict[str, torch.Tensor]:
    return {item["video_id"]: item["frames"] for item in items}


def test_jpeg_folders_decoded_by_the_device_path_are_the_cpu_paths_frames(frame_videos):
    on_cpu = _frames(decode_loader(frame_videos, SETTINGS, CPU))
    count = DeviceDecodeCount()
    loader = decode_loader(frame_videos, SETTINGS, CPU, jpeg_on_device=True)
    items = list(decode_on_device(loader, CPU, CROP, count))
    assert [item["video_id"] for item in items] == list(frame_videos.video_id)  # order kept
    assert all("encoded" not in item and item["n_frames"] == 8 for item in items)
    for video_id, frames in _frames(items).items():
        assert frames.shape == (12, 3, 32, 32) and frames.dtype == torch.uint8
        assert torch.equal(frames, on_cpu[video_id]), video_id
    assert count == DeviceDecodeCount(on_device=6, on_cpu=0)


def test_a_worker_of_the_device_path_only_reads_the_chosen_jpegs(frame_videos):
    item = DecodedVideos(frame_videos, SETTINGS, jpeg_on_device=True)[0]
    assert item["frames"] is None and item["error"] is None
    encoded = item["encoded"]
    assert len(encoded["jpegs"]) == 8 and encoded["jpegs"][0][:2].tolist() == [0xFF, 0xD8]
    assert encoded["positions"].tolist() == [0, 1, 1, 2, 3, 3, 4, 5, 5, 6, 7, 7]  # 12 of 8
    # a video file (not a frame folder) is decoded in the worker as before
    video = DecodedVideos(frame_videos.assign(path=""), SETTINGS, jpeg_on_device=True)[0]
    assert "encoded" not in video and video["error"] == "file missing"


def test_jpegs_the_device_refuses_are_decoded_on_the_cpu(frame_videos, monkeypatch):
    reference = _frames(decode_loader(frame_videos.head(2), SETTINGS, CPU))
    original, calls = throughput._decode_jpegs, []

    def refusing_device(jpegs, device):
        calls.append(device)
        if len(calls) % 2:  # each video: the device's call (refused), then the CPU's
            raise RuntimeError("nvjpeg: unsupported JPEG (CMYK)")
        return original(jpegs, device)

    monkeypatch.setattr(throughput, "_decode_jpegs", refusing_device)
    count = DeviceDecodeCount()
    loader = decode_loader(frame_videos.head(2), SETTINGS, CPU, jpeg_on_device=True)
    items = list(decode_on_device(loader, CPU, CROP, count))
    assert count == DeviceDecodeCount(on_device=0, on_cpu=2) and len(calls) == 4
    for video_id, frames in _frames(items).items():
        assert torch.equal(frames, reference[video_id])


def test_a_jpeg_no_decoder_reads_is_the_videos_failure_naming_its_folder(frame_videos, tmp_path):
    import shutil

    folder = tmp_path / "broken_000001_000011"
    shutil.copytree(frame_videos.path.iloc[0], folder)
    (folder / "img_00003.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    videos = pd.DataFrame([{"video_id": folder.name, "label": "x", "path": str(folder)}])
    loader = decode_loader(videos, SETTINGS, CPU, jpeg_on_device=True)
    [item] = decode_on_device(loader, CPU, CROP)
    assert item["frames"] is None and item["n_frames"] == 0
    assert item["error"].startswith(f"could not read frame images in {folder.name} (")
    assert "\n" not in item["error"]


def test_workers_are_sized_to_keep_the_backbone_busy_within_what_is_allowed():
    decode_bound = workers_for(decode_rate=50.0, backbone_rate=400.0, allowed=3)
    assert (decode_bound.needed, decode_bound.workers) == (8, 3)
    line = decode_bound.line("resnet50", torch.device("cuda"))
    assert "decoding 50 frames/s per worker" in line and "resnet50 on cuda 400 frames/s" in line
    assert "8 decode worker(s) keep it busy; using 3 of 3 allowed" in line
    assert "decode-bound at 150 frames/s" in line
    backbone_bound = workers_for(decode_rate=50.0, backbone_rate=20.0, allowed=7)
    assert (backbone_bound.needed, backbone_bound.workers) == (1, 1)
    assert "decode-bound" not in backbone_bound.line("resnet50", CPU)
    unmeasured = workers_for(decode_rate=None, backbone_rate=20.0, allowed=4)
    assert unmeasured.workers == 4 and "no video to measure" in unmeasured.line("resnet50", CPU)


def test_extraction_logs_the_measured_rates_and_writes_the_same_features(
    tiny_videos, tmp_path, capsys
):
    import h5py
    import numpy as np

    videos = list_videos(tiny_videos / "annotations.csv", tiny_videos / "videos").head(4)
    settings = ExtractSettings(
        frames=3, resize=40, crop=32, batch_size=8, device="cpu", weights="none"
    )
    features = {}
    for workers in (0, 2):
        out = tmp_path / f"w{workers}.h5"
        run = ExtractSettings(**{**settings.__dict__, "num_workers": workers})
        extract_features(videos, out, tmp_path / f"w{workers}.csv", run, progress=True)
        with h5py.File(out, "r") as handle:
            features[workers] = {v: handle["videos"][v][()] for v in videos.video_id}
        log = capsys.readouterr().err
        assert ("frames/s per worker" in log) == (workers > 0), log
    line = next(line for line in log.splitlines() if "frames/s per worker" in line)
    assert "resnet50 on cpu" in line and "of 2 allowed" in line
    for video_id, values in features[0].items():
        assert np.array_equal(values, features[2][video_id])
