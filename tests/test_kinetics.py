"""MiniKinetics from lists: fetching with sha256 pinning, joining with Kinetics CSVs, missing videos."""

import pandas as pd
import pytest

from move.datasets.kinetics import fetch_list, list_annotations, parse_kinetics_id
from move.errors import MoveError
from move.extraction.video_files import find_video_files
from tests.conftest import run_move

NAMES = ["abseiling", "bowling", "cooking egg"]


def kinetics_id(c: int, i: int) -> str:
    return f"y_{c}x{i:02d}_{i:06d}_{i + 10:06d}"


def write_inputs(tmp_path, per_class=(6, 4, 2), n_val=2):
    """Authors-format lists (<id> <class_index>) and a Kinetics CSV naming their classes."""
    train = [
        (kinetics_id(c, i), c) for i in range(max(per_class)) for c in range(3) if i < per_class[c]
    ]
    val = [(kinetics_id(c, 50 + i), c) for c in range(3) for i in range(n_val)]
    (tmp_path / "train.txt").write_text("".join(f"{v} {c}\n" for v, c in train))
    (tmp_path / "val.txt").write_text("".join(f"{v} {c}\n" for v, c in val))
    rows = [
        (NAMES[c], v.rsplit("_", 2)[0], int(v.rsplit("_", 2)[1]), int(v.rsplit("_", 2)[2]), s)
        for s, rows in (("train", train), ("val", val))
        for v, c in rows
    ]
    csv = tmp_path / "kinetics_train.csv"
    pd.DataFrame(rows, columns=["label", "youtube_id", "time_start", "time_end", "split"]).to_csv(
        csv, index=False
    )
    return tmp_path / "train.txt", tmp_path / "val.txt", csv, train, val


def test_parse_kinetics_id_keeps_underscores_in_youtube_id():
    assert parse_kinetics_id("a_b-c_000012_000022") == ("a_b-c", 12, 22)
    with pytest.raises(MoveError, match="youtube_id"):
        parse_kinetics_id("no-times")


def test_list_annotations_keep_list_order_and_authors_indices(tmp_path):
    train_list, val_list, csv, train, val = write_inputs(tmp_path)
    table = list_annotations(train_list, val_list, [csv])
    assert table.video_id.tolist() == [v for v, _ in train] + [v for v, _ in val]
    assert table.class_index.tolist() == [c for _, c in train] + [c for _, c in val]
    assert (table.label == table.class_index.map(dict(enumerate(NAMES)))).all()
    assert set(table.split) == {"train", "val"}


def test_bad_list_line_names_file_and_line(tmp_path):
    (tmp_path / "bad.txt").write_text("a_000001_000002 0\nbroken line here\n")
    (tmp_path / "val.txt").write_text("b_000001_000002 0\n")
    with pytest.raises(MoveError, match="bad.txt line 2"):
        list_annotations(tmp_path / "bad.txt", tmp_path / "val.txt", [tmp_path / "x.csv"])


def test_fetch_list_pins_sha256_and_refuses_a_changed_file(tmp_path):
    source = tmp_path / "remote.txt"
    source.write_text("a_000001_000002 0\n")
    out = tmp_path / "lists" / "train.txt"
    digest = fetch_list(source.as_uri(), out)  # file:// URL
    assert out.read_text() == source.read_text()
    assert (tmp_path / "lists" / "train.txt.sha256").read_text().split()[0] == digest
    assert fetch_list(str(source), out) == digest  # same content again: accepted
    source.write_text("a_000001_000002 1\n")
    with pytest.raises(MoveError, match="changed"):
        fetch_list(source.as_uri(), out)
    assert out.read_text() == "a_000001_000002 0\n"  # the pinned copy is untouched
    with pytest.raises(MoveError, match="differs"):
        fetch_list(str(source), tmp_path / "other.txt", expected_sha256=digest)


def test_edited_list_is_refused_when_read(tmp_path):
    train_list, val_list, csv, _, _ = write_inputs(tmp_path)
    fetched = tmp_path / "lists" / "train.txt"
    fetch_list(str(train_list), fetched)
    fetched.write_text(fetched.read_text() + "extra_000001_000002 0\n")
    with pytest.raises(MoveError, match="changed since it was fetched"):
        list_annotations(fetched, val_list, [csv])


