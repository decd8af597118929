"""The authors' MiniKinetics200 features as an input: one ``<video_id>.npy`` array ``[150, 2048]``
(float32) per video under ``<root>/<ResNet50|ResNet101>/{train,val}/``, converted once into move's
HDF5 (``features/<dataset>/<backbone>.h5`` + ``.failures.csv``), after which the missing-videos
check, split, training and tables run without any video.

The conversion is VideoLT's (``move.datasets.videolt.conversion.write_npy_features``): resumable from
``<out>.tmp``, widths checked from the headers before any copy, bad arrays logged as failures.
Labels come from the dataset's annotations (the lists joined with the Kinetics CSVs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from move.datasets.videolt.conversion import check_widths, index_feature_files, write_npy_features
from move.errors import MoveError
from move.files import write_csv_atomic

AUTHORS_WEIGHTS = "authors-features"  # the `weights` attribute of a converted file
FEATURE_WIDTH = 2048  # ResNet-50's and ResNet-101's penultimate layer, the authors' arrays


def config_key(out: Path, backbone: str) -> str:
    """The config key of the folder converted into ``out`` (``features/<d>/<backbone>.h5``)."""
    dataset = out.parent.name if out.parent.name else "<dataset>"
    return f"datasets.{dataset}.features.{backbone}"


def check_shapes(paths: list[Path], backbone: str, key: str, progress: bool) -> None:
    """Refuse arrays that cannot be ``backbone``'s features ``[frames, 2048]``, from their
    headers, before any copy: one saved channels first (``[2048, frames]``) or of another width
    stops in one line naming the file and the fix; arrays of two widths stop as VideoLT's do."""
    check_widths(paths, progress, key)
    for path in paths:
        try:
            shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
        except (OSError, ValueError, EOFError):
            continue  # unreadable: that video's logged failure
        if len(shape) == 2 and shape[0] == FEATURE_WIDTH and shape[1] != FEATURE_WIDTH:
            raise MoveError(
                f"feature array {path} is {list(shape)}, features by frames (channels first): "
                f"save the arrays as [frames, {FEATURE_WIDTH}] (np.save(path, array.T))"
            )
        if len(shape) in (1, 2) and shape[-1] != FEATURE_WIDTH:
            raise MoveError(
                f"feature array {path} is {list(shape)}: {shape[-1]} features a frame, not "
                f"{backbone}'s {FEATURE_WIDTH}: point '{key}' at {backbone}'s arrays "
                f"[frames, {FEATURE_WIDTH}]"
            )


def convert_npy_features(
    features_dir: str | Path,
    annotations: pd.DataFrame,
    out: str | Path,
    backbone: str,
    dtype: str = "float16",
    progress: bool = True,
) -> dict:
    """Convert the ``.npy`` arrays of the annotated videos (``video_id``, ``label``) found under
    ``features_dir`` into ``out``; the annotated videos without an array (or with a bad one) go
    to ``<out>.failures.csv`` with the reason, as extraction's failures do (the missing-videos
    check then applies ``max_missing_share``). Returns converted/missing counts."""
    out = Path(out)
    key = config_key(out, backbone)
    files = index_feature_files(features_dir, key, unique=True)
    if not files:
        raise MoveError(
            f"no .npy feature files under {features_dir}: point the config at the folder of one "
            "backbone's arrays (e.g. <root>/ResNet50)"
        )
    listed = annotations.drop_duplicates("video_id")
    present = listed[listed.video_id.isin(files)].reset_index(drop=True)
    if present.empty:
        example = next(iter(files))
        raise MoveError(
            f"none of the {len(files)} arrays under {features_dir} (e.g. {example}.npy) is an "
            "annotated video: check the folder and the dataset's lists"
        )
    labels = list(present.label.astype(str))
    source = f"npy features {Path(features_dir)}"
    check_shapes([files[v] for v in present.video_id], backbone, key, progress)
    failed = write_npy_features(
        present, files, labels, out, backbone, AUTHORS_WEIGHTS, source, dtype, progress, key
    )
    absent = listed[~listed.video_id.isin(files)]
    rows = [(video_id, "", "no feature file") for video_id in absent.video_id] + failed
    failures = pd.DataFrame(rows, columns=["video_id", "path", "reason"]).sort_values("video_id")
    write_csv_atomic(failures, out.with_name(out.name.removesuffix(".h5") + ".failures.csv"))
    return {"converted": len(present) - len(failed), "missing": len(rows)}
