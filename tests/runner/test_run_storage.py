"""The runner's bookkeeping on real storages, without training: exact trial counts under
concurrent processes, one retry per interrupted trial, bounded retries of a configuration
whose process keeps dying, and the checkpoints a finished search keeps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading

import optuna
import pytest
from optuna.trial import TrialState

from qhpo.runner._storage import (
    CHECKPOINT_ATTR,
    FAILURE_ATTR,
    KILLS_ATTR,
    MAX_KILLS,
    OWNER_ATTR,
    RETRY_OF_ATTR,
    StorageLocation,
    enqueue_retry,
    recover_interrupted_trials,
    resolve_storage,
)
from qhpo.runner._worker import _end_interrupted, claim_trial

optuna.logging.set_verbosity(optuna.logging.WARNING)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _location(tmp_path, kind: str) -> StorageLocation:
    storage = {"sqlite": str(tmp_path / "q.db"), "journal": f"journal:{tmp_path / 'q.log'}"}[kind]
    return resolve_storage(storage)


def _new_study(location: StorageLocation) -> optuna.Study:
    return optuna.create_study(study_name="s", storage=location.open(), direction="maximize")


_CLAIMER = textwrap.dedent("""
    import random, sys, threading, time
    import optuna
    from qhpo.runner._storage import StorageLocation
    from qhpo.runner._worker import claim_trial
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url, kind, run_dir, target, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    location = StorageLocation(url=url, run_dir=__import__("pathlib").Path(run_dir), kind=kind)

    def work(index):
        study = optuna.load_study(study_name="s", storage=location.open())
        rng = random.Random(index)
        while True:
            claim = claim_trial(study, location, target)
            if claim.done:
                return
            if claim.wait:
                time.sleep(0.01)
                continue
            trial = claim.trial
            x = trial.suggest_float("x", 0, 1)
            time.sleep(rng.random() * 0.02)
            if rng.random() < 0.2:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)  # a failed trial frees its place
            else:
                study.tell(trial, x)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    [w.start() for w in workers]
    [w.join() for w in workers]
""")


def _run_scripts(commands: list[list[str]]) -> None:
    """Run ``python -c SCRIPT ARGS...`` for each command at once, with this test's imports; all must succeed."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    processes = [
        subprocess.Popen([sys.executable, "-c", *command], env=env, stderr=subprocess.PIPE, text=True)
        for command in commands
    ]
    for process in processes:
        assert process.wait(timeout=300) == 0, process.stderr.read()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_trials_is_exact_with_several_processes_and_threads_on_one_study(tmp_path, kind):
    # Three processes of three workers each, all racing for the last places of 12.
    location = _location(tmp_path, kind)
    _new_study(location)
    target = 12
    _run_scripts([[_CLAIMER, location.url, location.kind, str(location.run_dir), str(target), "3"] for _ in range(3)])
    study = optuna.load_study(study_name="s", storage=location.open())
    assert sum(t.state in FINISHED for t in study.trials) == target
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]


def test_trials_is_exact_with_threads_on_an_in_memory_study(tmp_path):
    study = optuna.create_study(direction="maximize")  # Optuna's in-memory storage: threads of one process
    location = StorageLocation(url="memory", run_dir=tmp_path, kind="memory")

    def work():
        while not (claim := claim_trial(study, location, 10)).done:
            if claim.trial is not None:
                study.tell(claim.trial, claim.trial.suggest_float("x", 0, 1))

    workers = [threading.Thread(target=work) for _ in range(8)]
    [w.start() for w in workers]
    [w.join() for w in workers]
    assert sum(t.state in FINISHED for t in study.trials) == 10


_RECOVERER = textwrap.dedent("""
    import sys, time, pathlib
    import optuna
    from qhpo.runner._storage import StorageLocation, recover_interrupted_trials
    location = StorageLocation(url=sys.argv[1], run_dir=pathlib.Path(sys.argv[2]), kind="sqlite")
    study = optuna.load_study(study_name="s", storage=location.open())
    time.sleep(max(0.0, float(sys.argv[3]) - time.time()))  # start together
    print(recover_interrupted_trials(study, location))
""")


