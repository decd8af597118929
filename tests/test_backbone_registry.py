"""The backbone registry is the one list: a timm model by name extracts with its own input size and
normalisation, a torchvision video model gives one feature per clip, a backbone in one file
(``tests/example_backbone.py``) is valid in the config, offered by ``move extract --help``, passes
the planning checks and extracts, also from another package through the ``move.backbones`` entry
point; the Kinetics leak guard reads what the weights were trained on, not their name."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from move.config import load_schema, validate_config
from move.errors import MoveError
from move.extraction.backbones import (
    backbone_names,
    create_backbone,
    get_backbone,
    kinetics_trained,
)
from move.extraction.decoding import list_videos
from move.extraction.extract import ExtractSettings, extract_features
from move.extraction.registry import (
    IMAGENET_1K,
    KINETICS_400,
    Backbone,
    NamedWeights,
    register_backbone,
    unregister_backbone,
)
from move.extraction.video import read_frames
from move.features import open_feature_file, read_video_features, video_ids
from move.planning import extract_weights
from move.reporting import docs
from move.targets import check_target
from tests.conftest import REPO
from tests.example_backbone import TINY_CNN

TIMM_MODEL = "test_vit.r160_in1k"  # timm's tiny test ViT: input 160, crop_pct 0.95, mean 0.5


@pytest.fixture
def tiny_cnn_registered():
    register_backbone(TINY_CNN)
    yield TINY_CNN
    unregister_backbone(TINY_CNN.name)


@pytest.fixture(scope="module")
def three_videos(tiny_videos):
    return list_videos(tiny_videos / "annotations.csv", tiny_videos / "videos").head(3)


def preprocessed(path, frames, resize, crop, mean, std):
    """A video's frames as extraction should feed them, computed here without extraction."""
    from move.extraction.preprocess import preprocess_frames

    raw, _ = read_frames(path, frames)
    return preprocess_frames(raw, resize, crop, mean, std)


def test_the_registry_holds_the_paper_backbones_the_video_models_and_timm():
    assert backbone_names()[:3] == ("resnet50", "resnet101", "tsm_resnet50")
    assert {"r2plus1d_18", "s3d", "mvit_v2_s", "swin3d_t"} <= set(backbone_names())
    resnet = get_backbone("resnet50")
    assert (resnet.feature_dim, resnet.input_size, resnet.resize) == (2048, 224, 256)
    assert resnet.weights["imagenet"].trained_on == IMAGENET_1K
    video = get_backbone("r2plus1d_18")
    assert video.per_clip and video.frames_per_pass == 16 and video.input_size == 112
    assert get_backbone("tsm_resnet50").frames_per_pass == 8
    with pytest.raises(MoveError, match="unknown backbone 'vgg'.*timm:<model>"):
        get_backbone("vgg")
    with pytest.raises(MoveError, match="not a timm model"):
        get_backbone("timm:no_such_model_at_all")


def test_timm_backbone_extracts_with_its_own_input_size_and_normalisation(three_videos, tmp_path):
    import timm

    config = timm.get_pretrained_cfg(TIMM_MODEL)
    entry = get_backbone(f"timm:{TIMM_MODEL}")
    resize = math.floor(160 / config.crop_pct)
    assert (entry.input_size, entry.resize) == (160, resize) and entry.mean == config.mean
    assert entry.mean != get_backbone("resnet50").mean  # not ImageNet's: timm's own
    settings = ExtractSettings(
        backbone=f"timm:{TIMM_MODEL}", frames=3, batch_size=8, weights="none"
    )
    out = tmp_path / "timm.h5"
    extract_features(three_videos, out, tmp_path / "timm.csv", settings, progress=False)
    model = create_backbone(f"timm:{TIMM_MODEL}", "none")
    with open_feature_file(out) as handle:
        assert (handle.attrs["crop"], handle.attrs["resize"]) == (160, resize)
        np.testing.assert_allclose(handle.attrs["mean"], config.mean)
        np.testing.assert_allclose(handle.attrs["std"], config.std)
        features = read_video_features(handle, three_videos.video_id.iloc[0])
    assert features.shape == (3, model.feature_dim)
    frames = preprocessed(three_videos.path.iloc[0], 3, resize, 160, config.mean, config.std)
    with torch.inference_mode():
        expected = model.forward_features(frames).numpy()
    np.testing.assert_allclose(features, expected, rtol=2e-2, atol=2e-2)  # stored as float16


