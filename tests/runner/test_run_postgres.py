"""``qhpo run`` on a real PostgreSQL server shared by processes that share nothing else.

The server is the ``pgserver`` package's (PostgreSQL binaries from PyPI), started by the
tests in a temporary folder; every test gets a fresh database. Tests that need it carry the
``postgres`` marker and are skipped, with one reason, where the server cannot start. The
liveness rules for trials of other hosts and the checkpoint rules need no server and run on
SQLite files.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from qhpo.cli import main
from qhpo.optuna import checkpoint_key, configuration_counts, continuations
from qhpo.runner._storage import (
    ALIVE_ATTR,
    CHECKPOINT_ATTR,
    FAILURE_ATTR,
    OWNER_ATTR,
    RETRY_OF_ATTR,
    StorageLocation,
    recover_interrupted_trials,
    resolve_storage,
)
from qhpo.runner._trial import RESUMED_AT_ATTR
from qhpo.runner._worker import claim_trial
from test_run import tiny_run

optuna.logging.set_verbosity(optuna.logging.WARNING)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
GLIBC = "glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=4294967296"


# -- the server ---------------------------------------------------------------------------------
def _start_server(folder: Path):
    import warnings

    try:
        import pgserver
    except ImportError:
        pytest.skip("PostgreSQL tests need the pgserver package (pip install pgserver)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pgserver.get_server(folder, cleanup_mode="stop")
        except Exception as error:  # no server on this platform or in this sandbox
            pytest.skip(f"pgserver could not start PostgreSQL here ({type(error).__name__}: {error})")


@pytest.fixture(scope="session")
def postgres_server():
    import shutil
    import tempfile

    # Not under pytest's temporary folder: as root, pgserver runs the server as its own user,
    # which must reach the data folder.
    folder = Path(tempfile.mkdtemp(prefix="qhpo-pg-"))
    try:
        server = _start_server(folder)
        yield server
        server.cleanup()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _new_database(server) -> str:
    """A fresh, empty database on ``server``: its ``postgresql://`` URL."""
    name = f"qhpo_{uuid.uuid4().hex[:12]}"
    server.psql(f"CREATE DATABASE {name};")
    uri = server.get_uri()  # postgresql://postgres:@/postgres?host=SOCKET_FOLDER
    head, query = uri.split("?", 1)
    return f"{head.rsplit('/', 1)[0]}/{name}?{query}"


@pytest.fixture
def postgres_url(postgres_server) -> str:
    return _new_database(postgres_server)


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        "OMP_NUM_THREADS": "1",
        "GLIBC_TUNABLES": GLIBC,
    }


def _load(url: str, name: str = "tiny") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=resolve_storage(url, create=False).open())


def _check_whole(study: optuna.Study, epochs: int) -> None:
    for trial in study.trials:
        if trial.state in FINISHED:
            assert sorted(trial.intermediate_values) == list(range(1, len(trial.intermediate_values) + 1))
            assert all(0.0 <= v <= 1.0 for v in trial.intermediate_values.values())
        if trial.state == TrialState.COMPLETE:
            assert len(trial.intermediate_values) == epochs


