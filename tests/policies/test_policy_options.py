"""``--policy-option``: a rule's options from the command line, checked in one sentence,
applied in the replay and in ``qhpo run``, and stored in the study."""

from __future__ import annotations

import json

import optuna
import pytest

from qhpo._errors import QhpoError
from qhpo._policy_options import check_policy_options, option_names, parse_option_value, parse_policy_option
from qhpo.cli import main
from qhpo.optuna import DECISIONS_ATTR
from qhpo.policies import rung_epochs
from test_run import tiny_run as run_tiny


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("False", False),
        ("3", 3),
        ("-2", -2),
        ("0.25", 0.25),
        ("1e-3", 1e-3),
        ("tpe", "tpe"),
        ("inf", "inf"),
    ],
)
def test_values_are_read_as_booleans_whole_numbers_numbers_or_text(text, value):
    parsed = parse_option_value(text)
    assert parsed == value and type(parsed) is type(value)


def test_an_option_is_name_equals_value_with_an_optional_rule():
    assert parse_policy_option("reduction_factor=3") == (None, "reduction_factor", 3)
    assert parse_policy_option("sha:min_resource=5") == ("sha", "min_resource", 5)
    assert parse_policy_option("qhpo-stop:floor_quantile=0.2") == ("qhpo-stop", "floor_quantile", 0.2)
    for bad in ("reduction_factor", "=3", "reduction factor=3", "reduction_factor=", "sha:=2"):
        with pytest.raises(QhpoError, match="is not NAME=VALUE"):
            parse_policy_option(bad)


def test_each_rule_names_its_own_options_and_none_the_command_sets():
    assert {"min_resource", "reduction_factor", "resume", "min_completed"} <= set(option_names("qhpo"))
    assert "resume" not in option_names("qhpo-stop") and "min_resource" in option_names("qhpo-stop")
    assert {"n_startup_trials", "n_warmup_steps", "percentile"} <= set(option_names("median"))
    assert "max_resource" not in option_names("hyperband")  # the command sets the budget
    for rule in ("qhpo", "poster", "baker", "sha"):
        assert not {"max_epochs", "predictor", "sampler", "random_state", "mode"} & set(option_names(rule))
    assert option_names("none") == () and option_names("swift-hyperband") == ()
    assert option_names("one-epoch") == ("decision_epoch", "share")


def test_unknown_names_and_refused_values_get_one_sentence():
    check_policy_options("qhpo", {"reduction_factor": 3, "min_resource": 2}, epochs=50)  # accepted
    cases = [
        ("qhpo", {"bogus": 1}, "has no option 'bogus'; its options are agreement, agreement_pairs"),
        (
            "qhpo",
            {"reduction_factor": 1},
            "refuses reduction_factor=1 for 50 epochs: reduction_factor must be a number > 1",
        ),
        # no silent truncation: a fractional epoch count or a flag is refused, not rounded
        ("qhpo", {"min_resource": 2.7}, "min_resource must be an integer >= 1 or None, got 2.7"),
        ("qhpo", {"min_completed": True}, "min_completed must be an integer >= 0, got True"),
        ("qhpo", {"floor_quantile": 1}, "floor_quantile must be a number in .0, 1., got 1"),
        ("qhpo", {"reduction_factor": "fast"}, "refuses reduction_factor=fast"),
        ("sha", {"reduction_factor": 1}, "refuses reduction_factor=1"),
        ("none", {"a": 1}, "takes no --policy-option"),
        ("qhpo-stop", {"resume": True}, "has no option 'resume'"),
    ]
    for rule, options, message in cases:
        with pytest.raises(QhpoError, match=message.replace("(", r"\(")) as caught:
            check_policy_options(rule, options, epochs=50)
        assert "\n" not in str(caught.value)