def test_find_video_files_in_common_layouts(tmp_path):
    ids = [kinetics_id(0, 1), kinetics_id(1, 2), kinetics_id(2, 3), kinetics_id(0, 4)]
    (tmp_path / "train" / "abseiling").mkdir(parents=True)
    (tmp_path / "train" / "abseiling" / f"{ids[0]}.mp4").write_bytes(b"x")
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / f"{ids[1]}.MKV").write_bytes(b"x")
    (tmp_path / "flat" / f"{ids[2].rsplit('_', 2)[0]}.webm").write_bytes(b"x")  # bare YouTube id
    found = find_video_files(ids, tmp_path)
    assert set(found) == set(ids[:3])
    assert found[ids[1]].suffix == ".MKV"


def test_split_cli_lists_missing_and_stops_over_threshold(tmp_path):
    from tests.conftest import write_feature_file

    train_list, val_list, csv, train, val = write_inputs(tmp_path, per_class=(6, 6, 6))
    table = list_annotations(train_list, val_list, [csv])
    annotations = tmp_path / "ann.csv"
    table.to_csv(annotations, index=False)
    lost = {kinetics_id(2, 0), kinetics_id(2, 1)}  # the first two of class 2: selected, then lost
    labels = {v: n for v, n in zip(table.video_id, table.label, strict=True) if v not in lost}
    features = write_feature_file(tmp_path / "f.h5", labels)
    pd.DataFrame(
        [(kinetics_id(2, 0), "", "file missing")], columns=["video_id", "path", "reason"]
    ).to_csv(tmp_path / "failures.csv", index=False)
    common = ["--annotations", str(annotations), "--features", str(features)]
    missing = run_move(
        *[
            "missing",
            *common,
            "--failures",
            str(tmp_path / "failures.csv"),
            "--out",
            str(tmp_path / "missing.csv"),
            "--max-missing-share",
            "0.1",
        ]
    )
    assert missing.returncode == 0, missing.stderr
    listed = pd.read_csv(tmp_path / "missing.csv")
    assert set(listed.video_id) == lost
    assert set(listed.reason) == {"file missing", "no features"}
    args = [
        "split",
        *common,
        "--ir",
        "1",
        "--max-per-class",
        "6",
        "--head-min",
        "5",
        "--tail-max",
        "1",
        "--out",
        str(tmp_path / "s.csv"),
        "--class-counts",
        str(tmp_path / "c.csv"),
    ]
    ok = run_move(*args, "--max-missing-share", "0.1")
    assert ok.returncode == 0, ok.stderr
    assert "2 selected train videos lost in 1 classes: cooking egg -2" in ok.stderr
    counts = pd.read_csv(tmp_path / "c.csv")
    assert counts.set_index("label").loc["cooking egg", ["count", "lost"]].tolist() == [4, 2]
    stop = run_move(
        *args, "--max-missing-share", "0.05", "--share-key", "datasets.mk.max_missing_share"
    )
    assert stop.returncode == 1
    assert stop.stderr.count("\n") == 1 and "datasets.mk.max_missing_share" in stop.stderr


ISSUE_PINS = {  # the sha256 of the authors' files at commit 7928daa, as published
    "train.lst": "94673516235a35e17d40bc0bab8737beb0d8cd864554d18ceca9918935974753",
    "val.lst": "4c54b47e527cf035640aac47641306d1d85a3d7a22578f1a16d3eb5291457810",
    "kinetics_train.csv": "3be97326abee72ee48078cf77cdbaf76e39766d758f49a2d431345dd48ab0064",
    "kinetics_val.csv": "8c8224e0f7defeed168c12f89b8c27bc5efd2b2a3be97867dcd84fba183ab6c7",
}


def test_config_defaults_are_the_authors_pinned_files():
    import yaml

    from move.datasets.kinetics import AUTHORS_COMMIT, authors_url, pinned_sha256
    from tests.conftest import REPO

    entry = yaml.safe_load((REPO / "config.yaml").read_text())["datasets"]["minikinetics"]
    assert entry["lists"] == {"train": authors_url("train.lst"), "val": authors_url("val.lst")}
    assert entry["kinetics_annotations"] == [
        authors_url("kinetics_train.csv"),
        authors_url("kinetics_val.csv"),
    ]
    assert authors_url("train.lst") == (
        f"https://raw.githubusercontent.com/wjun0830/MOVE/{AUTHORS_COMMIT}/"
        "Imbalanced-MiniKinetics200/data/train.lst"
    )
    assert AUTHORS_COMMIT == "7928daae58d4197660a8d1ed70f8815836c280ac"
    assert {name: pinned_sha256(authors_url(name)) for name in ISSUE_PINS} == ISSUE_PINS
    assert pinned_sha256("https://example.org/train.lst") is None


