import pytest
import torch

from move.errors import MoveError
from move.extraction.backbones import available_backbones, create_backbone


@pytest.fixture(scope="module")
def resnet50():
    return create_backbone("resnet50", "none")


def test_resnet50_gives_2048_features_per_frame(resnet50):
    with torch.inference_mode():
        out = resnet50.forward_features(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 2048)


def test_unknown_backbone_lists_choices():
    with pytest.raises(MoveError, match="resnet101"):
        create_backbone("vgg", "none")
    assert {"resnet50", "resnet101", "tsm_resnet50"} <= set(available_backbones())


def test_timm_state_dict_loads_and_changes_outputs(tmp_path, resnet50):
    import timm

    source = timm.create_model("resnet50", pretrained=False)  # timm's format, classifier included
    torch.nn.init.normal_(source.conv1.weight)
    torch.save(source.state_dict(), tmp_path / "resnet50.pth")
    loaded = create_backbone("resnet50", tmp_path / "resnet50.pth")
    torch.testing.assert_close(loaded.model.conv1.weight, source.conv1.weight)


def test_wrapped_state_dict_with_module_prefix_loads(tmp_path):
    import timm

    source = timm.create_model("resnet50", pretrained=False, num_classes=0)
    state = {"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}
    torch.save(state, tmp_path / "wrapped.pth")
    loaded = create_backbone("resnet50", tmp_path / "wrapped.pth")
    torch.testing.assert_close(loaded.model.layer1[0].conv1.weight, source.layer1[0].conv1.weight)


def test_wrong_architecture_lists_missing_and_unexpected_keys(tmp_path):
    import timm

    torch.save(timm.create_model("resnet18", pretrained=False).state_dict(), tmp_path / "r18.pth")
    with pytest.raises(MoveError, match="does not fit.*(missing|wrong shape)"):
        create_backbone("resnet50", tmp_path / "r18.pth")


def test_missing_or_garbage_weights_file_is_refused(tmp_path):
    with pytest.raises(MoveError, match="not found"):
        create_backbone("resnet50", tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(MoveError, match="not a PyTorch checkpoint"):
        create_backbone("resnet50", tmp_path / "junk.pth")


def test_random_init_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first = create_backbone("resnet50").state_dict()
    assert torch.equal(torch.rand(3), expected)  # the seeded init ran on a forked RNG
    second = create_backbone("resnet50").state_dict()
    assert all(torch.equal(first[key], second[key]) for key in first)


def test_temporal_shift_moves_channel_folds_between_segments():
    from move.extraction.backbones import temporal_shift

    # 1 clip x 3 segments x 8 channels, value = 10 * segment + channel; shift_div 4 -> folds of 2.
    x = (10 * torch.arange(3).view(3, 1, 1, 1) + torch.arange(8).view(1, 8, 1, 1)).float()
    out = temporal_shift(x, n_segment=3, shift_div=4)[:, :, 0, 0]
    expected = torch.tensor(
        [
            [10, 11, 0, 0, 4, 5, 6, 7],  # fold 1 from the next segment, fold 2 zero
            [20, 21, 2, 3, 14, 15, 16, 17],
            [0, 0, 12, 13, 24, 25, 26, 27],  # fold 1 zero at the end, fold 2 from segment 1
        ]
    ).float()
    torch.testing.assert_close(out, expected)
    # Two clips never exchange channels.
    two = temporal_shift(torch.cat([x, x + 100]), n_segment=3, shift_div=4)[:, :, 0, 0]
    torch.testing.assert_close(two[3:], expected + torch.where(expected != 0, 100.0, 0.0))


@pytest.mark.parametrize("name", ["resnet50", "resnet101", "tsm_resnet50"])
def test_every_backbone_gives_2048_per_frame(name):
    model = create_backbone(name, "none")
    with torch.inference_mode():
        out = model.forward_features(torch.randn(10, 3, 32, 32))  # 10: not a multiple of 8
    assert out.shape == (10, 2048) and torch.isfinite(out).all()


def test_tsm_segments_interact_only_within_a_clip():
    model = create_backbone("tsm_resnet50", "none")
    for module in model.modules():  # timm zero-inits each block's last BN: revive the branches
        if isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.ones_(module.weight)
    frames = torch.randn(16, 3, 32, 32)
    with torch.inference_mode():
        full = model.forward_features(frames)
        changed = frames.clone()
        changed[0] += 1.0
        after = model.forward_features(changed)
    assert not torch.allclose(full[1], after[1])  # segment 1 sees segment 0 through the shift
    torch.testing.assert_close(full[8:], after[8:])  # the second clip does not


def test_torchvision_state_dict_loads_into_resnet50(tmp_path):
    import torchvision

    source = torchvision.models.resnet50(weights=None)
    torch.save(source.state_dict(), tmp_path / "tv.pth")
    loaded = create_backbone("resnet50", tmp_path / "tv.pth")
    torch.testing.assert_close(loaded.model.layer4[2].bn3.weight, source.layer4[2].bn3.weight)
    torch.testing.assert_close(loaded.model.conv1.weight, source.conv1.weight)


def test_official_tsm_checkpoint_loads(tmp_path):
    import torchvision

    # The official TSM Kinetics checkpoint: {'epoch', 'state_dict'} with module.base_model.*,
    # the shifted conv as conv1.net, and a new_fc head (400 classes).
    source = torchvision.models.resnet50(weights=None)
    torch.nn.init.normal_(source.layer2[1].conv1.weight)
    state = {}
    for key, value in source.state_dict().items():
        if key.startswith("fc."):
            continue
        if ".conv1." in key and key.startswith("layer"):
            key = key.replace(".conv1.", ".conv1.net.")
        state[f"module.base_model.{key}"] = value
    state["module.new_fc.weight"] = torch.zeros(400, 2048)
    state["module.new_fc.bias"] = torch.zeros(400)
    torch.save({"epoch": 50, "arch": "resnet50", "state_dict": state}, tmp_path / "tsm.pth")
    loaded = create_backbone("tsm_resnet50", tmp_path / "tsm.pth")
    torch.testing.assert_close(
        loaded.base_model.layer2[1].conv1.net.weight, source.layer2[1].conv1.weight
    )
    # A plain ResNet-50 (ImageNet) checkpoint also initialises TSM (shift has no weights).
    torch.save(source.state_dict(), tmp_path / "tv.pth")
    create_backbone("tsm_resnet50", tmp_path / "tv.pth")


def test_resnet101_checkpoint_into_resnet50_lists_unexpected_keys(tmp_path):
    import torchvision

    torch.save(torchvision.models.resnet101(weights=None).state_dict(), tmp_path / "r101.pth")
    with pytest.raises(MoveError, match=r"unexpected: layer3\.[0-9]+\."):
        create_backbone("resnet50", tmp_path / "r101.pth")
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), tmp_path / "r50.pth")
    with pytest.raises(MoveError, match=r"missing: model\.layer3\.[0-9]+\."):
        create_backbone("resnet101", tmp_path / "r50.pth")
