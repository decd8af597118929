"""Named weights: served by a local HTTP server in the real file formats, cached, verified, loaded.

The checkpoint files are state dicts of randomly initialised models with the key layout of
torchvision's ImageNet files (``resnet50-<sha256 prefix>.pth``) and of the official TSM Kinetics
checkpoint (``{'epoch', 'arch', 'state_dict': module.base_model.…conv1.net.…, new_fc}``).
``MOVE_WEIGHTS_URLS`` points the names at the local server; ``TORCH_HOME`` at a fresh cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
import torch
import yaml

from move.downloads import TIMEOUT_ENV, record_path
from move.errors import MoveError
from move.extraction.backbones import create_backbone, verified_weights
from move.extraction.weights import (
    NAMED_WEIGHTS,
    WEIGHTS_URLS_ENV,
    Weights,
    default_weights,
    weights_cache_dir,
    weights_file,
)
from move.files import file_sha256
from move.planning import extract_weights
from tests.conftest import REPO, save_with_hash_name

TSM_FILE = "TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth"


def official_tsm_checkpoint(source: torch.nn.Module) -> dict:
    """The official TSM checkpoint's layout around a ResNet-50's weights."""
    state = {}
    for key, value in source.state_dict().items():
        if key.startswith("fc."):
            continue
        if key.startswith("layer") and ".conv1." in key:
            key = key.replace(".conv1.", ".conv1.net.")
        state[f"module.base_model.{key}"] = value
    state["module.new_fc.weight"] = torch.zeros(400, 2048)
    state["module.new_fc.bias"] = torch.zeros(400)
    return {"epoch": 50, "arch": "resnet50", "state_dict": state, "best_prec1": 74.1}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """resnet50/resnet101 in torchvision's format, TSM in the official format (random init)."""
    import torchvision

    folder = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    files = {}
    for name in ("resnet50", "resnet101"):
        model = getattr(torchvision.models, name)(weights=None)
        files[name] = save_with_hash_name(model.state_dict(), folder, name)
    tsm_source = torchvision.models.resnet50(weights=None)
    torch.nn.init.normal_(tsm_source.layer2[1].conv1.weight)
    torch.save(official_tsm_checkpoint(tsm_source), folder / TSM_FILE)
    files["tsm_resnet50"] = folder / TSM_FILE
    return files


@pytest.fixture
def served(checkpoints, local_server, tmp_path, monkeypatch):
    """The checkpoints on the local server, named weights pointed at it, an empty torch cache."""
    for path in checkpoints.values():
        (local_server.folder / path.name).symlink_to(path)
    entries = [
        f"resnet50:imagenet={local_server.url(checkpoints['resnet50'].name)}",
        f"resnet101:imagenet={local_server.url(checkpoints['resnet101'].name)}",
        f"tsm_resnet50:kinetics={local_server.url(TSM_FILE)}",
    ]
    monkeypatch.setenv(WEIGHTS_URLS_ENV, " ".join(entries))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return local_server


def test_imagenet_downloads_once_verifies_and_loads_without_missing_keys(served, checkpoints):
    first = verified_weights("resnet50", "imagenet")
    assert first.path == weights_cache_dir() / checkpoints["resnet50"].name
    assert first.path.parent == Path(served.folder.parent / "torch/hub/checkpoints")
    assert first.sha256 == file_sha256(checkpoints["resnet50"])
    assert served.requests == [f"/{checkpoints['resnet50'].name}"]
    assert sorted(p.name for p in first.path.parent.iterdir()) == [first.path.name]  # no temp

    model = create_backbone("resnet50", "imagenet")  # second use: from the cache
    assert len(served.requests) == 1
    source = torch.load(checkpoints["resnet50"], weights_only=True)
    torch.testing.assert_close(model.model.layer3[2].conv2.weight, source["layer3.2.conv2.weight"])
    # loading is strict: every parameter of the model came from the file
    assert {f"model.{key}" for key in source if not key.startswith("fc.")} == set(
        model.state_dict()
    )


def test_imagenet_resnet101_loads(served, checkpoints):
    model = create_backbone("resnet101", "imagenet")
    source = torch.load(checkpoints["resnet101"], weights_only=True)
    torch.testing.assert_close(model.model.layer3[22].bn3.weight, source["layer3.22.bn3.weight"])


def test_kinetics_records_the_first_sha256_and_loads_into_tsm(served, checkpoints):
    weights = verified_weights("tsm_resnet50", "kinetics")
    record = weights.path.with_name(TSM_FILE + ".sha256")
    assert (
        record.read_text().split()[0] == weights.sha256 == file_sha256(checkpoints["tsm_resnet50"])
    )
    model = create_backbone("tsm_resnet50", "kinetics")
    source = torch.load(checkpoints["tsm_resnet50"], weights_only=True)["state_dict"]
    torch.testing.assert_close(
        model.base_model.layer2[1].conv1.net.weight,
        source["module.base_model.layer2.1.conv1.net.weight"],
    )
    assert served.requests == [f"/{TSM_FILE}"]


