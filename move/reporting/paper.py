"""The paper's published numbers (MOVE, AAAI 2023, Tables 1-4), to set beside ours in tables.

Pure data, no torch. Keys: (dataset, backbone, method, aggregators, imbalance ratio or None);
values: the metrics the paper prints, under our metric names (``mAP``, ``head_mAP``,
``medium_mAP``, ``tail_mAP``, ``top1``, ``top5``). The paper reports the best test mAP over
epochs (the authors' ``ckpt.best``), so compare these with a run's ``best`` field. Methods use
the registry's names (``plain`` is the paper's "Baseline", ``move`` its "Ours").
"""

from __future__ import annotations

from move.training.methods import PAPER_ORDER

VIDEOLT_COLUMNS = ("mAP", "head_mAP", "medium_mAP", "tail_mAP", "top1", "top5")
MINIKINETICS_COLUMNS = ("mAP", "top1")  # Table 3 prints AP and ACC (top-1)
MINIKINETICS_RATIOS = (0.01, 0.02, 0.05, 0.1)

# Table 1: VideoLT, ImageNet ResNet-50 | ResNet-101; All H M T A@1 A@5 each.
_TABLE_1 = {
    ("plain", False): "0.499 0.675 0.553 0.376 0.650 0.828 0.516 0.687 0.568 0.396 0.663 0.837",
    ("ldam_drw", False): "0.502 0.680 0.557 0.378 0.656 0.811 0.518 0.687 0.572 0.397 0.664 0.820",
    ("eql", False): "0.502 0.679 0.557 0.378 0.653 0.829 0.518 0.690 0.571 0.398 0.664 0.838",
    ("cbs", False): "0.491 0.649 0.545 0.371 0.640 0.820 0.507 0.660 0.559 0.390 0.652 0.828",
    ("cb_loss", False): "0.495 0.653 0.546 0.381 0.643 0.823 0.511 0.665 0.561 0.398 0.656 0.832",
    ("mixup", False): "0.484 0.649 0.535 0.368 0.633 0.818 0.495 0.660 0.546 0.381 0.641 0.843",
    (
        "framestack",
        False,
    ): "0.516 0.683 0.569 0.397 0.658 0.834 0.532 0.695 0.584 0.417 0.667 0.843",
    ("plain", True): "0.676 0.793 0.717 0.585 0.702 0.861 0.690 0.806 0.730 0.601 0.715 0.869",
    ("ldam_drw", True): "0.658 0.778 0.701 0.565 0.697 0.847 0.672 0.786 0.713 0.581 0.709 0.856",
    ("eql", True): "0.676 0.794 0.717 0.585 0.704 0.862 0.690 0.805 0.729 0.602 0.714 0.870",
    ("cbs", True): "0.672 0.781 0.713 0.582 0.697 0.856 0.685 0.794 0.723 0.601 0.709 0.864",
    ("cb_loss", True): "0.681 0.784 0.717 0.601 0.695 0.847 0.693 0.793 0.728 0.616 0.705 0.854",
    ("mixup", True): "0.686 0.795 0.726 0.598 0.703 0.861 0.699 0.807 0.737 0.614 0.715 0.867",
    ("framestack", True): "0.680 0.792 0.720 0.593 0.708 0.865 0.693 0.802 0.730 0.611 0.718 0.872",
    ("move", True): "0.705 0.804 0.742 0.626 0.719 0.875 0.719 0.815 0.753 0.644 0.730 0.883",
}

# Table 2: VideoLT, Kinetics TSM-R50; All H M T A@1 A@5 ('-': not reported).
_TABLE_2 = {
    ("plain", False): "0.565 0.757 0.620 0.436 - -",
    ("framestack", False): "0.580 0.759 0.632 0.459 - -",
    ("plain", True): "0.680 0.825 0.727 0.575 0.714 0.873",
    ("ldam_drw", True): "0.667 0.807 0.712 0.566 0.708 0.863",
    ("eql", True): "0.680 0.825 0.727 0.575 0.713 0.874",
    ("cbs", True): "0.674 0.816 0.721 0.570 0.709 0.869",
    ("cb_loss", True): "0.681 0.818 0.724 0.584 0.706 0.862",
    ("mixup", True): "0.688 0.828 0.733 0.588 0.714 0.874",
    ("framestack", True): "0.688 0.825 0.732 0.590 0.716 0.879",
    ("move", True): "0.704 0.833 0.746 0.610 0.725 0.885",
}

# Table 3: Imbalanced-MiniKinetics200, ResNet-50 | ResNet-101; AP ACC at IR 0.01 0.02 0.05 0.1.
_TABLE_3 = {
    ("plain", False): "0.466 0.397 0.510 0.456 0.555 0.525 0.589 0.573 "
    "0.492 0.429 0.534 0.480 0.579 0.548 0.611 0.594",
    ("framestack", False): "0.477 0.410 0.518 0.465 0.560 0.531 0.594 0.579 "
    "0.504 0.438 0.543 0.490 0.581 0.557 0.615 0.596",
    ("plain", True): "0.559 0.490 0.595 0.531 0.633 0.591 0.662 0.623 "
    "0.581 0.511 0.619 0.562 0.658 0.611 0.686 0.640",
    ("cb_loss", True): "0.549 0.440 0.593 0.497 0.633 0.565 0.666 0.613 "
    "0.573 0.470 0.615 0.521 0.655 0.584 0.688 0.624",
    ("mixup", True): "0.570 0.488 0.608 0.533 0.643 0.588 0.672 0.626 "
    "0.592 0.499 0.629 0.547 0.666 0.602 0.694 0.637",
    ("framestack", True): "0.556 0.480 0.596 0.525 0.631 0.582 0.664 0.620 "
    "0.574 0.499 0.616 0.545 0.652 0.598 0.682 0.634",
    ("move", True): "0.570 0.509 0.609 0.553 0.646 0.604 0.675 0.636 "
    "0.593 0.528 0.632 0.577 0.667 0.626 0.697 0.655",
}

