"""``qhpo run --budget``: a search bounded by epochs or time, shared by processes and re-runs."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from qhpo.cli import main
from qhpo.optuna import CHECKPOINT_ATTR, RESUME_ATTR, RESUME_OF_ATTR
from qhpo.runner import RAY_BUDGET_EPOCHS_ATTR
from qhpo.runner._budget import (
    CLOCK_ATTR_PREFIX,
    Budget,
    BudgetTracker,
    budget_summary,
    epochs_spent,
    seconds_spent,
    union_length,
)
from qhpo.runner._storage import OWNER_ATTR, owner_record, resolve_storage
from qhpo.runner._trial import BUDGET_CUT_ATTR, RESUMED_AT_ATTR
from qhpo.runner._worker import claim_trial
from run_killer import kill_run_during
from test_run import load, one_sentence, tiny_run


@pytest.mark.parametrize(
    "text, amount, unit",
    [("400", 400, "epochs"), ("24h", 86400.0, "seconds"), ("90m", 5400.0, "seconds"), ("3600s", 3600.0, "seconds")],
)
def test_a_budget_is_epochs_or_a_duration(text, amount, unit):
    assert Budget.parse(text) == Budget(amount, unit)


@pytest.mark.parametrize("text", ["0", "5x", "-3", "0h", "h", "1e3", "2.5", "24 hours", ""])
def test_bad_budgets_give_one_sentence_and_status_2(text, tmp_path, cifar_dir, capsys):
    args = tiny_run(cifar_dir, tmp_path / "q.db", "--budget", text)
    assert main(args) == 2
    assert "--budget must be a positive whole number of epochs (400) or a duration" in one_sentence(capsys)
    assert not (tmp_path / "q.db").exists()


Q = {"quorum": 2, "quorum_span": 0.3}  # the budget's quorum


@pytest.mark.parametrize(
    "extra, options",
    [
        # qhpo's first rung under a budget: E/40, and its rungs up to 30 % of training wait for two trials
        (["--budget", "100", "--epochs", "200"], {"min_resource": 5, **Q}),
        (["--budget", "100", "--epochs", "50"], {"min_resource": 1, **Q}),  # round(50/40), not round(50/20)
        (["--budget", "100", "--epochs", "8"], Q),  # the same first rung as without a budget
        (["--budget", "100", "--epochs", "200", "--policy-option", "min_resource=3"], {"min_resource": 3, **Q}),
        (
            ["--budget", "100", "--epochs", "200", "--policy-option", "quorum=4"],
            {"min_resource": 5, "quorum": 4, "quorum_span": 0.3},
        ),
        # no rung waits: the span is not stored (a budget's study of quorum 0 resumes with quorum=0)
        (["--budget", "100", "--epochs", "200", "--policy-option", "quorum=0"], {"min_resource": 5, "quorum": 0}),
        (["--trials", "10", "--epochs", "50"], {}),
        (["--budget", "100", "--epochs", "50", "--policy", "sha"], {}),
    ],
)
def test_under_a_budget_qhpo_judges_first_at_a_fortieth_of_the_epochs_and_takes_the_budgets_quorum(
    extra, options, tmp_path, cifar_dir
):
    from qhpo.cli._main import build_parser
    from qhpo.cli._run import config_from_args

    args = tiny_run(cifar_dir, tmp_path / "q.db", *extra)  # the last --epochs given counts
    config = config_from_args(build_parser().parse_args(args))
    assert config.policy_options == options and config.trials == (10 if "--trials" in extra else None)


def test_a_budgets_search_runs_without_the_rung_agreement_and_does_not_store_it(tmp_path, cifar_dir):
    """The budget keeps its rule (agreement off, as a budget's study made before the option ran);
    the option is applied when the policy is made, not stored, so such a study resumes unchanged."""
    from qhpo.cli._main import build_parser
    from qhpo.cli._run import config_from_args
    from qhpo.policies import make_policy

    parse = build_parser().parse_args
    budget = config_from_args(parse(tiny_run(cifar_dir, tmp_path / "q.db", "--budget", "100", "--epochs", "50")))
    assert "agreement" not in budget.policy_options and budget.stopping_options()["agreement"] == "off"
    assert make_policy("qhpo", max_epochs=50, **budget.stopping_options()).agreement is None
    given = tiny_run(
        cifar_dir, tmp_path / "q.db", "--budget", "100", "--epochs", "50", "--policy-option", "agreement=0.5"
    )
    assert config_from_args(parse(given)).stopping_options()["agreement"] == 0.5
    plain = config_from_args(parse(tiny_run(cifar_dir, tmp_path / "q.db", "--trials", "10", "--epochs", "50")))
    assert "agreement" not in plain.stopping_options()
    assert make_policy("qhpo", max_epochs=50, **plain.stopping_options()).agreement == 0.5


def test_time_spent_is_the_union_of_the_workers_intervals():
    assert union_length([[0, 10], [5, 12], [20, 21], [30, 30]]) == 13.0
    study = optuna.create_study()
    study.set_user_attr(f"{CLOCK_ATTR_PREFIX}a:1:0", [100.0, 160.0])  # two workers at once count once
    study.set_user_attr(f"{CLOCK_ATTR_PREFIX}b:2:0", [130.0, 170.0])
    study.set_user_attr(f"{CLOCK_ATTR_PREFIX}a:9:0", [1000.0, 1010.0])  # a re-run after a gap adds only its own
    study.set_user_attr("qhpo.settings", {"epochs": 3})
    assert seconds_spent(study) == 80.0


def _trial(study, epochs, resumed_at=None, state=TrialState.PRUNED, key=None):
    trial = study.ask()
    trial.set_user_attr(OWNER_ATTR, owner_record())  # this process trains it: no recovery takes it as dead
    if resumed_at is not None:
        trial.set_user_attr(RESUMED_AT_ATTR, resumed_at)
    trial.set_user_attr(CHECKPOINT_ATTR, trial.number if key is None else key)
    for epoch in range(1, epochs + 1):
        trial.report(0.1 * epoch, epoch)
    if state != TrialState.RUNNING:
        study.tell(trial, 0.1 * epochs if state == TrialState.COMPLETE else None, state=state)
    return trial


def test_epochs_spent_counts_a_resumed_configurations_epochs_once(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'q.db'}", study_name="s", direction="maximize")
    _trial(study, 4, state=TrialState.COMPLETE)
    _trial(study, 2)  # paused at epoch 2 ...
    _trial(study, 5, resumed_at=2, state=TrialState.COMPLETE, key=1)  # ... and resumed: epochs 3-5 are new
    _trial(study, 1, state=TrialState.RUNNING)
    assert epochs_spent(study.get_trials(deepcopy=False)) == 4 + 2 + 3 + 1


def test_the_summary_line_gives_a_ray_account_that_counted_repeated_epochs(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'q.db'}", study_name="s", direction="maximize")
    _trial(study, 4, state=TrialState.COMPLETE)
    _trial(study, 3, state=TrialState.PRUNED)
    assert budget_summary(study, Budget.parse("9")) == "budget: 7 epochs of 9 epochs spent"
    # a resumed Ray driver trained 2 epochs again from a checkpoint: its account says 9
    study.set_user_attr(RAY_BUDGET_EPOCHS_ATTR, 9)
    assert budget_summary(study, Budget.parse("9")) == (
        "budget: 9 epochs of 9 epochs spent (7 in the study; 2 trained again from a checkpoint after a resume)"
    )
    study.set_user_attr(RAY_BUDGET_EPOCHS_ATTR, 7)  # nothing trained twice: the line is the study's
    assert budget_summary(study, Budget.parse("9")) == "budget: 7 epochs of 9 epochs spent"


def test_claims_stop_when_what_is_left_cannot_hold_a_first_rung(tmp_path):
    """A new configuration only while the budget, less what the running trials need to reach
    their first rung, holds one more first rung; the search is done once nothing fits."""
    location = resolve_storage(str(tmp_path / "q.db"))
    study = optuna.create_study(storage=location.url, study_name="s", direction="maximize")
    tracker = BudgetTracker(Budget(10, "epochs"), first_rung=3)
    _trial(study, 5, state=TrialState.COMPLETE)
    running = _trial(study, 1, state=TrialState.RUNNING)  # needs 2 more epochs to reach its first rung
    # spent 6, left 4, of which 2 are reserved for the running trial: no room for 3 more, so this
    # worker is done (a policy that never resumes gives it nothing else to wait for)
    assert claim_trial(study, location, None, budget=tracker).done
    assert len(study.trials) == 2
    study.tell(running, state=TrialState.PRUNED)  # it stopped after 1 epoch: left 4 holds a first rung
    claimed = claim_trial(study, location, None, budget=tracker).trial
    assert isinstance(claimed, optuna.Trial)
    for epoch in (1, 2):
        claimed.report(0.5, epoch)
    study.tell(claimed, state=TrialState.PRUNED)  # spent 8: 2 left, fewer than a first rung
    assert claim_trial(study, location, None, budget=tracker).done
    assert claim_trial(study, location, 2, budget=None).done  # the trial count alone: 3 finished >= 2


def _distinct_epochs(trials) -> int:
    """Epochs trained, each (configuration, epoch) once however many trials reported it."""
    return len({(t.user_attrs.get(CHECKPOINT_ATTR, t.number), step) for t in trials for step in t.intermediate_values})


@pytest.mark.slow
def test_budget_run_stops_at_the_budget_and_a_killed_rerun_does_not_spend_it_twice(tmp_path, cifar_dir, capsys):
    storage = tmp_path / "q.db"
    args = tiny_run(cifar_dir, storage, "--min-completed", "2", "--quiet")
    args[args.index("--subset") + 1] = "512"  # epochs long enough to be caught mid-trial

    # a first run with part of the budget stops exactly there (first rung 1: nothing is left over)
    assert main(args + ["--budget", "3"]) == 0
    assert epochs_spent(load(storage).trials) == 3

    # the same study with a larger budget, killed while a trial trains, then run again (9 more
    # epochs: a run long enough to be caught, polled often, as its trials take a fraction of a second)
    def choose(trials):
        running = [t for t in trials if t.state == TrialState.RUNNING and len(t.intermediate_values) >= 1]
        return running[0].number if running else None

    victim, stderr = kill_run_during(
        args + ["--budget", "12"], storage, lambda s: load(s).trials, choose, deadline=240, poll=0.05
    )
    assert victim is not None, f"the run ended before it could be killed: {stderr}"
    assert 3 < epochs_spent(load(storage).trials) < 12
    assert main(args + ["--budget", "12"]) == 0
    trials = load(storage).trials
    assert epochs_spent(trials) == 12
    # an epoch checkpointed but not yet reported when the run was killed is counted by neither run
    assert 12 <= _distinct_epochs(trials) <= 12 + 1
    assert all(t.state != TrialState.RUNNING for t in trials)
    cut = [t for t in trials if BUDGET_CUT_ATTR in t.user_attrs]
    assert all(t.state == TrialState.PRUNED and t.user_attrs[BUDGET_CUT_ATTR] < 3 for t in cut)

    # run again with the same budget: nothing more is trained, and the search ends cleanly
    assert main(args + ["--budget", "12", "--trials", "100"]) == 0
    assert len(load(storage).trials) == len(trials)


@pytest.mark.slow
def test_a_time_budget_ends_the_search_within_an_epoch_of_it(tmp_path, cifar_dir, capsys):
    storage = tmp_path / "q.db"
    # more trials than any machine trains in 10 s, so that the budget, not the count, ends the search
    args = tiny_run(cifar_dir, storage, "--min-completed", "2", "--budget", "10s", "--trials", "100000")
    assert main(args) == 0
    assert "budget: " in capsys.readouterr().out
    study = load(storage)
    trials = study.trials
    longest_epoch = max(t.user_attrs.get("qhpo.epoch_seconds", 0.0) for t in trials)
    # spent: at most the epoch under way and a claim past the budget; at least the budget less the
    # first rung (two epochs here) that a new configuration must fit in
    assert 10 - 2 * longest_epoch - 2 <= seconds_spent(study) <= 10 + 2 * longest_epoch + 5
    assert all(t.state != TrialState.RUNNING for t in trials)


def _train(study, trial, values) -> bool:
    """Report ``values`` as the runner does; True when the pruner ended the trial (told PRUNED)."""
    for epoch, value in enumerate(values, start=1):
        trial.report(value, epoch)
        if trial.should_prune():
            study.pruner.flush()
            study.tell(trial, state=TrialState.PRUNED)
            return True
    study.pruner.flush()
    study.tell(trial, values[-1])
    return False


@pytest.mark.parametrize("endgame", [0.25, "off"])
def test_near_the_end_of_a_budget_a_claim_resumes_the_best_paused_trial_to_finish_and_no_rung_judges_it(
    tmp_path, endgame
):
    from qhpo.optuna import PredictivePruner

    location = resolve_storage(str(tmp_path / "q.db"))
    options = {"min_resource": 1, "quorum": 0, "endgame_slack": endgame}  # rungs at epochs 1 and 2 of 4
    pruner = PredictivePruner("qhpo", "svr", freeze_thaw=True, max_epochs=4, policy_options=options)
    study = optuna.create_study(storage=location.url, study_name="s", direction="maximize", pruner=pruner)
    tracker = BudgetTracker(Budget(10, "epochs"), first_rung=1)

    def claim():
        return claim_trial(study, location, None, budget=tracker).trial

    assert not _train(study, claim(), [0.5, 0.6, 0.7, 0.8])  # complete: 4 epochs
    assert _train(study, claim(), [0.1])  # paused at rung 1
    # 5 left: the paused trial needs 3, and 5 > 3 + a quarter of a training: no end yet; rung 1
    # has no free place, so a new configuration starts, and pauses too
    third = claim()
    assert RESUME_OF_ATTR not in third.user_attrs
    assert _train(study, third, [0.05])
    # 4 left: the trial paused at 0.1 stands above the one at 0.05 and resumes to finish
    claimed = claim()
    if endgame == "off":
        assert RESUME_OF_ATTR not in claimed.user_attrs  # a new configuration: nothing is free at rung 1
        return
    assert claimed.user_attrs[RESUME_OF_ATTR] == 1
    assert claimed.user_attrs[RESUME_ATTR]["finishing"] is True
    assert "4 epochs are left of the budget and it needs 3 to finish" in claimed.user_attrs[RESUME_ATTR]["reason"]
    claimed.set_user_attr(RESUMED_AT_ATTR, 1)  # as the runner does: epoch 1 comes from the checkpoint
    # at rung 2 it stands below the complete trial (0.2 against 0.6) and would pause; it finishes instead
    assert not _train(study, claimed, [0.1, 0.2, 0.3, 0.35])
    assert study.trials[claimed.number].state == TrialState.COMPLETE
    [view] = [v for v in pruner.trial_views(study) if v.key == claimed.number]
    assert view.finishing and view.status.value == "complete"
    assert epochs_spent(study.get_trials(deepcopy=False)) == 4 + 1 + 1 + 3
