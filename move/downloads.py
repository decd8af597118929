"""Stage 0, downloads: input files fetched once from a URL or copied from a path, pinned by sha256.

Used for the authors' lists and Kinetics CSVs (``move.datasets.kinetics.fetch_list``) and for named
backbone weights (``move.extraction.weights``). A download goes to a temporary file beside its target, is
hashed while it streams, checked, then renamed, so a refused or broken download leaves nothing
behind. A ``<file>.sha256`` record beside a file keeps the hash of its first download, so a
later file with other content is refused. No torch import: Snakemake plans with this module.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from move.errors import MoveError

USER_AGENT = "move"  # some servers refuse urllib's default agent


def is_url(source: str | Path) -> bool:
    """True for ``http(s)://``, ``ftp://`` and ``file://`` sources."""
    return urllib.parse.urlparse(str(source)).scheme in ("http", "https", "ftp", "file")


def url_file_name(url: str) -> str:
    """The file name a URL ends with (what a download is cached as)."""
    return Path(urllib.parse.unquote(urllib.parse.urlparse(url).path)).name


def record_path(path: str | Path) -> Path:
    """Where the sha256 of a fetched file is recorded: ``<file>.sha256`` beside it."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def read_record(path: str | Path) -> str | None:
    """The sha256 recorded beside ``path`` at its first download, or None."""
    record = record_path(path)
    return record.read_text().split()[0].lower() if record.is_file() else None


def write_record(path: str | Path, digest: str) -> None:
    """Record ``digest`` beside ``path`` (``sha256sum`` format), atomically."""
    record = record_path(path)
    tmp = record.with_name(f"{record.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{digest}  {Path(path).name}\n")
    os.replace(tmp, record)


def _reason(error: Exception) -> str:
    """One line saying why a download failed (no URL: the caller's message names it)."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    return f"{type(error).__name__}: {error}"


def _copy_to(source: str, sink, digest) -> None:
    """Stream a URL or local file into ``sink``, updating ``digest``."""
    if is_url(source):
        request = urllib.request.Request(source, headers={"User-Agent": USER_AGENT})
        stream = urllib.request.urlopen(request, timeout=60)
    else:
        stream = open(source, "rb")  # noqa: SIM115 (closed below)
    with stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
            sink.write(block)


def download(
    source: str,
    out: str | Path,
    what: str,
    fix: str,
    verify: Callable[[str], None] = lambda digest: None,
) -> str:
    """Fetch ``source`` (URL or path) to ``out``; return its sha256.

    ``verify(sha256)`` raises ``MoveError`` to refuse the file (then nothing is kept). A failed
    download is one line: ``cannot download <what> from <source> (<reason>): <fix>``. The
    temporary file's name holds the process id, so parallel jobs fetching the same file do
    not collide (the last rename wins; both wrote the same verified bytes).
    """
    out = Path(out)
    if not is_url(source) and not Path(source).is_file():
        raise MoveError(f"{what} {source} not found: check the path in config")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.download")
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as sink:
            _copy_to(str(source), sink, digest)
    except Exception as error:  # urllib and sockets raise many kinds: one line names the URL
        tmp.unlink(missing_ok=True)
        reason = " ".join(_reason(error).split())
        raise MoveError(f"cannot download {what} from {source} ({reason}): {fix}") from None
    try:
        verify(digest.hexdigest())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, out)
    return digest.hexdigest()
