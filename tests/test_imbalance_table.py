import json

import pytest

from move.errors import MoveError
from move.reporting.paper import paper_result
from move.reporting.tables import imbalance_table, methods_table


def write_result(path, method, aggregators, mAP, top1, ir=None, dataset="mk", backbone="resnet50"):
    metrics = {"mAP": mAP, "top1": top1, "top5": 0.9, "head_mAP": 0.8, "medium_mAP": None,
               "tail_mAP": 0.2}  # fmt: skip
    best = metrics | {"mAP": mAP + 0.01, "top1": top1 + 0.02}
    path.write_text(
        json.dumps(
            {
                "final": metrics | {"epoch": 100},
                "best": best | {"epoch": 95},
                "settings": {"method": method, "aggregators": aggregators},
                "imbalance_ratio": ir,
                "dataset": dataset,
                "backbone": backbone,
            }
        )
    )
    return path


def test_imbalance_table_has_best_and_final_rows_per_method_and_a_pair_per_ir(tmp_path):
    paths = [
        write_result(tmp_path / "a.json", "move", True, 0.57, 0.509, 0.01),
        write_result(tmp_path / "b.json", "move", True, 0.675, 0.636, 0.1),
        write_result(tmp_path / "c.json", "plain", False, 0.589, 0.573, 0.1),
    ]
    lines = imbalance_table(paths).splitlines()
    header = "| LT-Methods | Agg | Backbone | mAP of | IR 0.01 AP | IR 0.01 ACC | IR 0.1 AP | IR 0.1 ACC |"
    assert header in lines
    assert "| Baseline | ✗ | resnet50 | final | – | – | 0.589 | 0.573 |" in lines
    assert "| Baseline | ✗ | resnet50 | best | – | – | 0.599 | 0.593 |" in lines
    assert "| MOVE (ours) | ✓ | resnet50 | final | 0.570 | 0.509 | 0.675 | 0.636 |" in lines
    assert "| MOVE (ours) | ✓ | resnet50 | best | 0.580 | 0.529 | 0.685 | 0.656 |" in lines
    assert not any("| paper |" in line for line in lines)  # dataset 'mk' is not the paper's
    assert any(
        line.startswith("| MOVE (ours) | ✓ | resnet50 | 0.1 | 0.675 | 0.800 | – | 0.200")
        for line in lines
    )


def test_minikinetics_runs_show_the_papers_numbers_beside_best_and_final(tmp_path):
    paths = [
        write_result(tmp_path / f"{ir}.json", "move", True, 0.5, 0.4, ir, "minikinetics")
        for ir in (0.01, 0.05)
    ]
    paths.append(write_result(tmp_path / "r101.json", "move", True, 0.5, 0.4, 0.01,
                              "minikinetics", "resnet101"))  # fmt: skip
    lines = imbalance_table(paths).splitlines()
    # Table 3, ResNet-50 and ResNet-101 MOVE rows (SPEC.md): 0.570/0.509 at 0.01, 0.646/0.604 at 0.05
    assert "| MOVE (ours) | ✓ | resnet50 | paper | 0.570 | 0.509 | 0.646 | 0.604 |" in lines
    assert "| MOVE (ours) | ✓ | resnet101 | paper | 0.593 | 0.528 | – | – |" in lines
    rows = [
        line.split(" | ")[3] for line in lines if line.startswith("| MOVE (ours) | ✓ | resnet50 |")
    ]
    assert rows[:3] == ["paper", "best", "final"]


def test_two_runs_of_one_method_at_one_ratio_are_refused_naming_both(tmp_path):
    first = write_result(tmp_path / "a.json", "move", True, 0.5, 0.4, 0.01)
    second = write_result(tmp_path / "b.json", "move", True, 0.6, 0.5, 0.01)
    with pytest.raises(MoveError, match=r"a\.json and .*b\.json are both MOVE"):
        imbalance_table([first, second])