def test_timm_weights_load_through_timm_from_a_file(tmp_path):
    import timm

    source = timm.create_model(TIMM_MODEL, pretrained=False)  # timm's format, head included
    torch.nn.init.normal_(source.patch_embed.proj.weight)
    torch.save(source.state_dict(), tmp_path / "vit.pth")
    loaded = create_backbone(f"timm:{TIMM_MODEL}", tmp_path / "vit.pth")
    torch.testing.assert_close(loaded.model.patch_embed.proj.weight, source.patch_embed.proj.weight)
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(MoveError, match=f"does not fit the backbone timm:{TIMM_MODEL}"):
        create_backbone(f"timm:{TIMM_MODEL}", tmp_path / "other.pth")


def test_timm_named_weights_download_once_verified_and_load(local_server, tmp_path, monkeypatch):
    import timm
    from safetensors.torch import save_file

    from move.extraction.backbones import verified_weights
    from move.extraction.weights import WEIGHTS_URLS_ENV, weights_cache_dir

    source = timm.create_model(TIMM_MODEL, pretrained=False)
    torch.nn.init.normal_(source.patch_embed.proj.weight)
    save_file(source.state_dict(), local_server.folder / "model.safetensors")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    url = local_server.url("model.safetensors")
    monkeypatch.setenv(WEIGHTS_URLS_ENV, f"timm:{TIMM_MODEL}:timm={url}")
    weights = verified_weights(f"timm:{TIMM_MODEL}", "timm")
    assert weights.path == weights_cache_dir() / f"timm-{TIMM_MODEL}.safetensors"
    assert weights.path.with_name(weights.path.name + ".sha256").is_file()  # recorded
    loaded = create_backbone(f"timm:{TIMM_MODEL}", weights)
    torch.testing.assert_close(loaded.model.patch_embed.proj.weight, source.patch_embed.proj.weight)
    assert len(local_server.requests) == 1
    create_backbone(f"timm:{TIMM_MODEL}", "timm")  # cached: no second download
    assert len(local_server.requests) == 1


def test_timm_weights_offline_name_the_file_to_place(tmp_path, monkeypatch):
    from move.extraction.weights import WEIGHTS_URLS_ENV, weights_cache_dir

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv(WEIGHTS_URLS_ENV, f"timm:{TIMM_MODEL}:timm=http://127.0.0.1:9/none")
    expected = weights_cache_dir() / f"timm-{TIMM_MODEL}.safetensors"
    with pytest.raises(MoveError, match=f"save it as {expected}"):
        create_backbone(f"timm:{TIMM_MODEL}", "timm")


def test_a_video_model_gives_one_feature_per_clip(three_videos, tmp_path):
    entry = get_backbone("r2plus1d_18")
    settings = ExtractSettings(
        backbone="r2plus1d_18", frames=20, resize=40, crop=32, batch_size=32, weights="none"
    )  # 20 frames: a clip of 16 and one of 4, padded by its last frame
    out = tmp_path / "r2plus1d.h5"
    extract_features(three_videos, out, tmp_path / "r.csv", settings, progress=False)
    with open_feature_file(out) as handle:
        assert handle.attrs["feature_dim"] == 512
        np.testing.assert_allclose(handle.attrs["mean"], entry.mean)
        features = read_video_features(handle, three_videos.video_id.iloc[0])
    assert features.shape == (2, 512) and np.isfinite(features).all()
    model = create_backbone("r2plus1d_18", "none")
    frames = preprocessed(three_videos.path.iloc[0], 20, 40, 32, entry.mean, entry.std)
    padded = torch.cat([frames[16:], frames[-1:].expand(12, -1, -1, -1)])
    with torch.inference_mode():
        clips = [model.model(clip.transpose(0, 1)[None])[0] for clip in (frames[:16], padded)]
    expected = torch.stack(clips).numpy()
    np.testing.assert_allclose(features, expected, rtol=2e-2, atol=2e-2 * np.abs(expected).max())