def test_bench_applies_options_to_qhpo_or_to_the_named_rule_and_records_them(curve_table_path, tmp_path, capsys):
    out = tmp_path / "bench.json"
    args = ["bench", "--curves", str(curve_table_path), "--policies", "qhpo,qhpo-stop,sha", "--predictor", "svr"]
    args += ["--trials", "30", "--seeds", "2", "--jobs", "1", "--json", str(out)]
    options = ["--policy-option", "reduction_factor=3", "--policy-option", "sha:reduction_factor=2"]
    assert main(args + options) == 0
    assert "options beyond the defaults: qhpo reduction_factor=3; qhpo-stop reduction_factor=3; sha" in (
        capsys.readouterr().out
    )
    result = json.loads(out.read_text())
    assert result["options"] == {
        "qhpo": {"reduction_factor": 3},
        "qhpo-stop": {"reduction_factor": 3},
        "sha": {"reduction_factor": 2},
    }
    # qhpo decides at the rungs of eta = 3 only: 10, 30 and 90 of the table's 200 epochs
    rungs = set(rung_epochs(200, 10, 3))
    assert rungs == {10, 30, 90}
    for rule in ("qhpo", "qhpo-stop"):
        trained = result["example"]["epochs_trained"][rule]
        assert all(e in rungs or e == 200 for e in trained) and any(e in (30, 90) for e in trained)
    default = tmp_path / "default.json"
    assert main(args[:-1] + [str(default)]) == 0
    assert "options" not in json.loads(default.read_text())
    # the default qhpo has rungs at 20, 40, 80 and 160 too: the option changed the decisions
    assert json.loads(default.read_text())["example"]["epochs_trained"]["qhpo"] != trained
    capsys.readouterr()

    for bad, message in (
        (["--policy-option", "median:n_startup_trials=3"], "names rule 'median', which --policies does not run"),
        (["--policy-option", "reduction_factor=1"], "refuses reduction_factor=1 for 200 epochs"),
        (["--policy-option", "sha:bogus=2"], "rule 'sha' has no option 'bogus'"),
    ):
        assert main(args + bad) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and message in err
    only_sha = ["bench", "--curves", str(curve_table_path), "--policies", "sha", "--policy-option", "eta=2"]
    assert main(only_sha) == 2
    assert "applies to qhpo and qhpo-stop, and --policies names neither" in capsys.readouterr().err


def tiny_run(cifar_dir, storage, *extra):
    """test_run's tiny run as study "options", 4 configurations, 2 trained to the end first."""
    return run_tiny(cifar_dir, storage, "--trials", "4", "--min-completed", "2", *extra, study="options")


def test_run_refuses_bad_options_before_anything_exists(tmp_path, cifar_dir, capsys):
    storage = tmp_path / "runs" / "o.db"
    for extra, message in (
        (["--policy-option", "bogus=1"], "rule 'qhpo' has no option 'bogus'"),
        (["--policy-option", "sha:reduction_factor=2"], "names rule 'sha', but the search runs 'qhpo'"),
        (["--policy-option", "min_completed=3"], "--min-completed and --policy-option min_completed=... both set it"),
        (["--policy", "none", "--policy-option", "a=1"], "rule 'none' takes no --policy-option"),
        (["--policy-option", "min_resource=2", "--policy-option", "min_resource=1"], "sets 'min_resource' twice"),
    ):
        assert main(tiny_run(cifar_dir, storage, *extra)) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and message in err
    assert not storage.exists()


@pytest.mark.slow
def test_run_decides_with_the_options_and_resumes_only_with_the_same_ones(tmp_path, cifar_dir, capsys):
    storage = tmp_path / "runs" / "o.db"
    # Three epochs: the default rungs are epochs 1 and 2; with min_resource=2 the only rung is epoch 2.
    with_options = tiny_run(cifar_dir, storage, "--policy-option", "min_resource=2", "--policy-option", "resume=false")
    assert main(with_options) == 0
    study = optuna.load_study(study_name="options", storage=f"sqlite:///{storage}")
    records = [r for t in study.trials for r in t.user_attrs.get(DECISIONS_ATTR, [])]
    assert records and {r["epoch"] for r in records} == {2}
    assert all(r["decision"] != "pause" for r in records)  # resume=false: a trial not kept stops
    capsys.readouterr()

    for extra, shown in (([], "(none)"), (["--policy-option", "min_resource=1"], "min_resource=1")):
        assert main(tiny_run(cifar_dir, storage, *extra)) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0
        assert f"created with the policy options min_resource=2 resume=False, not {shown}" in err
        assert "--policy-option values" in err
    assert main(with_options) == 0  # the same options resume it (nothing left to train)