# -- many processes, one fresh database ------------------------------------------------------------
@pytest.mark.postgres
@pytest.mark.slow
def test_four_processes_started_at_once_on_a_fresh_database_finish_exactly_the_trials(
    tmp_path, cifar_dir, postgres_url
):
    # Four hosts in miniature: own working folder (so own run folder), one database URL, one
    # shared checkpoint folder. The database holds no table yet: the four race to create them.
    shared = tmp_path / "shared-checkpoints"
    processes = []
    for index in range(4):
        cwd = tmp_path / f"node{index}"
        cwd.mkdir()
        args = tiny_run(cifar_dir, postgres_url, "--trials", "12", "--epochs", "2", "--min-completed", "2")
        args += ["--checkpoint-dir", str(shared), "--quiet"]  # one --seed: each process gets its own stream
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "qhpo", *args],
                cwd=cwd,
                env=_env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    errors = [p.communicate(timeout=600)[1] for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0, 0], errors

    study = _load(postgres_url)
    trials = study.trials
    assert configuration_counts(trials) == (12, 0)  # exactly 12 finished, nothing running
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert not [t.number for t in trials if t.state == TrialState.FAIL]  # no live trial failed as interrupted
    # a paused trial and the trial that resumed it are one configuration, counted through the latter
    resumed, _ = continuations(trials)
    finished = [t for t in trials if t.state in FINISHED and t.number not in resumed]
    configurations = Counter(tuple(sorted(t.params.items())) for t in finished)
    assert max(configurations.values()) == 1  # none trained twice
    _check_whole(study, epochs=2)
    owners = {t.user_attrs[OWNER_ATTR]["pid"] for t in trials}
    assert len(owners) >= 2  # the work was shared
    assert all((tmp_path / f"node{i}" / "qhpo-runs" / "tiny").is_dir() for i in range(4))  # separate run folders
    # the best one's checkpoint, named by its configuration's key (a resumption's is the paused trial's)
    assert (shared / "tiny" / f"trial-{checkpoint_key(study.best_trial)}.pt").is_file()


@pytest.mark.postgres
@pytest.mark.slow
def test_claims_of_processes_with_separate_run_folders_are_serialised_by_the_database(tmp_path, postgres_url):
    # No training: three processes of two threads each claim places of 10 on one study, each
    # with its own run folder (a file lock there would serialise nothing).
    script = """
import pathlib, random, sys, threading, time
import optuna
from qhpo.runner._storage import resolve_storage
from qhpo.runner._worker import claim_trial
optuna.logging.set_verbosity(optuna.logging.WARNING)
location = resolve_storage(sys.argv[1], sys.argv[2])
with location.creation_lock():
    optuna.create_study(study_name="s", storage=location.open(), direction="maximize", load_if_exists=True)

def work(index):
    study = optuna.load_study(study_name="s", storage=location.open())
    rng = random.Random(index)
    while not (claim := claim_trial(study, location, 10)).done:
        if claim.wait:
            time.sleep(0.01)
            continue
        time.sleep(rng.random() * 0.02)
        study.tell(claim.trial, claim.trial.suggest_float("x", 0, 1))

threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
[t.start() for t in threads]
[t.join() for t in threads]
"""
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, postgres_url, str(tmp_path / f"run{i}")],
            env=_env(),
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    for process in processes:
        assert process.wait(timeout=300) == 0, process.stderr.read()
    study = optuna.load_study(study_name="s", storage=resolve_storage(postgres_url, create=False).open())
    assert configuration_counts(study.trials) == (10, 0)
    assert not [t for t in study.trials if t.state == TrialState.FAIL]
    assert not list(tmp_path.rglob("*.lock"))  # the database held the lock, not a file


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("storage", "message"),
    [
        ("postgresql://qhpo:secret@127.0.0.1:1/qhpo", "cannot open the storage"),
        ("postgresql+pg8000://qhpo:secret@127.0.0.1:1/qhpo", "needs the database driver 'pg8000'"),
    ],
)
def test_an_unreachable_server_or_a_missing_driver_is_one_sentence_and_status_2(
    tmp_path, cifar_dir, capsys, storage, message
):
    pytest.importorskip("psycopg")
    if message.endswith("'pg8000'"):
        try:
            import pg8000  # noqa: F401

            pytest.skip("pg8000 is installed here")
        except ImportError:
            pass
    args = tiny_run(cifar_dir, storage, "--trials", "1", "--run-dir", str(tmp_path / "run"))
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("qhpo run: error:") or err.startswith("qhpo: error:"), err
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "secret" not in err  # the password is masked
    assert "***" in err


