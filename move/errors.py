"""User-facing errors: the CLI prints these as one line (no traceback) and exits non-zero."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path


class MoveError(Exception):
    """A problem with the user's input or environment that the message explains how to fix."""


def disk_full(path: object, needed: int | None = None) -> MoveError:
    """The one-line error for a full disk: which file, how much is free there, what to do."""
    import shutil

    folder = Path(str(path)).parent if path else Path.cwd()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    want = f"{needed / 1e6:.1f} MB needed, " if needed is not None else ""
    return MoveError(
        f"no space left on device writing {path or 'the output'}: {want}{free / 1e6:.1f} MB free "
        f"on {folder}; free space (or point the output elsewhere) and rerun"
    )


def ensure_free_space(path: object, needed: int) -> None:
    """Refuse to start writing ``needed`` bytes to ``path`` when its disk has less free.

    Checked before HDF5 writes because libhdf5 reports a full disk late (at flush/close) and
    can crash the process; a clear error up front keeps earlier outputs and chunks intact.
    """
    import shutil

    folder = Path(str(path)).parent
    if shutil.disk_usage(folder).free < needed:
        raise disk_full(path, needed)


@contextlib.contextmanager
def removed_on_error(tmp: Path) -> Iterator[None]:
    """Delete the temporary file ``tmp`` when the block writing it fails, so no debris is left."""
    try:
        yield
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