def test_runs_of_different_datasets_are_refused(tmp_path):
    first = write_result(tmp_path / "a.json", "move", True, 0.5, 0.4, 0.01, "one")
    second = write_result(tmp_path / "b.json", "plain", False, 0.6, 0.5, 0.01, "two")
    with pytest.raises(MoveError, match="different datasets"):
        imbalance_table([first, second])


def test_methods_table_sets_the_papers_map_beside_ours(tmp_path):
    move = write_result(tmp_path / "m.json", "move", True, 0.5, 0.4, 0.01, "minikinetics")
    plain = write_result(tmp_path / "p.json", "ldam_drw", True, 0.5, 0.4, 0.01, "minikinetics")
    table = methods_table({"move": move, "ldam_drw_agg": plain})
    assert table.paper_mAP.tolist()[0] == pytest.approx(0.570)
    assert table.paper_mAP.isna().tolist()[1]  # Table 3 has no LDAM-DRW row


def test_paper_numbers_are_tables_1_to_3_of_the_paper():
    assert paper_result("videolt", "resnet50", "move", True)["tail_mAP"] == 0.626
    assert paper_result("videolt", "resnet101", "plain", False)["mAP"] == 0.516
    assert paper_result("videolt", "tsm_r50", "framestack", True)["top5"] == 0.879
    assert paper_result("minikinetics", "resnet50", "plain", True, 0.1) == {
        "mAP": 0.662,
        "top1": 0.623,
    }
    assert paper_result("minikinetics", "resnet50", "move", True, 0.3) is None


def test_imbalance_table_needs_the_recorded_ir_not_the_file_name(tmp_path):
    named = write_result(tmp_path / "mk_ir0.05.json", "move", True, 0.5, 0.5)
    with pytest.raises(MoveError, match="records no imbalance_ratio"):
        imbalance_table([named])


def test_a_small_multi_ir_run_shows_paper_best_and_final_side_by_side(tmp_path):
    """Two real tiny runs (IR 0.01 and 0.1) on features that say they are ResNet-50's."""
    import h5py

    from move.cli import main
    from move.datasets.synthetic import SyntheticSpec, make_synthetic_features

    settings = {
        "epochs": 2, "batch_size": 8, "frames_train": 4, "frames_test": 4, "eval_every": 1,
        "heads": 2, "d_k": 4, "d_v": 4, "clusters": 3, "codebook_dim": 8, "hidden_dim": 16,
        "device": "cpu", "num_workers": 0,
    }  # fmt: skip
    results = []
    for ratio in (0.01, 0.1):
        spec = SyntheticSpec(classes=4, n_max=12, imbalance_ratio=ratio, frames=4, dim=16)
        features, split = tmp_path / f"f{ratio}.h5", tmp_path / f"s{ratio}.csv"
        make_synthetic_features(features, split, spec)
        with h5py.File(features, "a") as handle:
            handle.attrs["backbone"] = "resnet50"
        out = tmp_path / f"minikinetics_ir{ratio}.json"
        code = main(
            ["train", "--features", str(features), "--split", str(split), "--out", str(out),
             "--settings", json.dumps(settings), "--head-min", "8", "--tail-max", "2",
             "--dataset", "minikinetics", "--imbalance-ratio", str(ratio), "--quiet"]
        )  # fmt: skip
        assert code == 0
        results.append(json.loads(out.read_text()))
    table = tmp_path / "minikinetics_all.md"
    assert main(["imbalance-table", *map(str, tmp_path.glob("*.json")), "--out", str(table)]) == 0
    lines = table.read_text().splitlines()
    prefix = "| MOVE (ours) | ✓ | resnet50 |"
    rows = {line.split(" | ")[3]: line for line in lines if line.startswith(prefix)}
    assert rows["paper"] == f"{prefix} paper | 0.570 | 0.509 | 0.675 | 0.636 |"
    for protocol in ("best", "final"):
        cells = [f"{r[protocol][k]:.3f}" for r in results for k in ("mAP", "top1")]
        assert rows[protocol] == f"{prefix} {protocol} | " + " | ".join(cells) + " |"
    assert results[0]["backbone"] == "resnet50" and results[0]["dataset"] == "minikinetics"
