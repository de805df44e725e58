import json
import shutil

import numpy as np
import pytest

from qhpo import QhpoError
from qhpo.curves import CurveFeaturizer, read_curve_table


def test_reads_recorded_table(curve_table_path):
    table = read_curve_table(curve_table_path)
    assert table.n_trials == 167 and table.epochs == 200
    assert table.mode == "max" and table.metric == "accuracy"
    assert table.hyperparameter_names == ["num_layers", "num_filters", "batch_size", "learning_rate", "momentum"]
    assert table.params["num_layers"].dtype.kind == "i"
    assert np.all((table.curves >= 0) & (table.curves <= 1))
    assert table.take([3, 1]).trial_ids.tolist() == table.trial_ids[[3, 1]].tolist()
    assert table.truncate(50).curves.shape == (167, 50)


def _copy(tmp_path, curve_table_path):
    csv = tmp_path / "t.csv"
    shutil.copy(curve_table_path, csv)
    shutil.copy(curve_table_path.with_suffix(".json"), tmp_path / "t.json")
    return csv


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (lambda c, j: c.write_text(c.read_text().replace("epoch_7,", "epoch_x,", 1)), "epoch_7 is missing"),
        (lambda c, j: c.write_text(c.read_text().replace(",0.1679,", ",abc,", 1)), "is not a number"),
        (lambda c, j: c.write_text(c.read_text().replace(",0.1679,", ",nan,", 1)), "not a finite number"),
        (lambda c, j: j.unlink(), "sidecar t.json is missing"),
        (lambda c, j: j.write_text(json.dumps({"metric": "a"})), "lacks the key(s)"),
        (lambda c, j: j.write_text(j.read_text().replace('"max"', '"up"')), "mode must be"),
        (lambda c, j: c.write_text("\n".join(c.read_text().splitlines()[:-1]) + "\n"), "says 167 trials"),
        (lambda c, j: c.write_text(c.read_text() + "1,2,3\n"), "cells"),
        (lambda c, j: c.write_bytes(b"\xff\xfe\x00garbage"), "CSV"),
    ],
)
def test_malformed_tables_give_one_sentence(tmp_path, curve_table_path, mutate, fragment):
    csv = _copy(tmp_path, curve_table_path)
    mutate(csv, tmp_path / "t.json")
    with pytest.raises(QhpoError) as info:
        read_curve_table(csv)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_table(tmp_path):
    with pytest.raises(QhpoError, match="does not exist"):
        read_curve_table(tmp_path / "nope.csv")


def test_featurizer_scales_and_logs(curve_table_path):
    table = read_curve_table(curve_table_path)
    f = CurveFeaturizer(10, differences=True, hyperparameters=True)
    X = f.fit_transform(table.curves, table.numeric_params())
    assert X.shape == (167, 10 + 9 + 8 + 5)
    assert np.allclose(X.min(axis=0), 0) and np.allclose(X.max(axis=0), 1)
    # learning_rate and momentum span decades and are log-scaled; num_layers is not
    assert f.log_columns_.tolist() == [False, False, False, True, True]
    with pytest.raises(ValueError, match="needs 10"):
        f.transform(table.curves[:, :5], table.numeric_params())
