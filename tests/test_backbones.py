import pytest
import torch

from move.backbones import available_backbones, create_backbone
from move.errors import MoveError


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
    assert {"resnet50", "resnet101"} <= set(available_backbones())


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
