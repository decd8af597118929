import json

import pytest

from move.errors import MoveError
from move.tables import imbalance_table


def write_result(path, method, aggregators, mAP, top1):
    metrics = {"mAP": mAP, "top1": top1, "top5": 0.9, "head_mAP": 0.8, "medium_mAP": None,
               "tail_mAP": 0.2}  # fmt: skip
    path.write_text(
        json.dumps(
            {
                "final": metrics | {"epoch": 100},
                "best": metrics | {"epoch": 95},
                "settings": {"method": method, "model": {"aggregators": aggregators}},
            }
        )
    )
    return path


def test_imbalance_table_has_one_column_pair_per_ir_and_one_row_per_method(tmp_path):
    paths = [
        write_result(tmp_path / "mk_ir0.01.json", "move", True, 0.57, 0.509),
        write_result(tmp_path / "mk_ir0.1.json", "move", True, 0.675, 0.636),
        write_result(tmp_path / "base_ir0.1.json", "plain", False, 0.589, 0.573),
    ]
    lines = imbalance_table(paths).splitlines()
    assert lines[0] == "| LT-Methods | Agg | IR 0.01 AP | IR 0.01 ACC | IR 0.1 AP | IR 0.1 ACC |"
    assert "| Baseline | ✗ | – | – | 0.589 | 0.573 |" in lines
    assert "| MOVE (ours) | ✓ | 0.570 | 0.509 | 0.675 | 0.636 |" in lines
    assert any(
        line.startswith("| MOVE (ours) | ✓ | 0.1 | 0.675 | 0.800 | – | 0.200") for line in lines
    )


def test_imbalance_table_needs_ir_in_file_name(tmp_path):
    with pytest.raises(MoveError, match="_ir<IR>.json"):
        imbalance_table([write_result(tmp_path / "x.json", "move", True, 0.5, 0.5)])