def test_a_backbone_in_one_file_is_in_the_schema_help_checks_and_docs(tiny_cnn_registered, capsys):
    from move.cli import main

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["datasets"]["demo"]["backbones"] = ["tiny_cnn"]
    config["extract"]["weights"] = {"tiny_cnn": "none"}
    validate_config(config)
    assert "tiny_cnn" in load_schema()["$defs"]["backbones"]["items"]["anyOf"][0]["enum"]
    config["datasets"]["demo"]["backbones"] = ["tiny_cnn_unknown"]
    with pytest.raises(MoveError, match="backbones"):
        validate_config(config)
    check_target("features/demo/tiny_cnn.h5", config)
    with pytest.raises(MoveError, match="unknown backbone 'vgg'"):
        check_target("features/demo/vgg.h5", config)
    with pytest.raises(SystemExit):
        main(["fetch-weights", "--help"])
    assert "tiny_cnn" in capsys.readouterr().out
    assert "## `tiny_cnn`" in docs.backbones_page()


def test_a_registered_backbone_extracts_with_its_entry(tiny_cnn_registered, three_videos, tmp_path):
    settings = ExtractSettings(backbone="tiny_cnn", frames=4, batch_size=8, weights="none")
    out = tmp_path / "tiny.h5"
    extract_features(three_videos, out, tmp_path / "t.csv", settings, progress=False)
    with open_feature_file(out) as handle:
        assert (handle.attrs["crop"], handle.attrs["resize"], handle.attrs["feature_dim"]) == (
            32,
            40,
            16,
        )
        assert read_video_features(handle, video_ids(handle)[0]).shape == (4, 16)


def test_the_leak_guard_reads_what_the_weights_were_trained_on():
    """A Kinetics-trained weight under any name is refused on a Kinetics subset; a weight named
    'kinetics' that was trained elsewhere is not."""
    leaky = Backbone(
        "tiny_leaky", TINY_CNN.build, 16, 32, 40, TINY_CNN.mean, TINY_CNN.std,
        weights={"video_pretrain": NamedWeights("https://example.org/v.pth", KINETICS_400)},
    )  # fmt: skip
    clean = Backbone(
        "tiny_clean", TINY_CNN.build, 16, 32, 40, TINY_CNN.mean, TINY_CNN.std,
        weights={"kinetics": NamedWeights("https://example.org/k.pth", IMAGENET_1K)},
    )  # fmt: skip
    register_backbone(leaky)
    register_backbone(clean)
    try:
        assert kinetics_trained("tiny_leaky", "video_pretrain")
        assert kinetics_trained("tiny_leaky", "https://example.org/v.pth")
        assert not kinetics_trained("tiny_clean", "kinetics")
        assert kinetics_trained("r2plus1d_18", "kinetics") and not kinetics_trained(
            "resnet50", "imagenet"
        )
        config = yaml.safe_load((REPO / "config.yaml").read_text())
        with pytest.raises(MoveError, match="tiny_leaky 'video_pretrain' weights were trained on"):
            extract_weights(config, "minikinetics", "tiny_leaky")
        assert extract_weights(config, "minikinetics", "tiny_clean") == "kinetics"
        with pytest.raises(MoveError, match="swin3d_t 'kinetics' weights were trained on"):
            extract_weights(config, "minikinetics", "swin3d_t")
    finally:
        unregister_backbone("tiny_leaky")
        unregister_backbone("tiny_clean")


