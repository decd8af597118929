"""Kinetics-400 from its mirror: the tar.gz shards named by the mirror's path lists, streamed and
filtered to the videos a dataset lists (MiniKinetics200's ~85,000 of Kinetics' ~300,000).

Each shard goes through the one verified download (``move.downloads.download``: every byte,
retried and resumed) into a temporary file beside the output folder, its listed members are
written as ``<out>/<video_id>.mp4`` (each to a temporary name, then renamed), a record
``<out>/.shards/<shard>.done`` says it is finished, and the shard is deleted: disk holds the kept
videos plus the shards in flight. A rerun skips recorded shards and videos already there. A shard
that stays short, or is not a readable tar.gz, is reported by name and left unrecorded (the next
run tries it again); listed videos that no shard holds are listed in ``<out>/not_in_shards.csv``.
No torch.
"""

from __future__ import annotations

import os
import tarfile
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from move.datasets.splits import write_csv_atomic
from move.downloads import check_text, download, is_url, url_file_name
from move.errors import MoveError

SHARDS_DONE = ".shards"
NOT_IN_SHARDS = "not_in_shards.csv"


def listed_video_ids(annotations: str | Path) -> set[str]:
    """The video ids an annotations CSV lists (its ``video_id`` column, else built from
    ``youtube_id``, ``time_start``, ``time_end``)."""
    from move.extraction.video_files import kinetics_video_id
    from move.files import read_csv_input

    fix = "give the dataset's annotations CSV (data/<d>/list_annotations.csv)"
    table = read_csv_input(annotations, "annotations file", fix, dtype=str, need_rows=True)
    if "video_id" in table:
        return set(table.video_id)
    if not {"youtube_id", "time_start", "time_end"} <= set(table):
        raise MoveError(f"annotations file {annotations} has no video_id column: {fix}")
    return {
        kinetics_video_id(y, float(s), float(e))
        for y, s, e in zip(table.youtube_id, table.time_start, table.time_end, strict=True)
    }


def read_path_list(path: Path) -> list[str]:
    """The shard URLs (or paths) of a mirror path list, one a line; blank lines skipped."""
    shards = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    if not shards:
        raise MoveError(f"path list {path} names no shard")
    bad = [s for s in shards if not s.endswith((".tar.gz", ".tgz", ".tar"))]
    if bad:
        raise MoveError(f"path list {path} line '{bad[0]}' is not a .tar.gz shard")
    return shards


def fetch_path_list(source: str, out: Path) -> list[str]:
    """Fetch a path list (URL or path) through the verified download, then read it."""
    if not is_url(source) and Path(source).is_file():
        return read_path_list(Path(source))
    download(
        source, out, "path list", "check datasets.<d>.kinetics_mirror in config",
        check=lambda path: check_text(path, "path list of .tar.gz shards", read_path_list),
    )  # fmt: skip
    return read_path_list(out)


def shard_name(source: str) -> str:
    """A shard's file name (``part_0.tar.gz``), the key of its record."""
    return url_file_name(source) if is_url(source) else Path(source).name


def done_path(out: Path, source: str) -> Path:
    return out / SHARDS_DONE / f"{shard_name(source)}.done"


def keep_members(shard: Path, wanted: set[str] | None, out: Path) -> list[str]:
    """Write the shard's ``<video_id>.mp4`` members that are ``wanted`` (all when None) into
    ``out``, each atomically; returns the ids kept. A damaged archive is ``MoveError``."""
    kept = []
    try:
        with tarfile.open(shard, "r:*") as archive:
            for member in archive:
                name = Path(member.name).name
                video_id = Path(name).stem
                if not member.isfile() or (wanted is not None and video_id not in wanted):
                    continue
                target = out / name
                if not target.is_file():
                    tmp = out / f".{name}.{os.getpid()}.tmp"
                    with archive.extractfile(member) as source, open(tmp, "wb") as sink:
                        while block := source.read(1 << 20):
                            sink.write(block)
                    os.replace(tmp, target)
                kept.append(video_id)
    except (tarfile.TarError, EOFError, OSError) as error:
        for tmp in out.glob(f".*.{os.getpid()}.tmp"):
            tmp.unlink()
        raise MoveError(f"is not a readable tar.gz ({type(error).__name__}: {error})") from None
    return kept


def fetch_shard(source: str, wanted: set[str] | None, out: Path, bytes_done) -> list[str]:
    """One shard: downloaded (verified), filtered into ``out``, recorded, deleted."""
    tmp_dir = out / SHARDS_DONE / "in_flight"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    local = tmp_dir / shard_name(source)
    for stale in tmp_dir.glob(f"{local.name}*"):  # left by a killed run
        stale.unlink()
    try:
        if is_url(source):
            download(
                source, local, f"shard {shard_name(source)}", "it is tried again on the next run",
                progress=bytes_done,
            )  # fmt: skip
        else:
            local = Path(source)
        try:
            kept = keep_members(local, wanted, out)
        except MoveError as error:
            raise MoveError(f"shard {source} {error}: it is tried again on the next run") from None
    finally:
        if local.parent == tmp_dir:
            local.unlink(missing_ok=True)
    record = done_path(out, source)
    record.write_text("".join(f"{video_id}\n" for video_id in kept))
    return kept


def fetch_kinetics(
    path_lists: Iterable[str],
    wanted: set[str] | None,
    out: str | Path,
    parallel: int = 4,
    progress: bool = True,
) -> dict:
    """Fetch every shard of the path lists into ``out`` keeping the ``wanted`` video ids (all
    when None), ``parallel`` downloads at once; returns counts. Shards that failed are reported
    in one line naming them (after every other shard is done)."""
    out = Path(out)
    (out / SHARDS_DONE).mkdir(parents=True, exist_ok=True)
    shards = []
    for i, source in enumerate(path_lists):
        shards += fetch_path_list(source, out / SHARDS_DONE / f"path_list{i}.txt")
    todo = [s for s in shards if not done_path(out, s).is_file()]
    bar = tqdm(desc="fetch-kinetics", unit="B", unit_scale=True, disable=not progress)
    lock = threading.Lock()

    def bytes_done(n: int) -> None:
        with lock:
            bar.update(n)

    failed: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        futures = {pool.submit(fetch_shard, s, wanted, out, bytes_done): s for s in todo}
        for future in as_completed(futures):
            try:
                future.result()
            except MoveError as error:
                failed[futures[future]] = str(error)
    bar.close()
    have = {path.stem for path in out.glob("*.mp4")}
    absent = sorted((wanted or set()) - have)
    if not failed:
        write_csv_atomic(pd.DataFrame({"video_id": absent}), out / NOT_IN_SHARDS)
    if failed:
        names = ", ".join(shard_name(s) for s in sorted(failed))
        first = next(iter(failed.values()))
        raise MoveError(
            f"{len(failed)} of {len(shards)} shard(s) failed ({names}); first: {first}; rerun to "
            "try them again (finished shards are skipped)"
        )
    return {
        "shards": len(shards),
        "fetched": len(todo),
        "videos": len(have),
        "not_in_shards": len(absent),
    }
