import shutil

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from move.errors import MoveError
from move.extraction.backbones import create_backbone
from move.extraction.decoding import list_videos
from move.extraction.embedding import set_compute_threads
from move.extraction.extract import ExtractSettings, extract_features
from move.extraction.preprocess import preprocess_frames
from move.features import open_feature_file, read_video_features, video_ids
from tests.conftest import run_move

SETTINGS = ExtractSettings(frames=3, resize=40, crop=32, batch_size=8, weights="none")


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
    assert counts == {"extracted": 6, "failed": 2, "new": 6}
    failed = pd.read_csv(failures)
    assert set(failed.video_id) == {corrupt, missing}
    assert failed.set_index("video_id").reason[missing] == "file missing"
    assert failed.set_index("video_id").reason[corrupt].startswith("could not open")
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


def read_all(path) -> tuple[dict, dict]:
    """File attributes and {video_id: (features, label, n_frames)} of a feature file."""
    with open_feature_file(path) as handle:
        attrs = {k: np.asarray(v).tolist() for k, v in handle.attrs.items()}
        videos = {
            v: (
                handle["videos"][v][()],
                handle["videos"][v].attrs["label"],
                handle["videos"][v].attrs["n_frames"],
            )
            for v in video_ids(handle)
        }
    return attrs, videos


def assert_same_features(a, b):
    attrs_a, videos_a = read_all(a)
    attrs_b, videos_b = read_all(b)
    assert attrs_a == attrs_b
    assert videos_a.keys() == videos_b.keys() and videos_a
    for video_id, (features, label, n_frames) in videos_a.items():
        np.testing.assert_array_equal(features, videos_b[video_id][0])
        assert (label, n_frames) == videos_b[video_id][1:]


def trained_like_weights(path) -> str:
    """ResNet-50 weights with every BatchNorm scale in [0.5, 1.5), like trained ones: the seeded
    random init zeroes each block's last scale, which hides the residual branches' arithmetic."""
    model = create_backbone("resnet50", "none")
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.weight.data = torch.rand(module.weight.shape, generator=generator) + 0.5
    torch.save(model.state_dict(), path)
    return str(path)


def test_same_thread_count_gives_same_bits_and_other_counts_agree_within_tolerance(
    tiny_videos, tmp_path
):
    """The determinism README states: equal torch thread counts give bit-identical features; 1
    and 2 threads (PyTorch's 1x1 convolutions on < 16 frames use another kernel at 1 thread) differ
    by under 1e-5 of the largest value (float32 shown; float16 files round these values)."""
    videos = list_videos(tiny_videos / "annotations.csv", tiny_videos / "videos").iloc[:6]
    weights = trained_like_weights(tmp_path / "resnet50.pt")
    settings = ExtractSettings(weights=weights, frames=4, resize=32, crop=32, dtype="float32")
    previous = torch.get_num_threads()
    runs = {}
    try:
        for name, threads in (("1 thread", 1), ("1 thread again", 1), ("2 threads", 2)):
            assert set_compute_threads(threads) == threads
            out = tmp_path / f"{name}.h5"
            extract_features(videos, out, tmp_path / f"{name}.csv", settings, progress=False)
            runs[name] = {v: arrays[0] for v, arrays in read_all(out)[1].items()}
    finally:
        torch.set_num_threads(previous)
    assert_same_features(tmp_path / "1 thread.h5", tmp_path / "1 thread again.h5")
    one, two = runs["1 thread"], runs["2 threads"]
    assert one.keys() == two.keys() and len(one) == 6
    for video_id, features in one.items():
        assert np.abs(features - two[video_id]).max() <= 1e-5 * np.abs(features).max(), video_id
    with pytest.raises(MoveError, match="1 or more"):
        set_compute_threads(0)


@pytest.fixture(scope="module")
def broken_videos(tiny_videos, tmp_path_factory):
    """Ten videos of the tiny demo: one corrupt, one empty (0 bytes), one missing."""
    root = tmp_path_factory.mktemp("broken") / "videos"
    shutil.copytree(tiny_videos / "videos", root)
    videos = list_videos(tiny_videos / "annotations.csv", root).iloc[:10]
    (root / videos.label.iloc[2] / f"{videos.video_id.iloc[2]}.mp4").write_bytes(b"\x00" * 300)
    (root / videos.label.iloc[5] / f"{videos.video_id.iloc[5]}.mp4").write_bytes(b"")
    (root / videos.label.iloc[7] / f"{videos.video_id.iloc[7]}.mp4").unlink()
    videos = list_videos(tiny_videos / "annotations.csv", root).iloc[:10].reset_index(drop=True)
    videos.attrs.update(annotations=str(tiny_videos / "annotations.csv"), root=str(root))
    return videos