def test_a_later_tsm_file_that_differs_is_refused(served, checkpoints, tmp_path, monkeypatch):
    weights = verified_weights("tsm_resnet50", "kinetics")
    weights.path.unlink()  # the cache was cleared, the record beside it kept
    changed = tmp_path / "changed" / TSM_FILE
    changed.parent.mkdir()
    other = torch.load(checkpoints["tsm_resnet50"], weights_only=True)
    other["state_dict"]["module.new_fc.bias"] = torch.ones(400)  # a fitting checkpoint, changed
    torch.save(other, changed)
    (served.folder / TSM_FILE).unlink()
    (served.folder / TSM_FILE).symlink_to(changed)
    with pytest.raises(MoveError) as error:
        verified_weights("tsm_resnet50", "kinetics")
    message = str(error.value)
    assert "\n" not in message and "recorded at the first download" in message
    assert served.url(TSM_FILE) in message and not weights.path.exists()
    # the same happens to a changed file put in the cache by hand
    changed.rename(weights.path)
    with pytest.raises(MoveError, match=r"^cached .* recorded at the first download: delete it"):
        verified_weights("tsm_resnet50", "kinetics")


def test_wrong_hash_is_refused_with_one_line_and_nothing_kept(served, checkpoints, monkeypatch):
    wrong = served.folder / "resnet50-00000000.pth"  # the prefix does not match the content
    wrong.symlink_to(checkpoints["resnet50"])
    monkeypatch.setenv(WEIGHTS_URLS_ENV, f"resnet50:imagenet={served.url(wrong.name)}")
    with pytest.raises(MoveError) as error:
        verified_weights("resnet50", "imagenet")
    message = str(error.value)
    assert message == (
        f"resnet50 'imagenet' weights from {served.url(wrong.name)}: sha256 "
        f"{file_sha256(wrong)[:16]}... does not match the 00000000... in the file name: the "
        "download is damaged or not the published file (nothing kept); retry, or save the right "
        f"file as {weights_cache_dir() / wrong.name}"
    )
    assert not weights_cache_dir().exists() or not any(weights_cache_dir().iterdir())


@pytest.mark.parametrize(
    ("backbone", "name"), [("resnet50", "imagenet"), ("tsm_resnet50", "kinetics")]
)
def test_a_weights_download_cut_short_is_resumed_else_refused_and_nothing_recorded(
    served, checkpoints, monkeypatch, backbone, name
):
    """Cut after 64 KB once: resumed with a Range request and loaded; cut on every try, an HTML
    page or an empty body: refused in one line, nothing kept or recorded; then accepted."""
    monkeypatch.setenv(TIMEOUT_ENV, "5")
    file = checkpoints[backbone].name
    served.faults[file] = ["cut:65536"]
    weights = verified_weights(backbone, name)
    assert weights.sha256 == file_sha256(checkpoints[backbone])
    assert served.ranges[-2:] == [None, "bytes=65536-"]
    shutil.rmtree(weights_cache_dir())
    for faults, expected in (
        (["cut:65536"] * 3, "the connection closed after 196608 of"),
        (["html"], "is not a PyTorch checkpoint"),
        (["empty"], "is empty (nothing kept)"),
    ):
        served.faults[file] = list(faults)
        with pytest.raises(MoveError) as error:
            verified_weights(backbone, name)
        assert expected in str(error.value) and "\n" not in str(error.value)
        assert not weights_cache_dir().exists() or not any(weights_cache_dir().iterdir())
    assert verified_weights(backbone, name).sha256 == file_sha256(checkpoints[backbone])


def test_bytes_placed_by_hand_in_the_cache_are_refused_not_recorded(served, checkpoints):
    target = weights_cache_dir() / TSM_FILE
    target.parent.mkdir(parents=True)
    target.write_bytes(os.urandom(70_000))
    with pytest.raises(MoveError) as error:
        verified_weights("tsm_resnet50", "kinetics")
    assert str(error.value).startswith(f"cached {target} is not a PyTorch checkpoint")
    assert str(error.value).endswith(": delete it to download it again")
    assert not record_path(target).exists()


def test_a_mirror_without_the_hash_in_its_name_is_checked_against_the_published_name(
    served, checkpoints, monkeypatch
):
    plain = served.folder / "resnet50.pth"  # a mirror's name: no sha256 prefix
    plain.symlink_to(checkpoints["resnet50"])
    monkeypatch.setenv(WEIGHTS_URLS_ENV, f"resnet50:imagenet={served.url(plain.name)}")
    with pytest.raises(MoveError, match=r"does not match the 19c8e357\.\.\. in the file name"):
        verified_weights("resnet50", "imagenet")  # these random weights are not ImageNet's
    assert weights_file("resnet50", "imagenet").name == "resnet50-19c8e357.pth"


