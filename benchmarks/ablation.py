"""Table-4-style ablation of MOVE on synthetic long-tailed, class-separable frame features.

Rows (a)-(g) are the config switches of ``move.training.ABLATION_ROWS`` (no code edits): (a) frame-wise
classifier, (b) PSA only, (c) codebook only, (d) both aggregators (= Baseline + Agg), (e) + dynamic
extrapolation, (f) + calibrated interpolation only, (g) full MOVE. Each row is trained with several
seeds (data fixed, training seed varied) and the mean (± std) of the final-epoch metrics printed
as a markdown table.

    python benchmarks/ablation.py            # 7 rows x 3 seeds, a few minutes on one CPU thread
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from move.datasets.synthetic import SyntheticSpec, long_tailed_counts, make_synthetic_features
from move.training.loop import train
from move.training.settings import ABLATION_ROWS, TrainSettings

MARKS = {
    "a": ("", "", "", ""),
    "b": ("✓", "", "", ""),
    "c": ("", "✓", "", ""),
    "d": ("✓", "✓", "", ""),
    "e": ("✓", "✓", "✓", ""),
    "f": ("✓", "✓", "", "✓"),
    "g": ("✓", "✓", "✓", "✓"),
}
METRICS = ("mAP", "head_mAP", "medium_mAP", "tail_mAP", "top1", "top5")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--n-max", type=int, default=60, help="videos of the head class")
    parser.add_argument("--ir", type=float, default=0.02, help="imbalance ratio n_min / n_max")
    parser.add_argument("--test-per-class", type=int, default=15)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--foreground", type=float, default=0.8, help="share of class frames")
    parser.add_argument("--signal", type=float, default=0.6, help="class centre norm / noise")
    parser.add_argument("--video-noise", type=float, default=1.5, help="per-video offset std")
    parser.add_argument("--frame-noise", type=float, default=0.3, help="per-frame noise std")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rows", default="abcdefg")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra train setting for every row (JSON value), e.g. --set dfs_key_mask='\"none\"'",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    spec = SyntheticSpec(
        classes=args.classes,
        n_max=args.n_max,
        imbalance_ratio=args.ir,
        test_per_class=args.test_per_class,
        frames=args.frames,
        dim=args.dim,
        foreground=args.foreground,
        signal=args.signal,
        video_noise=args.video_noise,
        frame_noise=args.frame_noise,
        seed=args.data_seed,
    )
    counts = long_tailed_counts(args.classes, args.n_max, args.ir)
    head_min = int(np.percentile(counts, 70))
    tail_max = int(np.percentile(counts, 30))
    base = dict(
        epochs=args.epochs,
        batch_size=32,
        lr=1e-3,
        lr_milestones=[int(args.epochs * 0.7)],
        frames_train=args.frames,
        frames_test=args.frames,
        eval_every=args.epochs,
        feature_dim=args.dim,
        heads=4,
        d_k=16,
        d_v=16,
        clusters=8,
        codebook_dim=64,
        hidden_dim=128,
        device="cpu",
        num_workers=0,
    )
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            base[key] = json.loads(value)
        except json.JSONDecodeError:
            base[key] = value  # a bare string
    results: dict[str, list[dict]] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_synthetic_features(tmp / "f.h5", tmp / "split.csv", spec)
        for row in args.rows:
            for seed in range(args.seeds):
                settings = TrainSettings.from_dict({**base, **ABLATION_ROWS[row], "seed": seed})
                out = tmp / f"{row}_{seed}.json"
                run = train(
                    tmp / "f.h5", tmp / "split.csv", out, tmp / f"{row}_{seed}.pt",
                    settings, head_min, tail_max, progress=False,
                )  # fmt: skip
                results.setdefault(row, []).append(run["final"])
    elapsed = time.perf_counter() - started

    print(
        f"Synthetic long-tailed set: {args.classes} classes, IR {args.ir} (train counts "
        f"{counts[0]} -> {counts[-1]}, {sum(counts)} videos), {args.test_per_class} test videos "
        f"a class, {args.frames} frames x {args.dim} dims, foreground {args.foreground}, "
        f"signal {args.signal}, video noise {args.video_noise}, frame noise {args.frame_noise}; groups head >= {head_min}, tail <= {tail_max}; "
        f"{args.epochs} epochs, mean ± std over {args.seeds} training seeds; "
        f"{elapsed:.0f} s on {args.threads} thread(s).\n"
    )
    print("| row | S-A | C-A | Ex. | In. | All | Head | Medium | Tail | A@1 | A@5 |")
    print("|---|:-:|:-:|:-:|:-:|---:|---:|---:|---:|---:|---:|")
    for row, finals in results.items():
        cells = []
        for key in METRICS:
            values = np.array([f[key] for f in finals if f[key] is not None], dtype=float)
            cells.append(f"{values.mean():.3f} ± {values.std():.3f}" if len(values) else "-")
        print(f"| ({row}) | " + " | ".join(MARKS[row]) + " | " + " | ".join(cells) + " |")
    if "g" in results and "d" in results:
        tail = {r: np.mean([f["tail_mAP"] for f in results[r]]) for r in ("d", "g")}
        print(
            f"\nTail mAP, MOVE (g) vs. Baseline + Agg (d): {tail['g']:.3f} vs. {tail['d']:.3f} "
            f"({'MOVE higher' if tail['g'] > tail['d'] else 'MOVE NOT higher'})"
        )


if __name__ == "__main__":
    main()
