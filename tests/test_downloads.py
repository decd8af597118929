"""The one verified download (move.downloads) against a server that misbehaves: cut before its
Content-Length (at a line boundary and mid-line), an HTML page with status 200, an empty body, a
stall. Each is retried (and resumed) or refused in one line; nothing unverified is kept or
recorded, and the right file is accepted afterwards without deleting anything by hand."""

from __future__ import annotations

import pytest

from move.datasets.kinetics import fetch_list
from move.downloads import TIMEOUT_ENV, check_sha256, record_path
from move.errors import MoveError
from move.files import file_sha256
from tests.conftest import run_move

LIST = "".join(f"vid{i:03d}xxxxxxxx_{i:06d}_{i + 10:06d} {i % 7}\n" for i in range(90))
CSV = "label,youtube_id,time_start,time_end,split\n" + "".join(
    f"class {i % 7},vid{i:03d}xxxxxxxx,{i},{i + 10},train\n" for i in range(90)
)
KINDS = {"list": ("train.lst", "train.txt", LIST), "csv": ("k400.csv", "kinetics0.csv", CSV)}


@pytest.fixture
def served_file(local_server, tmp_path, monkeypatch):
    """(server, name, text, out) for a list or Kinetics CSV on the fault server; 0.5 s timeout."""
    monkeypatch.setenv(TIMEOUT_ENV, "0.5")

    def serve(kind: str):
        name, out_name, text = KINDS[kind]
        (local_server.folder / name).write_text(text)
        return local_server, name, text, tmp_path / "lists" / out_name

    return serve


def assert_nothing_kept(out) -> None:
    leftovers = sorted(p.name for p in out.parent.iterdir()) if out.parent.exists() else []
    assert leftovers == [], leftovers


def cut_at_line(text: str, lines: int) -> int:
    return len("".join(text.splitlines(keepends=True)[:lines]).encode())


@pytest.mark.parametrize("kind", ["list", "csv"])
@pytest.mark.parametrize("where", ["line", "mid-line"])
def test_a_transfer_cut_short_is_resumed_and_kept_whole(served_file, kind, where):
    server, name, text, out = served_file(kind)
    cut = cut_at_line(text, 30) + (0 if where == "line" else 7)
    server.faults[name] = [f"cut:{cut}"]
    fetch_list(server.url(name), out)
    assert out.read_text() == text
    assert server.ranges == [None, f"bytes={cut}-"]  # the second request resumed
    assert record_path(out).read_text().split()[0] == file_sha256(out)


@pytest.mark.parametrize("kind", ["list", "csv"])
@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        (["cut:100"] * 3, "the connection closed after 300 of"),  # resumed twice, still short
        (["html"], "is an HTML page (an error or login page?)"),
        (["empty"], "is empty (nothing kept)"),
        (["stall"] * 3, "no data for 0.5 s; gave up after 3 tries"),
    ],
)
def test_a_bad_transfer_is_refused_in_one_line_then_the_right_file_accepted(
    served_file, kind, faults, expected
):
    server, name, text, out = served_file(kind)
    server.faults[name] = list(faults)
    with pytest.raises(MoveError) as error:
        fetch_list(server.url(name), out)
    message = str(error.value)
    assert expected in message and server.url(name) in message and "\n" not in message
    assert_nothing_kept(out)  # no file, no record, no temporary file
    fetch_list(server.url(name), out)  # the server recovered: accepted, nothing deleted by hand
    assert out.read_text() == text and record_path(out).is_file()


def test_a_list_with_a_byte_order_mark_is_kept_without_it(served_file):
    server, name, text, out = served_file("list")
    (server.folder / name).write_bytes(b"\xef\xbb\xbf" + text.encode())
    digest = fetch_list(server.url(name), out)
    assert out.read_text() == text and digest == file_sha256(out)
    assert fetch_list(server.url(name), out) == digest  # fetched again: the same, not 'changed'


def test_a_file_that_does_not_parse_is_refused(served_file):
    server, name, _, out = served_file("list")
    (server.folder / name).write_text("vid000 0\nthis is not a list line\n")
    with pytest.raises(MoveError, match=r"does not parse as a list .*line 2: expected"):
        fetch_list(server.url(name), out)
    assert_nothing_kept(out)


def test_a_malformed_hash_is_refused_as_malformed(served_file):
    server, name, _, out = served_file("list")
    done = run_move("fetch-list", server.url(name), "--out", str(out), "--sha256", "abc")
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "move fetch-list: error: --sha256 (lists.sha256 in config): 'abc' is not a sha256 "
        "(64 hexadecimal digits, as sha256sum prints)"
    )
    assert check_sha256("A" * 64, "x") == "a" * 64
    assert_nothing_kept(out)


def test_a_record_that_holds_no_sha256_is_refused(served_file):
    server, name, _, out = served_file("list")
    fetch_list(server.url(name), out)
    record_path(out).write_text("garbage\n")
    with pytest.raises(MoveError, match=r"record .*train.txt.sha256 holds no sha256: delete"):
        fetch_list(server.url(name), out)
