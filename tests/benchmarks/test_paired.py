"""``benchmarks/paired.py``: per-seed paired differences between rules, from ``qhpo bench``'s JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from repo_scripts import load_script


@pytest.fixture(scope="module")
def paired():
    return load_script("benchmarks/paired.py", "qhpo_paired")


def _budget_table(per_seed: dict[str, list[float]]) -> dict:
    return {"readings": ["5"], "policies": {rule: {"per_seed": {"5": values}} for rule, values in per_seed.items()}}


def test_differences_are_taken_seed_by_seed_over_the_mean_of_the_tables(paired, tmp_path, capsys):
    ours = {"a": _budget_table({"qhpo": [0.1, 0.3, 0.2], "sha": [0.2, 0.2, 0.4]})}
    theirs = {"a": _budget_table({"bohb": [0.0, 0.0, 0.0], "sha": [9.0, 9.0, 9.0]})}
    ours["b"] = _budget_table({"qhpo": [0.3, 0.1, 0.2], "sha": [0.4, 0.2, 0.2]})
    theirs["b"] = _budget_table({"bohb": [0.0, 0.0, 0.0], "sha": [9.0, 9.0, 9.0]})
    (tmp_path / "q.json").write_text(json.dumps({"tables": ours}))
    (tmp_path / "p.json").write_text(json.dumps({"tables": theirs}))
    means = paired.per_seed_means([json.loads((tmp_path / f).read_text()) for f in ("q.json", "p.json")])
    np.testing.assert_allclose(means["5"]["qhpo"], [0.2, 0.2, 0.2])
    np.testing.assert_allclose(means["5"]["sha"], [0.3, 0.2, 0.3])  # the first file's sha, not the second's
    diff, se = paired.paired(means["5"], "qhpo")["sha"]
    assert diff == pytest.approx(-2 / 30) and se == pytest.approx(np.std([-0.1, 0, -0.1], ddof=1) / np.sqrt(3))
    assert paired.main([str(tmp_path / "q.json"), str(tmp_path / "p.json")]) == 0
    assert "bohb +0.2000 ± 0.0000" in capsys.readouterr().out


def test_without_a_budget_the_regret_is_divided_by_the_spread_and_a_run_before_joins(paired, tmp_path, capsys):
    table = {"spread": 2.0, "policies": {"qhpo": {"per_seed": {"regret": [0.2, 0.4]}}}}
    before = {"spread": 2.0, "policies": {"qhpo": {"per_seed": {"regret": [0.4, 0.4]}}}}
    (tmp_path / "now.json").write_text(json.dumps({"tables": {"t": table}}))
    (tmp_path / "before.json").write_text(json.dumps({"tables": {"t": before}}))
    assert paired.main([str(tmp_path / "now.json"), "--before", str(tmp_path / "before.json")]) == 0
    assert "regret / spread: qhpo 0.1500; qhpo minus qhpo before -0.0500 ± 0.0500" in capsys.readouterr().out
    assert paired.main([str(tmp_path / "missing.json")]) == 2
    assert "paired.py: cannot read the results" in capsys.readouterr().err
