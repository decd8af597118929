"""Files: atomic writes (temporary file beside the target, then rename), hashes, input reading.

Readers (and Snakemake) never see half a file; a failed write removes its temporary file and
leaves the previous output untouched; a full disk becomes a one-line ``MoveError``. An input
CSV or JSON that is missing, empty or cut short is a one-line ``MoveError`` naming it and the fix.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from move.errors import MoveError, disk_full

if TYPE_CHECKING:
    import pandas as pd


def lock_path(out: str | Path) -> Path:
    """The lock file of an output: ``<out>.lock`` beside it."""
    out = Path(out)
    return out.with_name(out.name + ".lock")


@contextlib.contextmanager
def output_lock(out: str | Path, what: str = "run") -> Iterator[None]:
    """Hold ``<out>.lock`` while this process writes ``out``: a second run on the same output is
    refused in one line naming the run that holds it (pid, host, command, start).

    A POSIX lock (``fcntl.lockf``, honoured over NFS) on the file, not the file's existence, is
    the lock: the system releases it when its process dies, so a lock file left by a killed run
    is simply taken over. The file is removed when the block ends.
    """
    path = lock_path(out)
    handle = try_lock(path)
    if isinstance(handle, str):
        raise MoveError(
            f"{out} is being written by another {what} ({handle}): wait for it to finish or "
            f"stop it; a lock left by a killed run is taken over ({path})"
        )
    try:
        yield
        path.unlink(missing_ok=True)  # under the lock: no other run holds this file now
    finally:
        handle.close()


def holding_lock(argument: str, what: str):
    """Decorator: the function runs holding the ``output_lock`` of its ``argument`` (the output
    it writes), so a second run on the same output is refused, naming the first."""
    import functools
    import inspect

    def decorate(function):
        signature = inspect.signature(function)

        @functools.wraps(function)
        def locked(*args, **kwargs):
            with output_lock(signature.bind(*args, **kwargs).arguments[argument], what):
                return function(*args, **kwargs)

        return locked

    return decorate


def try_lock(path: str | Path):
    """Take the POSIX lock (``fcntl.lockf``) of ``path`` without waiting and write who holds it
    (pid, host, start, command): the open file, to keep while holding it (closing releases it),
    or, when another live process holds it, what that process wrote there (a string)."""
    import fcntl
    import socket
    import sys
    import time

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 (the caller holds it)
    try:
        fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = " ".join(handle.read().split()) or "another process"
        handle.close()
        return holder
    handle.seek(0)
    handle.truncate()
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    command = " ".join(Path(sys.argv[0]).name if i == 0 else a for i, a in enumerate(sys.argv))
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}, since {started}: {command[:200]}\n")
    handle.flush()
    return handle


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield ``<path>.tmp`` to write; rename it over ``path`` when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
    except OSError as error:
        tmp.unlink(missing_ok=True)
        if error.errno == errno.ENOSPC:
            raise disk_full(path) from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def write_csv_atomic(table: pd.DataFrame, path: str | Path) -> None:
    """Write a table as CSV (no index) atomically: readers never see half a file."""
    with atomic_output(path) as tmp:
        table.to_csv(tmp, index=False)


def write_text_atomic(text: str, path: str | Path) -> None:
    """Write ``text`` to ``path`` atomically (see ``atomic_output``)."""
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file: the same inode when both exist (links count), else the
    same absolute path."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, streamed (used to record which weights/features made a result)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_csv_input(
    path: str | Path, what: str, fix: str, need_rows: bool = False, **options
) -> pd.DataFrame:
    """Read an input CSV (``options`` go to ``pandas.read_csv``); refuse a missing file, a
    0-byte one, one pandas cannot parse and, with ``need_rows``, one with a header only.

    ``what`` names the file in the message (e.g. "annotations file"), ``fix`` says what to do.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise MoveError(f"{what} {path} not found: {fix}")
    try:
        table = pd.read_csv(path, **options)
    except pd.errors.EmptyDataError:
        raise MoveError(f"{what} {path} is empty (0 bytes, no header): {fix}") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        reason = str(error).strip().splitlines()[-1]
        raise MoveError(f"{what} {path} is not a readable CSV ({reason}): {fix}") from None
    if need_rows and table.empty:
        raise MoveError(f"{what} {path} has a header but no rows: {fix}")
    return table


def read_json_input(path: str | Path, what: str, fix: str) -> dict:
    """Read an input JSON object; a missing, empty, cut-short or non-object file names the fix."""
    path = Path(path)
    if not path.is_file():
        raise MoveError(f"{what} {path} not found: {fix}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise MoveError(
            f"{what} {path} is not valid JSON ({error.msg} at line {error.lineno}; cut short?): {fix}"
        ) from None
    except UnicodeDecodeError:
        raise MoveError(f"{what} {path} is not a text file: {fix}") from None
    if not isinstance(data, dict):
        raise MoveError(f"{what} {path} holds no JSON object: {fix}")
    return data


def copy_file_atomic(source: str | Path, target: str | Path) -> None:
    """Copy ``source`` to ``target`` through a temporary file beside it, then rename."""
    with atomic_output(target) as tmp:
        shutil.copyfile(source, tmp)
