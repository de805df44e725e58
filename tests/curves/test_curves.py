import json
import shutil

import numpy as np
import pytest

from qhpo import QhpoError
from qhpo.curves import CurveFeaturizer, HyperparameterEncoder, read_curve_table


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


def _write_table(folder, rows, *, header=None, mode="min", name="t", bom=False):
    """A small table of 4 epochs: ``rows`` are lists of cells after the trial id."""
    header = header or ["trial", "lr", "opt", "epoch_1", "epoch_2", "epoch_3", "epoch_4"]
    lines = [",".join(header)] + [",".join([str(i)] + [str(c) for c in row]) for i, row in enumerate(rows)]
    csv = folder / f"{name}.csv"
    csv.write_bytes((b"\xef\xbb\xbf" if bom else b"") + ("\n".join(lines) + "\n").encode())
    epochs = sum(1 for h in header if h.startswith("epoch_"))
    csv.with_suffix(".json").write_text(
        json.dumps(
            {
                "metric": "loss",
                "mode": mode,
                "epochs": epochs,
                "trials": len(rows),
                "description": "test table",
                "source": "test",
                "license": "CC0",
            }
        )
    )
    return csv


GOOD = [[0.1, "adam", 2.0, 1.5, 1.2, 1.1], [0.01, "sgd", 2.5, 1e16, "", ""], [0.3, "adam", 2.2, 1.9, 1.8, ""]]


def test_diverged_and_categorical_table_is_read(tmp_path):
    table = read_curve_table(_write_table(tmp_path, GOOD))
    assert table.diverged.tolist() == [False, True, True]
    assert table.diverged_at.tolist() == [0, 3, 4]
    assert np.isnan(table.curves[1, 2:]).all() and table.curves[1, 1] == 1e16  # huge finite values are kept
    assert table.params["opt"].tolist() == ["adam", "sgd", "adam"] and table.categorical_names == ["opt"]
    assert table.params["lr"].dtype.kind == "f"
    # categories become 0/1 features; "sgd" is seen once and gets no column
    assert table.hyperparameter_matrix().tolist() == [[0.1, 1.0], [0.01, 0.0], [0.3, 1.0]]


def test_byte_order_mark_is_read(tmp_path):
    table = read_curve_table(_write_table(tmp_path, GOOD, bom=True))
    assert table.trial_ids.tolist() == [0, 1, 2] and table.hyperparameter_names == ["lr", "opt"]


@pytest.mark.parametrize(
    "row, fragment",
    [
        ([0.1, "adam", "", "", "", ""], "line 3: epoch_1 is empty"),
        ([0.1, "adam", 2.0, "", 1.2, ""], "line 3: epoch_2 is empty but epoch_3 holds a value"),
        ([0.1, "adam", 2.0, "n/a", "", ""], "line 3, column epoch_2: 'n/a' is not a number"),
        ([0.1, "adam", 2.0, "inf", "", ""], "not a finite number (leave the cells of a diverged run empty)"),
        (["", "adam", 2.0, 1.0, 1.0, 1.0], "line 3: the hyperparameter lr is empty"),
        (["nan", "adam", 2.0, 1.0, 1.0, 1.0], "line 3: the hyperparameter lr is 'nan', not a finite number"),
    ],
)
def test_bad_cells_are_refused_in_one_sentence(tmp_path, row, fragment):
    csv = _write_table(tmp_path, [GOOD[0], row])
    with pytest.raises(QhpoError) as info:
        read_curve_table(csv)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_two_columns_for_one_epoch_are_refused(tmp_path):
    header = ["trial", "lr", "opt", "epoch_1", "epoch_01", "epoch_2", "epoch_3"]
    with pytest.raises(QhpoError, match="columns epoch_1 and epoch_01 both name epoch 1"):
        read_curve_table(_write_table(tmp_path, GOOD, header=header))


@pytest.mark.parametrize("key, value", [("epochs", "two"), ("trials", None), ("epochs", 4.5)])
def test_sidecar_counts_must_be_whole_numbers(tmp_path, key, value):
    csv = _write_table(tmp_path, GOOD)
    meta = json.loads(csv.with_suffix(".json").read_text())
    csv.with_suffix(".json").write_text(json.dumps(dict(meta, **{key: value})))
    with pytest.raises(QhpoError, match=f"the sidecar's {key} must be a positive whole number"):
        read_curve_table(csv)


def test_every_shared_table_is_read(curves_dir):
    for path in sorted(curves_dir.glob("*.csv")):
        table = read_curve_table(path)
        assert table.n_trials == table.meta["trials"] and table.epochs == table.meta["epochs"]
        assert not np.isnan(table.curves[:, 0]).any()
    assert read_curve_table(curves_dir / "taskset_imdb_2.csv").diverged.sum() > 0
    assert read_curve_table(curves_dir / "baker_metaqnn_svhn.csv").categorical_names == ["net"]


def test_encoder_keeps_its_columns_for_unseen_levels():
    encoder = HyperparameterEncoder(min_count=1).fit([{"a": 1, "c": "x"}, {"a": 2, "c": "y"}])
    assert encoder.columns_ == ["a", "c=x", "c=y"]
    assert encoder.transform([{"a": 3, "c": "z"}]).tolist() == [[3.0, 0.0, 0.0]]
