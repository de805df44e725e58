"""``benchmarks/suite_target.py``: the suite's acceptance target, applied to what ``qhpo bench`` wrote."""

from __future__ import annotations

import json
import shutil

import pytest

from repo_scripts import load_script


@pytest.fixture(scope="module")
def target():
    return load_script("benchmarks/suite_target.py", "qhpo_suite_target")


def _rule(cost, regret, sd=0.0):
    return {"cost_fraction_mean": cost, "regret_mean": regret, "regret_sd": sd}


def test_the_bar_is_the_best_pruners_mean_regret_plus_its_standard_error(target):
    # median is the best pruner (lowest regret); its standard error over 16 seeds is 0.4 / 4 = 0.1
    base = {"median": _rule(0.3, 1.0, 0.4), "sha": _rule(0.2, 3.0), "hyperband": _rule(0.35, 2.0)}
    within = target.check_table({"seeds": 16, "policies": {**base, "qhpo": _rule(0.2, 1.09)}})
    assert within["best"] == "median" and within["pass"]
    assert within["why"] == "regret 1.09 within median's 1 + standard error at 0.67 x its cost"
    above = target.check_table({"seeds": 16, "policies": {**base, "qhpo": _rule(0.2, 1.11)}})
    assert not above["pass"] and "above median's 1 + 0.1 (its standard error)" in above["why"]  # not + 0.4, the sd
    dear = target.check_table({"seeds": 16, "policies": {**base, "qhpo": _rule(0.2251, 1.0)}})
    assert not dear["pass"] and "above 0.75 x median's" in dear["why"]
    at_bound = target.check_table({"seeds": 16, "policies": {**base, "qhpo": _rule(0.2249, 1.0)}})
    assert at_bound["pass"]  # just under 0.75 x 0.3
    assert target.check_table({"seeds": 16, "policies": base}) is None  # no qhpo result


def test_a_rule_with_lower_regret_and_lower_cost_fails_the_target(target):
    base = {"median": _rule(0.3, 1.0), "sha": _rule(0.2, 3.0), "hyperband": _rule(0.35, 2.0)}
    policies = {**base, "qhpo": _rule(0.2, 1.0), "other": _rule(0.1, 0.5)}
    check = target.check_table({"seeds": 4, "policies": policies})
    assert not check["pass"] and check["why"] == "other has both lower regret and lower cost"
    # the judged rule can be any rule of the result
    assert target.check_table({"seeds": 4, "policies": policies}, rule="other")["pass"]


def test_the_script_judges_every_table_of_a_suite_json_and_counts_them(target, tmp_path, capsys):
    from qhpo.curves import builtin_tables_folder, read_curve_table
    from qhpo.replay import run_suite

    folder = tmp_path / "tables"
    folder.mkdir()
    for stem in ("taskset_imdb_3", "cifar10_cnn"):
        for suffix in (".csv", ".json"):
            shutil.copy(builtin_tables_folder() / f"{stem}{suffix}", folder)
    tables = [read_curve_table(p) for p in sorted(folder.glob("*.csv"))]
    doc = run_suite(tables, policies=("median", "sha", "hyperband", "qhpo"), trials=20, seeds=2, jobs=1)
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps(doc))
    out = tmp_path / "target.json"
    assert target.main([str(suite), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    check = json.loads(out.read_text())
    assert sorted(check["passed"] + check["failed"]) == ["cifar10_cnn", "taskset_imdb_3"]
    for stem, result in doc["tables"].items():
        assert check["tables"][stem] == target.check_table(result)
        assert f"{'pass' if stem in check['passed'] else 'fail'} against {check['tables'][stem]['best']}" in printed
    assert f"target met on {len(check['passed'])} of 2 tables" in printed
    # one table's result (`qhpo bench --curves T --json`) is read as a suite of one
    single = tmp_path / "single.json"
    single.write_text(json.dumps(doc["tables"]["cifar10_cnn"]))
    assert target.main([str(single), "--rule", "median"]) == 0
    assert "target for median" in capsys.readouterr().out


def test_a_file_that_is_not_a_bench_result_gets_one_sentence(target, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"rows": []}')
    assert target.main([str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"error: cannot read {bad}")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert target.main([str(broken)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    lacking = tmp_path / "lacking.json"
    lacking.write_text('{"tables": {"t": {"seeds": 2}}}')
    assert target.main([str(lacking)]) == 2
    assert capsys.readouterr().err.strip().endswith("it lacks the key 'policies'")
