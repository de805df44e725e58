"""``qhpo bench`` end to end: JSON and figure on a small run, and clear errors."""

from __future__ import annotations

import json
import shutil

import pytest

from qhpo.cli import main


@pytest.mark.slow
def test_bench_writes_json_and_figure(curve_table_path, tmp_path, capsys):
    out_json, out_png = tmp_path / "bench.json", tmp_path / "bench.png"
    code = main(
        [
            "bench",
            "--curves",
            str(curve_table_path),
            "--policies",
            "none,median,sha,poster,qhpo,qhpo-stop",
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
            str(out_json),
            "--plot",
            str(out_png),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "median" in printed and "qhpo" in printed
    result = json.loads(out_json.read_text())
    assert (result["table"], result["trials"], result["seeds"], result["workers"]) == ("cifar10_cnn", 30, 2, 1)
    assert list(result["policies"]) == ["none", "median", "sha", "poster", "qhpo", "qhpo-stop"]
    for summary in result["policies"].values():
        for key in (
            "cost_fraction_mean",
            "regret_mean",
            "regret_median",
            "regret_max",
            "top1_kept_rate",
            "wallclock_mean",
            "predictor_seconds_mean",
            "paused_mean",
            "resumed_mean",
            "winner_resumed_rate",
        ):
            assert isinstance(summary[key], float)
        # the per-seed values behind the means, in seed order, for paired comparisons
        for key in ("cost_fraction", "regret"):
            values = summary["per_seed"][key]
            assert len(values) == 2 and all(v >= 0 for v in values)
            assert abs(sum(values) / 2 - summary[f"{key}_mean"]) < 1e-7
    assert "resumed" in printed and "winner resumed" in printed
    # the example seed's pauses and resumptions (the figure marks them): each resumption continues a pause
    example = result["example"]
    assert "qhpo-stop" not in example["pauses"] and "sha" not in example["pauses"]
    for row, epoch in example["resumptions"].get("qhpo", []):
        assert [row, epoch] in example["pauses"]["qhpo"]
    assert result["policies"]["none"]["wallclock_mean"] == 30 * 200
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_with_two_simulated_workers_shortens_the_wall_clock(curve_table_path, tmp_path):
    out_json = tmp_path / "w2.json"
    assert (
        main(
            [
                "bench",
                "--curves",
                str(curve_table_path),
                "--policies",
                "none,swift-hyperband",
                "--predictor",
                "svr",
                "--trials",
                "20",
                "--seeds",
                "1",
                "--workers",
                "2",
                "--jobs",
                "1",
                "--json",
                str(out_json),
            ]
        )
        == 0
    )
    result = json.loads(out_json.read_text())
    assert result["policies"]["none"]["wallclock_mean"] == 20 * 200 / 2
    assert result["policies"]["swift-hyperband"]["cost_fraction_mean"] < 1.0


def _malformed_copy(curve_table_path, tmp_path):
    table = tmp_path / "broken.csv"
    lines = curve_table_path.read_text().splitlines()
    lines[3] = lines[3].replace(",", ",oops,", 1)  # one cell too many
    table.write_text("\n".join(lines) + "\n")
    shutil.copy(curve_table_path.with_suffix(".json"), table.with_suffix(".json"))
    return table


def test_bench_with_a_budget_fraction_replays_the_shorter_workload(curve_table_path, tmp_path, capsys):
    """``--budget-fraction 0.1`` replays cifar10_cnn as a 20-epoch workload: the same
    results as replaying the table cut to 20 epochs, and not those of the 200-epoch one."""
    from qhpo.curves import read_curve_table
    from qhpo.replay import run_benchmark

    out_json = tmp_path / "short.json"
    args = ["bench", "--curves", str(curve_table_path), "--policies", "median,qhpo", "--predictor", "svr"]
    args += ["--trials", "30", "--seeds", "2", "--jobs", "1", "--budget-fraction", "0.1", "--json", str(out_json)]
    assert main(args) == 0
    assert "the table cut to the first 0.1 of its epochs" in capsys.readouterr().out
    result = json.loads(out_json.read_text())
    assert (result["epochs"], result["budget_fraction"]) == (20, 0.1)
    table = read_curve_table(curve_table_path)
    common = dict(policies=["median", "qhpo"], predictor="svr", trials=30, seeds=2, jobs=1)
    short = run_benchmark(table.truncate(20), **common)
    full = run_benchmark(table, **common)
    for rule in ("median", "qhpo"):
        got = result["policies"][rule]["per_seed"]
        assert got == short["policies"][rule]["per_seed"]
        assert got != full["policies"][rule]["per_seed"]
    # regret and its spread are measured on the values after 20 epochs, not after 200
    assert result["spread"] == pytest.approx(short["spread"]) and result["spread"] != pytest.approx(full["spread"])


@pytest.mark.parametrize("problem", ["malformed", "missing", "policy", "trials", "budget"])
def test_bench_reports_user_errors_in_one_sentence(problem, curve_table_path, tmp_path, capsys):
    args = ["bench", "--curves", str(curve_table_path), "--predictor", "svr", "--seeds", "1"]
    if problem == "malformed":
        args[2] = str(_malformed_copy(curve_table_path, tmp_path))
    elif problem == "missing":
        args[2] = str(tmp_path / "nowhere.csv")
    elif problem == "policy":
        args += ["--policies", "none,asha"]
    elif problem == "budget":
        args += ["--budget-fraction", "1.5"]
    else:
        args += ["--trials", "1"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("qhpo: error: ") and "Traceback" not in err and len(err.splitlines()) == 1
    expected = {
        "malformed": "line 4",
        "missing": "does not exist",
        "policy": "'asha'",
        "trials": "--trials",
        "budget": "--budget-fraction",
    }
    assert expected[problem] in err


def test_bench_on_a_loss_table_with_epoch_seconds(tmp_path):
    """A ``min`` table with a seconds_per_epoch column: regret and wall clock in its units."""
    import numpy as np

    rng = np.random.default_rng(0)
    n, epochs = 30, 20
    t = np.arange(1, epochs + 1)
    loss = 0.2 + rng.uniform(0.1, 1.0, (n, 1)) * np.exp(-t / rng.uniform(3, 8, (n, 1)))
    seconds = rng.uniform(1.0, 3.0, n)
    header = ["trial", "lr", "seconds_per_epoch"] + [f"epoch_{e}" for e in t]
    rows = [",".join(header)] + [
        ",".join([str(i), f"{rng.uniform(1e-3, 1e-1):.5f}", f"{seconds[i]:.3f}"] + [f"{v:.5f}" for v in loss[i]])
        for i in range(n)
    ]
    table = tmp_path / "loss.csv"
    table.write_text("\n".join(rows) + "\n")
    table.with_suffix(".json").write_text(
        json.dumps(
            {
                "metric": "loss",
                "mode": "min",
                "epochs": epochs,
                "trials": n,
                "description": "synthetic",
                "source": "test",
                "license": "CC0",
            }
        )
    )
    out_json = tmp_path / "loss.json"
    assert (
        main(
            [
                "bench",
                "--curves",
                str(table),
                "--policies",
                "none,median,sha,hyperband,swift-hyperband,qhpo",
                "--predictor",
                "svr",
                "--trials",
                "30",
                "--seeds",
                "2",
                "--jobs",
                "1",
                "--json",
                str(out_json),
            ]
        )
        == 0
    )
    result = json.loads(out_json.read_text())
    assert result["mode"] == "min"
    none = result["policies"]["none"]
    assert none["wallclock_mean"] == pytest.approx(epochs * float(np.round(seconds, 3).sum()), rel=1e-6)
    for summary in result["policies"].values():
        assert summary["regret_max"] >= 0.0 and summary["cost_fraction_mean"] <= 1.0
    assert result["policies"]["sha"]["cost_fraction_mean"] < 1.0


@pytest.mark.parametrize("flag", ["--json", "--plot"])
def test_an_unwritable_output_is_refused_before_the_replay(curve_table_path, capsys, flag):
    assert main(["bench", "--curves", str(curve_table_path), flag, "/proc/qhpo-bench.out"]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot write /proc/qhpo-bench.out" in err and len(err.splitlines()) == 1
