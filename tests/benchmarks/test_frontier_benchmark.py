"""``benchmarks/frontier.py``: the default rule at every setting of its aggressiveness,
with the target applied as ``qhpo bench --suite`` applies it."""

from __future__ import annotations

import json
import shutil

from repo_scripts import load_script


def _frontier_module():
    return load_script("benchmarks/frontier.py", "qhpo_frontier_benchmark")


def test_the_default_setting_reproduces_the_suite_and_its_target_check(tmp_path, capsys):
    from qhpo.curves import builtin_tables_folder, read_curve_table
    from qhpo.replay import run_suite

    frontier = _frontier_module()
    folder = tmp_path / "tables"
    folder.mkdir()
    for suffix in (".csv", ".json"):
        shutil.copy(builtin_tables_folder() / f"taskset_imdb_3{suffix}", folder)
    out = tmp_path / "frontier.json"
    args = ["--suite", str(folder), "--trials", "30", "--seeds", "2", "--etas", "2,3", "--first-rung", "1,2"]
    assert frontier.main([*args, "--jobs", "1", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "eta 2, x1: " in printed and "(default)" in printed

    table = read_curve_table(folder / "taskset_imdb_3.csv")
    suite = run_suite([table], policies=("median", "sha", "hyperband", "qhpo"), trials=30, seeds=2, jobs=1)
    ours = suite["tables"]["taskset_imdb_3"]
    check = load_script("benchmarks/suite_target.py", "qhpo_suite_target").check_table(ours)
    assert f"(E=51, best pruner {check['best']})" in printed

    r0 = frontier.first_rung(table.epochs, 1.0)
    assert (r0, frontier.first_rung(table.epochs, 2.0)) == (3, 6)  # round(51 / 20) = 3
    runs = json.loads(out.read_text())["tables"]["taskset_imdb_3"]
    assert set(runs) == {"2/3", "2/6", "3/3", "3/6"}

    # eta 2 at the first rung round(E/20) is the default policy: the same cost, regret and verdict
    default = runs["2/3"]
    assert default["cost_fraction_mean"] == ours["policies"]["qhpo"]["cost_fraction_mean"]
    assert default["regret_mean"] == ours["policies"]["qhpo"]["regret_mean"]
    assert default["pass"] == check["pass"] and default["why"] == check["why"]
    # a later first rung costs more: the settings are really replayed, not copied
    assert runs["2/6"]["cost_fraction_mean"] > default["cost_fraction_mean"]
    assert default["shortfall"] == 0.0 if default["pass"] else default["shortfall"] > 0.0


def test_a_folder_without_tables_is_one_sentence(tmp_path, capsys):
    frontier = _frontier_module()
    assert frontier.main(["--suite", str(tmp_path), "--seeds", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"no curve tables (*.csv) in {tmp_path}"


def test_a_broken_baselines_file_is_one_sentence(tmp_path, capsys):
    frontier = _frontier_module()
    broken = tmp_path / "suite.json"
    broken.write_text('{"tables": {"cifar10_cnn": {"policies": {"median": {}}}}, "trials": 100')
    assert frontier.main(["--seeds", "1", "--baselines-json", str(broken)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"{broken} is not the JSON of `qhpo bench --suite` with the median, sha and hyperband rules"
    )
    broken.write_text('{"tables": {"cifar10_cnn": {"policies": {"median": {}}}}, "trials": 100}')  # no results
    assert frontier.main(["--seeds", "1", "--baselines-json", str(broken)]) == 2
    assert "is not the JSON of `qhpo bench --suite`" in capsys.readouterr().err
