"""Re-running never loses finished work (issue 13): a finished feature file stays where it is,
readable, until its replacement is complete; unfinished parts are never merged; a grown list
extracts only its new videos, also under Snakemake; an output never overwrites an input."""

from __future__ import annotations

import copy
import subprocess
import sys
import warnings

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

import move.extraction.extract
from move.cli import main
from move.extraction.decoding import list_videos
from move.extraction.extract import ExtractSettings, extract_features
from tests.conftest import write_feature_file
from tests.snakemake_runs import TINY_CONFIG, merged_config, snakemake

SETTINGS = ExtractSettings(frames=3, resize=40, crop=32, batch_size=8, device="cpu", weights="none")


@pytest.fixture(scope="module")
def videos(tiny_videos):
    """Eight decodable videos of the tiny demo, in list order."""
    return list_videos(tiny_videos / "annotations.csv", tiny_videos / "videos").iloc[:8]


def stored(path) -> dict[str, np.ndarray]:
    """Every video's features in a finished feature file."""
    with h5py.File(path, "r") as handle:
        assert handle.attrs["complete"]
        return {v: handle["videos"][v][()] for v in handle["videos"]}


def count_embeds(monkeypatch, fail_at: int | None = None) -> list:
    """Record each embedded (decoded) video; Ctrl-C at video number ``fail_at``."""
    real, calls = move.extraction.extract.embed_videos, []

    def counted(*args, **kwargs):
        for item, features in real(*args, **kwargs):
            if features is not None:
                calls.append(1)
                if len(calls) == fail_at:
                    raise KeyboardInterrupt
            yield item, features

    monkeypatch.setattr(move.extraction.extract, "embed_videos", counted)
    return calls


