import os
import subprocess
import sys

import pandas as pd

from move.datasets.demo import DemoSpec, make_demo_dataset
from move.extraction.video import read_frames
from move.extraction.video_files import index_video_files
from tests.conftest import REPO


def test_demo_layout_and_annotations(tiny_videos):
    table = pd.read_csv(tiny_videos / "annotations.csv")
    assert list(table.columns) == ["label", "youtube_id", "time_start", "time_end", "split"]
    assert table.label.nunique() == 4
    assert (table.split == "train").sum() == 24 and (table.split == "val").sum() == 12
    files = index_video_files(tiny_videos / "videos")
    assert len(files) == 36
    for path in files.values():
        assert path.parent.parent == tiny_videos / "videos"
        assert path.parent.name in set(table.label)


def test_demo_is_deterministic_by_seed(tmp_path):
    spec = DemoSpec(classes=2, train_per_class=1, val_per_class=1, frames=4, size=32, seed=7)
    a = make_demo_dataset(tmp_path / "a", spec, progress=False)
    b = make_demo_dataset(tmp_path / "b", spec, progress=False)
    assert a.read_text() == b.read_text()
    for name, path in index_video_files(tmp_path / "a").items():
        other = index_video_files(tmp_path / "b")[name]
        assert (read_frames(path, 4)[0] == read_frames(other, 4)[0]).all()


def test_demo_videos_are_the_same_bytes_whatever_the_heap_held(tmp_path):
    """Two processes whose fresh memory glibc fills with different bytes (MALLOC_PERTURB_) write
    the same videos: the encoder reads nothing it did not write (x264's mbtree did, and then about
    half of these videos differed from run to run, and their features with them)."""
    videos = {}
    for fill in ("85", "170"):
        out = tmp_path / fill
        subprocess.run(
            [sys.executable, "-m", "move", "demo-videos", "--out", str(out), "--quiet"]
            + ["--classes", "2", "--train-per-class", "3", "--val-per-class", "1"],
            env={**os.environ, "PYTHONPATH": str(REPO), "MALLOC_PERTURB_": fill},
            check=True,
            capture_output=True,
        )
        videos[fill] = {p.relative_to(out): p.read_bytes() for p in out.rglob("*.mp4")}
    assert videos["85"].keys() == videos["170"].keys() and len(videos["85"]) == 8
    assert [name for name, data in videos["85"].items() if data != videos["170"][name]] == []


def test_demo_classes_differ_in_colour(tiny_videos):
    table = pd.read_csv(tiny_videos / "annotations.csv")
    files = index_video_files(tiny_videos / "videos")
    means = {}
    for label, group in table.groupby("label"):
        ids = [f"{y}_000000_000010" for y in group.youtube_id]
        means[label] = sum(
            read_frames(files[i], 2)[0].reshape(-1, 3).max(0).astype(float) for i in ids
        ) / len(ids)
    values = list(means.values())
    assert all(abs(values[i] - values[j]).max() > 30 for i in range(4) for j in range(i + 1, 4))
