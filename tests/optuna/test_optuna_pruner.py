"""PredictivePruner inside real Optuna studies fed with the recorded CIFAR-10 learning curves."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import optuna
import pytest

from qhpo.curves import read_curve_table
from qhpo.optuna import (
    CHECKPOINT_ATTR,
    DECISIONS_ATTR,
    MAX_EPOCHS_ATTR,
    RESUME_OF_ATTR,
    STOP_ATTR,
    PredictivePruner,
    checkpoint_key,
)
from qhpo.policies import Decision, Resumption, StoppingPolicy, TrialStatus, TrialView, Verdict

EPOCHS = 30
TRIALS = 30

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def curves(curve_table_path):
    """Recorded curves (first EPOCHS epochs) in a fixed shuffled order: trial n replays row n."""
    table = read_curve_table(curve_table_path).truncate(EPOCHS)
    order = np.random.default_rng(0).permutation(table.n_trials)
    return table.curves[order]


def replay_objective(curves):
    def objective(trial):
        policy = trial.study.pruner.policy_
        if getattr(policy, "service", None) is not None:
            policy.service.wait(60)  # fits queued so far land first: decisions do not depend on thread timing
        curve = curves[trial.number % len(curves)]
        trial.suggest_float("x", 0.0, 1.0)  # a parameter, so the views carry params
        for epoch, value in enumerate(curve, start=1):
            trial.report(float(value), epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        trial.study.pruner.flush()  # records are written in the background; a finished trial takes none
        return float(curve[-1])

    return objective


def replay_in_sqlite(tmp_path, curves, name, pruner):
    """Replay TRIALS trials through ``pruner`` in a SQLite study; the study reloaded from the file."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction="maximize",
        pruner=pruner,
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    study.optimize(replay_objective(curves), n_trials=TRIALS)
    return optuna.load_study(study_name=name, storage=storage)  # decisions are in the file


def check_decisions(study):
    """Every pruned trial carries its stop record; every record is well formed."""
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    for trial in pruned:
        stop = trial.user_attrs[STOP_ATTR]
        assert stop["decision"] in ("stop", "pause")  # qhpo pauses what it does not keep
        assert (trial.user_attrs.get("qhpo.paused") == stop) == (stop["decision"] == "pause")
        assert stop["epoch"] == len(trial.intermediate_values) < EPOCHS
        assert "observed value" in stop["reason"] and stop["threshold"] is not None
        if stop["predicted_final"] is not None:  # judged on a prediction: it fell below the cut-off (maximize)
            assert np.isfinite(stop["predicted_final"]) and stop["std"] >= 0
            assert stop["predicted_final"] < stop["threshold"]
        assert trial.user_attrs[DECISIONS_ATTR][-1] == stop
    for trial in study.trials:
        for record in trial.user_attrs.get(DECISIONS_ATTR, []):
            assert set(record) == {
                "epoch",
                "decision",
                "predicted_final",
                "std",
                "threshold",
                "reason",
                "step",
                "max_epochs",
                "max_epochs_from",
            }
            assert record["step"] >= record["epoch"] and record["max_epochs"] >= 1 and record["max_epochs_from"]
            assert record["decision"] in {d.value for d in Decision}
    return pruned


@pytest.mark.slow
def test_pruner_in_sqlite_study_stops_trials_and_records_decisions(tmp_path, curves):
    pruner = PredictivePruner("qhpo", "svr", max_epochs=EPOCHS, random_state=0)
    reloaded = replay_in_sqlite(tmp_path, curves, "replay", pruner)
    pruned = check_decisions(reloaded)
    assert len(pruned) >= 5
    trained = sum(len(t.intermediate_values) for t in reloaded.trials)
    assert trained < 0.85 * TRIALS * EPOCHS
    # The first trials feed the predictor and always run to the end.
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in reloaded.trials[: pruner.policy_.min_completed])
    # Trials stop only where the policy decides, and every decision rested on a prediction.
    rungs = set(pruner.policy_.decision_epochs())
    assert all(t.user_attrs[STOP_ATTR]["epoch"] in rungs for t in pruned)
    # Every trial replayed exactly its recorded curve up to where it stopped.
    for trial in reloaded.trials:
        np.testing.assert_allclose(
            [trial.intermediate_values[e] for e in sorted(trial.intermediate_values)],
            curves[trial.number][: len(trial.intermediate_values)],
        )


