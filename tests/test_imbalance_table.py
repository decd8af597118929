import json

import pytest

from move.errors import MoveError
from move.tables import imbalance_table


def write_result(path, method, aggregators, mAP, top1, ir=None):
    metrics = {"mAP": mAP, "top1": top1, "top5": 0.9, "head_mAP": 0.8, "medium_mAP": None,
               "tail_mAP": 0.2}  # fmt: skip
    path.write_text(
        json.dumps(
            {
                "final": metrics | {"epoch": 100},
                "best": metrics | {"epoch": 95},
                "settings": {"method": method, "aggregators": aggregators},
                "imbalance_ratio": ir,
            }
        )
    )
    return path


def test_imbalance_table_has_one_column_pair_per_ir_and_one_row_per_method(tmp_path):
    paths = [
        write_result(tmp_path / "a.json", "move", True, 0.57, 0.509, 0.01),
        write_result(tmp_path / "b.json", "move", True, 0.675, 0.636, 0.1),
        write_result(tmp_path / "c.json", "plain", False, 0.589, 0.573, 0.1),
    ]
    lines = imbalance_table(paths).splitlines()
    assert lines[0] == "| LT-Methods | Agg | IR 0.01 AP | IR 0.01 ACC | IR 0.1 AP | IR 0.1 ACC |"
    assert "| Baseline | ✗ | – | – | 0.589 | 0.573 |" in lines
    assert "| MOVE (ours) | ✓ | 0.570 | 0.509 | 0.675 | 0.636 |" in lines
    assert any(
        line.startswith("| MOVE (ours) | ✓ | 0.1 | 0.675 | 0.800 | – | 0.200") for line in lines
    )


def test_imbalance_table_needs_the_recorded_ir_not_the_file_name(tmp_path):
    named = write_result(tmp_path / "mk_ir0.05.json", "move", True, 0.5, 0.5)
    with pytest.raises(MoveError, match="records no imbalance_ratio"):
        imbalance_table([named])