def test_offline_says_which_url_and_where_to_put_the_file(served, checkpoints, tmp_path):
    url = served.url(checkpoints["resnet50"].name)
    served.close()  # nothing listens any more: as without a network
    with pytest.raises(MoveError) as error:
        verified_weights("resnet50", "imagenet")
    message = str(error.value)
    target = weights_cache_dir() / checkpoints["resnet50"].name
    assert message.startswith(f"cannot download resnet50 'imagenet' weights from {url} (")
    assert message.endswith(f"): download it by hand and save it as {target}")
    assert "\n" not in message

    # The command prints the same line; a file saved there by hand is then used and verified.
    result = subprocess.run(
        [sys.executable, "-m", "move", "fetch-weights", "resnet50", "imagenet"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"move fetch-weights: error: {message}"]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(checkpoints["resnet50"].read_bytes())
    assert verified_weights("resnet50", "imagenet").path == target


def test_extraction_records_the_weights_sha256(served, checkpoints, tiny_videos, tmp_path):
    from move.extraction.decoding import list_videos
    from move.extraction.extract import ExtractSettings, extract_features

    videos = list_videos(tiny_videos / "annotations.csv", tiny_videos / "videos").head(2)
    settings = ExtractSettings(weights="imagenet", frames=2, resize=32, crop=32, device="cpu")
    out = tmp_path / "features.h5"
    extract_features(videos, out, tmp_path / "failures.csv", settings, progress=False)
    with h5py.File(out, "r") as handle:
        assert handle.attrs["weights"] == "imagenet"
        assert handle.attrs["weights_sha256"] == file_sha256(checkpoints["resnet50"])


def test_bad_names_and_override_entries_are_one_line_errors(served, monkeypatch):
    with pytest.raises(
        MoveError, match="weights 'imagenet' do not exist for tsm_resnet50: use kinetics"
    ):
        verified_weights("tsm_resnet50", "imagenet")
    monkeypatch.setenv(WEIGHTS_URLS_ENV, "resnet50=http://x/y.pth")
    with pytest.raises(MoveError, match=f"environment variable {WEIGHTS_URLS_ENV}: 'resnet50="):
        verified_weights("resnet50", "imagenet")


@pytest.mark.parametrize("torch_home", [None, "relative/torch"])
def test_cache_folder_is_torch_hubs(torch_home, tmp_path, monkeypatch):
    import torch.hub

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if torch_home is None:
        monkeypatch.delenv("TORCH_HOME", raising=False)
    else:
        monkeypatch.setenv("TORCH_HOME", torch_home)
    assert weights_cache_dir() == Path(torch.hub.get_dir()) / "checkpoints"


def test_official_urls_and_config_defaults():
    assert NAMED_WEIGHTS["resnet50"]["imagenet"].endswith("/models/resnet50-19c8e357.pth")
    assert NAMED_WEIGHTS["resnet101"]["imagenet"].endswith("/models/resnet101-5d3b4d8f.pth")
    assert NAMED_WEIGHTS["tsm_resnet50"]["kinetics"].endswith("/" + TSM_FILE)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    paper = ("resnet50", "resnet101", "tsm_resnet50")  # config.yaml names the paper's backbones
    assert "weights" not in config["extract"]  # each backbone's named weights, the default
    from move.config import load_schema  # the schema's weights are the registry's

    listed = load_schema()["$defs"]["extract"]["properties"]["weights"]["properties"]
    assert {b: entry["default"] for b, entry in listed.items()} == {
        b: default_weights(b) for b in NAMED_WEIGHTS
    }
    assert {b: listed[b]["default"] for b in paper} == {
        "resnet50": "imagenet", "resnet101": "imagenet", "tsm_resnet50": "kinetics"
    }  # fmt: skip
    assert "allow_random_weights" not in config["extract"]  # false, the default


def test_random_weights_are_refused_on_real_datasets_only():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    assert extract_weights(config, "minikinetics", "resnet50") == "imagenet"
    with pytest.raises(MoveError, match="trained on Kinetics-400's labelled train videos"):
        extract_weights(config, "minikinetics", "tsm_resnet50")  # the leak (test_targets.py)
    assert extract_weights(config, "demo", "resnet50") == "none"  # the demo allows it
    config["extract"]["weights"] = {"resnet50": "none"}
    with pytest.raises(MoveError) as error:
        extract_weights(config, "minikinetics", "resnet50")
    assert str(error.value) == (
        "config key 'extract.weights.resnet50' is 'none': a randomly initialised resnet50 gives "
        "meaningless features; use imagenet or a checkpoint, or set "
        "datasets.minikinetics.extract.allow_random_weights: true"
    )
    config["datasets"]["minikinetics"]["extract"] = {"allow_random_weights": True}
    assert extract_weights(config, "minikinetics", "resnet50") == "none"
    del config["extract"]["weights"]  # a backbone left out gets its named weights
    assert extract_weights(config, "minikinetics", "resnet101") == "imagenet"


def test_local_checkpoint_path_is_hashed_in_place(tmp_path):
    path = tmp_path / "mine.pth"
    torch.save({"a": torch.zeros(1)}, path)
    weights = verified_weights("resnet50", str(path))
    assert (weights.path, weights.sha256) == (path, file_sha256(path))
    assert verified_weights("resnet50", "none") == Weights(None, "none")
