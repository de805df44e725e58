"""``qhpo bench --backend optuna``: the table's curves through the real pruner in a live Optuna
study, with real storage files and worker processes, against the in-process replay."""

from __future__ import annotations

import json

import optuna
import pytest

from qhpo.cli import main
from qhpo.optuna import CHECKPOINT_ATTR, RESUME_OF_ATTR

# cifar10_cnn cut to 20 epochs, 20 trials: qhpo pauses and resumes on both seeds and, with
# these options, predicts on seed 1; sha and median prune
SMALL = [
    "bench",
    "--curves",
    "cifar10_cnn",
    "--budget-fraction",
    "0.1",
    "--trials",
    "20",
    "--predictor",
    "svr",
    "--policy-option",
    "qhpo:min_horizon_trials=3",
    "--policy-option",
    "qhpo:first_predicted_rung=0",
]


def _bench(args, tmp_path, name):
    out = tmp_path / f"{name}.json"
    assert main([*args, "--json", str(out)]) == 0
    return json.loads(out.read_text())


def _keys(document, prefix=""):
    """Every key path of a JSON document (list items are not entered)."""
    paths = set()
    for key, value in document.items():
        paths.add(prefix + key)
        if isinstance(value, dict) and key not in ("policies", "options"):
            paths |= _keys(value, f"{prefix}{key}.")
    for rule, summary in document.get("policies", {}).items():
        paths |= {f"{prefix}policies.{rule}.{k}" for k in summary}
    return paths


def assert_same_decisions(local: dict, live: dict, rules) -> None:
    """The live document scores every rule as the local one, seed by seed, and adds only its backend block."""
    assert list(live["policies"]) == list(rules)
    for rule in rules:
        for key in ("cost_fraction", "regret"):
            assert live["policies"][rule]["per_seed"][key] == local["policies"][rule]["per_seed"][key], (rule, key)
        for key in ("paused_mean", "resumed_mean", "top1_kept_rate", "winner_resumed_rate"):
            assert live["policies"][rule][key] == local["policies"][rule][key], (rule, key)
    example = ("epochs_trained", "complete", "pauses", "resumptions")
    assert {k: live["example"][k] for k in example} == {k: local["example"][k] for k in example}
    # the same document, plus what says how it ran
    assert _keys(local) <= _keys(live)
    assert _keys(live) - _keys(local) == {f"backend.{k}" for k in live["backend"]} | {"backend"}


# a new SQLite file costs a second (its schema), a journal file nothing: SQLite replays qhpo alone
@pytest.mark.parametrize(
    "storage, rules, seeds", [("sqlite", ("qhpo",), 1), ("journal", ("none", "median", "sha", "qhpo"), 1)]
)
def test_one_settled_worker_decides_as_the_local_replay(storage, rules, seeds, tmp_path, capsys):
    args = [*SMALL, "--seeds", str(seeds), "--policies", ",".join(rules)]
    local = _bench([*args, "--jobs", "1"], tmp_path, "local")
    folder = tmp_path / "studies"
    live = _bench(
        [*args, "--backend", "optuna", "--settle", "--epoch-seconds", "0", "--storage", storage]
        + ["--storage-dir", str(folder)],
        tmp_path,
        "live",
    )
    printed = capsys.readouterr().out
    assert "live Optuna study" in printed and "qhpo" in printed
    assert local["policies"]["qhpo"]["resumed_mean"] > 0  # the comparison covers freeze-thaw
    assert_same_decisions(local, live, rules)
    assert live["backend"] == {
        "name": "optuna",
        "storage": storage,
        "epoch_seconds": 0.0,
        "settle": True,
        "worker_processes": 1,
        "in_process": [],
    }
    # the studies are real storage files, one per rule and seed, that Optuna reads back
    suffix = ".db" if storage == "sqlite" else ".log"
    files = sorted(p.name for p in folder.iterdir() if p.suffix == suffix)
    assert len(files) == seeds * len(rules)
    path = folder / f"cifar10_cnn-qhpo-seed0-1w{suffix}"
    url = f"sqlite:///{path}" if storage == "sqlite" else None
    study_storage = url or optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    trials = optuna.load_study(study_name="qhpo-replay-0", storage=study_storage).trials
    resumptions = [t for t in trials if RESUME_OF_ATTR in t.user_attrs]
    assert len(resumptions) == len(local["example"]["resumptions"]["qhpo"]) > 0
    assert len(trials) == 20 + len(resumptions)
    assert {t.user_attrs[CHECKPOINT_ATTR] for t in trials} == set(range(20))


