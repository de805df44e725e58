"""`qhpo run --backend ray --budget`: the driver's account of a budget, and a real search bounded by it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("ray")

import optuna  # noqa: E402
from optuna.trial import TrialState  # noqa: E402
from ray.tune.experiment import Trial  # noqa: E402
from ray.tune.schedulers import TrialScheduler  # noqa: E402
from ray.tune.search import SearchAlgorithm  # noqa: E402

from qhpo._errors import QhpoError  # noqa: E402
from qhpo.policies import Decision, StoppingPolicy, TrialStatus, Verdict  # noqa: E402
from qhpo.ray import (  # noqa: E402
    PredictiveScheduler,
    RunningTrialLimiter,
    SchedulerStateCallback,
    SearchBudget,
    run_search,  # noqa: E402
)
from qhpo.ray._search import SCHEDULER_STATE_FILE  # noqa: E402
from qhpo.runner import BUDGET_CLOCK_PREFIX, BUDGET_CUT_ATTR, Budget, RunConfig, union_length  # noqa: E402
from qhpo.runner._budget import budget_summary  # noqa: E402
from ray_snapshot import scheduler_snapshot  # noqa: E402

pytestmark = pytest.mark.ray


def _budget_run(tmp_path, cifar_dir, study: str, budget: str, *, workers: int, epochs: int) -> RunConfig:
    """A real Ray search of the tiny CIFAR-10 subset, bounded by ``budget`` alone."""
    return RunConfig(
        study=study,
        storage=str(tmp_path / "qhpo.db"),
        trials=None,
        budget=budget,
        workers=workers,
        data_dir=cifar_dir,
        epochs=epochs,
        subset=256,
        val_size=256,
        device="cpu",
        policy="qhpo",
        predictor="svr",
        backend="ray",
        progress=False,
    )


class _Continue(StoppingPolicy):
    def decide(self, trial, trials):
        return Verdict(Decision.CONTINUE, trial.epochs)


def _trial(trial_id: str) -> Trial:
    return Trial("trainable", config={"lr": 0.1}, trial_id=trial_id, stub=True)


def test_epochs_are_counted_as_reported_and_a_new_configuration_needs_its_first_rung():
    budget = SearchBudget(Budget.parse("10"), first_rung=3)
    for _ in range(6):
        budget.epoch_reported(0.5)
    assert budget.spent() == 6 and budget.left() == 4
    assert budget.room_for_new([]) and budget.room_for_new([3, 7])  # running trials past their first rung
    assert not budget.room_for_new([1])  # two epochs are reserved for the trial still short of its rung
    budget.epoch_reported(None)
    assert budget.room_for_new([])  # 3 left hold a first rung of 3 ...
    budget.epoch_reported()
    assert not budget.room_for_new([]) and budget.left() == 2  # ... 2 do not
    assert budget.timed_epochs == 6 and budget.epoch_seconds == 3.0  # epochs without a time leave the mean


def test_seconds_are_the_union_of_the_driver_runs_and_a_restored_account_starts_a_new_run(monkeypatch):
    clock = iter([100.0, 130.0, 500.0, 520.0])
    monkeypatch.setattr("qhpo.ray._budget.time.time", lambda: next(clock))
    budget = SearchBudget(Budget.parse("1m"), first_rung=1)
    budget.epoch_reported(10.0)
    budget.epoch_reported(20.0)
    assert budget.spent() == 30.0
    resumed = SearchBudget(Budget.parse("1m"), first_rung=1)
    resumed.set_state(budget.get_state())  # a killed driver's account, restored by the next run
    resumed.epoch_reported(10.0)
    resumed.epoch_reported(10.0)
    assert resumed.spent() == 50.0  # 30 s + 20 s: the 370 s between the runs count nothing
    assert resumed.epochs == 4
    assert not resumed.room_for_new([])  # 10 s left, and an epoch takes 12.5 s on average
    assert resumed.room_for_new([]) is (resumed.left() >= 12.5)


def test_the_scheduler_cuts_the_running_trial_once_the_budget_is_spent_and_keeps_the_account():
    budget = SearchBudget(Budget.parse("5"), first_rung=1)
    scheduler = PredictiveScheduler(_Continue(max_epochs=3), metric="acc", epoch_attr="epoch", budget=budget)
    a, b = _trial("a"), _trial("b")
    for trial in (a, b):
        scheduler.on_trial_add(None, trial)
    assert [scheduler.on_trial_result(None, a, {"acc": 0.1 * e, "epoch": e}) for e in (1, 2)] == ["CONTINUE"] * 2
    assert scheduler.on_trial_result(None, a, {"acc": 0.3, "epoch": 3}) == TrialScheduler.STOP  # complete
    assert scheduler.on_trial_result(None, b, {"acc": 0.1, "epoch": 1}) == "CONTINUE"
    assert scheduler.room_for_new() is True  # 1 left holds a first rung of 1 (b has passed its own)
    assert scheduler.on_trial_result(None, b, {"acc": 0.2, "epoch": 2}) == TrialScheduler.STOP  # the 5th epoch
    assert scheduler.budget_cut("b") == 2 and scheduler.budget_cut("a") is None
    views = {v.key: v for v in scheduler.trial_views()}
    assert views["a"].status == TrialStatus.COMPLETE and views["b"].status == TrialStatus.STOPPED
    assert ("b", 2, "budget") in scheduler.decisions_

    restored = PredictiveScheduler(
        _Continue(max_epochs=3), metric="acc", epoch_attr="epoch", budget=SearchBudget(Budget.parse("5"), 1)
    )
    SchedulerStateCallback(restored).set_state(SchedulerStateCallback(scheduler).get_state())
    assert restored.budget.spent() == 5 and restored.budget_cut("b") == 2  # not spent twice after a resume
    assert restored.get_state() == scheduler.get_state()


def test_near_the_end_of_the_budget_the_scheduler_resumes_the_best_paused_trial_to_finish_unjudged():
    from qhpo.policies import make_policy

    def scheduler_of(budget):
        policy = make_policy("qhpo", max_epochs=4, min_resource=1, quorum=0, random_state=0)  # rungs 1 and 2
        return PredictiveScheduler(policy, metric="acc", epoch_attr="epoch", budget=budget)

    scheduler = scheduler_of(SearchBudget(Budget.parse("10"), first_rung=1))
    a, b, c = _trial("a"), _trial("b"), _trial("c")
    for trial in (a, b, c):
        scheduler.on_trial_add(None, trial)
    for e, acc in enumerate([0.5, 0.6, 0.7, 0.8], start=1):
        scheduler.on_trial_result(None, a, {"acc": acc, "epoch": e})
    assert scheduler.on_trial_result(None, b, {"acc": 0.1, "epoch": 1}) == TrialScheduler.PAUSE
    assert scheduler.promote(1) == []  # 5 left: b needs 3, and 5 > 3 + a quarter of a training
    assert scheduler.on_trial_result(None, c, {"acc": 0.05, "epoch": 1}) == TrialScheduler.PAUSE
    assert scheduler.promote(1) == ["b"]  # 4 left: b stands above c at epoch 1, and finishes
    assert ("b", 1, "resume") in scheduler.decisions_
    views = {v.key: v for v in scheduler.trial_views()}
    assert views["b"].finishing and not views["c"].finishing
    # at rung 2 b stands below a (0.2 against 0.6) and would pause; it finishes instead
    assert scheduler.on_trial_result(None, b, {"acc": 0.2, "epoch": 2}) == TrialScheduler.CONTINUE
    restored = scheduler_of(SearchBudget(Budget.parse("10"), first_rung=1))
    SchedulerStateCallback(restored).set_state(SchedulerStateCallback(scheduler).get_state())
    assert {v.key: v for v in restored.trial_views()}["b"].finishing  # a resumed driver keeps the mark
    assert restored.on_trial_result(None, b, {"acc": 0.3, "epoch": 3}) == TrialScheduler.CONTINUE
    assert restored.on_trial_result(None, b, {"acc": 0.35, "epoch": 4}) == TrialScheduler.STOP
    assert {v.key: v for v in restored.trial_views()}["b"].status == TrialStatus.COMPLETE
    assert restored.budget.spent() == 4 + 1 + 1 + 3

    without = scheduler_of(None)  # no budget: no end, and b waits at rung 1 as before
    for trial in (a, b, c):
        without.on_trial_add(None, trial)
    for e, acc in enumerate([0.5, 0.6, 0.7, 0.8], start=1):
        without.on_trial_result(None, a, {"acc": acc, "epoch": e})
    without.on_trial_result(None, b, {"acc": 0.1, "epoch": 1})
    without.on_trial_result(None, c, {"acc": 0.05, "epoch": 1})
    assert without.promote(1) == []


class _Endless(SearchAlgorithm):
    """A search that always has another configuration."""

    def __init__(self):
        self.made = 0

    def next_trial(self):
        self.made += 1
        return _trial(f"new-{self.made}")

    def is_finished(self) -> bool:
        return False


def test_the_limiter_starts_no_configuration_the_budget_cannot_hold():
    budget = SearchBudget(Budget.parse("7"), first_rung=3)
    scheduler = PredictiveScheduler(_Continue(max_epochs=4), metric="acc", epoch_attr="epoch", budget=budget)
    limiter = RunningTrialLimiter(_Endless(), 2, scheduler)
    running, new = _trial("r"), _trial("new-1")
    scheduler.on_trial_add(None, running)
    scheduler.on_trial_result(None, running, {"acc": 0.1, "epoch": 1})
    assert limiter.next_trial().trial_id == "new-1"  # 6 left, 2 reserved for r's rung: 4 hold a rung of 3
    scheduler.on_trial_add(None, new)
    for epoch in (2, 3):  # 6 - 1, then 5 - 1 left, with 3 + 2, then 3 + 1 reserved
        assert limiter.next_trial() is None and not limiter.is_finished()
        scheduler.on_trial_result(None, running, {"acc": 0.1 * epoch, "epoch": epoch})
    scheduler.on_trial_result(None, new, {"acc": 0.1, "epoch": 1})
    assert limiter.next_trial() is None and not limiter.is_finished()  # 3 left: only an idle search could start one
    scheduler.on_trial_result(None, new, {"acc": 0.2, "epoch": 2})
    assert limiter.next_trial() is None and limiter.is_finished()  # 2 left: not even an idle search starts one
    assert limiter.searcher.made == 1


def test_a_ray_search_under_a_budget_spends_it_exactly(local_ray, tmp_path, cifar_dir):
    config = _budget_run(tmp_path, cifar_dir, "budget", "5", workers=1, epochs=2)
    assert run_search(config) == 0
    study = optuna.load_study(study_name="budget", storage=f"sqlite:///{tmp_path / 'qhpo.db'}")
    trials = study.get_trials()
    # One trial at a time with a first rung of 1 epoch: a new configuration starts while an
    # epoch is left, and the trial training when the 5th epoch ends is cut there (unless
    # that epoch was its last).
    assert sum(len(t.intermediate_values) for t in trials) == 5, [(t.state, t.intermediate_values) for t in trials]
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    cut = [t for t in trials if BUDGET_CUT_ATTR in t.user_attrs]
    assert len(cut) <= 1 and all(t.user_attrs[BUDGET_CUT_ATTR] == len(t.intermediate_values) == 1 for t in cut)
    assert cut or trials[-1].state == TrialState.COMPLETE
    assert budget_summary(study, Budget.parse("5")).startswith("budget: 5 epochs of 5 epochs spent")
    # the account lives in the experiment's scheduler, so a resume keeps the budget it started with
    with pytest.raises(QhpoError, match="started with --budget 5; resume it with the same --budget, not 6"):
        run_search(config.with_(resume=True, budget="6"))


def test_two_trials_at_once_overrun_an_epochs_budget_by_at_most_one_epoch(local_ray, tmp_path, cifar_dir):
    config = _budget_run(tmp_path, cifar_dir, "two", "7", workers=2, epochs=3)
    assert run_search(config) == 0
    study = optuna.load_study(study_name="two", storage=f"sqlite:///{tmp_path / 'qhpo.db'}")
    account = json.loads((tmp_path / "two" / SCHEDULER_STATE_FILE).read_text())["budget"]
    recorded = sum(len(t.intermediate_values) for t in study.get_trials())
    # the epoch that spends the budget cuts its trial; the other trial's epoch under way still ends
    assert 7 <= account["epochs"] == recorded <= 7 + 1, [(t.state, t.intermediate_values) for t in study.get_trials()]


def test_a_killed_driver_resumed_does_not_spend_the_budget_twice(local_ray, tmp_path, cifar_dir):
    args = [sys.executable, "-m", "qhpo", "run", "--backend", "ray", "--address", local_ray, "--quiet"]
    args += ["--study", "killed", "--storage", str(tmp_path / "qhpo.db"), "--data-dir", str(cifar_dir)]
    args += ["--budget", "20", "--workers", "1", "--epochs", "2", "--subset", "256", "--val-size", "256"]
    args += ["--device", "cpu", "--policy", "qhpo", "--predictor", "svr"]
    env = {**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "1"}
    driver = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    saved, deadline = None, time.monotonic() + 240
    while time.monotonic() < deadline and driver.poll() is None:
        state = scheduler_snapshot(tmp_path / "killed" / "ray")
        saved = state["budget"]["epochs"] if state else None
        if saved is not None and 2 <= saved <= 14:
            break
        time.sleep(0.1)
    assert saved is not None and 2 <= saved <= 14, f"no saved account mid-search: {driver.stderr.read()[-2000:]!r}"
    driver.send_signal(signal.SIGKILL)
    driver.wait()

    resumed = subprocess.run(args + ["--resume"], env=env, capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    final = json.loads((tmp_path / "killed" / SCHEDULER_STATE_FILE).read_text())
    assert final["budget"]["epochs"] == 20  # one trial at a time: the account ends on the budget
    study = optuna.load_study(study_name="killed", storage=f"sqlite:///{tmp_path / 'qhpo.db'}")
    recorded = sum(len(t.intermediate_values) for t in study.get_trials())
    # The resumed driver went on from the saved account: the epochs in the study (each once)
    # are at most the budget, short of it only by epochs trained again from a checkpoint.
    assert 20 - 2 <= recorded <= 20, recorded
    # and the summary line gives the account that ended the search, not the study's count
    assert budget_summary(study, Budget.parse("20")).startswith("budget: 20 epochs of 20 epochs spent")


def test_a_time_budget_on_ray_ends_the_search_and_the_summary_reads_the_drivers_clock(local_ray, tmp_path, cifar_dir):
    config = _budget_run(tmp_path, cifar_dir, "timed", "6s", workers=1, epochs=2)
    assert run_search(config) == 0
    study = optuna.load_study(study_name="timed", storage=f"sqlite:///{tmp_path / 'qhpo.db'}")
    account = json.loads((tmp_path / "timed" / SCHEDULER_STATE_FILE).read_text())["budget"]
    clocks = {k: v for k, v in study.user_attrs.items() if k.startswith(BUDGET_CLOCK_PREFIX)}
    assert sorted(clocks.values()) == sorted(account["clock"]) and len(clocks) == 1  # one driver run
    spent = union_length(account["clock"])
    epochs = sum(len(t.intermediate_values) for t in study.get_trials())
    assert epochs == account["epochs"] >= 2
    # it ran until what was left could not hold a first rung (1 epoch) at the mean epoch's
    # time, or cut the trial training when the time ran out, one epoch or a trial's start late
    mean = account["epoch_seconds"] / account["timed_epochs"]
    assert 6 - 3 * mean <= spent <= 6 + 3 * mean + 5, (spent, mean)
    assert budget_summary(study, Budget.parse("6s")).startswith(f"budget: {spent:.0f} s of 6 s spent ({epochs} epochs)")