def test_pruner_reads_max_epochs_from_study_and_ignores_failed_trials(tmp_path, curves):
    pruner = PredictivePruner("qhpo", "svr", random_state=0)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", direction="maximize", pruner=pruner)
    objective = replay_objective(curves)
    assert pruner.policy_ is None
    study.optimize(objective, n_trials=3)
    assert pruner.policy_ is not None and pruner.policy_.max_epochs == EPOCHS  # longest complete curve

    study2 = optuna.create_study(direction="maximize", pruner=PredictivePruner("qhpo", "svr"))
    study2.set_user_attr(MAX_EPOCHS_ATTR, EPOCHS)

    def failing_then_replay(trial):
        if trial.number % 5 == 4:
            trial.report(float("nan"), 1)
            assert trial.should_prune()  # a non-finite value is stopped at once
            raise RuntimeError("diverged")
        return objective(trial)

    study2.optimize(failing_then_replay, n_trials=30, catch=(RuntimeError,))
    assert study2.pruner.policy_.max_epochs == EPOCHS
    states = {t.state for t in study2.trials}
    assert optuna.trial.TrialState.FAIL in states and optuna.trial.TrialState.PRUNED in states
    for trial in study2.trials:
        if trial.state == optuna.trial.TrialState.FAIL:
            assert "not finite" in trial.user_attrs[STOP_ATTR]["reason"]
    check_decisions(study2)


class StopAfterTwoIfWorseThanHalf(StoppingPolicy):
    """A user's own rule: stop at epoch 2 when the value is below 0.5."""

    name = "below-half"

    def decide(self, trial, trials):
        assert all(isinstance(t.status, TrialStatus) for t in trials)
        assert sum(t.key == trial.key for t in trials) == 1
        stop = trial.epochs == 2 and trial.curve[-1] < 0.5
        return Verdict(
            Decision.STOP if stop else Decision.CONTINUE, trial.epochs, "below 0.5 at epoch 2" if stop else ""
        )

    def decision_epochs(self):
        return (2,)


def test_pruner_takes_a_policy_object(curves):
    study = optuna.create_study(
        direction="maximize", pruner=PredictivePruner(StopAfterTwoIfWorseThanHalf(max_epochs=EPOCHS))
    )
    study.optimize(replay_objective(curves), n_trials=20)
    for trial in study.trials:
        epochs = len(trial.intermediate_values)
        if curves[trial.number][1] < 0.5:
            assert trial.state == optuna.trial.TrialState.PRUNED and epochs == 2
            assert trial.user_attrs[STOP_ATTR]["predicted_final"] is None
        else:
            assert trial.state == optuna.trial.TrialState.COMPLETE and epochs == EPOCHS