@pytest.mark.slow
def test_two_processes_recovering_one_dead_trial_enqueue_one_retry(tmp_path):
    import time

    location = _location(tmp_path, "sqlite")
    study = _new_study(location)
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    trial.set_user_attr(OWNER_ATTR, {"host": os.uname().nodename, "pid": dead_pid(), "start": None})
    trial.set_user_attr(CHECKPOINT_ATTR, trial.number)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    start = str(time.time() + 4)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _RECOVERER, location.url, str(location.run_dir), start],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs
    assert sorted(out.strip() for out, _ in outputs) == ["[0]", "[]"]  # one of them recovered it
    study = optuna.load_study(study_name="s", storage=location.open())
    assert study.trials[0].state == TrialState.FAIL
    retries = [t for t in study.trials if t.user_attrs.get(RETRY_OF_ATTR) == 0]
    assert (
        len(retries) == 1
        and retries[0].state == TrialState.WAITING
        and retries[0].system_attrs["fixed_params"] == trial.params
    )


def _kill(study, trial, epochs_done=0):
    """Make ``trial`` look like the trial of a process that died after ``epochs_done`` epochs."""
    for epoch in range(1, epochs_done + 1):
        trial.report(0.1 * epoch, epoch)
    trial.set_user_attr(OWNER_ATTR, {"host": os.uname().nodename, "pid": dead_pid(), "start": None})


def test_a_configuration_whose_process_keeps_dying_fails_with_its_reason(tmp_path):
    location = _location(tmp_path, "sqlite")
    study = _new_study(location)
    distributions = {"x": optuna.distributions.FloatDistribution(0, 1)}
    trial = study.ask(distributions)
    _kill(study, trial, epochs_done=2)  # progress: the first death does not count against it
    assert recover_interrupted_trials(study, location) == [0]
    for _ in range(MAX_KILLS):
        trial = study.ask(distributions)
        assert trial.user_attrs[RETRY_OF_ATTR] == trial.number - 1
        _kill(study, trial)  # dies again before finishing an epoch, like an out-of-memory kill
        assert recover_interrupted_trials(study, location) == [trial.number]
    last = study.trials[-1]
    assert last.state == TrialState.FAIL and last.user_attrs[KILLS_ATTR] == MAX_KILLS - 1
    assert last.user_attrs[FAILURE_ATTR].startswith(f"killed: its process ended {MAX_KILLS} times")
    assert not study.get_trials(states=(TrialState.WAITING,))  # not retried again


def test_a_second_interrupt_cannot_drop_the_retry_of_an_interrupted_trial(tmp_path):
    # The SIGINT arrives between enqueuing the retry and telling FAIL: it is held back until
    # both are stored, then interrupts. Python's own Ctrl-C handler, whatever an earlier test
    # in this process (a Ray Tune run, say) left installed.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _second_interrupt_case(tmp_path)
    finally:
        signal.signal(signal.SIGINT, previous)


