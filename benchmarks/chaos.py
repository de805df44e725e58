"""Fault injection: a ``qhpo run --workers 4`` study killed over and over, then checked.

Runs ``qhpo run`` on a small CIFAR-10 subset (real data, tiny epochs) with several worker
processes, and while it runs sends, at random moments:

- SIGKILL to one worker (at a random time, while it writes a checkpoint, or as a trial
  reports its last epoch, just before it tells the study),
- SIGKILL to the whole process group (launcher and workers at once),
- SIGINT to the whole process group, as Ctrl-C in a terminal does (twice in a run),

restarting the same command after each, until the study is done. It then checks that the
study holds exactly ``--trials`` finished configurations (a paused trial that a later trial
resumed counts once), that no configuration was trained to the end twice, that no trial is
left RUNNING, that no temporary file is left, and that every curve is whole (a retry's and a
resumption's first epochs are those of the trial they continue), and prints (and with
``--json`` writes) the counts. Run:

    python benchmarks/chaos.py [--kills 20] [--trials 12] [--workers 4] [--json OUT]

``--data-dir`` is the folder that holds ``cifar-10-batches-py`` (default ``$QHPO_DATA_DIR``,
else ``../shared/data`` beside the repository). ``--storage`` is ``sqlite`` (default), ``journal``,
a database URL (``postgresql://...``: the study is named ``chaos-<seed>-<time>``, so that every
run starts afresh on one database) or ``pgserver`` (a PostgreSQL server of the ``pgserver``
package, started in the study's folder for the run). On PostgreSQL the kill at the tell holds
an exclusive lock on Optuna's ``trials`` table instead of SQLite's write lock.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GLIBC = "glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=4294967296"
STUDY = "chaos"
_TEMPORARY = re.compile(r"\.trial-.*\.tmp|\.workers-.*\.json|\.qhpo-write-test-.*|\.cifar-10-.*")


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class Chaos:
    """One study, the command that resumes it, and the kills sent to it."""

    def __init__(
        self,
        folder: Path,
        *,
        data_dir: Path,
        trials: int,
        workers: int,
        epochs: int,
        subset: int,
        val_size: int,
        storage: str,
        seed: int,
    ) -> None:
        self.folder = folder
        self.trials = trials
        self.epochs = epochs
        self.study_name = STUDY
        if storage == "sqlite":
            self.storage_arg = str(folder / "q.db")
        elif storage == "journal":
            self.storage_arg = f"journal:{folder / 'q.log'}"
        else:  # a database server: a new study on it for every run
            self.storage_arg = storage
            self.study_name = f"{STUDY}-{seed}-{int(time.time())}"
        self.command = [
            sys.executable,
            "-m",
            "qhpo",
            "run",
            "--data-dir",
            str(data_dir),
            "--subset",
            str(subset),
            "--val-size",
            str(val_size),
            "--epochs",
            str(epochs),
            "--trials",
            str(trials),
            "--workers",
            str(workers),
            "--device",
            "cpu",
            "--storage",
            self.storage_arg,
            "--study",
            self.study_name,
            "--run-dir",
            str(folder),
            "--predictor",
            "svr",
            "--min-completed",
            "2",
            "--hpo-sampler",
            "random",
            "--seed",
            str(seed),
            "--quiet",
        ]
        self.env = {
            **os.environ,
            "GLIBC_TUNABLES": GLIBC,
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
        }
        self.rng = random.Random(seed)
        self.kills: Counter[str] = Counter()
        self.process: subprocess.Popen | None = None
        self._storage = None

    # -- the study ----------------------------------------------------------------------
    def study(self):
        import optuna

        from qhpo.runner import resolve_storage

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if self._storage is None:
            self._storage = resolve_storage(self.storage_arg, create=False).open()
        return optuna.load_study(study_name=self.study_name, storage=self._storage)

    def done(self) -> bool:

        from qhpo.optuna import configuration_counts

        try:
            trials = self.study().get_trials(deepcopy=False)
        except Exception:
            return False
        finished, running = configuration_counts(trials)
        return finished >= self.trials and not running

    # -- processes ----------------------------------------------------------------------
    def start(self) -> None:
        log = open(self.folder / "runs.log", "a")
        self.process = subprocess.Popen(self.command, env=self.env, stdout=log, stderr=log, start_new_session=True)
        log.close()

    def wait(self, timeout: float) -> int | None:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def workers(self) -> list[int]:
        return _children(self.process.pid) if self.process and self.process.poll() is None else []

    def kill_group(self, signum: int) -> None:
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass

    # -- moments to strike ----------------------------------------------------------------
    def wait_for_progress(self, since: float, timeout: float) -> list[int]:
        """The workers, once one of them finished an epoch after ``since`` (past start-up and data loading)."""
        from optuna.trial import TrialState

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                running = self.study().get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                if any(float(t.user_attrs.get("qhpo.heartbeat", 0.0)) > since for t in running):
                    return self.workers()
            except Exception:
                pass
            time.sleep(0.3)
        return self.workers()

    def _running(self) -> list:
        from optuna.trial import TrialState

        try:
            return self.study().get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        except Exception:
            return []

    def kill_during_checkpoint(self, timeout: float) -> bool:
        """SIGKILL a worker in the middle of writing a checkpoint.

        The scratch file the worker will write next (``.trial-KEY.pt.PID.tmp``) is made a
        named pipe whose reader takes nothing after the first bytes: the worker blocks inside
        ``torch.save`` with part of the checkpoint written, and is killed there. The pipe is
        left behind as a killed writer's scratch file is.
        """
        folder = self.folder / self.study_name / "checkpoints"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            workers = set(self.workers())
            # A trial that has epochs left to train writes its checkpoint again.
            targets = [
                (int(t.user_attrs["qhpo.owner"]["pid"]), t.user_attrs.get("qhpo.checkpoint"))
                for t in self._running()
                if "qhpo.owner" in t.user_attrs
                and "qhpo.checkpoint" in t.user_attrs
                and len(t.intermediate_values) < self.epochs - 1
            ]
            targets = [(pid, key) for pid, key in targets if pid in workers]
            if not targets:
                time.sleep(0.2)
                continue
            pid, key = self.rng.choice(targets)
            fifo = folder / f".trial-{key}.pt.{pid}.tmp"
            try:
                os.mkfifo(fifo)
                # the run may remove it at once (a restarted run clears a dead writer's scratch files)
                reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
            except OSError:
                time.sleep(0.2)
                continue
            try:
                writing = self._wait_for_bytes(reader, min(20.0, max(0.0, deadline - time.monotonic())))
                if not writing:
                    fifo.unlink(missing_ok=True)  # not reached: a worker that opens it from now on makes a plain file
                    writing = self._wait_for_bytes(reader, 0.2)
                if writing:
                    os.kill(pid, signal.SIGKILL)  # blocked in the middle of torch.save
                    return True
            finally:
                os.close(reader)
        return False

    @staticmethod
    def _wait_for_bytes(reader: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if os.read(reader, 1024):
                    return True
            except BlockingIOError:
                pass
            time.sleep(0.01)
        return False

    def kill_at_tell(self, timeout: float) -> bool:
        """SIGKILL a worker after its trial reported its last epoch, before its tell is stored.

        The window between the two is a few milliseconds, so it is made to come when this
        process watches: once a running trial holds all epochs but the last (its worker trains
        the last one), this process takes the database's write lock (SQLite's, or an exclusive
        lock on Optuna's ``trials`` table on PostgreSQL), so that the worker's report of the
        last epoch waits for it. It then lets the report through, polls for it without
        pausing, takes the lock again before the worker's next write (heartbeat, epoch times,
        the tell), checks inside the lock that the trial holds its last epoch and is still
        running, and kills the worker while it waits.
        """
        if self.storage_arg.startswith(("postgresql", "postgres:")):
            return self._kill_at_tell_on(_PostgreSQL(self.storage_arg, self.study_name), timeout)
        if not self.storage_arg.endswith(".db"):
            return False
        return self._kill_at_tell_on(_SQLite(self.storage_arg), timeout)

    def _kill_at_tell_on(self, database: _Database, timeout: float) -> bool:
        with database:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.process.poll() is None:
                workers = set(self.workers())
                training_last = [
                    (trial_id, pid, seconds)
                    for trial_id, pid, seconds in database.training_epoch(self.epochs)
                    if pid in workers
                ]
                if not training_last:
                    time.sleep(0.002)
                    continue
                trial_id, pid, seconds = self.rng.choice(training_last)
                with database.writes_held():  # its report of the last epoch waits for this
                    time.sleep(min(10.0, 3.0 * seconds + 1.0))
                caught = time.monotonic() + min(10.0, 3.0 * seconds + 2.0)
                state = database.last_epoch(trial_id, self.epochs)
                while state == "training" and time.monotonic() < caught:
                    # no pause: the worker's next write follows its report within milliseconds
                    state = database.last_epoch(trial_id, self.epochs)
                if state != "reported":
                    continue  # paused, stopped, failed or told before the lock came back: another trial
                with database.writes_held():
                    if database.last_epoch(trial_id, self.epochs) != "reported":
                        continue
                    time.sleep(0.3)  # the worker reaches its next write and waits for the lock
                    os.kill(pid, signal.SIGKILL)
                    time.sleep(0.2)
                return True
        return False

    # -- one kill -------------------------------------------------------------------------
    def strike(self, kind: str) -> bool:
        """Strike once at a random moment of the running search (started first if none runs).

        A killed worker leaves the run going on with the others (they recover its trial); a
        group kill or Ctrl-C ends the run, and the next strike starts it again. True when the
        kill was delivered.
        """
        since = time.time()
        if self.process is None or self.process.poll() is not None:
            self.start()
        if kind in ("checkpoint", "tell"):
            # Watched for from the start: a short run's trials may all end within a delay.
            if not {"checkpoint": self.kill_during_checkpoint, "tell": self.kill_at_tell}[kind](90):
                return False
            self.kills[kind] += 1
            return True
        workers = self.wait_for_progress(since, 300)
        time.sleep(self.rng.uniform(0.0, 3.0))
        if self.process.poll() is not None:
            return False
        if kind == "group":
            self.kill_group(signal.SIGKILL)
            self.wait(60)
        elif kind == "sigint":
            self.kill_group(signal.SIGINT)
            if self.wait(120) is None:  # an interrupted run must end by itself
                raise SystemExit("qhpo run did not end within 120 s of Ctrl-C")
        elif kind == "worker":
            workers = [pid for pid in workers if pid in self.workers()]
            if not workers:
                return False
            os.kill(self.rng.choice(workers), signal.SIGKILL)
        self.kills[kind] += 1
        return True

    # -- checks ---------------------------------------------------------------------------
    def check(self) -> dict:
        from optuna.trial import TrialState

        from qhpo.optuna import continuations

        study = self.study()
        trials = study.get_trials(deepcopy=False)
        resumed, _ = continuations(trials)
        # Finished configurations: a paused trial that a later trial resumed is counted through that one.
        finished = [
            t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and t.number not in resumed
        ]
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        configurations = Counter(tuple(sorted(t.params.items())) for t in complete)
        interrupted = [
            t
            for t in trials
            if t.state == TrialState.FAIL and str(t.user_attrs.get("qhpo.failure", "")).startswith("interrupted")
        ]
        retried = {t.user_attrs.get("qhpo.retry_of") for t in trials}
        lost = [t.number for t in interrupted if t.number not in retried]
        given_up = [t.number for t in trials if str(t.user_attrs.get("qhpo.failure", "")).startswith("killed")]
        broken = [
            t.number
            for t in finished
            if sorted(t.intermediate_values) != list(range(1, len(t.intermediate_values) + 1))
            or not all(0.0 <= v <= 1.0 for v in t.intermediate_values.values())
            or (t.state == TrialState.COMPLETE and len(t.intermediate_values) != self.epochs)
        ]
        by_number = {t.number: t for t in trials}
        for t in finished:  # a retry's copied epochs are the interrupted trial's, a resumption's the paused trial's
            for attr in ("qhpo.retry_of", "qhpo.resume_of"):
                origin = by_number.get(t.user_attrs.get(attr))
                if origin is not None:
                    shared = min(len(origin.intermediate_values), int(t.user_attrs.get("qhpo.resumed_at_epoch", 0)))
                    if any(origin.intermediate_values[e] != t.intermediate_values.get(e) for e in range(1, shared + 1)):
                        broken.append(t.number)
        # From an interrupted trial's last sign of life (start, finished epoch or heartbeat) to
        # the recovery that failed it and enqueued its retry.
        recovery = [
            t.datetime_complete.timestamp()
            - max(
                t.datetime_start.timestamp(),
                float(t.user_attrs.get("qhpo.heartbeat", 0.0)),
                float(t.user_attrs.get("qhpo.alive", 0.0)),
            )
            for t in interrupted
            if t.datetime_complete is not None and t.datetime_start is not None
        ]
        temporary = sorted(
            str(p.relative_to(self.folder)) for p in self.folder.rglob("*") if _TEMPORARY.fullmatch(p.name)
        )
        return {
            "trials_asked": self.trials,
            "finished": len(finished),
            "complete": len(complete),
            "pruned": len(finished) - len(complete),
            "paused": sum(t.state == TrialState.PRUNED and "qhpo.paused" in t.user_attrs for t in trials),
            "resumed": len(resumed),
            "kills_survived": sum(self.kills.values()),
            "kills_by_kind": dict(self.kills),
            "interrupted_trials_retried": len(interrupted) - len(lost),
            # killed between the report of the last epoch and the tell (what a tell kill aims at)
            "interrupted_holding_every_epoch": sum(len(t.intermediate_values) == self.epochs for t in interrupted),
            "trials_lost": len(lost),
            "seconds_to_retry_max": round(max(recovery), 1) if recovery else None,
            "trials_duplicated": sum(n - 1 for n in configurations.values() if n > 1),
            "configurations_given_up_after_repeated_kills": len(given_up),
            "running_left": sum(t.state == TrialState.RUNNING for t in trials),
            "temporary_files_left": temporary,
            "broken_curves": sorted(set(broken)),
        }


class _Database:
    """The queries and the write lock of :meth:`Chaos.kill_at_tell`, on one database.

    ``mark`` is the driver's parameter placeholder; ``scope`` narrows the running trials to
    one study (a PostgreSQL server may hold several) with ``scope_args``.
    """

    def __init__(self, connection, errors, mark: str, scope: str = "", scope_args: tuple = ()) -> None:
        self.connection, self._errors, self._scope_args = connection, errors, scope_args
        self._training = (
            "SELECT t.trial_id, a.value_json, s.value_json FROM trials t "
            "JOIN trial_user_attributes a ON a.trial_id = t.trial_id AND a.key = 'qhpo.owner' "
            "LEFT JOIN trial_user_attributes s ON s.trial_id = t.trial_id AND s.key = 'qhpo.epoch_seconds' "
            "WHERE t.state = 'RUNNING' "
            f"AND (SELECT COUNT(*) FROM trial_intermediate_values v WHERE v.trial_id = t.trial_id) = {mark}" + scope
        )
        self._reported = (
            "SELECT t.state, (SELECT COUNT(*) FROM trial_intermediate_values v "
            f"WHERE v.trial_id = t.trial_id AND v.step = {mark}) FROM trials t WHERE t.trial_id = {mark}"
        )

    def __enter__(self) -> _Database:
        return self

    def __exit__(self, *exc) -> None:
        self.connection.close()

    def training_epoch(self, epoch: int) -> list[tuple[int, int, float]]:
        """(trial id, worker pid, seconds of its last epoch) of the running trials that hold ``epoch - 1`` epochs."""
        try:
            rows = self.connection.execute(self._training, (epoch - 1, *self._scope_args)).fetchall()
        except self._errors:
            return []
        return [
            (trial_id, json.loads(owner)["pid"], float(json.loads(seconds or "1.0")))
            for trial_id, owner, seconds in rows
        ]

    def last_epoch(self, trial_id: int, epoch: int) -> str:
        """Where trial ``trial_id`` is: ``"training"`` (running, without ``epoch``), ``"reported"``
        (running, with ``epoch``: its tell is still to come) or ``"ended"``."""
        try:
            rows = self.connection.execute(self._reported, (epoch, trial_id)).fetchall()
        except self._errors:
            return "training"
        if not rows or rows[0][0] != "RUNNING":
            return "ended"
        return "reported" if rows[0][1] else "training"


class _SQLite(_Database):
    """SQLite: ``BEGIN IMMEDIATE`` holds every other connection's writes."""

    def __init__(self, path: str) -> None:
        import sqlite3

        super().__init__(sqlite3.connect(path, timeout=60, isolation_level=None), sqlite3.OperationalError, "?")

    @contextlib.contextmanager
    def writes_held(self):
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            self.connection.execute("ROLLBACK")