def test_failing_annealer_falls_back_to_svr_with_one_warning(monkeypatch, curves):
    monkeypatch.delenv("DWAVE_API_TOKEN", raising=False)
    monkeypatch.setenv("DWAVE_CONFIG_FILE", "/nonexistent/dwave.conf")
    # qhpo-stop predicts at the rung (qhpo leaves its predictions to promote()), so the annealer is met
    pruner = PredictivePruner("qhpo-stop", "qsvr", sampler="dwave", max_epochs=EPOCHS, random_state=0)
    study = optuna.create_study(direction="maximize", pruner=pruner, sampler=optuna.samplers.RandomSampler(seed=0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study.optimize(replay_objective(curves), n_trials=TRIALS)
    fallbacks = [w for w in caught if "classical SVR" in str(w.message)]
    assert len(fallbacks) == 1, [str(w.message) for w in caught]
    assert pruner.policy_.service.active_model == "svr"
    assert all(t.state != optuna.trial.TrialState.FAIL for t in study.trials)
    assert len(check_decisions(study)) >= 1


WORKER = textwrap.dedent("""
    import json, os, sys
    import numpy as np, optuna
    from qhpo.optuna import PredictivePruner
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage, curves_path, n_trials, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    curves = np.load(curves_path)
    if storage.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend
        storage = optuna.storages.JournalStorage(JournalFileBackend(storage[len("journal:"):]))
    study = optuna.load_study(study_name="shared", storage=storage,
                              pruner=PredictivePruner("qhpo", "svr", max_epochs=curves.shape[1], random_state=seed),
                              sampler=optuna.samplers.RandomSampler(seed=seed))
    def objective(trial):
        trial.set_user_attr("pid", os.getpid())
        curve = curves[trial.number % len(curves)]
        trial.suggest_float("x", 0.0, 1.0)
        for epoch, value in enumerate(curve, start=1):
            trial.report(float(value), epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        study.pruner.flush()
        return float(curve[-1])
    study.optimize(objective, n_trials=n_trials)
""")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite"])  # journal files: tests/runner/test_run.py runs two workers on one
def test_two_worker_processes_share_one_storage(tmp_path, curves, kind):
    curves_path = tmp_path / "curves.npy"
    np.save(curves_path, curves)
    if kind == "sqlite":
        storage = f"sqlite:///{tmp_path / 'shared.db'}"
        optuna.create_study(storage=storage, study_name="shared", direction="maximize")
    else:
        storage = f"journal:{tmp_path / 'shared.log'}"
        from optuna.storages.journal import JournalFileBackend

        optuna.create_study(
            storage=optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "shared.log"))),
            study_name="shared",
            direction="maximize",
        )
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), storage, str(curves_path), str(TRIALS // 2), str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for seed in (1, 2)
    ]
    for worker in workers:
        out, _ = worker.communicate(timeout=240)
        assert worker.returncode == 0, out

    if kind == "sqlite":
        study = optuna.load_study(study_name="shared", storage=storage)
    else:
        study = optuna.load_study(
            study_name="shared",
            storage=optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "shared.log"))),
        )
    assert len(study.trials) == TRIALS
    assert len({t.user_attrs["pid"] for t in study.trials}) == 2
    assert {t.state for t in study.trials} <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    pruned = check_decisions(study)
    assert len(pruned) >= 3
    # Every trial replayed exactly its own recorded curve up to where it stopped.
    for trial in study.trials:
        values = [trial.intermediate_values[e] for e in sorted(trial.intermediate_values)]
        np.testing.assert_allclose(values, curves[trial.number][: len(values)])


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"policy": "nope"}, "policy"),
        ({"predictor": "gp"}, "predictor"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"policy": 3}, "policy"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        PredictivePruner(**kwargs)


def test_baseline_pruners_are_optunas_own_with_the_documented_defaults():
    from qhpo.optuna import OPTUNA_PRUNERS, optuna_pruner, pruner_defaults

    assert OPTUNA_PRUNERS[:3] == ("median", "sha", "hyperband")  # Optuna's own, then other Optuna pruners
    assert pruner_defaults("median", 200) == {"n_startup_trials": 5, "n_warmup_steps": 20}
    assert pruner_defaults("hyperband", 30) == {"min_resource": 2, "max_resource": 30, "reduction_factor": 3}
    assert isinstance(optuna_pruner("median", 200), optuna.pruners.MedianPruner)
    assert isinstance(optuna_pruner("median", 200, percentile=25.0), optuna.pruners.PercentilePruner)
    assert isinstance(optuna_pruner("sha", 200, reduction_factor=2), optuna.pruners.SuccessiveHalvingPruner)
    assert isinstance(optuna_pruner("hyperband", 3), optuna.pruners.HyperbandPruner)
    with pytest.raises(ValueError, match="name must be one of"):
        optuna_pruner("asha", 200)
    with pytest.raises(ValueError, match="epochs"):
        pruner_defaults("sha", True)