# Table 4: ablation on VideoLT, ResNet-101 features; All H M T A@1 A@5 per row. Rows are
# move.training.settings.ABLATION_ROWS: (a) no aggregators, (b) S-A only, (c) C-A only, (d) both,
# (e) + dynamic extrapolation (and the DFS), (f) + calibrated interpolation, (g) MOVE.
_TABLE_4 = {
    "a": "0.516 0.687 0.568 0.396 0.663 0.837",
    "b": "0.681 0.795 0.719 0.595 0.706 0.866",
    "c": "0.677 0.787 0.714 0.593 0.716 0.863",
    "d": "0.690 0.806 0.730 0.601 0.715 0.869",
    "e": "0.710 0.817 0.746 0.632 0.725 0.878",
    "f": "0.712 0.810 0.749 0.632 0.726 0.876",
    "g": "0.719 0.815 0.753 0.644 0.730 0.883",
}
ABLATION_DATASET, ABLATION_BACKBONE = "videolt", "resnet101"

# The rows of each benchmark's table in the paper's order, as table variants (move.training.methods):
# Table 3 has seven; Tables 1-2 every baseline without and with the aggregators, then MOVE.
TABLE_3_ROWS = (
    "plain",
    "framestack",
    "plain_agg",
    "cb_loss_agg",
    "mixup_agg",
    "framestack_agg",
    "move",
)
_BASELINES = tuple(name for name in PAPER_ORDER if name != "move")
TABLE_1_ROWS = (*_BASELINES, *(f"{name}_agg" for name in _BASELINES), "move")

Key = tuple[str, str, str, bool, float | None]
BACKBONE_ALIASES = {"tsm_r50": "tsm_resnet50"}  # VideoLT's folder name for its TSM features


def _numbers(text: str) -> list[float | None]:
    return [None if cell == "-" else float(cell) for cell in text.split()]


def _build() -> dict[Key, dict[str, float | None]]:
    table: dict[Key, dict[str, float | None]] = {}
    for (method, agg), text in _TABLE_1.items():
        values = _numbers(text)
        for i, backbone in enumerate(("resnet50", "resnet101")):
            row = values[6 * i : 6 * i + 6]
            table["videolt", backbone, method, agg, None] = dict(
                zip(VIDEOLT_COLUMNS, row, strict=True)
            )
    for (method, agg), text in _TABLE_2.items():
        table["videolt", "tsm_resnet50", method, agg, None] = dict(
            zip(VIDEOLT_COLUMNS, _numbers(text), strict=True)
        )
    for (method, agg), text in _TABLE_3.items():
        values = _numbers(text)
        for i, backbone in enumerate(("resnet50", "resnet101")):
            for j, ratio in enumerate(MINIKINETICS_RATIOS):
                pair = values[8 * i + 2 * j : 8 * i + 2 * j + 2]
                key = ("minikinetics", backbone, method, agg, ratio)
                table[key] = dict(zip(MINIKINETICS_COLUMNS, pair, strict=True))
    return table


PAPER_RESULTS = _build()
PAPER_ABLATION = {
    row: dict(zip(VIDEOLT_COLUMNS, _numbers(text), strict=True)) for row, text in _TABLE_4.items()
}


def paper_rows(dataset: str) -> tuple[str, ...]:
    """The variants the paper's table of a benchmark shows, in its order (Table 3 for a dataset
    with imbalance ratios, Tables 1-2 for VideoLT)."""
    return TABLE_1_ROWS if dataset == "videolt" else TABLE_3_ROWS


def paper_ablation(dataset: str, backbone: str, row: str) -> dict[str, float | None] | None:
    """Table 4's numbers for an ablation row, where the run is the paper's (VideoLT, ResNet-101)."""
    if (dataset, BACKBONE_ALIASES.get(backbone, backbone)) != (ABLATION_DATASET, ABLATION_BACKBONE):
        return None
    return PAPER_ABLATION.get(row)


def paper_result(
    dataset: str, backbone: str, method: str, aggregators: bool, ratio: float | None = None
) -> dict[str, float | None] | None:
    """The paper's metrics for a run like this one, or None where the paper has no such run.

    ``dataset`` is matched on its benchmark (``minikinetics`` for Imbalanced-MiniKinetics200,
    ``videolt``); the ratio only matters for MiniKinetics.
    """
    backbone = BACKBONE_ALIASES.get(backbone, backbone)
    if dataset != "minikinetics":
        ratio = None
    elif ratio is not None:
        ratio = round(float(ratio), 6)
    return PAPER_RESULTS.get((dataset, backbone, method, bool(aggregators), ratio))
