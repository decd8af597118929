"""Kinetics-400 from its mirror: synthetic tar.gz shards in the mirror's layout (members
``<youtube_id>_<start:06d>_<end:06d>.mp4``, classes mixed, unlisted members among the listed)
served by the local HTTP server with a path list; `fetch-kinetics` keeps exactly the listed
members, skips finished shards on a rerun, never leaves a partial video, and retries then names
a truncated or dropped shard."""

from __future__ import annotations

import gzip
import io
import os
import signal
import subprocess
import sys
import tarfile
import time
import zlib

import pandas as pd
import pytest

import move.datasets.mirror as mirror
from move.datasets.mirror import SHARDS_DONE, fetch_kinetics
from move.downloads import TIMEOUT_ENV
from move.errors import MoveError
from tests.conftest import REPO

SHARDS = {
    f"part_{i}.tar.gz": [f"yt{i}{j}-abc_{j:06d}_{j + 10:06d}" for j in range(4)] for i in range(3)
}
LISTED = {ids[j] for ids in SHARDS.values() for j in (0, 2)} | {"gone0000000_000000_000010"}


def write_shards(server) -> str:
    """The shards (random bytes as videos, 20 kB each) and the path list; its URL."""
    lines = []
    for name, ids in SHARDS.items():
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for video_id in ids:
                data = os.urandom(20_000)
                info = tarfile.TarInfo(f"train/{video_id}.mp4")
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        (server.folder / name).write_bytes(buffer.getvalue())
        lines.append(server.url(name))
    (server.folder / "k400_train_path.txt").write_text("\n".join(lines) + "\n")
    return server.url("k400_train_path.txt")


@pytest.fixture
def shards(local_server, monkeypatch):
    monkeypatch.setenv(TIMEOUT_ENV, "1")
    return local_server, write_shards(local_server)


def shard_requests(server) -> list[str]:
    return sorted(r for r in server.requests if r.endswith(".tar.gz"))


def test_only_the_listed_members_are_kept_and_a_rerun_fetches_no_finished_shard(
    shards, tmp_path, monkeypatch
):
    server, path_list = shards
    out = tmp_path / "videos"
    extra = []
    keep = mirror.keep_members

    def measured(shard, wanted, folder):  # the peak: a whole shard on disk beside the videos
        extra.append(sum(p.stat().st_size for p in (folder / SHARDS_DONE / "in_flight").iterdir()))
        return keep(shard, wanted, folder)

    monkeypatch.setattr(mirror, "keep_members", measured)
    counts = fetch_kinetics([path_list], LISTED, out, parallel=1, progress=False)
    assert counts == {"shards": 3, "fetched": 3, "videos": 6, "not_in_shards": 1}
    assert {p.stem for p in out.glob("*.mp4")} == LISTED - {"gone0000000_000000_000010"}
    assert pd.read_csv(out / "not_in_shards.csv").video_id.tolist() == ["gone0000000_000000_000010"]
    sizes = sorted((server.folder / name).stat().st_size for name in SHARDS)
    assert sorted(extra) == sizes  # extra disk: one shard in flight, never more (parallel=1)
    assert not any((out / SHARDS_DONE / "in_flight").iterdir()) and not list(out.glob(".*.tmp"))
    before = shard_requests(server)
    again = fetch_kinetics([path_list], LISTED, out, parallel=2, progress=False)
    assert again["fetched"] == 0 and shard_requests(server) == before


def test_a_truncated_or_dropped_shard_is_retried_then_named_and_fetched_on_the_next_run(
    shards, tmp_path
):
    server, path_list = shards
    out = tmp_path / "videos"
    server.faults["part_1.tar.gz"] = ["cut:100"] * 3  # resumed twice, still short: refused
    server.faults["part_2.tar.gz"] = ["stall"]  # dropped once: resumed, fetched
    with pytest.raises(MoveError) as error:
        fetch_kinetics([path_list], LISTED, out, parallel=2, progress=False)
    message = str(error.value)
    assert message.startswith("1 of 3 shard(s) failed (part_1.tar.gz)") and "\n" not in message
    assert "the connection closed after 300 of" in message and "rerun to try them again" in message
    assert sorted(p.name.split(".")[0] for p in (out / SHARDS_DONE).glob("*.done")) == [
        "part_0",
        "part_2",
    ]
    counts = fetch_kinetics([path_list], LISTED, out, parallel=2, progress=False)
    assert counts["fetched"] == 1 and counts["videos"] == 6


def test_a_shard_that_is_not_a_tar_gz_is_named(shards, tmp_path):
    server, path_list = shards
    (server.folder / "part_0.tar.gz").write_bytes(os.urandom(5000))
    with pytest.raises(MoveError, match=r"shard .*part_0.tar.gz is not a readable tar.gz"):
        fetch_kinetics([path_list], LISTED, tmp_path / "videos", parallel=1, progress=False)
    assert not list((tmp_path / "videos").glob(".*.tmp"))