def one_error_line(capsys, *argv) -> str:
    assert main([str(a) for a in argv]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_shrunk_list_reuses_the_finished_file(videos, tmp_path, monkeypatch):
    out, failures = tmp_path / "resnet50.h5", tmp_path / "resnet50.failures.csv"
    extract_features(videos.iloc[:6], out, failures, SETTINGS, progress=False)
    before = stored(out)
    calls = count_embeds(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing finished is discarded
        counts = extract_features(videos.iloc[:5], out, failures, SETTINGS, progress=False)
    assert calls == [] and counts == {"extracted": 5, "failed": 0, "new": 0}
    after = stored(out)
    assert sorted(after) == sorted(videos.video_id.iloc[:5])
    for video_id, features in after.items():
        np.testing.assert_array_equal(features, before[video_id])


HOLD_OPEN = """
import sys, time, h5py
handle = h5py.File(sys.argv[1], "r")
print(len(handle["videos"]), flush=True)
time.sleep(120)
"""


def test_rerun_while_another_process_reads_the_file(videos, tmp_path, monkeypatch):
    out, failures = tmp_path / "resnet50.h5", tmp_path / "resnet50.failures.csv"
    extract_features(videos.iloc[:4], out, failures, SETTINGS, progress=False)
    reader = subprocess.Popen(
        [sys.executable, "-c", HOLD_OPEN, str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert reader.stdout.readline().strip() == "4"  # a notebook holds the file open
        calls = count_embeds(monkeypatch)
        counts = extract_features(videos.iloc[:6], out, failures, SETTINGS, progress=False)
    finally:
        reader.kill()
        reader.wait()
    assert len(calls) == 2 and counts == {"extracted": 6, "failed": 0, "new": 2}
    assert sorted(stored(out)) == sorted(videos.video_id.iloc[:6])


def test_interrupted_rerun_keeps_the_finished_file(videos, tmp_path, monkeypatch):
    out, failures = tmp_path / "resnet50.h5", tmp_path / "resnet50.failures.csv"
    extract_features(videos.iloc[:4], out, failures, SETTINGS, progress=False)
    before, failures_before = stored(out), failures.read_text()
    count_embeds(monkeypatch, fail_at=2)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C on the second new video
        extract_features(videos, out, failures, SETTINGS, progress=False, chunk_videos=1)
    after = stored(out)  # still there, finished and unchanged: 'move split' can read it
    assert after.keys() == before.keys()
    assert all(np.array_equal(after[v], before[v]) for v in before)
    assert failures.read_text() == failures_before
    calls = count_embeds(monkeypatch)
    counts = extract_features(videos, out, failures, SETTINGS, progress=False, chunk_videos=1)
    assert len(calls) == 3 and counts == {"extracted": 8, "failed": 0, "new": 3}


def test_merge_refuses_unfinished_or_non_hdf5_parts(tmp_path, capsys):
    finished = write_feature_file(tmp_path / "a.h5", {"v1": "x", "v2": "y"}, frames=3, dim=8)
    unfinished = write_feature_file(tmp_path / "b.h5", {"v3": "x", "v4": "y"}, frames=3, dim=8)
    with h5py.File(unfinished, "r+") as handle:
        handle.attrs["complete"] = False
        del handle["videos"]["v4"]  # an interrupted shard
    out = tmp_path / "merged.h5"
    error = one_error_line(capsys, "merge-features", finished, unfinished, "--out", out)
    assert f"feature file {unfinished} was never finished: delete it and re-extract" in error
    not_hdf5 = tmp_path / "c.h5"
    not_hdf5.write_text("video_id,path,reason\n")
    error = one_error_line(capsys, "merge-features", finished, not_hdf5, "--out", out)
    assert f"feature file {not_hdf5} is unreadable" in error
    assert not out.exists() and not list(tmp_path.glob("merged*"))


def test_chunk_not_marked_complete_is_never_merged(videos, tmp_path, monkeypatch):
    out, failures = tmp_path / "resnet50.h5", tmp_path / "resnet50.failures.csv"
    extract_features(videos.iloc[:2], tmp_path / "a.h5", tmp_path / "a.csv", SETTINGS, False)
    partial = tmp_path / "resnet50.h5.partial"
    partial.mkdir()
    with (
        h5py.File(tmp_path / "a.h5", "r") as source,
        h5py.File(partial / "chunk-000000.h5", "w") as chunk,
    ):
        for key, value in source.attrs.items():
            chunk.attrs[key] = value
        chunk.attrs["complete"] = False  # written in place and cut short
        chunk.attrs["failures"] = "[]"
        source.copy(source["videos"], chunk, name="videos")
        chunk["videos"][videos.video_id.iloc[0]][...] = 0
    calls = count_embeds(monkeypatch)
    with pytest.warns(UserWarning, match="discarding .*chunk-000000.h5.*not marked complete"):
        extract_features(videos.iloc[:2], out, failures, SETTINGS, progress=False)
    assert len(calls) == 2
    for video_id, features in stored(tmp_path / "a.h5").items():
        np.testing.assert_array_equal(stored(out)[video_id], features)


@pytest.mark.slow
def test_workflow_extracts_only_the_added_video(tiny_videos, tmp_path):
    annotations = tmp_path / "annotations.csv"
    table = pd.read_csv(tiny_videos / "annotations.csv", dtype=str)
    table.iloc[:10].to_csv(annotations, index=False)
    demo = copy.deepcopy(TINY_CONFIG["datasets"]["demo"])
    demo.update(videos=str(tiny_videos / "videos"), annotations=str(annotations))
    config = merged_config({**TINY_CONFIG, "datasets": {"demo": demo}})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    target = "features/demo/resnet50.h5"
    first = snakemake(tmp_path, target)
    assert first.returncode == 0, first.stderr[-3000:]
    table.iloc[:11].to_csv(annotations, index=False)  # one video added to the list
    second = snakemake(tmp_path, target)
    assert second.returncode == 0, second.stderr[-3000:]
    log = (tmp_path / "logs/extract_shard/demo_resnet50.shard0of1.log").read_text()
    assert "11 videos in features/demo/resnet50.shard0of1.h5 (1 new, the others reused)" in log
    assert len(stored(tmp_path / target)) == 11


def test_output_equal_to_an_input_is_refused(tmp_path, capsys):
    features = write_feature_file(tmp_path / "f.h5", {"v1": "x", "v2": "y"}, frames=3, dim=8)
    annotations = tmp_path / "annotations.csv"
    annotations.write_text("label,youtube_id,time_start,time_end,split\nx,v1,0,10,train\n")
    before = features.read_bytes(), annotations.read_text()
    link = tmp_path / "model.pt"
    link.symlink_to(features)  # another name for the feature file
    error = one_error_line(capsys, "train", "--features", features, "--split", tmp_path / "s.csv",
                           "--out", tmp_path / "r.json", "--checkpoint", link,
                           "--head-min", "5", "--tail-max", "1")  # fmt: skip
    assert f"--checkpoint {link} is the same file as --features" in error
    error = one_error_line(capsys, "split", "--annotations", annotations, "--features", features,
                           "--ir", "0.5", "--head-min", "5", "--tail-max", "1", "--out",
                           annotations, "--class-counts", tmp_path / "c.csv")  # fmt: skip
    assert f"--out {annotations} is the same file as --annotations" in error
    error = one_error_line(capsys, "merge-features", features, "--out", features)
    assert f"--out {features} is the same file as one of the parts" in error
    assert (features.read_bytes(), annotations.read_text()) == before


def test_every_output_argument_is_checked_against_the_inputs():
    """Every argument named like an output is tagged as a file where it is declared (an output;
    evaluate's --checkpoint an input)."""
    from move.cli import all_commands

    output_names = {"out", "out_md", "out_csv", "split_out", "checkpoint", "class_counts"}
    for command in all_commands():
        dests = {argument.dest: argument.role for argument in command.arguments}
        assert all(dests[name] for name in dests.keys() & output_names), command.name
    extract = next(command for command in all_commands() if command.name == "extract")
    roles = {argument.dest: argument.role for argument in extract.arguments}
    assert roles["weights"] == "input" and roles["annotations"] == "input"
