"""Kinetics-400 from its mirror: synthetic tar.gz shards in the mirror's layout (members
``<youtube_id>_<start:06d>_<end:06d>.mp4``, classes mixed, unlisted members among the listed)
served by the local HTTP server with a path list; `fetch-kinetics` keeps exactly the listed
members, skips finished shards on a rerun, never leaves a partial video, and retries then names
a truncated or dropped shard."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import time

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
    assert sorted(p.name for p in (out / SHARDS_DONE).glob("*.done")) == [
        "part_0.tar.gz.done",
        "part_2.tar.gz.done",
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
