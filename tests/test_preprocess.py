"""Extraction's fast path (uint8 resize/crop, normalisation on the device, batches mixing videos)
held to the float32 path it replaced, and decoding in bounded chunks."""

import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import move.extraction.video
from move.extraction.backbones import IMAGENET_MEAN, IMAGENET_STD, create_backbone
from move.extraction.decoding import decode_workers
from move.extraction.embedding import embed_frames, embed_videos
from move.extraction.preprocess import normalise_frames, preprocess_frames, resize_and_crop
from move.extraction.video import read_frames
from move.extraction.video_files import index_video_files


def float32_preprocess(frames: np.ndarray, resize: int, crop: int) -> torch.Tensor:
    """The preprocessing extraction used before (float32 throughout): the oracle."""
    video = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div_(255)
    height, width = video.shape[-2:]
    scale = resize / min(height, width)
    size = (max(crop, round(height * scale)), max(crop, round(width * scale)))
    video = F.interpolate(video, size=size, mode="bilinear", antialias=True, align_corners=False)
    top, left = (size[0] - crop) // 2, (size[1] - crop) // 2
    video = video[:, :, top : top + crop, left : left + crop]
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    return (video - mean) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def photo_video(height: int, width: int, n_frames: int = 6) -> np.ndarray:
    """Frames ``[T, H, W, 3]`` panning and zooming over a real photograph (ImageNet-like)."""
    import matplotlib.cbook
    from PIL import Image

    photo = Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).convert("RGB")
    frames = []
    for t in range(n_frames):
        zoom = 1 - 0.05 * t
        box_w, box_h = photo.width * zoom, photo.width * zoom * height / width
        left, top = 4 * t, max(0.0, (photo.height - box_h) / 2 - 3 * t)
        box = (left, top, left + box_w, top + box_h)
        frames.append(np.asarray(photo.resize((width, height), Image.BICUBIC, box=box)))
    return np.stack(frames)


@pytest.mark.parametrize("height,width", [(720, 1280), (256, 340), (272, 640), (1080, 1920)])
def test_uint8_preprocessing_matches_the_float32_path(height, width):
    frames = photo_video(height, width)
    old = float32_preprocess(frames, 256, 224)
    new = preprocess_frames(frames, 256, 224, IMAGENET_MEAN, IMAGENET_STD)
    assert new.shape == old.shape == (len(frames), 3, 224, 224) and new.dtype == torch.float32
    cosine = F.cosine_similarity(old.flatten(1).double(), new.flatten(1).double())
    assert cosine.min() >= 0.999
    # The uint8 kernel (fixed-point weights, rounded output) stays within one grey level.
    levels = (old - new).abs() * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255
    assert levels.max() <= 1.0 + 1e-3


def test_preprocessing_halves_compose_to_the_whole():
    frames = photo_video(256, 340, n_frames=2)
    cropped = resize_and_crop(torch.from_numpy(frames), 128, 112)
    assert cropped.dtype == torch.uint8 and cropped.shape == (2, 3, 112, 112)
    whole = preprocess_frames(frames, 128, 112, IMAGENET_MEAN, IMAGENET_STD)
    assert torch.equal(normalise_frames(cropped, IMAGENET_MEAN, IMAGENET_STD), whole)


def test_chunked_decoding_equals_whole_decoding(tiny_videos, monkeypatch):
    path = next(iter(index_video_files(tiny_videos / "videos").values()))
    whole, n_frames = read_frames(path, 12)  # 8 stored frames: some repeat
    monkeypatch.setattr(move.extraction.video, "DECODE_CHUNK", 3)
    chunk_sizes = []

    def crop(chunk):
        chunk_sizes.append(len(chunk))
        return resize_and_crop(chunk, 24, 16)

    chunked, n = read_frames(path, 12, crop)
    assert n == n_frames == 8 and max(chunk_sizes) == 3 and sum(chunk_sizes) == 8
    assert torch.equal(chunked, resize_and_crop(torch.from_numpy(whole), 24, 16))


@functools.cache
def revived(name: str) -> torch.nn.Module:
    model = create_backbone(name, "none")
    for module in model.modules():  # timm zero-inits each block's last BN: revive the branches
        if isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.ones_(module.weight)
    return model


def decoded(lengths: list[int | None], seed: int = 0) -> list[dict]:
    """Items as the decode workers give them (uint8 frames, or None for a failed video)."""
    rng = np.random.default_rng(seed)
    return [
        {
            "video_id": f"v{i}",
            "frames": None
            if n is None
            else torch.from_numpy(rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)),
        }
        for i, n in enumerate(lengths)
    ]


@pytest.mark.parametrize("backbone", ["resnet50", "tsm_resnet50"])
def test_batches_mixing_videos_give_each_videos_own_features(backbone):
    model, cpu = revived(backbone), torch.device("cpu")
    items = decoded([3, None, 10, 1, 2])  # TSM: clips of 8, so 3 passes of 8; ResNet: 4 of 4
    batch = 8 if backbone == "tsm_resnet50" else 4
    results = list(embed_videos(model, items, batch, cpu, IMAGENET_MEAN, IMAGENET_STD))
    assert [item["video_id"] for item, _ in results] == [item["video_id"] for item in items]
    assert results[1][1] is None
    for item, features in results:
        if item["frames"] is None:
            continue
        alone = embed_frames(
            model, normalise_frames(item["frames"], IMAGENET_MEAN, IMAGENET_STD), 64, cpu
        )
        assert features.shape == (len(item["frames"]), 2048)
        np.testing.assert_allclose(features, alone, rtol=1e-4, atol=1e-4)


def test_features_do_not_depend_on_the_neighbours_in_a_batch():
    """What resume and shards rely on: a video's features are the same bits in any company."""
    model, cpu = revived("resnet50"), torch.device("cpu")
    items = decoded([3, 5, 2, 4, 1])
    embedded = embed_videos(model, items, 4, cpu, IMAGENET_MEAN, IMAGENET_STD)
    together = {item["video_id"]: features for item, features in embedded}
    for subset in (items[2:], items[1::2]):
        for item, features in embed_videos(model, subset, 4, cpu, IMAGENET_MEAN, IMAGENET_STD):
            np.testing.assert_array_equal(features, together[item["video_id"]])


def test_decode_workers_default_to_the_cores_of_the_job(monkeypatch):
    import os

    assert decode_workers(3) == 3 and decode_workers(0) == 0
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4})
    assert decode_workers(None) == 4
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert decode_workers(None) == 0
