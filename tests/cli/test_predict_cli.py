"""`qhpo predict` on the recorded CIFAR-10 curves, through the real command-line entry point."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from qhpo.cli import main


def test_predict_writes_and_prints_the_metrics(curve_table_path, tmp_path, capsys):
    out = tmp_path / "svr.json"
    code = main(
        [
            "predict",
            "--curves",
            str(curve_table_path),
            "--at",
            "0.25",
            "--model",
            "svr",
            "--train",
            "20",
            "--splits",
            "3",
            "--seed",
            "1",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    written = json.loads(out.read_text())
    printed = json.loads(capsys.readouterr().out)
    assert written == printed
    for key in ("r2_median", "spearman_median", "mae_median", "fit_seconds_median"):
        assert key in written
    assert written["t"] == 50 and written["test"] == 167 - 20 and len(written["spearman"]) == 3
    assert written["spearman_median"] > 0.8 and 0 < written["mae_median"] < 0.1


def test_predict_qsvr_with_features_and_a_sampler(curve_table_path, capsys):
    code = main(
        [
            "predict",
            "--curves",
            str(curve_table_path),
            "--at",
            "0.1",
            "--model",
            "qsvr",
            "--sampler",
            "steepest",
            "--num-reads",
            "20",
            "--train",
            "30",
            "--splits",
            "2",
            "--differences",
            "--hyperparameters",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == "qsvr" and result["sampler"] == "steepest" and result["t"] == 20
    assert result["spearman_median"] > 0.5


def test_same_seed_gives_the_same_splits(curve_table_path, capsys):
    args = ["predict", "--curves", str(curve_table_path), "--splits", "2", "--seed", "4"]
    main(args)
    first = json.loads(capsys.readouterr().out)
    main(args)
    assert json.loads(capsys.readouterr().out)["r2"] == first["r2"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--at", "1.5"], "--at must be a fraction"),
        (["--train", "170"], "--train must leave at least 2 trials"),
        (["--splits", "0"], "--splits must be at least 1"),
        (["--json", "/nonexistent-folder/x.json"], "does not exist"),
        (["--json", "/proc/qhpo-result.json"], "cannot write /proc/qhpo-result.json"),  # a folder nobody writes in
        (["--seed", "-1"], "--seed must be a whole number of 0 or more"),
    ],
)
def test_bad_arguments_give_one_sentence(curve_table_path, capsys, extra, message):
    assert main(["predict", "--curves", str(curve_table_path), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_malformed_table_is_named(tmp_path, curve_table_path, capsys):
    bad = tmp_path / "bad.csv"
    shutil.copy(curve_table_path, bad)
    assert main(["predict", "--curves", str(bad)]) == 2  # no sidecar beside the copy
    assert "sidecar" in capsys.readouterr().err


@pytest.mark.slow
def test_qpu_without_token_is_one_sentence_from_the_installed_command(curve_table_path, tmp_path):
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "qhpo",
            "predict",
            "--curves",
            str(curve_table_path),
            "--model",
            "qsvr",
            "--sampler",
            "dwave",
            "--splits",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("qhpo: error:") and "token" in proc.stderr and "Traceback" not in proc.stderr
