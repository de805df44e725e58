"""The curve tables shipped inside the package: listed, attributed, packaged and accepted by name."""

from __future__ import annotations

import fnmatch
import json
import sys
from pathlib import Path

import pytest

from qhpo import QhpoError
from qhpo.cli import main
from qhpo.curves import (
    builtin_table_names,
    builtin_table_paths,
    builtin_tables,
    builtin_tables_folder,
    read_curve_table,
    resolve_curve_table,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
EXPECTED = {
    "cifar10_cnn",
    "baker_lstm_ptb",
    "baker_resnet_cifar10",
    "baker_metaqnn_svhn",
    "taskset_imdb_1",
    "taskset_imdb_2",
    "taskset_imdb_3",
}


def test_every_recorded_table_ships_with_its_sidecar():
    assert set(builtin_table_names()) == EXPECTED
    for path in builtin_table_paths():
        assert path.is_file() and path.with_suffix(".json").is_file()
        assert path.parent == builtin_tables_folder()


def test_listing_reads_the_sidecars():
    by_name = {table.name: table for table in builtin_tables()}
    cnn = by_name["cifar10_cnn"]
    assert (cnn.trials, cnn.epochs, cnn.metric, cnn.mode, cnn.license) == (167, 200, "accuracy", "max", "Apache-2.0")
    assert "erwulff/performance-pred" in cnn.source
    lstm = by_name["baker_lstm_ptb"]
    assert (lstm.trials, lstm.epochs, lstm.mode, lstm.license) == (280, 60, "min", "MIT")
    assert lstm.workload.startswith("LSTM language models on Penn Treebank")


def test_notice_names_every_table_its_source_and_a_licence_text():
    folder = builtin_tables_folder()
    notice = (folder / "NOTICE").read_text(encoding="utf-8")
    licence_texts = {"MIT": folder / "LICENSE-MIT-accelerating_nas", "Apache-2.0": folder / "LICENSE-Apache-2.0"}
    for table in builtin_tables():
        assert f"{table.name}.csv" in notice
        repository = table.source.split("github.com/")[-1].split(" ")[0].split(",")[0]
        assert repository in notice
        assert licence_texts[table.license].is_file()
    assert "Permission is hereby granted" in licence_texts["MIT"].read_text(encoding="utf-8")
    assert "Apache License" in licence_texts["Apache-2.0"].read_text(encoding="utf-8")


def test_package_data_globs_cover_every_shipped_file():
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    globs = config["tool"]["setuptools"]["package-data"]["qhpo"]
    package = REPO / "src" / "qhpo"
    for path in (package / "data" / "curves").iterdir():
        relative = path.relative_to(package).as_posix()
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in globs), relative


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_built_in_tables_read_with_the_sidecar_counts(name):
    table = read_curve_table(resolve_curve_table(name))
    meta = json.loads(resolve_curve_table(name).with_suffix(".json").read_text(encoding="utf-8"))
    assert (table.name, table.n_trials, table.epochs, table.mode) == (
        name,
        meta["trials"],
        meta["epochs"],
        meta["mode"],
    )


def test_an_existing_path_wins_over_a_built_in_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_curve_table("cifar10_cnn") == builtin_tables_folder() / "cifar10_cnn.csv"
    (tmp_path / "cifar10_cnn").write_text("trial,epoch_1\n0,0.5\n")
    assert resolve_curve_table("cifar10_cnn").resolve() == tmp_path / "cifar10_cnn"


def test_unknown_name_is_one_sentence_naming_the_list():
    with pytest.raises(QhpoError, match="qhpo bench --list") as error:
        resolve_curve_table("cifar100_cnn")
    assert "cifar100_cnn" in str(error.value) and "\n" not in str(error.value)


def test_bench_list_names_every_table_with_its_source(capsys):
    assert main(["bench", "--list"]) == 0
    out = capsys.readouterr().out
    for table in builtin_tables():
        assert table.name in out and table.source in out
    assert "NOTICE" in out


def test_bench_and_predict_take_a_built_in_name(tmp_path, capsys):
    out_json = tmp_path / "bench.json"
    assert (
        main(
            [
                "bench",
                "--curves",
                "cifar10_cnn",
                "--policies",
                "none,median",
                "--predictor",
                "svr",
                "--trials",
                "10",
                "--seeds",
                "1",
                "--jobs",
                "1",
                "--json",
                str(out_json),
            ]
        )
        == 0
    )
    result = json.loads(out_json.read_text())
    assert (result["table"], result["trials"]) == ("cifar10_cnn", 10)
    capsys.readouterr()
    assert main(["predict", "--curves", "baker_lstm_ptb", "--model", "svr", "--splits", "1", "--at", "0.5"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["curves"] == "baker_lstm_ptb" and printed["test"] == 280 - 20 and len(printed["r2"]) == 1


def test_bench_without_curves_or_list_is_one_sentence(capsys):
    assert main(["bench"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("qhpo: error: --curves") and err.count("\n") == 1