def test_an_authors_url_serving_other_content_is_refused(local_server, tmp_path, monkeypatch):
    import move.datasets.kinetics

    (local_server.folder / "train.lst").write_text("a_000001_000002 0\n")
    monkeypatch.setattr(move.datasets.kinetics, "AUTHORS_DATA_URL", local_server.url(""))
    out = tmp_path / "lists" / "train.txt"
    with pytest.raises(MoveError) as error:
        fetch_list(local_server.url("train.lst"), out)
    assert f"differs from {ISSUE_PINS['train.lst']} expected" in str(error.value)
    assert not out.parent.exists() or not any(out.parent.iterdir())  # nothing kept


def test_list_fetch_over_http_and_offline_one_line(local_server, tmp_path):
    (local_server.folder / "val.lst").write_text("a_000001_000002 0\n")
    url = local_server.url("val.lst")
    out = tmp_path / "lists" / "val.txt"
    digest = fetch_list(url, out)
    assert out.read_text() == "a_000001_000002 0\n" and local_server.requests == ["/val.lst"]
    assert (tmp_path / "lists" / "val.txt.sha256").read_text().split()[0] == digest
    local_server.close()
    with pytest.raises(MoveError) as error:
        fetch_list(url, tmp_path / "other.txt")
    message = str(error.value)
    assert message.startswith(f"cannot download list file from {url} (") and "\n" not in message
    assert message.endswith("): check the URL and your connection, or give a local path")


def test_split_from_lists_alone_is_the_feature_split_plus_the_lost(tmp_path):
    """Without --features the split comes from the lists; features only drop selected videos."""
    from tests.conftest import write_feature_file

    train_list, val_list, csv, _, _ = write_inputs(tmp_path, per_class=(6, 4, 2))
    table = list_annotations(train_list, val_list, [csv])
    annotations = tmp_path / "ann.csv"
    table.to_csv(annotations, index=False)
    lost = {kinetics_id(0, 1), kinetics_id(2, 50)}  # a selected train video and a test video
    labels = {v: n for v, n in zip(table.video_id, table.label, strict=True) if v not in lost}
    features = write_feature_file(tmp_path / "f.h5", labels)

    def split(name, *extra):
        args = ["--annotations", str(annotations), "--ir", "0.5", "--max-per-class", "5"]
        args += ["--head-min", "5", "--tail-max", "1", "--out", str(tmp_path / f"{name}.csv")]
        args += ["--class-counts", str(tmp_path / f"{name}.counts.csv"), *extra]
        run = run_move("split", *args)
        assert run.returncode == 0, run.stderr
        return pd.read_csv(tmp_path / f"{name}.csv", dtype=str)

    from_lists = split("lists")
    with_features = split("features", "--features", str(features))
    assert (from_lists.split == "train").sum() == 5 + 3 + 2  # floor(5 * 0.5 ** (c / 2)), capped
    kept = from_lists[~from_lists.video_id.isin(lost)].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, with_features)


def test_a_list_given_by_hand_with_a_byte_order_mark_reads_its_first_id(tmp_path):
    """Weak spot of issue 32: a hand-given list saved with a UTF-8 BOM kept it in its first id
    (which then matched no video); the fetched path already removed it."""
    from move.datasets.kinetics import read_authors_list
    from move.datasets.mirror import read_path_list

    listed = tmp_path / "train.lst"
    listed.write_bytes(b"\xef\xbb\xbfabc_000001_000011 3\nxyz_000002_000012 4\n")
    assert read_authors_list(listed).video_id.tolist() == ["abc_000001_000011", "xyz_000002_000012"]
    paths = tmp_path / "k400_train_path.txt"
    paths.write_bytes(b"\xef\xbb\xbfhttps://mirror.example/train/part_0.tar.gz\n")
    assert read_path_list(paths) == ["https://mirror.example/train/part_0.tar.gz"]


def test_an_unpinned_list_trusted_on_first_use_says_so_in_one_line(tmp_path, capsys):
    """Weak spot of issue 32: a list with no pin was recorded silently on its first fetch."""
    from move.datasets.kinetics import fetch_list

    source = tmp_path / "mine.lst"
    source.write_text("abc_000001_000011 3\n")
    digest = fetch_list(str(source), tmp_path / "lists" / "train.txt")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"note: {source} has no pinned sha256"), err
    assert f"sha256 {digest} recorded in {tmp_path / 'lists' / 'train.txt.sha256'}" in err[0]
    fetch_list(str(source), tmp_path / "lists" / "train.txt")  # recorded now: no note again
    assert capsys.readouterr().err == ""
    fetch_list(str(source), tmp_path / "pinned.txt", expected_sha256=digest)  # pinned: none
    assert capsys.readouterr().err == ""