# -- freeze-thaw: paused trials and their resumptions -----------------------------------------
class PauseBelowHalf(StoppingPolicy):
    """A user's own resuming rule: pause at epoch 2 below 0.5; once ``after`` trials completed,
    resume the paused trials, highest value at the pause first."""

    name = "pause-below-half"

    def __init__(self, *, after: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.after = after
        self.seen: list[list[TrialView]] = []

    @property
    def resumes(self):
        return True

    def decision_epochs(self):
        return (2,)

    def decide(self, trial, trials):
        assert sum(t.key == trial.key for t in trials) == 1  # a configuration is seen once
        pause = trial.epochs == 2 and trial.curve[-1] < 0.5
        return Verdict(Decision.PAUSE if pause else Decision.CONTINUE, trial.epochs, "below 0.5" if pause else "")

    def promote(self, trials, *, limit=1):
        self.seen.append(list(trials))
        if sum(t.status == TrialStatus.COMPLETE for t in trials) < self.after:
            return []
        paused = sorted((t for t in trials if t.status == TrialStatus.PAUSED), key=lambda t: (-t.curve[-1], t.key))
        return [Resumption(t.key, t.epochs, "enough trials completed") for t in paused[:limit]]


def checkpointing_objective(curves, folder):
    """Replays row ``checkpoint key`` of ``curves``, saving the curve so far as the checkpoint after
    every epoch; a resumption loads it, reports its epochs again and goes on."""
    import json

    def objective(trial):
        key = checkpoint_key(trial)
        trial.set_user_attr(CHECKPOINT_ATTR, key)
        trial.suggest_float("x", 0.0, 1.0)
        path = folder / f"trial-{key}.json"
        done = []
        if trial.user_attrs.get(RESUME_OF_ATTR) is not None:
            done = json.loads(path.read_text())
            for epoch, value in enumerate(done, start=1):
                trial.report(value, epoch)
        curve = curves[key]
        for epoch in range(len(done) + 1, len(curve) + 1):
            done.append(float(curve[epoch - 1]))
            path.write_text(json.dumps(done))
            trial.report(done[-1], epoch)
            if trial.should_prune():
                if not trial.study.pruner.paused(trial):
                    path.unlink()
                raise optuna.TrialPruned()
        trial.study.pruner.flush()
        return done[-1]

    return objective


def test_pause_ends_pruned_with_its_record_and_a_resumption_continues_from_the_checkpoint(tmp_path):
    from qhpo.optuna import PAUSED_ATTR, RESUME_ATTR, configuration_counts, resumable_trials

    # Curves of 4 epochs: rows 1 and 3 are below 0.5 at epoch 2 (paused), the others complete.
    curves = np.array(
        [[0.3, 0.6, 0.7, 0.8], [0.2, 0.3, 0.5, 0.9], [0.4, 0.55, 0.6, 0.6], [0.1, 0.2, 0.2, 0.2], [0.5, 0.7, 0.8, 0.85]]
    )
    policy = PauseBelowHalf(max_epochs=4, after=3)
    pruner = PredictivePruner(policy)
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 's.db'}", direction="maximize", pruner=pruner, study_name="s"
    )
    objective = checkpointing_objective(curves, tmp_path)
    study.optimize(objective, n_trials=2)
    assert resumable_trials(study) == []  # one trial complete: the rule resumes nothing yet
    study.optimize(objective, n_trials=3)
    paused = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert [t.number for t in paused] == [1, 3]
    for trial in paused:
        record = trial.user_attrs[PAUSED_ATTR]
        assert record["decision"] == "pause" and record["epoch"] == 2 and "paused by policy" in record["reason"]
        assert trial.user_attrs[STOP_ATTR] == record == trial.user_attrs[DECISIONS_ATTR][-1]
        assert (tmp_path / f"trial-{trial.number}.json").exists()  # checkpoint kept
    assert [v.status for v in pruner.trial_views(study)] == [
        TrialStatus.COMPLETE,
        TrialStatus.PAUSED,
        TrialStatus.COMPLETE,
        TrialStatus.PAUSED,
        TrialStatus.COMPLETE,
    ]
    assert configuration_counts(study.trials) == (5, 0)

    (first,) = resumable_trials(study, limit=1)
    assert (first.number, first.checkpoint, first.epoch, first.params) == (1, 1, 2, study.trials[1].params)
    assert first.resumption.key == 1 and first.policy == "pause-below-half"
    first.enqueue(study)
    # The enqueued resumption supersedes trial 1: it is listed no more, and counted once.
    assert [r.number for r in resumable_trials(study, limit=5)] == [3]
    assert configuration_counts(study.trials) == (4, 0)
    study.optimize(objective, n_trials=1)
    resumption = study.trials[5]
    assert resumption.state == optuna.trial.TrialState.COMPLETE
    assert resumption.user_attrs[RESUME_OF_ATTR] == 1 and resumption.user_attrs[CHECKPOINT_ATTR] == 1
    assert resumption.user_attrs[RESUME_ATTR]["decision"] == "resume"
    assert resumption.params == study.trials[1].params
    # Epochs 1..2 are the paused trial's, epochs 3..4 follow on.
    assert [resumption.intermediate_values[e] for e in (1, 2, 3, 4)] == list(curves[1])
    assert configuration_counts(study.trials) == (5, 0)
    views = pruner.trial_views(study)
    assert [v.key for v in views] == [0, 5, 2, 3, 4]  # trial 5 continues trial 1, in its place
    assert views[1].status == TrialStatus.COMPLETE and list(views[1].curve) == list(curves[1])
    assert pruner.paused(study.trials[3]) and not pruner.paused(study.trials[5])


