"""Stage 2, extraction: decode videos and write per-frame backbone features to HDF5.

Reads the videos listed in an annotations CSV (Kinetics columns) under a video root; writes
``features/<dataset>/<backbone>.h5`` (layout in ``move.features``) and
``<backbone>.failures.csv`` listing every video that could not be decoded, with the reason.
``extract_features`` runs the parts, each in its module: decoding (``decoding``), preprocessing
(``preprocess``), the backbone (``embedding``), resuming and writing (``resume``), shards
(``shards``).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from move.device import resolve_device
from move.extraction.backbones import create_backbone, get_backbone, verified_weights
from move.extraction.decoding import decode_loader, sized_workers
from move.extraction.embedding import embed_videos
from move.extraction.preprocess import crop_transform
from move.extraction.resume import (
    collect_finished_work,
    finish_extraction,
    next_chunk_number,
    run_attributes,
    write_chunk,
)
from move.extraction.settings import ExtractSettings
from move.extraction.throughput import decode_on_device
from move.files import holding_lock


@holding_lock("out", "extraction")
def extract_features(
    videos: pd.DataFrame,
    out: str | Path,
    failures: str | Path,
    settings: ExtractSettings,
    progress: bool = True,
    chunk_videos: int = 64,
    reuse: Sequence[str | Path] = (),
) -> dict:
    """Extract features of ``videos`` into ``out`` (HDF5) and log failures to ``failures`` (CSV).

    Resumable and crash-safe: every ``chunk_videos`` finished videos are written as one chunk
    file under ``<out>.partial/`` (temp + rename), so a killed run loses at most the chunk in
    flight; a rerun skips the videos in finished chunks. Videos (and failures) already in a
    finished ``out`` or a ``reuse`` file made with the same settings are taken from there,
    read-only. At the end the new ``out`` is written beside the old one and renamed over it,
    so a finished ``out`` stays readable until its replacement is complete; the partial folder
    is then removed. Memory holds one chunk. Returns counts: videos in ``out`` (``extracted``),
    ``failed``, and ``new`` (extracted by this run). Holds ``<out>.lock`` while it runs: a second
    extraction into the same ``out`` is refused, naming this one.
    """
    out, failures = Path(out), Path(failures)
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = settings.for_backbone()  # resize and crop unset: the backbone's input size
    entry = get_backbone(settings.backbone)
    device = resolve_device(settings.device)
    weights = verified_weights(settings.backbone, settings.weights)  # named: downloaded once
    model = create_backbone(settings.backbone, weights).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    weights_sha = weights.sha256
    mean, std = entry.mean, entry.std  # the backbone's normalisation (timm's pretrained_cfg)
    attrs = run_attributes(settings, weights_sha, mean, std)
    partial = out.with_name(out.name + ".partial")
    partial.mkdir(exist_ok=True)
    for stale in partial.glob("*.tmp"):
        stale.unlink()
    work = collect_finished_work(videos, out, failures, reuse, partial, attrs)
    todo = videos[~videos.video_id.isin(work.done())]
    jpeg_on_device = device.type == "cuda"  # JPEG frame folders decoded on the GPU
    loading = sized_workers(todo, settings, model, device, jpeg_on_device, log=progress)
    items = decode_loader(todo, loading, device, jpeg_on_device)
    if jpeg_on_device:
        items = decode_on_device(items, device, crop_transform(settings))
    embedded = embed_videos(model, items, settings.batch_size, device, mean, std)
    buffered: list = []
    failed: list = []
    new = 0

    def flush() -> None:
        nonlocal new
        if buffered or failed:
            number = next_chunk_number(partial)
            chunk = write_chunk(partial, number, attrs, buffered, failed)
            work.add(chunk, [item[0] for item in buffered], list(failed))
            new += len(buffered)
            buffered.clear()
            failed.clear()

    for item, features in tqdm(
        embedded,
        total=len(videos),
        initial=len(videos) - len(todo),
        desc=f"extract {settings.backbone}",
        unit="video",
        disable=not progress,
    ):
        if item["error"] is not None:
            failed.append([item["video_id"], item["path"], item["error"]])
        else:
            buffered.append(
                (item["video_id"], features.astype(settings.dtype), item["label"], item["n_frames"])
            )
        if len(buffered) + len(failed) >= chunk_videos:
            flush()
    flush()
    finish_extraction(work, out, failures, attrs)
    shutil.rmtree(partial)
    return {"extracted": len(work.videos), "failed": len(work.failure_rows()), "new": new}
