"""Diverged and categorical tables in the replay, and ``qhpo bench --suite``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qhpo.cli import main
from qhpo.curves import read_curve_table
from qhpo.replay import OptunaPrunerAgent, draw_order, optuna_pruner, run_benchmark, simulate, table_spread

RULES = "none,median,sha,hyperband,poster,swift-hyperband,qhpo"


def write_table(folder, name, *, n=40, epochs=12, mode="min", diverge=(), categorical=False, seed=0):
    """A loss-like table; rows in ``diverge`` turn NaN from epoch 5 on."""
    rng = np.random.default_rng(seed)
    t = np.arange(1, epochs + 1)
    curves = 0.3 + rng.uniform(0.2, 1.5, (n, 1)) * np.exp(-t / rng.uniform(2, 6, (n, 1)))
    if mode == "max":
        curves = 1.0 - curves
    header = ["trial", "lr"] + (["arch"] if categorical else []) + [f"epoch_{e}" for e in t]
    lines = [",".join(header)]
    for i in range(n):
        cells = [f"{v:.6g}" for v in curves[i]]
        if i in diverge:
            cells[3] = "1e16"  # a huge finite value just before the divergence
            cells[4:] = [""] * (epochs - 4)
        arch = [["conv-small", "conv-big", "mlp"][i % 3]] if categorical else []
        lines.append(",".join([str(i), f"{rng.uniform(1e-4, 1e-1):.6g}"] + arch + cells))
    path = folder / f"{name}.csv"
    path.write_text("\n".join(lines) + "\n")
    path.with_suffix(".json").write_text(
        json.dumps(
            {
                "metric": "loss" if mode == "min" else "accuracy",
                "mode": mode,
                "epochs": epochs,
                "trials": n,
                "description": "synthetic",
                "source": "test",
                "license": "CC0",
            }
        )
    )
    return path


def test_every_rule_ends_a_diverged_trial_at_its_first_nan(tmp_path):
    diverge = (1, 4, 7, 15, 22)
    table = read_curve_table(write_table(tmp_path, "div", diverge=diverge, categorical=True))
    result = run_benchmark(table, policies=RULES.split(","), predictor="svr", trials=40, seeds=1, first_seed=3)
    rows = result["example"]["rows"]
    diverged = [k for k, row in enumerate(rows) if row in diverge]
    for name in RULES.split(","):
        trained = np.array(result["example"]["epochs_trained"][name])
        complete = np.array(result["example"]["complete"][name])
        assert not complete[diverged].any(), name
        assert (trained[diverged] <= 5).all(), name  # never past the first NaN epoch
        assert result["policies"][name]["regret_mean"] >= 0
    # without stopping, a diverged trial pays for the epochs up to and including its first NaN
    assert (np.array(result["example"]["epochs_trained"]["none"])[diverged] == 5).all()
    assert result["policies"]["none"]["regret_max"] == 0.0


def test_optuna_is_told_that_a_diverged_trial_failed(tmp_path):
    table = read_curve_table(write_table(tmp_path, "div", diverge=(0, 3)))
    agent = OptunaPrunerAgent(optuna_pruner("sha", table.epochs), table.mode, table.epochs, seed=0)
    out = simulate(table.curves, agent)
    states = [t.state.name for t in agent.study.trials]
    assert states[0] == states[3] == "FAIL" and states.count("FAIL") == 2
    assert out.epochs_trained[0] == out.epochs_trained[3] == 5


def test_regret_counts_only_finite_finals_and_spread_is_best_minus_median(tmp_path):
    table = read_curve_table(write_table(tmp_path, "div", diverge=(2,), mode="max"))
    finals = table.final_values[~table.diverged]
    assert table_spread(table) == pytest.approx(finals.max() - np.median(finals))
    result = run_benchmark(table, policies=("none", "sha"), trials=40, seeds=2)
    assert result["policies"]["none"]["regret_max"] == 0.0
    sha = result["policies"]["sha"]
    assert sha["regret_normalised_mean"] == pytest.approx(sha["regret_mean"] / result["spread"], rel=1e-6)


def test_real_diverged_and_categorical_tables_replay(curves_dir):
    for stem in ("taskset_imdb_2", "baker_metaqnn_svhn"):
        table = read_curve_table(curves_dir / f"{stem}.csv")
        result = run_benchmark(
            table, policies=("none", "median", "qhpo"), predictor="svr", trials=60, seeds=1, first_seed=1
        )
        drawn = table.take(draw_order(table.n_trials, 60, 1))
        trained = np.array(result["example"]["epochs_trained"]["none"])
        expected = np.where(drawn.diverged, drawn.diverged_at, table.epochs)
        assert trained.tolist() == expected.tolist()
        assert 0 < result["policies"]["qhpo"]["cost_fraction_mean"] < 1


def test_decisions_are_deterministic_for_a_seed(tmp_path):
    table = read_curve_table(write_table(tmp_path, "div", diverge=(5,), categorical=True))
    runs = [
        run_benchmark(
            table, policies=("median", "swift-hyperband", "qhpo"), predictor="svr", trials=30, seeds=2, first_seed=7
        )
        for _ in range(2)
    ]
    assert runs[0]["example"] == runs[1]["example"]
    for name in ("median", "swift-hyperband", "qhpo"):
        a, b = runs[0]["policies"][name], runs[1]["policies"][name]
        assert {k: v for k, v in a.items() if "seconds" not in k} == {k: v for k, v in b.items() if "seconds" not in k}


def test_suite_command_writes_one_json_and_one_figure(tmp_path, capsys):
    folder = tmp_path / "tables"
    folder.mkdir()
    write_table(folder, "losses", diverge=(3, 9), categorical=True)
    write_table(folder, "accuracies", mode="max", seed=1)
    out_json, out_png = tmp_path / "suite.json", tmp_path / "suite.png"
    code = main(
        [
            "bench",
            "--suite",
            str(folder),
            "--policies",
            "none,median,sha,hyperband,qhpo,qhpo-stop",
            "--predictor",
            "svr",
            "--trials",
            "30",
            "--seeds",
            "2",
            "--sweep-seeds",
            "1",
            "--jobs",
            "2",
            "--json",
            str(out_json),
            "--plot",
            str(out_png),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "losses" in printed and "accuracies" in printed and "suite wall time" in printed
    assert "pass" not in printed and "target" not in printed  # the acceptance target is the benchmark layer's
    text = out_json.read_text()
    assert "NaN" not in text and "Infinity" not in text
    result = json.loads(text)
    assert (result["suite"], result["trials"], result["seeds"]) == (str(folder), 30, 2)
    assert sorted(result["tables"]) == ["accuracies", "losses"]
    for stem, table in result["tables"].items():
        assert table["table"] == stem
        assert list(table["policies"]) == ["none", "median", "sha", "hyperband", "qhpo", "qhpo-stop"]
        assert table["policies"]["qhpo-stop"]["resumed_mean"] == 0 == table["policies"]["sha"]["resumed_mean"]
        assert 0 <= table["policies"]["qhpo"]["winner_resumed_rate"] <= 1
        assert table["spread"] > 0 and "verdict" not in table
        assert [p["value"] for p in table["sweeps"]["lines"]["sha"]] == [2, 3, 4]
    rules = result["summary"]["rules"]
    assert rules["none"]["regret_normalised_mean"] == 0.0 and rules["none"]["tables"] == 2
    assert rules["qhpo"]["resumed_mean"] == np.mean(
        [t["policies"]["qhpo"]["resumed_mean"] for t in result["tables"].values()]
    )
    assert "winner_resumed_rate" in rules["qhpo-stop"]
    assert result["tables"]["accuracies"]["policies"]["none"]["cost_fraction_mean"] == 1.0
    # the two diverged rows of "losses" stop paying after their fifth epoch
    assert result["tables"]["losses"]["policies"]["none"]["cost_fraction_mean"] < 1.0
    assert "median" in result["summary"]["spread"]
    assert set(result["summary"]) == {"spread", "rules"}
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the suite replays each table exactly as --curves does
    single = tmp_path / "single.json"
    assert (
        main(
            [
                "bench",
                "--curves",
                str(folder / "losses.csv"),
                "--policies",
                "none,median,sha,hyperband,qhpo,qhpo-stop",
                "--predictor",
                "svr",
                "--trials",
                "30",
                "--seeds",
                "2",
                "--sweep-seeds",
                "1",
                "--jobs",
                "1",
                "--json",
                str(single),
            ]
        )
        == 0
    )
    alone = json.loads(single.read_text())
    assert alone["policies"]["qhpo"]["regret_mean"] == result["tables"]["losses"]["policies"]["qhpo"]["regret_mean"]
    assert alone["example"] == result["tables"]["losses"]["example"]


def test_freeze_thaw_fields_on_a_table_whose_answer_is_known(tmp_path):
    """Row 1 starts slowly (ranks second of two at the first rung, so qhpo pauses it), then
    becomes the best of all; rows 2 and 3 are bad, and once they reach the rung row 1 ranks
    within the best two of four: qhpo resumes it, and it is the trial the search returns.
    (Each arrival is ranked at once, ``quorum=0``: the rungs' wait for their quorum has its
    own tests.)"""
    epochs = 20
    curves = [np.full(epochs, 0.9), np.r_[0.5, np.full(epochs - 1, 0.95)], np.full(epochs, 0.1), np.full(epochs, 0.1)]
    lines = ["trial,lr," + ",".join(f"epoch_{e}" for e in range(1, epochs + 1))]
    lines += [f"{i},{0.1 * (i + 1)}," + ",".join(f"{v:g}" for v in c) for i, c in enumerate(curves)]
    path = tmp_path / "known.csv"
    path.write_text("\n".join(lines) + "\n")
    meta = {"metric": "accuracy", "mode": "max", "epochs": epochs, "trials": 4, "description": "constructed"}
    path.with_suffix(".json").write_text(json.dumps(dict(meta, source="test", license="CC0")))
    table = read_curve_table(path)
    seed = next(s for s in range(1000) if draw_order(4, 4, s).tolist() == [0, 1, 2, 3])  # rows in table order
    other = next(s for s in range(1000) if draw_order(4, 4, s).tolist() == [1, 0, 2, 3])  # row 1 first: never paused
    results = [
        run_benchmark(
            table,
            policies=("qhpo", "qhpo-stop", "sha"),
            predictor="svr",
            trials=4,
            seeds=1,
            first_seed=s,
            options={"qhpo": {"quorum": 0}},
        )
        for s in (seed, other)
    ]
    thaw, stop = results[0]["policies"]["qhpo"], results[0]["policies"]["qhpo-stop"]
    assert (thaw["resumed_mean"], thaw["winner_resumed_rate"], thaw["paused_mean"]) == (1.0, 1.0, 3.0)
    assert thaw["regret_mean"] == 0.0 and thaw["cost_fraction_mean"] == (20 + 20 + 1 + 1) / 80
    assert (stop["resumed_mean"], stop["winner_resumed_rate"], stop["paused_mean"]) == (0.0, 0.0, 0.0)
    assert stop["regret_mean"] == pytest.approx(0.05) and stop["cost_fraction_mean"] == (20 + 1 + 1 + 1) / 80
    assert results[0]["example"]["pauses"]["qhpo"] == [[1, 1], [2, 1], [3, 1]]
    assert results[0]["example"]["resumptions"]["qhpo"] == [[1, 1]]
    assert "qhpo-stop" not in results[0]["example"]["pauses"]
    # first in the order, row 1 is never paused (it leads at every rung): it wins without a resumption
    first = results[1]["policies"]["qhpo"]
    assert first["winner_resumed_rate"] == 0.0 and first["regret_mean"] == 0.0


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--first-seed", "-1"], "--first-seed must be at least 0"),
        (["--suite", "nowhere-folder"], "is not a folder"),
        (["--suite", "EMPTY"], "holds no curve table"),
        (["--suite", "BOTH", "--curves", "x.csv"], "--curves and --suite exclude each other"),
    ],
)
def test_suite_and_seed_errors_are_one_sentence(tmp_path, capsys, args, fragment):
    empty = tmp_path / "empty"
    empty.mkdir()
    args = [str(empty) if a in ("EMPTY", "BOTH") else a for a in args]
    if "--suite" not in args:
        args = ["--curves", str(write_table(tmp_path, "t"))] + args
    assert main(["bench", "--predictor", "svr", "--seeds", "1"] + args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("qhpo: error: ") and len(err.splitlines()) == 1 and fragment in err


def test_the_replay_leaves_the_callers_optuna_logging_as_it_was(tmp_path):
    import optuna

    from qhpo.curves import read_curve_table
    from qhpo.replay import run_benchmark
    from qhpo.replay._live import LiveSettings, replay_live

    table = read_curve_table(write_table(tmp_path, "t", n=12, epochs=6))
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.DEBUG)
    try:
        run_benchmark(table, policies=["median"], trials=6, seeds=1)
        assert optuna.logging.get_verbosity() == optuna.logging.DEBUG
        # and a live replay in a real Optuna study (journal file, one worker process)
        result = replay_live(
            "median", table.take(range(6)), seed=0, live=LiveSettings(storage="journal", epoch_seconds=0)
        )
        assert optuna.logging.get_verbosity() == optuna.logging.DEBUG
        assert len(result.epochs_trained) == 6
    finally:
        optuna.logging.set_verbosity(before)