def test_two_worker_processes_with_background_fits(tmp_path):
    folder = tmp_path / "studies"
    live = _bench(
        [*SMALL, "--seeds", "1", "--backend", "optuna", "--workers", "2", "--storage", "journal"]
        + ["--storage-dir", str(folder), "--policies", "none,qhpo", "--epoch-seconds", "0.002"],
        tmp_path,
        "live",
    )
    assert live["workers"] == 2 and live["backend"]["worker_processes"] == 2
    assert live["policies"]["none"]["per_seed"]["cost_fraction"] == [1.0]
    qhpo = live["policies"]["qhpo"]
    assert all(0 < c < 1 for c in qhpo["per_seed"]["cost_fraction"])
    assert all(r is not None and r >= 0 for r in qhpo["per_seed"]["regret"])
    path = folder / "cifar10_cnn-qhpo-seed0-2w.log"
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    trials = optuna.load_study(study_name="qhpo-replay-0", storage=storage).trials
    assert {t.user_attrs["qhpo.replay.finished"]["worker"] for t in trials} == {0, 1}  # two processes trained
    assert all(t.state.is_finished() for t in trials)
    epochs = {}
    for t in trials:  # each row's epochs: what its last trial trained, as the JSON's example counts them
        row = t.user_attrs[CHECKPOINT_ATTR]
        epochs[row] = max(epochs.get(row, 0), t.user_attrs["qhpo.replay.finished"]["epochs"])
    assert [epochs[row] for row in range(20)] == live["example"]["epochs_trained"]["qhpo"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--backend", "optuna", "--storage", "postgres"], "--storage must be sqlite or journal"),
        (["--backend", "optuna", "--epoch-seconds", "-1"], "--epoch-seconds must be"),
        (["--backend", "optuna", "--jobs", "2"], "--jobs applies to the local backend"),
        (["--backend", "optuna", "--predictor", "oracle"], "exists in the local replay only"),
        (["--settle"], "--settle applies to the live replay only"),
        (["--storage", "journal"], "--storage applies to the live replay only"),
    ],
)
def test_bad_live_options_are_one_sentence(extra, message, capsys):
    assert main([*SMALL, "--policies", "qhpo", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_a_storage_folder_that_is_a_file_is_one_sentence(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main([*SMALL, "--policies", "qhpo", "--backend", "optuna", "--storage-dir", str(blocker / "studies")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--storage-dir" in err and "not a writable folder" in err and len(err.splitlines()) == 1


def test_under_a_budget_a_live_worker_makes_the_replays_decisions_and_finishes_the_same_trial(tmp_path, curves_dir):
    """The budget's end in a live Optuna study: told the epochs left at each claim, the pruner
    resumes the in-process replay's trial to finish, and the study spends and completes what
    the replay does, epoch for epoch."""
    import numpy as np

    from qhpo.curves import read_curve_table
    from qhpo.optuna import RESUME_ATTR
    from qhpo.replay import BudgetSettings, LiveSettings, budget_order, replay_live, replay_rule

    table = read_curve_table(curves_dir / "baker_metaqnn_svhn.csv")
    settings = BudgetSettings(5)  # 100 epochs; on seed 0 the end resumes row 5, paused at epoch 8
    budget, options = settings.epochs(table), settings.rule_options("qhpo", table)
    drawn = table.take(budget_order(table.n_trials, budget, 0))
    local = replay_rule("qhpo", drawn, seed=0, predictor="svr", options=options, budget=budget)
    live = LiveSettings(settle=True, epoch_seconds=0, folder=tmp_path)
    other = replay_live("qhpo", drawn, seed=0, predictor="svr", options=options, budget=budget, live=live)
    assert np.array_equal(local.epochs_trained, other.epochs_trained) and local.epochs_trained.sum() == budget
    assert np.array_equal(local.completed_at, other.completed_at)
    assert sorted(local.pauses) == sorted(other.pauses) and local.resumptions == other.resumptions
    [db] = tmp_path.glob("*.db")
    study = optuna.load_study(study_name="qhpo-replay-0", storage=f"sqlite:///{db}")
    finishing = [t for t in study.trials if (t.user_attrs.get(RESUME_ATTR) or {}).get("finishing")]
    assert [(t.user_attrs[CHECKPOINT_ATTR], t.user_attrs[RESUME_OF_ATTR] is not None) for t in finishing] == [(5, True)]
    assert finishing[0].state == optuna.trial.TrialState.COMPLETE and local.complete[5]
