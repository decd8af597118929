import shutil

import h5py
import numpy as np
import pandas as pd
import pytest

from move.errors import MoveError
from move.extract import ExtractSettings, extract_features, list_videos, preprocess_frames
from move.features import open_feature_file, read_video_features, video_ids

SETTINGS = ExtractSettings(frames=3, resize=40, crop=32, batch_size=8)


def test_preprocess_resizes_shorter_side_and_centre_crops():
    frames = np.zeros((2, 60, 80, 3), dtype=np.uint8)
    frames[:, :, 40:] = 255
    out = preprocess_frames(frames, 30, 24, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert out.shape == (2, 3, 24, 24)
    assert out.min() == pytest.approx(-1) and out.max() == pytest.approx(1)


def test_extract_writes_layout_and_logs_failures(tiny_videos, tmp_path):
    root = tmp_path / "videos"
    shutil.copytree(tiny_videos / "videos", root)
    videos = list_videos(tiny_videos / "annotations.csv", root)
    corrupt, missing = videos.video_id.iloc[0], videos.video_id.iloc[1]
    (root / videos.label.iloc[0] / f"{corrupt}.mp4").write_bytes(b"\x00" * 500)
    (root / videos.label.iloc[1] / f"{missing}.mp4").unlink()
    videos = list_videos(tiny_videos / "annotations.csv", root).iloc[:8]

    out, failures = tmp_path / "f" / "resnet50.h5", tmp_path / "f" / "resnet50.failures.csv"
    counts = extract_features(videos, out, failures, SETTINGS, progress=False)
    assert counts == {"extracted": 6, "failed": 2}
    failed = pd.read_csv(failures)
    assert set(failed.video_id) == {corrupt, missing}
    assert failed.set_index("video_id").reason[missing] == "file missing"
    assert failed.set_index("video_id").reason[corrupt].startswith("cannot decode")
    with open_feature_file(out) as handle:
        assert len(video_ids(handle)) == 6
        assert handle.attrs["backbone"] == "resnet50" and handle.attrs["frames"] == 3
        assert handle.attrs["feature_dim"] == 2048
        first = video_ids(handle)[0]
        features = read_video_features(handle, first)
        assert features.shape == (3, 2048) and np.isfinite(features).all()
        assert handle["videos"][first].dtype == np.float16
        assert handle["videos"][first].attrs["n_frames"] == 8
    assert not list(out.parent.glob("*.tmp"))


def test_unfinished_feature_file_is_refused(tmp_path):
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as handle:
        handle.attrs["format_version"] = 1
        handle.attrs["complete"] = False
        handle.create_group("videos")
    with pytest.raises(MoveError, match="never finished"):
        open_feature_file(path)
    path.write_bytes(b"garbage")
    with pytest.raises(MoveError, match="unreadable"):
        open_feature_file(path)


def test_missing_inputs_name_the_path(tmp_path):
    with pytest.raises(MoveError, match="video folder"):
        list_videos(tmp_path / "a.csv", tmp_path / "none")
    (tmp_path / "v").mkdir()
    with pytest.raises(MoveError, match="annotations file"):
        list_videos(tmp_path / "a.csv", tmp_path / "v")
    (tmp_path / "a.csv").write_text("label,youtube_id\nx,y\n")
    with pytest.raises(MoveError, match="lacks column"):
        list_videos(tmp_path / "a.csv", tmp_path / "v")