HOLD = """
import sys
from move.datasets.mirror import fetch_kinetics
fetch_kinetics([sys.argv[1]], None, sys.argv[2], parallel=1, progress=False)
"""


def test_killed_mid_shard_and_rerun_no_finished_shard_again_and_no_partial_video(shards, tmp_path):
    server, path_list = shards
    out = tmp_path / "videos"
    server.faults["part_2.tar.gz"] = ["stall"] * 10  # the third shard hangs: killed there
    env = {**os.environ, "PYTHONPATH": str(REPO), TIMEOUT_ENV: "30"}
    job = subprocess.Popen([sys.executable, "-c", HOLD, path_list, str(out)], env=env)
    try:
        deadline = time.monotonic() + 60
        while len(list((out / SHARDS_DONE).glob("*.done"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # inside the third shard's download
    finally:
        job.send_signal(signal.SIGKILL)
        job.wait()
    assert len(list((out / SHARDS_DONE).glob("*.done"))) == 2
    server.faults.clear()
    seen = len(server.requests)
    counts = fetch_kinetics([path_list], None, out, parallel=1, progress=False)
    assert counts["fetched"] == 1 and counts["videos"] == 12  # None: every member kept
    rerun = [r for r in server.requests[seen:] if r.endswith(".tar.gz")]
    assert rerun == ["/part_2.tar.gz"]  # no finished shard downloaded again
    assert not list(out.glob(".*.tmp")) and not any((out / SHARDS_DONE / "in_flight").iterdir())


# --- issue 32: shards known by their whole URL, whole gzip streams, one writer ----------------


def write_lists(
    server, corrupt: dict[str, str] | None = None
) -> tuple[list[str], dict[str, bytes]]:
    """The mirror's layout: ``train/part_{0,1}.tar.gz`` and ``val/part_{0,1}.tar.gz`` (one name
    in both folders, other videos) and a path list for each; their URLs and every video's bytes.
    ``corrupt`` maps a shard's name to how it is damaged (``damage``)."""
    lists, videos = [], {}
    for folder in ("train", "val"):
        (server.folder / folder).mkdir(exist_ok=True)
        lines = []
        for part in range(2):
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
                for j in range(3):
                    video_id = f"{folder[:2]}{part}{j}-abcdef_{j:06d}_{j + 10:06d}"
                    data = os.urandom(20_000)
                    videos[video_id] = data
                    info = tarfile.TarInfo(f"{folder}/{video_id}.mp4")
                    info.size = len(data)
                    archive.addfile(info, io.BytesIO(data))
            name = f"{folder}/part_{part}.tar.gz"
            payload = buffer.getvalue()
            if name in (corrupt or {}):
                payload = damage(payload, corrupt[name])
            (server.folder / name).write_bytes(payload)
            lines.append(server.url(name))
        (server.folder / f"k400_{folder}_path.txt").write_text("\n".join(lines) + "\n")
        lists.append(server.url(f"k400_{folder}_path.txt"))
    return lists, videos


def damage(shard: bytes, how: str) -> bytes:
    """A damaged copy of a tar.gz ``shard``, the same on every zlib. ``"content"``: 40 bytes of
    the tar changed and compressed again under the original's trailer, so the stream inflates
    without complaint and only the CRC tells. ``"deflate"``: the tar compressed again in two
    halves, the second starting a deflate block on a byte (a full flush) whose type is set to the
    reserved 11, so inflating fails mid-stream, after the first videos were read (``zlib.error``,
    which is not an ``OSError``)."""
    tar = bytearray(gzip.decompress(shard))
    middle = len(tar) // 2
    if how == "content":
        tar[middle : middle + 40] = bytes(b ^ 0xFF for b in tar[middle : middle + 40])
        return gzip.compress(bytes(tar), mtime=0)[:-8] + shard[-8:]
    assert how == "deflate", how
    deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    first = deflate.compress(bytes(tar[:middle])) + deflate.flush(zlib.Z_FULL_FLUSH)
    second = bytearray(deflate.compress(bytes(tar[middle:])) + deflate.flush())
    second[0] |= 0b110
    header = gzip.compress(b"", mtime=0)[:10]
    return header + first + bytes(second) + shard[-8:]


def annotations_of(ids, path) -> str:
    pd.DataFrame({"video_id": sorted(ids)}).to_csv(path, index=False)
    return str(path)


def test_two_shards_of_one_name_are_both_fetched_also_after_a_failed_run(
    local_server, tmp_path, monkeypatch, capsys
):
    """Cause 2 of issue 32: train/part_0.tar.gz and val/part_0.tar.gz are two shards. The val
    one fails in the first run (named by its folder too); the rerun fetches it although the
    train one of the same name is recorded. On 4e1bccc the rerun skipped it and lost its videos."""
    from move.cli import main

    monkeypatch.setenv(TIMEOUT_ENV, "1")
    lists, videos = write_lists(local_server)
    listed = annotations_of(videos, tmp_path / "annotations.csv")
    out = tmp_path / "videos"
    local_server.faults["val/part_0.tar.gz"] = ["cut:100"] * 3
    argv = ["fetch-kinetics", *lists, "--annotations", listed, "--out", str(out), "--quiet"]
    assert main([*argv, "--parallel", "4"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "1 of 4 shard(s) failed (val/part_0.tar.gz)" in err
    assert main([*argv, "--parallel", "4"]) == 0
    assert "4 of 4" not in capsys.readouterr().out  # the three finished shards were skipped
    assert {p.stem for p in out.glob("*.mp4")} == set(videos)
    for video_id, data in videos.items():
        assert (out / f"{video_id}.mp4").read_bytes() == data
    assert pd.read_csv(out / "not_in_shards.csv").empty


def test_two_shards_of_one_name_in_flight_at_once_do_not_collide(local_server, tmp_path):
    """Both part_0 and both part_1 download at once (parallel 4): each has its own temporary
    file and record (on 4e1bccc they shared one and the run died or skipped one)."""
    lists, videos = write_lists(local_server)
    for name in ("train/part_0.tar.gz", "val/part_0.tar.gz"):
        local_server.faults[name] = ["stall"]  # both slow: in flight together, then resumed
    out = tmp_path / "videos"
    counts = fetch_kinetics(lists, set(videos), out, parallel=4, progress=False)
    assert counts == {"shards": 4, "fetched": 4, "videos": 12, "not_in_shards": 0}
    assert len(list((out / SHARDS_DONE).glob("*.done"))) == 4
    again = fetch_kinetics(lists, set(videos), out, parallel=4, progress=False)
    assert again["fetched"] == 0


@pytest.mark.parametrize(
    "how, reason", [("content", "CRC check failed"), ("deflate", "zlib.error: Error -3")]
)
def test_a_damaged_shard_keeps_nothing_and_is_fetched_again(
    local_server, tmp_path, capsys, how, reason
):
    """Cause 3 of issue 32: a shard whose content changed inflates without complaint and only the
    gzip trailer's CRC tells (on 4e1bccc it was accepted and a kept video differed); one whose
    deflate data are broken raises ``zlib.error`` (on 634a1e1 that ended the whole run). Either
    way the shard is named, none of its videos is kept, nothing is recorded; once the mirror
    serves it whole, the rerun fetches it and every video is the original."""
    from move.cli import main

    lists, videos = write_lists(local_server, corrupt={"train/part_1.tar.gz": how})
    listed = annotations_of(videos, tmp_path / "annotations.csv")
    out = tmp_path / "videos"
    argv = ["fetch-kinetics", *lists, "--annotations", listed, "--out", str(out), "--quiet"]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "1 of 4 shard(s) failed (train/part_1.tar.gz)" in err and reason in err, err
    bad_ids = {v for v in videos if v.startswith("tr1")}
    assert not {p.stem for p in out.glob("*.mp4")} & bad_ids
    assert not list(out.glob(".*.tmp"))
    assert len(list((out / SHARDS_DONE).glob("part_1.tar.gz.*.done"))) == 1  # val's only
    lists, videos = write_lists(local_server)  # the mirror serves it whole again (new bytes)
    assert main(argv) == 0
    for video_id in bad_ids:
        assert (out / f"{video_id}.mp4").read_bytes() == videos[video_id]


HOLD_FOLDER = """
import sys, time
from move.files import output_lock
with output_lock(sys.argv[1], "fetch-kinetics"):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_second_fetch_into_the_same_folder_is_refused_naming_the_first(
    local_server, tmp_path, capsys
):
    """Weak spot of issue 32: one writer per output folder (on 4e1bccc a second run deleted the
    first's download)."""
    from move.cli import main

    lists, _ = write_lists(local_server)
    out = tmp_path / "videos"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_FOLDER, str(out)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["fetch-kinetics", *lists, "--all", "--out", str(out), "--quiet"]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1
        assert f"{out} is being written by another fetch-kinetics (pid {holder.pid} " in err
    finally:
        holder.kill()
        holder.wait()
    assert not out.exists() or not list(out.glob("*.mp4"))


def test_a_multi_line_error_keeps_every_line_in_its_one_line():
    """Weak spot of issue 32: a message quoting a library's text of several lines is joined (on
    4e1bccc only its last line was printed, losing the shard's name); a worker's traceback is
    still cut to the message."""
    from move.cli import one_line

    error = MoveError("shard train/part_0.tar.gz is not a readable tar.gz (ReadError:\nbad\n)")
    assert one_line(error) == "shard train/part_0.tar.gz is not a readable tar.gz (ReadError: bad )"
    worker = MoveError(
        "Caught MoveError in DataLoader worker process 0.\nOriginal Traceback (most recent call "
        'last):\n  File "x.py", line 1\nmove.errors.MoveError: video v1 is NaN'
    )
    assert one_line(worker) == "video v1 is NaN"
