"""The fault matrix of issue 6: each fault driven through the real CLI / workflow.

Every fault ends in a one-line error naming the file or config key and the fix, or in a logged
skip, and nothing computed before is lost or corrupted. Rows covered elsewhere: extraction killed
with SIGKILL and rerun (tests/test_extract.py::test_sigkilled_run_resumes_to_the_same_file),
missing video ids vs. the threshold (tests/test_kinetics.py::
test_split_cli_lists_missing_and_stops_over_threshold), unset Kinetics path in the workflow
(tests/test_workflow.py::test_unset_kinetics_path_stops_with_one_line).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from move.cli import all_commands, main
from move.datasets.synthetic import SyntheticSpec, make_synthetic_features
from move.extraction.decoding import list_videos
from move.extraction.extract import ExtractSettings, extract_features
from tests.conftest import (
    REPO,
    run_move,
    tiny_train,
    write_feature_file,
    write_features_and_split,
)

SUBCOMMANDS = sorted(command.name for command in all_commands())
EXTRACT_ARGS = ["--frames", "3", "--resize", "40", "--crop", "32", "--batch-size", "8"]
EXTRACT_ARGS += ["--device", "cpu", "--quiet", "--weights", "none"]
TINY_TRAIN = tiny_train()


def one_line_error(result: subprocess.CompletedProcess, command: str) -> str:
    """Assert a failed run printed exactly one error line and no traceback; return it."""
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"move {command}: error: ")
    return lines[0]


def cli_error(capsys, *argv: str) -> str:
    """Run ``move`` in-process; assert exit 1 and one stderr line; return it."""
    assert main([str(a) for a in argv]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


# --- videos ----------------------------------------------------------------------------------


def _write_video(path: Path, frames: int) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            image = np.full((32, 32, 3), 40 * i % 255, dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def _break_sample_sizes(path: Path) -> None:
    """Make every sample size but the first impossible in the MP4 index (``stsz``): decoders
    then read one frame of the forty the container lists."""
    import struct

    data = bytearray(path.read_bytes())
    box = data.find(b"stsz")
    count = struct.unpack(">I", data[box + 12 : box + 16])[0]
    for k in range(1, count):
        data[box + 16 + 4 * k : box + 20 + 4 * k] = struct.pack(">I", 0x7FFFFFFF)
    path.write_bytes(bytes(data))


def _write_audio_only(path: Path) -> None:
    import av

    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=8000)
        stream.layout = "mono"
        for i in range(10):
            samples = np.zeros((1, 1024), dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 8000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


@pytest.fixture(scope="module")
def bad_videos(tiny_videos, tmp_path_factory):
    """Nine demo videos of which six are broken in the ways of the matrix's first row."""
    root = tmp_path_factory.mktemp("faulty") / "videos"
    shutil.copytree(tiny_videos / "videos", root)
    table = list_videos(tiny_videos / "annotations.csv", root).iloc[:9]
    files = {
        v: root / label / f"{v}.mp4" for v, label in zip(table.video_id, table.label, strict=True)
    }
    ids = list(files)
    kinds = {}
    rng = np.random.default_rng(0)
    files[ids[0]].write_bytes(rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    kinds[ids[0]] = "corrupt"
    data = files[ids[1]].read_bytes()
    files[ids[1]].write_bytes(data[: len(data) // 3])
    kinds[ids[1]] = "truncated"
    files[ids[2]].write_bytes(b"")
    kinds[ids[2]] = "zero bytes"
    _write_audio_only(files[ids[3]])
    kinds[ids[3]] = "no video stream"
    _write_video(files[ids[4]], 1)
    kinds[ids[4]] = "1 frame"
    files[ids[5]].write_text("label,youtube_id\nthis is a CSV, not a video\n")
    kinds[ids[5]] = "non-video file"
    _write_video(files[ids[6]], 40)
    _break_sample_sizes(files[ids[6]])
    kinds[ids[6]] = "broken index"
    annotations = root.parent / "annotations.csv"
    pd.read_csv(tiny_videos / "annotations.csv").iloc[:9].to_csv(annotations, index=False)
    return root, annotations, kinds


def test_broken_videos_are_logged_with_reason_and_the_run_continues(bad_videos, tmp_path):
    root, annotations, kinds = bad_videos
    out = tmp_path / "resnet50.h5"
    result = run_move("extract", "--annotations", annotations, "--videos", root, "--out", out,
                      *EXTRACT_ARGS)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    failed = pd.read_csv(tmp_path / "resnet50.failures.csv").set_index("video_id").reason
    by_kind = {kind: video for video, kind in kinds.items()}
    for kind in ("corrupt", "zero bytes", "no video stream", "non-video file"):
        assert by_kind[kind] in failed.index, kind
        assert failed[by_kind[kind]], kind  # a reason is given
    assert failed[by_kind["zero bytes"]] == "empty file (0 bytes)"
    assert failed[by_kind["broken index"]].startswith(
        "index broken: decoded 1 of the 40 frames its container states"
    )
    assert failed[by_kind["corrupt"]] == "could not open: not a video file, or its header is broken"
    # the reasons are in words, once each; the decoders' own log lines stay out of the log
    noise = [line for line in result.stderr.splitlines() if ".cc:" in line or "@ 0x" in line]
    assert noise == [], noise[:5]
    with h5py.File(out, "r") as handle:
        kept = set(handle["videos"])
        one = handle["videos"][by_kind["1 frame"]]
        assert one.shape[0] == 3 and one.attrs["n_frames"] == 1  # the one frame, repeated
        for video in kept:
            assert np.isfinite(handle["videos"][video][()]).all()
    assert len(kept) + len(failed) == 9 and not kept & set(failed.index)
    # truncated: either decoded in part (kept) or logged; never lost silently
    assert by_kind["truncated"] in kept | set(failed.index)
    print({kind: failed.get(video, "extracted") for video, kind in kinds.items()})


def test_wrong_video_root_or_list_stops_before_any_work(bad_videos, tmp_path, capsys):
    root, annotations, _ = bad_videos
    out = tmp_path / "x.h5"
    error = cli_error(capsys, "extract", "--annotations", annotations, "--videos",
                      tmp_path / "nope", "--out", out, *EXTRACT_ARGS)  # fmt: skip
    assert "video folder" in error and "'videos'" in error
    error = cli_error(capsys, "extract", "--annotations", tmp_path / "none.csv", "--videos",
                      root, "--out", out, *EXTRACT_ARGS)  # fmt: skip
    assert "annotations file" in error and "'annotations'" in error
    assert not out.exists() and not list(tmp_path.glob("x.h5*"))


# --- config ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "override, expected",
    [
        ({"extrac": {}}, "unknown key(s) extrac (allowed: "),
        ({"seed": "zero"}, "config key 'seed': 'zero' is not of type 'integer'"),
        ({"datasets": {"demo": {"imbalance_ratios": [0]}}}, "datasets.demo.imbalance_ratios[0]"),
        ({"datasets": {"demo": {"imbalance_ratios": [1.5]}}}, "datasets.demo.imbalance_ratios[0]"),
        ({"backbone": "vit"}, "config key 'backbone': 'vit' is not allowed (choose one of"),
        ({"train": {"method": "magic"}}, "config key 'train.method': 'magic' is not allowed"),
    ],
    ids=["unknown-key", "wrong-type", "ir-zero", "ir-above-one", "backbone", "method"],
)
def test_config_fault_names_the_key(override, expected, tmp_path, capsys):
    from tests.snakemake_runs import merged_config

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(merged_config(override)))
    error = cli_error(capsys, "check-config", config)
    assert expected in error


# --- weights ---------------------------------------------------------------------------------


def test_weights_file_faults_stop_with_the_fix(bad_videos, tmp_path, capsys):
    root, annotations, _ = bad_videos
    common = ["--annotations", annotations, "--videos", root, "--out", tmp_path / "f.h5"]
    error = cli_error(capsys, "extract", *common, "--weights", tmp_path / "absent.pth")
    assert "weights file" in error and "not found" in error and "extract.weights" in error
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint at all")
    error = cli_error(capsys, "extract", *common, "--weights", tmp_path / "garbage.pth")
    assert "is not a PyTorch checkpoint" in error
    other = {"layer9.conv.weight": torch.zeros(2, 2), "fc.weight": torch.zeros(7, 2048)}
    torch.save({"state_dict": other}, tmp_path / "other.pth")
    error = cli_error(capsys, "extract", *common, "--weights", tmp_path / "other.pth")
    assert "missing" in error and "unexpected" in error and "layer9.conv.weight" in error
    assert not (tmp_path / "f.h5").exists()


# --- feature files ---------------------------------------------------------------------------


@pytest.fixture()
def synthetic(tmp_path):
    spec = SyntheticSpec(classes=4, n_max=12, test_per_class=3, frames=8, dim=16, seed=1)
    make_synthetic_features(tmp_path / "f.h5", tmp_path / "split.csv", spec)
    return tmp_path / "f.h5", tmp_path / "split.csv"


def train_args(features, split, out, **overrides) -> list:
    settings = json.dumps({**TINY_TRAIN, **overrides})
    return ["train", "--features", features, "--split", split, "--out", out, "--settings",
            settings, "--head-min", "8", "--tail-max", "3", "--quiet"]  # fmt: skip


def test_truncated_feature_file_is_refused_on_open(synthetic, tmp_path, capsys):
    features, split = synthetic
    data = features.read_bytes()
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(data[: len(data) // 2])  # killed mid-write
    error = cli_error(capsys, *train_args(truncated, split, tmp_path / "r.json"))
    assert f"feature file {truncated} is unreadable (truncated?)" in error
    assert "re-extract" in error and not (tmp_path / "r.json").exists()


def test_partial_from_another_frame_count_is_rebuilt_not_mixed(bad_videos, tmp_path):
    root, annotations, kinds = bad_videos
    videos = list_videos(annotations, root)
    videos = videos[~videos.video_id.isin(list(kinds))].iloc[:2]
    settings = ExtractSettings(
        frames=2, resize=40, crop=32, batch_size=8, device="cpu", weights="none"
    )
    old = tmp_path / "old.h5"
    extract_features(videos, old, tmp_path / "old.csv", settings, progress=False)
    out = tmp_path / "resnet50.h5"
    partial = out.with_name(out.name + ".partial")
    partial.mkdir()
    os.replace(old, partial / "chunk-000000.h5")  # a leftover chunk made with T=2
    shutil.copy(partial / "chunk-000000.h5", out)  # and a finished file made with T=2
    new = ExtractSettings(frames=3, resize=40, crop=32, batch_size=8, device="cpu", weights="none")
    with pytest.warns(UserWarning, match="made with other settings"):
        extract_features(videos, out, tmp_path / "f.csv", new, progress=False)
    with h5py.File(out, "r") as handle:
        assert handle.attrs["frames"] == 3
        assert {handle["videos"][v].shape[0] for v in handle["videos"]} == {3}
        assert len(handle["videos"]) == 2
    assert not partial.exists()


def test_parts_from_another_backbone_or_frame_count_are_never_merged(tmp_path, capsys):
    a = write_feature_file(tmp_path / "a.h5", {"v1": "x"}, frames=3, dim=8)
    b = write_feature_file(tmp_path / "b.h5", {"v2": "x"}, frames=4, dim=8)
    write_feature_file(tmp_path / "c.h5", {"v3": "x"}, frames=3, dim=8)
    with h5py.File(tmp_path / "c.h5", "r+") as handle:
        handle.attrs["backbone"] = "resnet101"
    out = tmp_path / "merged.h5"
    for other in (b, tmp_path / "c.h5"):
        error = cli_error(capsys, "merge-features", a, other, "--out", out)
        assert f"feature file {other} was made with other settings" in error
        assert not out.exists() and not list(tmp_path.glob("merged*"))


def test_nan_or_inf_features_stop_naming_the_video(tmp_path, capsys):
    features, split = write_features_and_split(tmp_path, per_class=6, train_per_class=4)
    for bad_value, video in ((np.nan, "v1_2"), (np.inf, "v2_5")):
        with h5py.File(features, "r+") as handle:
            handle["videos"][video][1, 3] = bad_value
        error = cli_error(capsys, *train_args(features, split, tmp_path / f"{video}.json", frames_train=4, frames_test=4))  # fmt: skip
        assert f"video {video}" in error and str(features) in error, error
        assert "NaN/inf" in error and not (tmp_path / f"{video}.json").exists()
        with h5py.File(features, "r+") as handle:
            handle["videos"][video][1, 3] = 0.0


# --- training killed -------------------------------------------------------------------------

KILLED_TRAIN = """
import dataclasses, sys, time
from pathlib import Path
import move.training.methods  # registers the built-in methods
import move.training.registry as registry
marker = Path(sys.argv[1])
original, calls = registry.registered()["move"], [0]
def hangs_mid_epoch_two(*args):
    calls[0] += 1
    if calls[0] == 4:  # 2 batches per epoch: batch 2 of epoch 2
        marker.write_text("now")
        time.sleep(300)
    return original.transform(*args)
registry._REGISTRY["move"] = dataclasses.replace(original, transform=hangs_mid_epoch_two)
from move.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.slow
def test_training_sigkilled_mid_epoch_resumes_to_the_same_metrics(synthetic, tmp_path):
    features, split = synthetic
    reference = run_move(*train_args(features, split, tmp_path / "ref.json"))
    assert reference.returncode == 0, reference.stderr[-2000:]
    out, marker = tmp_path / "killed.json", tmp_path / "marker"
    args = [str(a) for a in train_args(features, split, out)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_TRAIN, str(marker), *args], env=env, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while not marker.exists() and time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = tmp_path / "killed.pt.partial"
    assert torch.load(partial, weights_only=False)["epoch"] == 1 and not out.exists()
    resumed = run_move(*train_args(features, split, out))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming" in resumed.stderr and not partial.exists()
    a, b = (json.loads(p.read_text()) for p in (tmp_path / "ref.json", out))
    assert a["final"] == b["final"] and a["best"] == b["best"]
    strip = [{k: v for k, v in r.items() if not k.startswith("seconds")} for r in a["history"]]
    assert strip == [
        {k: v for k, v in r.items() if not k.startswith("seconds")} for r in b["history"]
    ]


# --- disk full -------------------------------------------------------------------------------


@contextlib.contextmanager
def tiny_disk(path: Path, size: str):
    """A size-limited tmpfs at ``path`` (needs root / mount rights)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def test_disk_full_during_extraction_says_so_and_keeps_the_previous_output(tiny_videos, tmp_path):
    root, annotations = tiny_videos / "videos", tmp_path / "annotations.csv"
    pd.read_csv(tiny_videos / "annotations.csv").iloc[:4].to_csv(annotations, index=False)
    with tiny_disk(tmp_path / "disk", "200k") as disk:
        out = disk / "resnet50.h5"
        write_feature_file(out, {"old_video": "x"}, frames=3, dim=8)
        before = out.read_bytes()
        result = run_move("extract", "--annotations", annotations, "--videos", root,
                          "--out", out, *EXTRACT_ARGS)  # fmt: skip
        error = one_line_error(result, "extract")
        assert "no space left on device" in error and "free" in error, error
        assert out.read_bytes() == before  # previous output intact
        assert not list(disk.rglob("*.tmp"))


def test_disk_full_writing_a_split_keeps_the_previous_split(tmp_path):
    labels = {f"v{c}_{i}": f"class{c}" for c in range(3) for i in range(40)}
    annotations = pd.DataFrame(
        [(label, v, 0, 10, "train" if int(v.split("_")[1]) < 30 else "val")
         for v, label in labels.items()],
        columns=["label", "youtube_id", "time_start", "time_end", "split"],
    )  # fmt: skip
    annotations.to_csv(tmp_path / "ann.csv", index=False)
    from move.annotations import kinetics_video_id

    ids = {kinetics_video_id(v, 0, 10): label for v, label in labels.items()}
    features = write_feature_file(tmp_path / "f.h5", ids, frames=2, dim=4)
    with tiny_disk(tmp_path / "disk", "12k") as disk:
        out = disk / "split.csv"
        out.write_text("previous split\n")
        with contextlib.suppress(OSError), open(disk / "filler", "wb") as filler:
            while True:  # fill the disk to the last byte
                filler.write(b"\0" * 512)
                filler.flush()
        result = run_move("split", "--annotations", tmp_path / "ann.csv", "--features", features,
                          "--ir", "1", "--max-per-class", "30", "--head-min", "20",
                          "--tail-max", "5", "--out", out, "--class-counts",
                          tmp_path / "counts.csv")  # fmt: skip
        error = one_line_error(result, "split")
        assert "no space left on device writing" in error and str(out) in error, error
        assert out.read_text() == "previous split\n"
        assert not list(disk.glob("*.tmp"))


# --- workflow lock ---------------------------------------------------------------------------


@pytest.mark.slow
def test_second_workflow_run_on_the_same_directory_is_refused(tmp_path):
    from tests.snakemake_runs import TINY_CONFIG, merged_config

    (tmp_path / "config.yaml").write_text(yaml.safe_dump(merged_config(TINY_CONFIG)))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d",
               str(tmp_path), "--cores", "1", "features/demo/resnet50.h5"]  # fmt: skip
    first = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    locks = tmp_path / ".snakemake" / "locks"
    deadline = time.monotonic() + 120
    while not (locks.is_dir() and any(locks.iterdir())) and time.monotonic() < deadline:
        assert first.poll() is None, first.stdout.read().decode()[-2000:]
        time.sleep(0.1)
    second = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    output, _ = first.communicate(timeout=300)
    assert first.returncode == 0, output.decode()[-2000:]
    assert second.returncode != 0
    # Snakemake refuses on the lock, or earlier on the first run's files still being written
    # (which started first depends on the machine's load); either way nothing is touched.
    refusal = second.stdout + second.stderr
    assert "Directory cannot be locked" in refusal or "Incomplete files:" in refusal, refusal
    assert "Traceback" not in second.stderr
    assert (tmp_path / "features/demo/resnet50.h5").is_file()


# --- every subcommand ------------------------------------------------------------------------


def _failing_argv(name: str, missing: Path) -> list[str]:
    """Fill a subcommand's required options with paths that do not exist (numbers with 1)."""
    command = next(command for command in all_commands() if command.name == name)
    argv = [name]
    for argument in command.arguments:
        options, positional = argument.options, not argument.flags[0].startswith("-")
        if not (options.get("required") or (positional and options.get("nargs") != "?")):
            continue
        value = "1" if options.get("type") in (int, float) else str(missing / argument.dest)
        if options.get("choices"):
            value = next(iter(options["choices"]))  # e.g. 'move plot <figure>'
        if not positional:
            argv += [argument.flags[0], value]
        else:
            argv += [value] if options.get("nargs") in (None, "?") else [f"move={value}"]
    return argv


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_fails_in_one_line_without_traceback(name, tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main([name, "--help"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith(f"usage: move {name}")
    missing = tmp_path / "absent"
    argv = _failing_argv(name, missing)
    if name == "demo-videos":
        argv += ["--size", "33", "--quiet"]  # odd frame size: refused before any video
    if name == "check-config":
        argv += [str(missing / "config.yaml")]
    if name == "docs":
        argv += ["--check", "--out", str(missing)]  # no pages there: stale, nothing written
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 1, (argv, err)
    assert len(err.splitlines()) == 1 and err.startswith(f"move {name}: error: "), err
    assert "Traceback" not in err
    with pytest.raises(Exception):  # noqa: B017 - --debug shows the real exception
        main([*argv, "--debug"])


# --- one writer per output --------------------------------------------------------------------

HOLD_LOCK = """
import sys, time
from move.files import output_lock
with output_lock(sys.argv[1], "extraction"):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_second_writer_is_refused_naming_the_first_and_a_killed_ones_lock_taken_over(
    bad_videos, tmp_path, capsys
):
    """While another process holds ``<out>.lock``, `move extract` into the same file stops in one
    line naming it; once that process is killed (its lock file left behind), a rerun runs."""
    root, annotations, _ = bad_videos
    out = tmp_path / "resnet50.h5"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(out)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        args = ["extract", "--annotations", annotations, "--videos", root, "--out", out]
        error = cli_error(capsys, *args, *EXTRACT_ARGS)
        assert f"{out} is being written by another extraction (pid {holder.pid} on " in error
        assert "wait for it to finish or stop it" in error and not out.exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (tmp_path / "resnet50.h5.lock").is_file()  # left behind by the killed run
    assert main([str(a) for a in [*args, *EXTRACT_ARGS]]) == 0
    assert out.is_file() and not (tmp_path / "resnet50.h5.lock").exists()