@pytest.fixture(scope="module")
def reference(broken_videos, tmp_path_factory):
    """An uninterrupted single run over ``broken_videos``."""
    out = tmp_path_factory.mktemp("reference") / "resnet50.h5"
    counts = extract_features(
        broken_videos, out, out.with_suffix(".failures.csv"), SETTINGS, progress=False
    )
    assert counts == {"extracted": 7, "failed": 3, "new": 7}
    return out


def test_empty_corrupt_missing_videos_are_logged_and_skipped(broken_videos, reference):
    failed = pd.read_csv(reference.with_suffix(".failures.csv")).set_index("video_id").reason
    ids = broken_videos.video_id
    assert failed[ids[5]] == "empty file (0 bytes)"
    assert failed[ids[7]] == "file missing"
    assert failed[ids[2]].startswith("could not open")
    assert len(read_all(reference)[1]) == 7


def counting(embed_videos, seen: list, crash_at: int | None = None):
    """``embed_videos`` that notes each embedded video in ``seen`` (and is killed at the Nth)."""

    def wrapped(*args, **kwargs):
        for item, features in embed_videos(*args, **kwargs):
            if features is not None:
                seen.append(item["video_id"])
                if len(seen) == crash_at:
                    raise KeyboardInterrupt("killed")
            yield item, features

    return wrapped


def test_interrupted_run_resumes_to_the_same_file(broken_videos, reference, tmp_path, monkeypatch):
    import move.extraction.extract

    real_embed, calls = move.extraction.extract.embed_videos, []
    out = tmp_path / "resnet50.h5"
    monkeypatch.setattr(
        move.extraction.extract, "embed_videos", counting(real_embed, calls, crash_at=5)
    )
    with pytest.raises(KeyboardInterrupt):
        extract_features(
            broken_videos, out, tmp_path / "f.csv", SETTINGS, progress=False, chunk_videos=2
        )
    assert not out.exists()  # nothing that looks finished
    chunks = sorted((tmp_path / "resnet50.h5.partial").glob("chunk-*.h5"))
    # Crash on video 6 (the 5th decodable one): videos 0-5 (2 failures) are safe in 3 chunks.
    assert len(chunks) == 3
    (chunks[-1].parent / "chunk-000099.h5").write_bytes(b"truncated")  # a damaged chunk

    calls.clear()
    monkeypatch.setattr(move.extraction.extract, "embed_videos", real_embed)
    with pytest.warns(UserWarning, match="discarding .*chunk-000099"):
        counts = extract_features(
            broken_videos, out, tmp_path / "f.csv", SETTINGS, progress=False, chunk_videos=2
        )
    assert counts == {"extracted": 7, "failed": 3, "new": 3}  # 4 were in finished chunks
    assert_same_features(out, reference)
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "f.csv"), pd.read_csv(reference.with_suffix(".failures.csv"))
    )
    assert not (tmp_path / "resnet50.h5.partial").exists()


def test_rerun_of_finished_partial_skips_done_videos(broken_videos, tmp_path, monkeypatch):
    import move.extraction.extract

    extract_features(broken_videos.iloc[:4], tmp_path / "a.h5", tmp_path / "a.csv", SETTINGS, False)
    # Leave a finished chunk of 4 videos as if the run had stopped; the rerun must not redo them.
    partial = tmp_path / "b.h5.partial"
    partial.mkdir()
    shutil.copy(tmp_path / "a.h5", partial / "chunk-000000.h5")
    with h5py.File(partial / "chunk-000000.h5", "a") as handle:
        handle.attrs["failures"] = "[]"
    seen = []
    monkeypatch.setattr(
        move.extraction.extract,
        "embed_videos",
        counting(move.extraction.extract.embed_videos, seen),
    )
    counts = extract_features(broken_videos, tmp_path / "b.h5", tmp_path / "b.csv", SETTINGS, False)
    assert counts["extracted"] == 7 and len(seen) == 7 - 3  # 3 of the first 4 decode fine


def test_rerun_over_a_finished_output_extracts_only_new_videos(
    broken_videos, reference, tmp_path, monkeypatch
):
    import move.extraction.extract

    out, failures = tmp_path / "resnet50.h5", tmp_path / "resnet50.failures.csv"
    extract_features(broken_videos.iloc[:6], out, failures, SETTINGS, progress=False)
    seen = []
    monkeypatch.setattr(
        move.extraction.extract,
        "embed_videos",
        counting(move.extraction.extract.embed_videos, seen),
    )
    extract_features(broken_videos, out, failures, SETTINGS, progress=False)
    assert len(seen) == 3  # videos 6, 8, 9 (7 is missing, logged again without decoding)
    assert_same_features(out, reference)
    pd.testing.assert_frame_equal(
        pd.read_csv(failures), pd.read_csv(reference.with_suffix(".failures.csv"))
    )


