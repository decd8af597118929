import pandas as pd

from move.demo import DemoSpec, make_demo_dataset
from move.video import index_video_files, read_frames


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
    spec = DemoSpec(n_classes=2, train_per_class=1, val_per_class=1, n_frames=4, size=32, seed=7)
    a = make_demo_dataset(tmp_path / "a", spec, progress=False)
    b = make_demo_dataset(tmp_path / "b", spec, progress=False)
    assert a.read_text() == b.read_text()
    for name, path in index_video_files(tmp_path / "a").items():
        other = index_video_files(tmp_path / "b")[name]
        assert (read_frames(path, 4)[0] == read_frames(other, 4)[0]).all()


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
