"""Output files: atomic writes (temporary file beside the target, then rename) and file hashes.

Readers (and Snakemake) never see half a file; a failed write removes its temporary file and
leaves the previous output untouched; a full disk becomes a one-line ``MoveError``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from move.errors import disk_full


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


def write_text_atomic(text: str, path: str | Path) -> None:
    """Write ``text`` to ``path`` atomically (see ``atomic_output``)."""
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, streamed (used to record which weights/features made a result)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