def test_shards_merge_to_the_same_file_as_one_run(broken_videos, reference, tmp_path):
    from move.extraction.shards import merge_feature_files, select_shard

    parts = [select_shard(broken_videos, i, 3) for i in range(3)]
    assert sorted(sum((list(p.video_id) for p in parts), [])) == sorted(broken_videos.video_id)
    files = []
    for i, part in enumerate(parts[1:], start=1):
        path = tmp_path / f"resnet50.shard{i}of3.h5"
        extract_features(part, path, path.with_suffix(".failures.csv"), SETTINGS, progress=False)
        files.append(str(path))
    # Shard 0 through the CLI, on the whole list: --shard picks the same videos.
    annotations = tmp_path / "annotations.csv"
    table = pd.read_csv(broken_videos.attrs["annotations"], dtype=str)
    table.iloc[:10].to_csv(annotations, index=False)
    shard0 = tmp_path / "resnet50.shard0of3.h5"
    cli = ["extract", "--quiet", "--shard", "0/3"]
    options = [
        "--frames",
        "3",
        "--resize",
        "40",
        "--crop",
        "32",
        "--batch-size",
        "8",
        "--weights",
        "none",
    ]
    result = run_move(
        *cli, *options, "--annotations", annotations, "--videos", broken_videos.attrs["root"],
        "--out", shard0,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    files.insert(0, str(shard0))
    merged = tmp_path / "resnet50.h5"
    result = run_move("merge-features", *files, "--out", merged)
    assert result.returncode == 0, result.stderr
    assert_same_features(merged, reference)
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "resnet50.failures.csv"),
        pd.read_csv(reference.with_suffix(".failures.csv")),
    )
    with pytest.raises(MoveError, match="two parts"):
        merge_feature_files([files[0], files[0]], tmp_path / "dup.h5")


KILLED_RUN = """
import sys, time, pandas as pd
import move.extraction.extract as ex
real = ex.embed_videos
def slow(*args, **kwargs):
    for count, result in enumerate(real(*args, **kwargs)):
        if count >= 6:
            time.sleep(60)  # parked here until SIGKILL
        yield result
ex.embed_videos = slow
videos = pd.read_pickle(sys.argv[1])
settings = ex.ExtractSettings(frames=3, resize=40, crop=32, batch_size=8, weights="none")
ex.extract_features(videos, sys.argv[2], sys.argv[3], settings, progress=False, chunk_videos=2)
"""


@pytest.mark.slow
def test_sigkilled_run_resumes_to_the_same_file(broken_videos, reference, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    broken_videos.to_pickle(tmp_path / "videos.pkl")
    out, failures = tmp_path / "resnet50.h5", tmp_path / "resnet50.failures.csv"
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, str(tmp_path / "videos.pkl"), str(out), str(failures)]
    )
    partial = tmp_path / "resnet50.h5.partial"
    deadline = time.monotonic() + 120
    while len(list(partial.glob("chunk-*.h5"))) < 3 and time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be killed"
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not out.exists() and len(list(partial.glob("chunk-*.h5"))) == 3
    extract_features(broken_videos, out, failures, SETTINGS, progress=False, chunk_videos=2)
    assert_same_features(out, reference)


def test_tsm_batches_hold_whole_clips():
    import torch

    from move.extraction.backbones import create_backbone
    from move.extraction.embedding import embed_frames

    model = create_backbone("tsm_resnet50", "none")
    for module in model.modules():  # timm zero-inits each block's last BN: revive the branches
        if isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.ones_(module.weight)
    generator = torch.Generator().manual_seed(0)
    frames = torch.randn(20, 3, 32, 32, generator=generator)  # clips 0-7, 8-15, 16-19 (+ 4 pad)
    with torch.inference_mode():
        whole = model.forward_features(frames).numpy()
    batched = embed_frames(model, frames, batch_size=5, device=torch.device("cpu"))  # -> 8
    # other batch shapes sum in another order: equal within 1e-5 of the largest feature value,
    # as README says of features computed with different thread counts
    np.testing.assert_allclose(batched, whole, rtol=1e-4, atol=1e-5 * np.abs(whole).max())


def test_list_videos_finds_files_named_by_the_bare_youtube_id(tmp_path):
    """Extraction sees the same files as the split's missing-video check (move.datasets.kinetics)."""
    from move.extraction.decoding import list_videos

    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "abcdefghijk.mp4").write_bytes(b"x")
    (tmp_path / "annotations.csv").write_text(
        "label,youtube_id,time_start,time_end,split\n"
        "abseiling,abcdefghijk,10,20,train\nabseiling,zzzzzzzzzzz,0,10,train\n"
    )
    table = list_videos(tmp_path / "annotations.csv", tmp_path / "videos")
    paths = dict(zip(table.video_id, table.path, strict=True))
    assert paths == {
        "abcdefghijk_000010_000020": str(tmp_path / "videos" / "abcdefghijk.mp4"),
        "zzzzzzzzzzz_000000_000010": "",
    }
