"""Kinetics-400 from its mirror: the tar.gz shards named by the mirror's path lists, streamed and
filtered to the videos a dataset lists (MiniKinetics200's ~85,000 of Kinetics' ~300,000).

Each shard goes through the one verified download (``move.downloads.download``: every byte,
retried and resumed) into a temporary file beside the output folder, its listed members are
written to temporary names and renamed to ``<out>/<video_id>.mp4`` only once the whole gzip
stream was read (its trailer's CRC and length checked), a record ``<out>/.shards/<key>.done``
says it is finished, and the shard is deleted: disk holds the kept videos plus the shards in
flight. A shard is known by its whole URL (``shard_key``: the mirror names train and val shards
alike, ``.../train/part_0.tar.gz`` and ``.../val/part_0.tar.gz``), so two shards of one name
never share a record or a temporary file. A rerun skips recorded shards and videos already
there. A shard that stays short, is not a readable tar.gz or fails its CRC is reported by name
and left unrecorded (the next run tries it again); listed videos that no shard holds are listed
in ``<out>/not_in_shards.csv``. One run writes a folder at a time (``<out>.lock``). No torch.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import threading
import urllib.parse
import zlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from move.downloads import check_text, download, is_url, url_file_name
from move.errors import MoveError
from move.files import holding_lock, write_csv_atomic

SHARDS_DONE = ".shards"
NOT_IN_SHARDS = "not_in_shards.csv"


def listed_video_ids(annotations: str | Path) -> set[str]:
    """The video ids an annotations CSV lists (its ``video_id`` column, else built from
    ``youtube_id``, ``time_start``, ``time_end``)."""
    from move.annotations import kinetics_video_id
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
    text = Path(path).read_text(encoding="utf-8-sig")  # a byte-order mark dropped
    shards = [line.strip() for line in text.splitlines() if line.strip()]
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
    """A shard's file name (``part_0.tar.gz``): what messages call it, not its key."""
    return url_file_name(source) if is_url(source) else Path(source).name


def shard_key(source: str) -> str:
    """The key of a shard's record and temporary file: its name and the first 16 hex digits of
    the sha256 of its whole URL (an absolute path for a local shard), e.g.
    ``part_0.tar.gz.3f0c...``: two shards of one name in two folders never collide."""
    whole = source if is_url(source) else str(Path(source).resolve())
    return f"{shard_name(source)}.{hashlib.sha256(whole.encode()).hexdigest()[:16]}"


def shard_label(source: str) -> str:
    """How a message names a shard: its last two path components (``train/part_0.tar.gz``)."""
    if is_url(source):
        path = Path(urllib.parse.unquote(urllib.parse.urlparse(source).path))
    else:
        path = Path(source)
    parts = [part for part in path.parts if part != path.anchor]
    return "/".join(parts[-2:])


def done_path(out: Path, source: str) -> Path:
    return out / SHARDS_DONE / f"{shard_key(source)}.done"


def read_to_end(archive: tarfile.TarFile) -> None:
    """Read the rest of a shard's compressed stream after tar's end blocks, so gzip checks its
    trailer (CRC-32 and length; ``BadGzipFile`` when they do not match) before anything is kept."""
    stream = archive.fileobj
    while stream.read(1 << 20):
        pass


def keep_members(shard: Path, wanted: set[str] | None, out: Path) -> list[str]:
    """Write the shard's ``<video_id>.mp4`` members that are ``wanted`` (all when None) into
    ``out``; returns the ids kept. Members go to temporary names and are renamed only after the
    whole compressed stream was read and its CRC checked (``read_to_end``): a damaged archive
    (tar, gzip or deflate errors: ``zlib.error`` is none of the others) is ``MoveError`` and keeps
    nothing."""
    kept, written = [], []
    try:
        with tarfile.open(shard, "r:*") as archive:
            for member in archive:
                name = Path(member.name).name
                video_id = Path(name).stem
                if not member.isfile() or (wanted is not None and video_id not in wanted):
                    continue
                target = out / name
                if not target.is_file():
                    tmp = out / f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"
                    written.append((tmp, target))
                    with archive.extractfile(member) as source, open(tmp, "wb") as sink:
                        while block := source.read(1 << 20):
                            sink.write(block)
                kept.append(video_id)
            read_to_end(archive)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        for tmp, _ in written:
            tmp.unlink(missing_ok=True)
        kind = "zlib.error" if isinstance(error, zlib.error) else type(error).__name__
        reason = " ".join(f"{kind}: {error}".split())
        raise MoveError(f"is not a readable tar.gz ({reason})") from None
    for tmp, target in written:
        os.replace(tmp, target)
    return kept


def fetch_shard(source: str, wanted: set[str] | None, out: Path, bytes_done) -> list[str]:
    """One shard: downloaded (verified), filtered into ``out``, recorded, deleted."""
    tmp_dir = out / SHARDS_DONE / "in_flight"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    local = tmp_dir / shard_key(source)
    for stale in tmp_dir.glob(f"{local.name}*"):  # left by a killed run
        stale.unlink()
    label = shard_label(source)
    try:
        if is_url(source):
            download(
                source, local, f"shard {label}", "it is tried again on the next run",
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
    tmp = record.with_name(record.name + ".tmp")
    tmp.write_text(f"# {source}\n" + "".join(f"{video_id}\n" for video_id in kept))
    os.replace(tmp, record)
    return kept


@holding_lock("out", "fetch-kinetics")
def fetch_kinetics(
    path_lists: Iterable[str],
    wanted: set[str] | None,
    out: str | Path,
    parallel: int = 4,
    progress: bool = True,
) -> dict:
    """Fetch every shard of the path lists into ``out`` keeping the ``wanted`` video ids (all
    when None), ``parallel`` downloads at once; returns counts. Shards that failed are reported
    in one line naming them (after every other shard is done). Holds ``<out>.lock``: a second
    run into the same folder is refused, naming the first. A shard URL listed twice is fetched
    once."""
    out = Path(out)
    (out / SHARDS_DONE).mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".*.tmp"):  # a killed run's unfinished videos (the lock is ours)
        stale.unlink()
    shards = []
    for i, source in enumerate(path_lists):
        shards += fetch_path_list(source, out / SHARDS_DONE / f"path_list{i}.txt")
    shards = list(dict.fromkeys(shards))
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
        names = ", ".join(shard_label(s) for s in sorted(failed))
        first = " ".join(failed[sorted(failed)[0]].split())
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