def test_a_resumption_that_fails_is_the_configurations_one_view_and_its_paused_trial_is_not_resumed_again(tmp_path):
    from qhpo.optuna import RESUME_OF_ATTR as OF
    from qhpo.optuna import configuration_counts, resumable_trials

    curves = np.array([[0.6, 0.7, 0.8]] * 3 + [[0.1, 0.2, 0.3]])
    pruner = PredictivePruner(PauseBelowHalf(max_epochs=3, after=3))
    study = optuna.create_study(direction="maximize", pruner=pruner)
    study.optimize(checkpointing_objective(curves, tmp_path), n_trials=4)
    (paused,) = resumable_trials(study)
    paused.enqueue(study)
    trial = study.ask()
    assert trial.user_attrs[OF] == 3
    for epoch in range(1, paused.epoch + 1):  # the checkpoint's epochs again, then the loss diverges
        trial.report(float(curves[3, epoch - 1]), epoch)
    study.tell(trial, state=optuna.trial.TrialState.FAIL)  # diverged on resumption: not retried
    assert resumable_trials(study) == []  # never resumed again
    # as the replay sees a trial that diverged after a resumption: once, failed (no rung's peer)
    views = {v.key: v for v in pruner.trial_views(study)}
    assert 3 not in views and views[trial.number].status == TrialStatus.FAILED
    assert list(views[trial.number].curve) == list(curves[3, : paused.epoch])
    assert configuration_counts(study.trials) == (4, 0)  # still one finished configuration