def test_a_psycopg2_url_without_psycopg2_names_the_package(tmp_path):
    try:
        import psycopg2  # noqa: F401

        pytest.skip("psycopg2 is installed here")
    except ImportError:
        pass
    from qhpo import QhpoError

    location = resolve_storage("postgresql+psycopg2://u@127.0.0.1:1/x", tmp_path)
    with pytest.raises(QhpoError, match=r"pip install psycopg2-binary\) or use a postgresql:// URL"):
        location.open()


def test_postgresql_urls_use_psycopg_3():
    assert resolve_storage("postgresql://u@h/db", create=False).url == "postgresql+psycopg://u@h/db"
    assert resolve_storage("postgres://u@h/db", create=False).url == "postgresql+psycopg://u@h/db"
    kept = resolve_storage("postgresql+psycopg2://u@h/db", create=False)
    assert kept.url == "postgresql+psycopg2://u@h/db" and kept.database_locks
    assert not resolve_storage("mysql+pymysql://u@h/db", create=False).database_locks


@pytest.mark.postgres
@pytest.mark.slow
def test_a_server_that_goes_away_mid_run_stops_it_in_one_sentence_and_the_rerun_retries_the_trial(tmp_path, cifar_dir):
    server = _start_server(tmp_path / "pg")
    url = _new_database(server)
    args = tiny_run(cifar_dir, url, "--trials", "3", "--epochs", "3", "--policy", "none", "--quiet")
    args[args.index("--subset") + 1] = "4096"  # epochs long enough to stop the server mid-trial
    process = subprocess.Popen(
        [sys.executable, "-m", "qhpo", *args],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    victim = None
    deadline = time.monotonic() + 240
    while victim is None and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.3)
        try:
            running = _load(url).get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        except Exception:
            continue
        # one epoch done, two to go: the server is gone long before the trial could end
        victim = next((t.number for t in running if len(t.intermediate_values) == 1), None)
    assert victim is not None, "no trial was caught mid-run"
    server.cleanup()  # stops the server; its data stay
    _, err = process.communicate(timeout=240)
    err = err.decode().strip()
    assert process.returncode == 2, err
    assert err.startswith("qhpo: error: lost the connection to the storage") and len(err.splitlines()) == 1, err

    server = _start_server(tmp_path / "pg")  # back, on the same data
    try:
        rerun = subprocess.run(
            [sys.executable, "-m", "qhpo", *args], cwd=tmp_path, env=_env(), capture_output=True, timeout=300
        )
        assert rerun.returncode == 0, rerun.stderr.decode()
        study = _load(url)
        assert configuration_counts(study.trials) == (3, 0)
        interrupted = study.trials[victim]
        assert interrupted.state == TrialState.FAIL and interrupted.user_attrs[FAILURE_ATTR].startswith("interrupted")
        (retry,) = [t for t in study.trials if t.user_attrs.get(RETRY_OF_ATTR) == victim]
        # It ran to its end (a learning rate that diverges fails it, with that reason) from the checkpoint.
        assert retry.state == TrialState.COMPLETE or retry.user_attrs[FAILURE_ATTR].startswith("diverged"), retry
        assert retry.user_attrs[RESUMED_AT_ATTR] >= 1
        shared = len(interrupted.intermediate_values)
        assert [retry.intermediate_values[e] for e in range(1, shared + 1)] == [
            interrupted.intermediate_values[e] for e in range(1, shared + 1)
        ]  # continued from its checkpoint
        _check_whole(study, epochs=3)
    finally:
        server.cleanup()


def _as_another_host(command: list[str], name: str) -> list[str] | None:
    """``command`` run under another host name (a UTS namespace of its own), or None where that is not allowed."""
    import shutil

    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    probe = subprocess.run([unshare, "-u", "hostname", name], capture_output=True)
    if probe.returncode != 0:
        return None
    return [unshare, "-u", "sh", "-c", f'hostname {name} && exec "$@"', "sh", *command]