class _PostgreSQL(_Database):
    """PostgreSQL: an exclusive lock on ``trials`` holds every write (Optuna locks the trial's row first)."""

    def __init__(self, url: str, study: str) -> None:
        import psycopg

        _, rest = url.split("://", 1)
        super().__init__(
            psycopg.connect(f"postgresql://{rest}", autocommit=True),
            psycopg.Error,
            "%s",
            " AND t.study_id = (SELECT study_id FROM studies WHERE study_name = %s)",
            (study,),
        )

    @contextlib.contextmanager
    def writes_held(self):
        with self.connection.transaction():
            self.connection.execute("LOCK TABLE trials IN EXCLUSIVE MODE")
            yield


def run_chaos(
    folder: Path,
    *,
    data_dir: Path,
    kills: int = 20,
    trials: int = 12,
    workers: int = 4,
    epochs: int = 3,
    subset: int = 256,
    val_size: int = 250,
    storage: str = "sqlite",
    sigints: int = 2,
    seed: int = 0,
) -> dict:
    """Inject ``kills`` faults (``sigints`` of them Ctrl-C) into one study, finish it, and check it."""
    chaos = Chaos(
        folder,
        data_dir=data_dir,
        trials=trials,
        workers=workers,
        epochs=epochs,
        subset=subset,
        val_size=val_size,
        storage=storage,
        seed=seed,
    )
    kinds = ["sigint"] * sigints + [["worker", "group", "checkpoint", "tell"][i % 4] for i in range(kills - sigints)]
    chaos.rng.shuffle(kinds)
    start = time.monotonic()
    pending = list(kinds)
    attempts = 0
    while pending and attempts < 8 * kills:
        attempts += 1
        if chaos.done():  # the study finished before every kill was sent: grow it and go on
            chaos.trials += 2 * workers
            chaos.command[chaos.command.index("--trials") + 1] = str(chaos.trials)
        if chaos.strike(pending[0]):
            print(f"kill {sum(chaos.kills.values())}/{kills}: {pending[0]}", flush=True)
            pending.pop(0)
        else:
            print(f"no moment for a {pending[0]} kill in this run; trying again", flush=True)
            if chaos.process is None or chaos.process.poll() is not None:
                # the run ended before the moment came (its last trials were short): give the next
                # run new trials, so that it does not retry only the few the last one left
                chaos.trials += 2 * workers
                chaos.command[chaos.command.index("--trials") + 1] = str(chaos.trials)
    if chaos.process is not None and chaos.process.poll() is None:
        chaos.wait(3600)  # the last run ends (with an error if a worker of it was killed)
    chaos.start()  # resume to the end
    status = chaos.wait(3600)
    result = chaos.check()
    result.update(
        {
            "final_status": status,
            "seconds": round(time.monotonic() - start, 1),
            "workers": workers,
            "epochs": epochs,
            "subset": subset,
            "storage": storage,
            "kills_planned": kills,
        }
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--sigints", type=int, default=2)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--subset", type=int, default=256)
    parser.add_argument("--val-size", type=int, default=250)
    parser.add_argument(
        "--storage",
        default="sqlite",
        metavar="KIND_OR_URL",
        help="sqlite (default), journal, pgserver (a PostgreSQL server started for the run) or a database URL",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("QHPO_DATA_DIR") or REPO.parent / "shared" / "data")
    )
    parser.add_argument("--folder", type=Path, default=None, help="where the study lives (default: a temporary folder)")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    if args.storage not in ("sqlite", "journal", "pgserver") and "://" not in args.storage:
        parser.error(f"--storage must be sqlite, journal, pgserver or a database URL, not {args.storage!r}")
    with tempfile.TemporaryDirectory(prefix="qhpo-chaos-") as scratch:
        folder = args.folder or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        server = None
        if args.storage == "pgserver":
            server, args.storage = _pgserver(Path(scratch) / "pg")
        try:
            result = _run(folder, args)
        finally:
            if server is not None:
                server.cleanup()
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    ok = (
        result["finished"] == result["trials_asked"]
        and result["trials_lost"] == 0
        and result["trials_duplicated"] == 0
        and result["running_left"] == 0
        and not result["temporary_files_left"]
        and not result["broken_curves"]
    )
    sys.exit(0 if ok else 1)


def _pgserver(folder: Path):
    """A PostgreSQL server of the pgserver package in ``folder`` and the URL of a fresh database on it."""
    import warnings

    import pgserver

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pgserver.get_server(folder, cleanup_mode="stop")
    server.psql("CREATE DATABASE chaos;")
    head, query = server.get_uri().split("?", 1)
    return server, f"{head.rsplit('/', 1)[0]}/chaos?{query}"


def _run(folder: Path, args) -> dict:
    return run_chaos(
        folder,
        data_dir=args.data_dir,
        kills=args.kills,
        trials=args.trials,
        workers=args.workers,
        epochs=args.epochs,
        subset=args.subset,
        val_size=args.val_size,
        storage=args.storage,
        sigints=args.sigints,
        seed=args.seed,
    )


if __name__ == "__main__":
    main()