@pytest.mark.slow
def test_the_resume_example_resumes_paused_trials_and_their_curves_go_on(tmp_path):
    from qhpo.optuna import PAUSED_ATTR, configuration_counts
    from repo_scripts import load_script

    example = load_script("examples/resume_paused_trials.py", "resume_example")
    folder = tmp_path / "checkpoints"
    study = example.search(16, 8, f"sqlite:///{tmp_path / 'example.db'}", folder)

    trials = study.trials
    assert configuration_counts(trials) == (16, 0)
    resumptions = [t for t in trials if RESUME_OF_ATTR in t.user_attrs]
    assert resumptions, "the example resumed no trial"
    train, val = example.load_digits_split(0)
    for resumption in resumptions:
        paused = trials[resumption.user_attrs[RESUME_OF_ATTR]]
        r = paused.user_attrs[PAUSED_ATTR]["epoch"]
        assert paused.state == optuna.trial.TrialState.PRUNED and len(paused.intermediate_values) == r
        assert resumption.params == paused.params and checkpoint_key(resumption) == checkpoint_key(paused)
        values = [resumption.intermediate_values[e] for e in sorted(resumption.intermediate_values)]
        assert len(values) > r and values[:r] == [paused.intermediate_values[e] for e in range(1, r + 1)]
        # The curve goes on across the pause as uninterrupted training does.
        model, optimizer = example.build(resumption.params, seed=checkpoint_key(resumption))
        straight = []
        for epoch in range(1, len(values) + 1):
            example.train_epoch(model, optimizer, train, seed=checkpoint_key(resumption), epoch=epoch)
            straight.append(example.accuracy(model, val))
        assert values == straight
    # A configuration that ends paused (or complete) keeps its checkpoint, a stopped one loses it.
    last = {checkpoint_key(t): t for t in trials}  # the trial that carries each configuration now
    for key, trial in last.items():
        stopped = trial.state == optuna.trial.TrialState.PRUNED and PAUSED_ATTR not in trial.user_attrs
        assert (folder / f"trial-{key}.pt").exists() != stopped
    assert not [p for p in folder.iterdir() if not p.name.endswith(".pt")]


def test_the_first_rung_test_in_a_sqlite_study(tmp_path, curves):
    """``first_rung_test``: the first trials of a real study pass the first rung unjudged,
    the test ends once they reached the second, and every decision is recorded."""
    pruner = PredictivePruner("qhpo", "svr", max_epochs=EPOCHS, random_state=0, policy_options={"first_rung_test": 8})
    reloaded = replay_in_sqlite(tmp_path, curves, "tested", pruner)
    policy = pruner.policy_
    first, second = policy.decision_epochs()[:2]
    assert policy.first_rung_correlation is not None and policy.first_rung_on([]) is (
        policy.first_rung_correlation >= 0.5
    )
    pruned = check_decisions(reloaded)
    assert pruned
    for trial in reloaded.trials[:8]:  # the testers: each passed the first rung unjudged
        assert len(trial.intermediate_values) >= second
    stopped_at_first = [t for t in pruned if t.user_attrs[STOP_ATTR]["epoch"] == first]
    assert all(t.number >= 8 for t in stopped_at_first)
    if not policy.first_rung_on([]):
        assert stopped_at_first == []


def test_a_trial_held_by_the_start_up_rule_is_marked_in_the_storage_for_every_process(tmp_path):
    from qhpo.optuna import UNRANKED_ATTR, ResumableTrial

    storage = f"sqlite:///{tmp_path / 's.db'}"
    options = {"min_completed": 2, "min_resource": 2}  # rungs at epochs 2 and 4 of 8
    pruner = PredictivePruner("qhpo", max_epochs=8, policy_options=options)
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize", pruner=pruner)
    trial = study.ask()
    for epoch, value in enumerate([0.1, 0.2, 0.3, 0.4, 0.5], start=1):
        trial.report(value, epoch)
        assert not trial.should_prune()  # no trial has completed: the start-up rule holds it
    assert study.trials[0].user_attrs[UNRANKED_ATTR] == [2, 4]
    # another process's pruner reads the mark from the storage
    elsewhere = PredictivePruner("qhpo", max_epochs=8, policy_options=options)
    other = optuna.load_study(study_name="s", storage=storage, pruner=elsewhere)
    (view,) = elsewhere.trial_views(other)
    assert view.unranked == frozenset({2, 4})
    # a resumption carries it over
    resumption = ResumableTrial(0, {}, 0, 4, Resumption(0, 4), unranked=(2, 4))
    assert resumption.user_attrs[UNRANKED_ATTR] == [2, 4]