def _second_interrupt_case(tmp_path):
    location = _location(tmp_path, "sqlite")
    study = _new_study(location)
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    enqueue = study.enqueue_trial

    def enqueue_then_interrupt(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        return enqueue(*args, **kwargs)

    study.enqueue_trial = enqueue_then_interrupt
    with pytest.raises(KeyboardInterrupt):
        _end_interrupted(study, trial, KeyboardInterrupt())
        for _ in range(100):  # the held-back signal is delivered at once after the block
            pass
    study = optuna.load_study(study_name="s", storage=location.open())
    assert study.trials[0].state == TrialState.FAIL
    assert [t.user_attrs[RETRY_OF_ATTR] for t in study.get_trials(states=(TrialState.WAITING,))] == [0]


def test_a_process_killed_between_enqueue_and_tell_gets_no_second_retry(tmp_path):
    location = _location(tmp_path, "sqlite")
    study = _new_study(location)
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    assert enqueue_retry(study, study.trials[0])
    _kill(study, trial)
    assert recover_interrupted_trials(study, location) == [0]
    assert study.trials[0].state == TrialState.FAIL
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 1


def test_the_retry_of_a_resumption_killed_before_its_parameters_were_suggested_keeps_them(tmp_path):
    from qhpo.optuna import RESUME_OF_ATTR

    location = _location(tmp_path, "sqlite")
    study = _new_study(location)
    paused = {"learning_rate": 0.0001, "momentum": 0.5}
    study.enqueue_trial(paused, user_attrs={RESUME_OF_ATTR: 4, CHECKPOINT_ATTR: "k4"})
    study.ask()  # the resumption is RUNNING, killed before its objective suggested any parameter
    killed = study.trials[0]
    assert killed.params == {}
    assert enqueue_retry(study, killed, killed=True)
    (retry,) = study.get_trials(states=(TrialState.WAITING,))
    # it continues checkpoint k4: with the paused trial's parameters, not ones sampled afresh
    assert retry.system_attrs["fixed_params"] == paused
    assert retry.user_attrs[RESUME_OF_ATTR] == 4 and retry.user_attrs[CHECKPOINT_ATTR] == "k4"


def test_claim_recovers_a_trial_whose_process_died_before_naming_itself(tmp_path):
    location = _location(tmp_path, "sqlite")
    study = _new_study(location)
    study.ask()  # RUNNING without an owner: only a process that died inside the claim leaves this
    retry = claim_trial(study, location, 1).trial
    assert study.trials[0].state == TrialState.FAIL
    assert retry.number == 1 and retry.user_attrs[RETRY_OF_ATTR] == 0  # the freed place goes to its retry
    assert claim_trial(study, location, 1).wait  # the one place is taken


def test_the_end_of_a_search_keeps_the_checkpoint_of_a_waiting_retry(tmp_path):
    from qhpo.runner._config import RunConfig
    from qhpo.runner._search import _drop_checkpoints

    location = _location(tmp_path, "sqlite")
    study = _new_study(location)
    folder = location.run_dir / "s" / "checkpoints"
    folder.mkdir(parents=True)
    for value in (0.5, 0.7):
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        trial.set_user_attr(CHECKPOINT_ATTR, trial.number)
        study.tell(trial, value)
    interrupted = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    interrupted.set_user_attr(CHECKPOINT_ATTR, interrupted.number)
    study.tell(interrupted, state=TrialState.FAIL)
    enqueue_retry(study, study.trials[2])
    for key in range(3):
        (folder / f"trial-{key}.pt").write_bytes(b"checkpoint")
    _drop_checkpoints(study, location, RunConfig(study="s", trials=2))
    assert sorted(p.name for p in folder.iterdir()) == ["trial-1.pt", "trial-2.pt"]  # the best and the waiting retry's


def test_sampler_seeds_are_valid_for_every_allowed_seed():
    from qhpo.runner._search import MAX_SEED
    from qhpo.runner._study import hpo_sampler
    from qhpo.runner._worker import sampler_seed

    for seed in (0, 542_362, 542_363, MAX_SEED):
        study = optuna.create_study(sampler=hpo_sampler("tpe", seed=sampler_seed(seed, 3, 1000)))
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert sampler_seed(0, 0, 0) != sampler_seed(0, 1, 0) != sampler_seed(1, 0, 0)


def test_the_summary_says_when_the_predictor_never_fitted(tmp_path):
    import io

    import numpy as np
    from rich.console import Console

    from qhpo.optuna import PredictivePruner
    from qhpo.policies import PredictionService, make_policy
    from qhpo.runner._summary import print_summary, summarize
    from qhpo.runner._worker import publish_predictor_state

    # A prediction service whose every fit fails (features no model can read), as in a run
    # where the predictor keeps failing: the policy then never stops a trial.
    service = PredictionService("svr", background=True, random_state=0, hyperparameters=True)
    curves = np.linspace(0.1, 0.6, 20 * 10).reshape(20, 10)
    service.update(curves, np.full((20, 1), np.nan))
    for t in (3, 5):
        assert service.predict(t, curves[:1], np.full((1, 1), np.nan)) is None
        assert service.wait(timeout=60)
    pruner = PredictivePruner(make_policy("qhpo", max_epochs=10, service=service))
    study = optuna.create_study(direction="maximize", pruner=pruner)
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    publish_predictor_state(study)

    summary = summarize(study, max_epochs=10)
    assert summary.predictor_never_fitted and summary.predictor["failed_fits"] == 2
    out = io.StringIO()
    print_summary(summary, Console(file=out, width=200))
    assert "the predictor never fitted: all 2 of its fits failed" in out.getvalue()
    assert "NaN" in out.getvalue()
    service.close()


def test_a_trial_of_a_killed_but_unreaped_worker_is_recovered(tmp_path):
    import time

    location = _location(tmp_path, "sqlite")
    study = _new_study(location)
    zombie = subprocess.Popen(["true"])  # exits at once and stays a zombie until waited for
    for _ in range(100):
        if open(f"/proc/{zombie.pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z":
            break
        time.sleep(0.05)
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    from qhpo.runner._storage import owner_record

    record = owner_record()
    record.update(pid=zombie.pid, start=None)
    trial.set_user_attr(OWNER_ATTR, record)
    try:
        assert recover_interrupted_trials(study, location) == [0]
    finally:
        zombie.wait()


# -- freeze-thaw: resumptions claimed under the same lock ---------------------------------------
_RESUMING = textwrap.dedent("""
    import optuna
    from qhpo.optuna import PredictivePruner, RESUME_OF_ATTR
    from qhpo.policies import Decision, Resumption, StoppingPolicy, TrialStatus, Verdict
    from qhpo.runner._worker import claim_trial

    class PauseBelowHalf(StoppingPolicy):
        # Pause at epoch 2 below 0.5; once 3 trials finished (complete or paused), resume the best
        # paused trials (waiting for 3 complete ones could wait forever: most trials pause).
        name = "pause-below-half"
        resumes = property(lambda self: True)

        def decision_epochs(self):
            return (2,)

        def decide(self, trial, trials):
            pause = trial.epochs == 2 and trial.curve[-1] < 0.5
            return Verdict(Decision.PAUSE if pause else Decision.CONTINUE, trial.epochs)

        def promote(self, trials, *, limit=1):
            if sum(t.status in (TrialStatus.COMPLETE, TrialStatus.PAUSED) for t in trials) < 3:
                return []
            paused = sorted((t for t in trials if t.status == TrialStatus.PAUSED), key=lambda t: -t.curve[-1])
            return [Resumption(t.key, t.epochs) for t in paused[:limit]]

    def value(x, epoch):
        return x * (0.5 + epoch / 8)

    def work(study, location, target, on_trial=None):
        # Trains (reports) trials until the search is done; a resumption reports its paused trial's epochs first.
        while True:
            claim = claim_trial(study, location, target)
            if claim.done:
                return
            if claim.wait:
                continue
            trial = claim.trial
            x = trial.suggest_float("x", 0, 1)
            start = 1
            of = trial.user_attrs.get(RESUME_OF_ATTR)
            if of is not None:
                paused = study._storage.get_trial(study._storage.get_trial_id_from_study_id_trial_number(
                    study._study_id, of))
                for epoch, v in sorted(paused.intermediate_values.items()):
                    trial.report(v, epoch)
                start = len(paused.intermediate_values) + 1
            if on_trial is not None:
                on_trial(trial)
            for epoch in range(start, 5):
                trial.report(value(x, epoch), epoch)
                if trial.should_prune():
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                    break
            else:
                study.tell(trial, value(x, 4))
""")


def _resuming_module(tmp_path):
    path = tmp_path / "resuming_policy.py"
    path.write_text(_RESUMING)
    sys.path.insert(0, str(tmp_path))
    try:
        import importlib

        return importlib.import_module("resuming_policy")
    finally:
        sys.path.remove(str(tmp_path))


def _check_configurations(study, target):
    from qhpo.optuna import PAUSED_ATTR, RESUME_OF_ATTR, configuration_counts

    trials = study.trials
    assert configuration_counts(trials) == (target, 0)
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    resumptions = [t for t in trials if t.user_attrs.get(RESUME_OF_ATTR) is not None]
    of = [t.user_attrs[RESUME_OF_ATTR] for t in resumptions if t.state != TrialState.FAIL]
    assert len(of) == len(set(of))  # a paused trial is resumed once
    for resumption in resumptions:
        paused = trials[resumption.user_attrs[RESUME_OF_ATTR]]
        assert paused.state == TrialState.PRUNED and paused.user_attrs[PAUSED_ATTR]["epoch"] == 2
        assert resumption.params == paused.params
        assert [resumption.intermediate_values[e] for e in (1, 2)] == [paused.intermediate_values[e] for e in (1, 2)]
    return resumptions


def test_claims_resume_paused_trials_and_trials_counts_configurations(tmp_path):
    from qhpo.optuna import PredictivePruner, configuration_counts

    module = _resuming_module(tmp_path)
    location = _location(tmp_path, "sqlite")
    pruner = PredictivePruner(module.PauseBelowHalf(max_epochs=4))
    study = optuna.create_study(
        study_name="s",
        storage=location.open(),
        direction="maximize",
        pruner=pruner,
        sampler=optuna.samplers.RandomSampler(seed=3),
    )
    seen = []
    module.work(study, location, 8, on_trial=lambda trial: seen.append(configuration_counts(study.trials)))
    resumptions = _check_configurations(study, 8)
    assert resumptions  # the rule resumed paused trials
    # Every paused trial was resumed before the search ended: the workers asked until nothing was left.
    paused = [t for t in study.trials if t.user_attrs.get("qhpo.paused")]
    assert len(paused) == len(resumptions)
    assert all(finished + running <= 8 for finished, running in seen)  # never more places than asked for
    assert claim_trial(study, location, 8).done  # done: nothing runs, nothing to resume

    # The summary counts configurations and lists each resumption; the plots draw them.
    import io

    from rich.console import Console

    from qhpo.runner import draw_plots
    from qhpo.runner._summary import print_summary, summarize

    summary = summarize(study, max_epochs=4, target_trials=8)
    assert summary.finished == 8 and summary.paused == len(paused) and summary.paused_left == 0
    assert summary.epochs_trained == sum(
        len(t.intermediate_values) for t in study.trials if t.number not in {r.paused for r in summary.resumptions}
    )
    assert sorted((r.paused, r.trial, r.epoch) for r in summary.resumptions) == sorted(
        (t.user_attrs["qhpo.resume_of"], t.number, 2) for t in resumptions
    )
    out = io.StringIO()
    print_summary(summary, Console(file=out, width=200))
    text = out.getvalue()
    assert f"pauses: {len(paused)} trial(s) paused" in text and f"{len(resumptions)} resumed" in text
    row = summary.resumptions[0]
    assert f"trial {row.paused} paused after epoch 2, resumed as trial {row.trial}: complete after 4 epochs" in text
    curves_png, epochs_png = draw_plots(study, tmp_path / "plots", max_epochs=4)
    assert curves_png.stat().st_size > 10_000 and epochs_png.stat().st_size > 5_000


def test_a_paused_trial_whose_checkpoint_is_gone_is_not_resumed(tmp_path):
    from qhpo.optuna import PredictivePruner

    module = _resuming_module(tmp_path)
    location = _location(tmp_path, "sqlite")
    study = optuna.create_study(
        study_name="s",
        storage=location.open(),
        direction="maximize",
        pruner=PredictivePruner(module.PauseBelowHalf(max_epochs=4)),
        sampler=optuna.samplers.RandomSampler(seed=3),
    )
    for x in (0.1, 0.9, 0.9, 0.9):
        study.enqueue_trial({"x": x})
    real_claim = module.claim_trial
    module.claim_trial = lambda study, location, target: real_claim(study, location, target, can_resume=lambda t: False)
    try:
        module.work(study, location, 4)
    finally:
        module.claim_trial = real_claim
    assert [t.state for t in study.trials] == [TrialState.PRUNED] + [TrialState.COMPLETE] * 3
    assert not claim_trial(study, location, 4).done  # with its checkpoint there, the rule would resume it


_RESUMING_CLAIMER = textwrap.dedent("""
    import sys, threading, pathlib
    import optuna
    from qhpo.optuna import PredictivePruner
    from qhpo.runner._storage import StorageLocation
    sys.path.insert(0, sys.argv[5])
    from resuming_policy import PauseBelowHalf, work
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url, kind, run_dir, target = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    location = StorageLocation(url=url, run_dir=pathlib.Path(run_dir), kind=kind)

    def one(index):
        study = optuna.load_study(study_name="s", storage=location.open(),
                                  pruner=PredictivePruner(PauseBelowHalf(max_epochs=4)),
                                  sampler=optuna.samplers.RandomSampler(seed=index + 10 * int(sys.argv[6])))
        work(study, location, target)

    workers = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    [w.start() for w in workers]
    [w.join() for w in workers]
""")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_trials_counts_configurations_exactly_when_several_processes_resume_trials(tmp_path, kind):
    _resuming_module(tmp_path)  # writes the policy module the processes import
    location = _location(tmp_path, kind)
    _new_study(location)
    target = 12
    _run_scripts(
        [
            [_RESUMING_CLAIMER, location.url, location.kind, str(location.run_dir), str(target), str(tmp_path), str(i)]
            for i in range(3)
        ]
    )
    study = optuna.load_study(study_name="s", storage=location.open())
    assert _check_configurations(study, target)


def test_qhpo_stop_is_a_predictive_policy_of_qhpo_run(tmp_path):
    from qhpo.runner import check_config
    from qhpo.runner._config import RunConfig
    from qhpo.runner._study import make_pruner

    config = RunConfig(study="s", policy="qhpo-stop", predictor="svr", epochs=4)
    check_config(config)
    assert config.study_settings({})["predictor"] == "svr"  # stored, and checked on resume
    pruner = make_pruner(config)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    assert pruner.promote(study) == [] and pruner.policy_.name == "qhpo-stop" and not pruner.policy_.resumes


def _open_at_once(url: str, barrier, answers) -> None:
    from pathlib import Path

    from qhpo.runner._storage import StorageLocation

    location = StorageLocation(url=url, run_dir=Path(url[len("sqlite:///") :]).parent, kind="sqlite")
    barrier.wait()
    try:
        location.open()
        answers.put("ok")
    except Exception as error:  # the answer the test reports
        answers.put(f"{type(error).__name__}: {error}")


@pytest.mark.parametrize("round_", range(3))
def test_processes_opening_one_fresh_sqlite_file_at_once_all_open_it(tmp_path, round_):
    # Optuna creates its tables on first open; six processes doing so at once raced (table
    # already exists, UNIQUE constraint failed) before the creation lock beside the file
    import multiprocessing

    context = multiprocessing.get_context("fork")
    barrier, answers = context.Barrier(6), context.Queue()
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    processes = [context.Process(target=_open_at_once, args=(url, barrier, answers)) for _ in range(6)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    assert [answers.get(timeout=5) for _ in processes] == ["ok"] * 6


def test_a_crashed_trial_fails_saying_why_and_the_third_crash_in_a_row_stops_the_worker(tmp_path):
    from qhpo._errors import QhpoError
    from qhpo.runner._config import RunConfig
    from qhpo.runner._worker import _crashed

    location = _location(tmp_path, "sqlite")
    study = _new_study(location)
    config = RunConfig(study="s", trials=4)
    first = claim_trial(study, location, 4).trial
    assert _crashed(study, first, RuntimeError("bad batch"), location, config, 0) == 1
    assert study.trials[first.number].state == TrialState.FAIL
    assert study.trials[first.number].user_attrs[FAILURE_ATTR] == "crashed: RuntimeError: bad batch"
    third = claim_trial(study, location, 4).trial
    with pytest.raises(QhpoError, match="^3 trials in a row crashed, the last with RuntimeError: bad batch; fix"):
        _crashed(study, third, RuntimeError("bad batch"), location, config, 2)
    assert study.trials[third.number].state == TrialState.FAIL  # failed before the run stops
