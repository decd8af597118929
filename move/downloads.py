"""Stage 0, downloads: input files fetched once from a URL or copied from a path, verified, pinned.

The one download of the project: the authors' lists and Kinetics CSVs
(``move.datasets.kinetics.fetch_list``) and backbone weights (``move.extraction.weights``). A
download goes to a temporary file beside its target and is kept only when every announced byte
arrived (a short or dropped transfer is retried, resumed with a Range request where the server
allows), it is not empty, its content is what it claims to be (a list parses, a checkpoint loads
and fits) and its sha256 fits the pins; then it is renamed. A ``<file>.sha256`` record beside a
file keeps the hash of its first verified download, so a later file with other content is
refused. No torch import: Snakemake plans with this module.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from move.errors import MoveError
from move.files import file_sha256

USER_AGENT = "move"  # some servers refuse urllib's default agent
ATTEMPTS = 3  # tries of one download (a short or dropped transfer is resumed where allowed)
RETRY_STATUS = (408, 425, 429, 500, 502, 503, 504)  # worth another try; others are final
TIMEOUT_ENV = "MOVE_DOWNLOAD_TIMEOUT"
SHA256 = re.compile(r"[0-9a-f]{64}")


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
    """The sha256 recorded beside ``path`` at its first download, or None; a record that holds
    no sha256 is refused, naming it."""
    record = record_path(path)
    if not record.is_file():
        return None
    words = record.read_text().split()
    fix = f"delete {record} (and {Path(path).name}) to fetch the file again"
    if not words or not SHA256.fullmatch(words[0].lower()):
        raise MoveError(f"record {record} holds no sha256: {fix}")
    return words[0].lower()


def write_record(path: str | Path, digest: str) -> None:
    """Record ``digest`` beside ``path`` (``sha256sum`` format), atomically."""
    record = record_path(path)
    tmp = record.with_name(f"{record.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{digest}  {Path(path).name}\n")
    os.replace(tmp, record)


def check_sha256(value: str, where: str) -> str:
    """``value`` as a lower-case sha256, or one line saying it is not one (a typo is not a
    'changed file')."""
    digest = str(value).strip().lower()
    if not SHA256.fullmatch(digest):
        raise MoveError(
            f"{where}: {value!r} is not a sha256 (64 hexadecimal digits, as sha256sum prints)"
        )
    return digest


def download_timeout() -> float:
    """Seconds a download may wait for a byte before the try is dropped (``MOVE_DOWNLOAD_TIMEOUT``,
    default 60)."""
    text = os.environ.get(TIMEOUT_ENV, "60")
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise MoveError(
            f"environment variable {TIMEOUT_ENV}: {text!r} is not a positive number of seconds"
        )
    return value


def _reason(error: Exception) -> str:
    """One line saying why a try failed (no URL: the caller's message names it)."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    if isinstance(error, TimeoutError | socket.timeout):
        return f"no data for {download_timeout():g} s"
    return f"{type(error).__name__}: {error}"


def _content_range(header: str | None) -> tuple[int, int | None] | None:
    """(first byte, total or None) of a ``Content-Range: bytes a-b/total`` header."""
    match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", (header or "").strip())
    if match is None:
        return None
    return int(match[1]), None if match[2] == "*" else int(match[2])


def _fetch_url(
    url: str, tmp: Path, attempts: int, progress: Callable[[int], None] | None = None
) -> None:
    """Stream ``url`` into ``tmp`` until it holds every byte the server announced: a short or
    dropped transfer is tried again, resumed with a Range request where the server allows it
    (else from the start); after ``attempts`` tries, ``MoveError`` with the last reason."""
    received, reason = 0, ""
    timeout = download_timeout()
    for attempt in range(1, attempts + 1):
        headers = {"User-Agent": USER_AGENT}
        if received:
            headers["Range"] = f"bytes={received}-"
        try:
            with urllib.request.urlopen(
                urllib.request.Request(url, headers=headers), timeout=timeout
            ) as response:
                status = getattr(response, "status", None) or 200
                span = (
                    _content_range(response.headers.get("Content-Range")) if status == 206 else None
                )
                if span is not None and span[0] == received:
                    total = span[1]
                else:  # a whole file: the server ignored the Range request, or none was sent
                    received = 0
                    length = response.headers.get("Content-Length")
                    total = int(length) if length and length.isdigit() else None
                with open(tmp, "r+b" if received else "wb") as sink:
                    sink.seek(received)
                    sink.truncate()
                    for block in iter(lambda: response.read(1 << 20), b""):
                        sink.write(block)
                        received += len(block)
                        if progress is not None:
                            progress(len(block))
            if total is None or received == total:
                return
            reason = f"the connection closed after {received} of {total} bytes"
            if received > total:
                received, reason = (
                    0,
                    f"the server sent {received} bytes, more than the {total} it announced",
                )
        except urllib.error.HTTPError as error:
            if error.code not in RETRY_STATUS:
                raise MoveError(_reason(error)) from None
            reason = _reason(error)
        except (OSError, http.client.HTTPException) as error:  # dropped, reset, timed out
            reason = _reason(error)
        if attempt < attempts:
            time.sleep(min(0.5 * 2 ** (attempt - 1), 5))
    raise MoveError(f"{reason}; gave up after {attempts} tries")


def download(
    source: str,
    out: str | Path,
    what: str,
    fix: str,
    verify: Callable[[str], None] = lambda digest: None,
    check: Callable[[Path], None] | None = None,
    attempts: int = ATTEMPTS,
    progress: Callable[[int], None] | None = None,
) -> str:
    """Fetch ``source`` (URL or path) to ``out``, verified; return its sha256.

    The bytes go to a temporary file beside ``out`` and must all arrive (the count the server
    announced; a short or dropped transfer is tried again, resumed where the server allows); an
    empty file is refused; ``check(path)`` (content: a list parses, a checkpoint loads) and then
    ``verify(sha256)`` (pins) raise ``MoveError`` to refuse it. Only then is it renamed to ``out``,
    so nothing unverified is ever kept or recorded. A failure is one line: ``cannot download
    <what> from <source> (<reason>): <fix>``, or ``<what> from <source> <what check said>``. The
    temporary file's name holds the process id, so parallel jobs fetching the same file do not
    collide (the last rename wins; both wrote the same verified bytes). ``progress(n)`` is told
    of every n bytes received (a progress bar in bytes).
    """
    out = Path(out)
    if not is_url(source) and not Path(source).is_file():
        raise MoveError(f"{what} {source} not found: check the path in config")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.download")
    try:
        try:
            if is_url(source):
                _fetch_url(str(source), tmp, attempts, progress)
            else:
                shutil.copyfile(source, tmp)
        except (MoveError, OSError) as error:
            reason = (
                " ".join(str(error).split()) if isinstance(error, MoveError) else _reason(error)
            )
            raise MoveError(f"cannot download {what} from {source} ({reason}): {fix}") from None
        if tmp.stat().st_size == 0:
            raise MoveError(f"{what} from {source} is empty (nothing kept): {fix}")
        if check is not None:  # what it is, before whether it is the pinned one
            try:
                check(tmp)
            except MoveError as error:
                raise MoveError(f"{what} from {source} {error} (nothing kept): {fix}") from None
        digest = file_sha256(tmp)  # after the check, which may remove a byte-order mark
        verify(digest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, out)
    return digest


HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<?xml")
UTF8_BOM = b"\xef\xbb\xbf"


def check_text(path: Path, noun: str, parse: Callable[[Path], object]) -> None:
    """Content check of a text download (a list, a CSV): not an HTML page (an error or login page
    served with status 200), UTF-8 without a byte-order mark (removed here, or the first id would
    never match), no NUL bytes, and ``parse(path)`` reads it whole. Raises ``MoveError`` with
    what it is instead (``is an HTML page, not a list``)."""
    data = path.read_bytes()
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM) :]
        path.write_bytes(data)
    if data.lstrip()[:64].lower().startswith(HTML_STARTS):
        raise MoveError(f"is an HTML page (an error or login page?), not a {noun}")
    if b"\0" in data:
        raise MoveError(f"holds binary data, not a {noun}")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MoveError(f"is not UTF-8 text (byte {error.start}), not a {noun}") from None
    try:
        parse(path)
    except MoveError as error:
        detail = str(error).replace(f"{path} ", "").replace(str(path), "the file")
        raise MoveError(f"does not parse as a {noun} ({detail})") from None