# --- out-of-tree: a backbone of another package, found through the entry point -----------------
def install_plugin(folder):
    """Write ``tests/example_backbone.py`` as the package ``tiny_backbone`` with a dist-info that
    declares it in the ``move.backbones`` entry-point group (what ``pip install`` would leave)."""
    source = (REPO / "tests" / "example_backbone.py").read_text()
    (folder / "tiny_backbone.py").write_text(source)
    info = folder / "tiny_backbone-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tiny-backbone\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[move.backbones]\ntiny_cnn = tiny_backbone:TINY_CNN\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(REPO)])}


def test_a_backbone_of_another_package_is_found_through_its_entry_point(tmp_path):
    env = install_plugin(tmp_path)
    code = (
        "from move.config import load_schema\n"
        "from move.extraction.backbones import backbone_names\n"
        "print(backbone_names()[-1], "
        "load_schema()['$defs']['extract']['properties']['weights']['properties']['tiny_cnn'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split(" ", 1)[0] == "tiny_cnn" and "'default': 'none'" in done.stdout
    helped = subprocess.run(
        [sys.executable, "-m", "move", "extract", "--help"], env=env, capture_output=True, text=True
    )
    assert "tiny_cnn" in helped.stdout.replace("\n", " ")


@pytest.mark.slow
def test_an_out_of_tree_backbone_extracts_through_the_workflow(tmp_path):
    """The plugin's backbone, named in the config, extracts and trains via Snakemake."""
    from tests.conftest import tiny_train

    (tmp_path / "plugin").mkdir()
    env = install_plugin(tmp_path / "plugin")
    work = tmp_path / "work"
    work.mkdir()
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["demo"] |= {"classes": 4, "train_per_class": 6, "val_per_class": 2, "size": 32}
    demo = config["datasets"]["demo"]
    demo |= {
        "max_per_class": 6,
        "groups": {"head_min": 5, "tail_max": 2},
        "imbalance_ratios": [0.5],
        "backbone": "tiny_cnn",
        "backbones": ["tiny_cnn"],
    }
    demo["extract"] = {k: v for k, v in demo["extract"].items() if k not in ("resize", "crop")}
    demo["extract"] |= {"frames": 4, "weights": {"tiny_cnn": "none"}}
    demo["train"] |= tiny_train(frames_train=4, frames_test=4) | {"epochs": 2}
    configfile = work / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    snakefile = ["-s", str(REPO / "Snakefile"), "-d", str(work), "--configfile", str(configfile)]
    done = subprocess.run(
        ["snakemake", "results/demo_ir0.5.json", "--cores", "2", *snakefile],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with open_feature_file(work / "features" / "demo" / "tiny_cnn.h5") as handle:
        assert handle.attrs["backbone"] == "tiny_cnn" and handle.attrs["feature_dim"] == 16
        assert (handle.attrs["crop"], handle.attrs["resize"]) == (32, 40)  # the entry's own
    results = json.loads((work / "results" / "demo_ir0.5.json").read_text())
    assert results["backbone"] == "tiny_cnn"


def test_r3d_18_is_one_entry_of_the_video_family():
    """ResNet3D-18, added as one line of torchvision_video.MODELS: a clip model of 512 features."""
    entry = get_backbone("r3d_18")
    assert entry.per_clip and entry.weights["kinetics"].trained_on == KINETICS_400
    assert entry.weights["kinetics"].url.endswith("/r3d_18-b3b3357e.pth")
    model = create_backbone("r3d_18", "none")
    with torch.inference_mode():
        features = model.forward_features(torch.randn(20, 3, 32, 32))  # a clip of 16, one of 4
    assert features.shape == (20, 512)
    assert torch.equal(features[0], features[15]) and not torch.equal(features[15], features[16])
    assert "r3d_18" in load_schema()["$defs"]["backbones"]["items"]["anyOf"][0]["enum"]