@pytest.mark.postgres
@pytest.mark.slow
def test_a_killed_node_s_trial_is_retried_by_another_node_after_its_grace_period_once(
    tmp_path, cifar_dir, postgres_url
):
    # Node B is this machine under another host name: its process ids mean nothing to node A,
    # which must judge B's trials by their heartbeats (every 1 s, grace period 4 s).
    args = tiny_run(cifar_dir, postgres_url, "--trials", "4", "--epochs", "12", "--policy", "none", "--quiet")
    args[args.index("--subset") + 1] = "1024"  # epochs long enough to kill node B mid-trial
    args += ["--checkpoint-dir", str(tmp_path / "shared"), "--heartbeat-interval", "1", "--grace-period", "4"]
    node_b = _as_another_host([sys.executable, "-m", "qhpo", *args], "qhpo-node-b")
    if node_b is None:
        pytest.skip("another host name needs unshare -u (a UTS namespace), which is not allowed here")
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    b = subprocess.Popen(node_b, cwd=tmp_path / "b", env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    a = subprocess.Popen(
        [sys.executable, "-m", "qhpo", *args],
        cwd=tmp_path / "a",
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    victim = None
    deadline = time.monotonic() + 300
    while victim is None and time.monotonic() < deadline and b.poll() is None:
        time.sleep(0.3)
        try:
            running = _load(postgres_url).get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        except Exception:
            continue
        victim = next(
            (
                t.number
                for t in running
                # 1-3 of its 12 epochs reported: a window of three epochs to see it in, and at least
                # nine more to go, so the trial is still training when the kill lands even if
                # reading the study took a second or two (an epoch of this subset takes a fraction
                # of a second: with six epochs, a trial seen at its third once finished first)
                if t.user_attrs.get(OWNER_ATTR, {}).get("host") == "qhpo-node-b"
                and 1 <= len(t.intermediate_values) <= 3
            ),
            None,
        )
    b.kill()  # the node dies: no clean-up, no tell
    b.wait()
    assert victim is not None, "node B never trained a trial"
    _, err = a.communicate(timeout=600)
    assert a.returncode == 0, err

    study = _load(postgres_url)
    assert configuration_counts(study.trials) == (4, 0)
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    # No live trial of either node was taken as dead (a learning rate may diverge: that fails too, saying so).
    assert [t.number for t in failed if not t.user_attrs[FAILURE_ATTR].startswith("diverged")] == [victim]
    dead = study.trials[victim]
    assert dead.user_attrs[FAILURE_ATTR].startswith("interrupted")
    last_sign = max(
        dead.datetime_start.timestamp(),
        float(dead.user_attrs.get(ALIVE_ATTR, 0.0)),
        float(dead.user_attrs.get("qhpo.heartbeat", 0.0)),
    )
    assert dead.datetime_complete.timestamp() - last_sign >= 4.0  # judged by heartbeats, not by this host's /proc
    (retry,) = [t for t in study.trials if t.user_attrs.get(RETRY_OF_ATTR) == victim]  # once
    assert retry.user_attrs[OWNER_ATTR]["host"] != "qhpo-node-b"
    assert retry.state in FINISHED or retry.user_attrs[FAILURE_ATTR].startswith("diverged"), retry.user_attrs
    assert retry.user_attrs[RESUMED_AT_ATTR] >= 1  # from B's checkpoint in the shared folder
    _check_whole(study, epochs=12)


# -- liveness of trials of other hosts (no server needed) ------------------------------------------
def _sqlite(tmp_path) -> tuple[StorageLocation, optuna.Study]:
    location = resolve_storage(str(tmp_path / "q.db"))
    return location, optuna.create_study(study_name="s", storage=location.open(), direction="maximize")


def _elsewhere(grace: float) -> dict:
    return {"host": "another-node", "boot": "x", "pid": os.getpid(), "start": None, "grace": grace}


def test_a_trial_of_another_host_is_retried_once_its_heartbeat_is_older_than_its_grace_period(tmp_path):
    location, study = _sqlite(tmp_path)
    distributions = {"x": optuna.distributions.FloatDistribution(0, 1)}
    alive = study.ask(distributions)
    alive.set_user_attr(OWNER_ATTR, _elsewhere(grace=300))
    dead = study.ask(distributions)
    dead.set_user_attr(OWNER_ATTR, _elsewhere(grace=0.5))
    dead.set_user_attr(ALIVE_ATTR, time.time())
    time.sleep(1.0)  # past the dead one's grace period (its start and its last beat)
    alive.set_user_attr(ALIVE_ATTR, time.time())
    # Its pid is this (live) process's: another host's pid says nothing here.
    assert recover_interrupted_trials(study, location) == [dead.number]
    assert recover_interrupted_trials(study, location) == []  # once
    trials = study.trials
    assert trials[alive.number].state == TrialState.RUNNING
    assert trials[dead.number].user_attrs[FAILURE_ATTR].startswith("interrupted")
    assert [t.user_attrs[RETRY_OF_ATTR] for t in trials if t.state == TrialState.WAITING] == [dead.number]


def test_a_same_named_host_of_another_boot_is_judged_by_heartbeats_not_by_this_hosts_processes(tmp_path):
    import socket

    location, study = _sqlite(tmp_path)
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    # Same host name, another machine: this pid is alive here, but the owner's heartbeat is stale.
    owner = {**_elsewhere(grace=0.5), "host": socket.gethostname(), "boot": "another-boot"}
    trial.set_user_attr(OWNER_ATTR, owner)
    time.sleep(1.0)  # past its grace period
    assert recover_interrupted_trials(study, location) == [trial.number]


def test_the_heartbeat_keeps_a_trial_alive_and_ends_with_it(tmp_path):
    from qhpo.runner._heartbeat import TrialHeartbeat

    _, study = _sqlite(tmp_path)
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    with TrialHeartbeat(study._storage, trial._trial_id, interval=0.05) as heartbeat:
        deadline = time.monotonic() + 30
        while heartbeat.beats < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        study.tell(trial, 0.5)  # finished: the next beat is refused and the thread ends
        heartbeat._thread.join(timeout=30)
        assert not heartbeat._thread.is_alive()
    assert heartbeat.beats >= 3
    assert time.time() - study.trials[0].user_attrs[ALIVE_ATTR] < 30


def test_heartbeat_and_grace_period_are_checked(tmp_path, cifar_dir, capsys):
    args = tiny_run(cifar_dir, tmp_path / "q.db", "--heartbeat-interval", "60", "--grace-period", "90")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--grace-period (90 s) must be at least twice --heartbeat-interval (60 s)" in err
    assert not (tmp_path / "q.db").exists()
    with pytest.raises(SystemExit) as exit_status:
        main(tiny_run(cifar_dir, tmp_path / "q.db", "--grace-period", "-1"))
    assert exit_status.value.code == 2
    assert "expected a positive number of seconds" in capsys.readouterr().err


def test_the_multinode_flags_are_refused_on_ray(tmp_path, capsys):
    args = ["run", "--backend", "ray", "--checkpoint-dir", str(tmp_path), "--grace-period", "300"]
    assert main(args + ["--storage", str(tmp_path / "q.db")]) == 2
    err = capsys.readouterr().err
    assert "--checkpoint-dir, --grace-period apply to --backend optuna only" in err and len(err.splitlines()) == 1


# -- checkpoints that cannot be read ----------------------------------------------------------------
def _continuation(tmp_path, attr: str):
    """A study whose trial 0 recorded 2 epochs under checkpoint key 0, and a claimed trial that continues it."""
    location, study = _sqlite(tmp_path)
    first = study.ask({"lr": optuna.distributions.FloatDistribution(0.001, 0.1)})
    first.set_user_attr(CHECKPOINT_ATTR, 0)
    for epoch in (1, 2):
        first.report(0.2 * epoch, epoch)
    if attr == RETRY_OF_ATTR:
        study.tell(first, state=TrialState.FAIL)
    else:
        first.set_user_attr("qhpo.paused", {"epoch": 2})
        study.tell(first, state=TrialState.PRUNED)
    study.enqueue_trial(first.params, user_attrs={attr: 0, CHECKPOINT_ATTR: 0})
    trial = claim_trial(study, location, 2).trial
    assert trial is not None
    return study, trial


class _OneParameterSpace:
    def suggest(self, trial):
        return {"lr": trial.suggest_float("lr", 0.001, 0.1)}


@pytest.mark.parametrize("broken", ["missing", "unreadable"])
def test_a_retry_whose_checkpoint_is_lost_fails_saying_so_and_its_configuration_starts_afresh(tmp_path, broken):
    from qhpo.runner._trial import RESTART_OF_ATTR, run_trial

    study, trial = _continuation(tmp_path, RETRY_OF_ATTR)
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    if broken == "unreadable":
        (folder / "trial-0.pt").write_bytes(b"not a checkpoint")
    state = run_trial(
        study, trial, space=_OneParameterSpace(), data=None, device="cpu", max_epochs=3, checkpoint_dir=folder, seed=0
    )
    assert state == TrialState.FAIL
    failed = study.trials[trial.number]
    reason = failed.user_attrs[FAILURE_ATTR]
    assert reason.startswith("checkpoint lost:") and "the 2 epoch(s) recorded under checkpoint 0" in reason
    assert ("could not be read" if broken == "unreadable" else "is missing") in reason
    assert reason.endswith("the configuration starts afresh as a new trial")
    assert not failed.intermediate_values  # nothing trained under the old name
    (fresh,) = study.get_trials(states=(TrialState.WAITING,))
    assert fresh.user_attrs == {RESTART_OF_ATTR: 0}  # a new trial: its own checkpoint and seed, continuing nothing
    assert fresh.system_attrs["fixed_params"] == failed.params
    assert not (folder / "trial-0.pt").exists()


def test_a_resumption_whose_checkpoint_is_lost_leaves_the_paused_trial_stopped(tmp_path):
    from qhpo.optuna import RESUME_OF_ATTR
    from qhpo.runner._trial import run_trial

    study, trial = _continuation(tmp_path, RESUME_OF_ATTR)
    state = run_trial(
        study,
        trial,
        space=_OneParameterSpace(),
        data=None,
        device="cpu",
        max_epochs=3,
        checkpoint_dir=tmp_path,
        seed=0,
    )
    assert state == TrialState.FAIL
    assert study.trials[trial.number].user_attrs[FAILURE_ATTR].endswith("trial 0 stays stopped where it paused")
    assert not study.get_trials(states=(TrialState.WAITING,))
    assert configuration_counts(study.trials) == (1, 0)  # the paused trial counts, stopped


def test_checkpoint_dir_holds_the_checkpoints_of_each_study(tmp_path):
    from qhpo.runner import checkpoint_folder

    location = resolve_storage(str(tmp_path / "q.db"))
    assert checkpoint_folder(location, "s") == tmp_path / "s" / "checkpoints"
    assert checkpoint_folder(location, "s", tmp_path / "shared") == tmp_path / "shared" / "s"


def test_scratch_files_in_a_shared_checkpoint_folder_are_removed_only_after_the_grace_period(tmp_path):
    from qhpo.runner._trial import remove_scratch_checkpoints

    dead = subprocess.Popen(["true"])
    dead.wait()
    fresh = tmp_path / f".trial-3.pt.{dead.pid}.tmp"
    old = tmp_path / f".trial-4.pt.{dead.pid}.tmp"
    fresh.write_bytes(b"x")
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 1000, time.time() - 1000))
    # A pid that is dead here may be a live writer on another host: only a stale file goes.
    assert remove_scratch_checkpoints(tmp_path, shared=True, grace_period=600) == [old]
    assert fresh.exists()
    assert remove_scratch_checkpoints(tmp_path) == [fresh]  # a folder of this host only
