"""Freeze-thaw in a plain Optuna objective: qhpo's pruner pauses trials, and the search
resumes the paused trials its policy ranks among the best once more curves are in.

``PredictivePruner("qhpo", freeze_thaw=True)`` runs the rule the replay measured as
``qhpo``: at each rung the observed rank decides and a trial it does not keep is paused
(its checkpoint kept); the refitted predictor later resumes the paused trials that rank
among the best. Optuna cannot resume a pruned trial, so a resumption is a new trial with
the same parameters: the callback ``qhpo.optuna.ResumePausedTrials`` enqueues it after each
trial ends, and the objective's checkpoint hook ``qhpo.optuna.TrialCheckpoint`` tells it
to load the paused trial's checkpoint, report the epochs it recorded and train on.

The network is a small multilayer perceptron on scikit-learn's bundled 8x8 digits (no
download), trained with PyTorch on the CPU in seconds; swap in your own model and data.

Run:

    python examples/resume_paused_trials.py [--configurations 16] [--epochs 8]
        [--storage sqlite:///resume.db] [--checkpoints resume-checkpoints]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import optuna
import torch

from qhpo.optuna import RESUME_OF_ATTR, PredictivePruner, ResumePausedTrials, TrialCheckpoint


def load_digits_split(seed: int = 0):
    """Scikit-learn's 1,797 digits as tensors: 1,297 training and 500 validation images."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target, dtype=torch.long)
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(y)))
    return (x[order[500:]], y[order[500:]]), (x[order[:500]], y[order[:500]])


def build(params: dict, seed: int):
    """The network and its optimiser; the initial weights come from ``seed``."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, params["hidden"]), torch.nn.ReLU(), torch.nn.Linear(params["hidden"], 10)
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=params["learning_rate"], momentum=params["momentum"])
    return model, optimizer


def train_epoch(model, optimizer, train, *, seed: int, epoch: int) -> None:
    """One epoch in mini-batches of 64; the order is drawn from ``(seed, epoch)`` so that a
    resumed trial trains exactly the epochs the uninterrupted one would have."""
    x, y = train
    generator = torch.Generator().manual_seed(seed * 1000 + epoch)
    model.train()
    for batch in torch.randperm(len(y), generator=generator).split(64):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
        optimizer.step()


def accuracy(model, split) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(split[0]).argmax(1) == split[1]).float().mean())


def save_checkpoint(path: Path, model, optimizer, curve: list[float]) -> None:
    """Written beside the old one and renamed over it: a crash never leaves half a checkpoint."""
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as handle:
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "curve": curve}, handle)
    os.replace(handle.name, path)


def make_objective(train, val, epochs: int, folder: Path):
    def objective(trial: optuna.Trial) -> float:
        params = {
            "hidden": trial.suggest_int("hidden", 4, 64, log=True),
            "learning_rate": trial.suggest_float("learning_rate", 1e-3, 1.0, log=True),
            "momentum": trial.suggest_float("momentum", 0.0, 0.9),
        }
        # The checkpoint hook: a resumption carries the paused trial's key, a new trial takes its number.
        checkpoint = TrialCheckpoint(trial, folder)
        model, optimizer = build(params, seed=checkpoint.key)
        curve: list[float] = []
        if checkpoint.resumes:
            state = torch.load(checkpoint.path, weights_only=True)  # tensors and numbers only: no code is run
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            curve = list(state["curve"])
            checkpoint.report_again(curve)  # the epochs before the pause, as they were
        for epoch in range(len(curve) + 1, epochs + 1):
            train_epoch(model, optimizer, train, seed=checkpoint.key, epoch=epoch)
            curve.append(accuracy(model, val))
            save_checkpoint(checkpoint.path, model, optimizer, curve)
            trial.report(curve[-1], epoch)
            if trial.should_prune():
                checkpoint.pruned()  # a stopped trial's checkpoint goes, a paused trial keeps it
                raise optuna.TrialPruned()
        trial.study.pruner.flush()  # decision records are written in the background
        return curve[-1]

    return objective


def search(configurations: int, epochs: int, storage: str | None, folder: Path, seed: int = 0) -> optuna.Study:
    """``configurations`` new configurations, plus every resumption the policy asks for."""
    folder.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # background=False: each decision waits for the predictor's refit, so a run is the same every time.
    pruner = PredictivePruner(
        "qhpo",
        "svr",
        freeze_thaw=True,
        max_epochs=epochs,
        random_state=seed,
        policy_options={"min_completed": 4, "background": False},
    )
    study = optuna.create_study(
        study_name="resume-example",
        storage=storage,
        direction="maximize",
        pruner=pruner,
        sampler=optuna.samplers.RandomSampler(seed=seed),
        load_if_exists=True,
    )
    objective = make_objective(*load_digits_split(seed), epochs, folder)
    # After each trial the callback enqueues the paused trial worth resuming now, if any; once
    # `configurations` configurations have finished and none is left to resume, it stops the study.
    study.optimize(objective, n_trials=None, callbacks=[ResumePausedTrials(n_configurations=configurations)])
    return study


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configurations", type=int, default=16, help="new configurations to try (default 16)")
    parser.add_argument("--epochs", type=int, default=8, help="epochs of a trial that is never stopped (default 8)")
    parser.add_argument("--storage", default=None, help="Optuna storage URL (default: in memory)")
    parser.add_argument("--checkpoints", type=Path, default=Path("resume-checkpoints"), help="checkpoint folder")
    args = parser.parse_args(argv)
    study = search(args.configurations, args.epochs, args.storage, args.checkpoints)

    resumptions = [t for t in study.trials if RESUME_OF_ATTR in t.user_attrs]
    resumed = {t.user_attrs[RESUME_OF_ATTR] for t in resumptions}
    paused = [t for t in study.trials if "qhpo.paused" in t.user_attrs]
    configurations = [t for t in study.trials if t.state.is_finished() and t.number not in resumed]
    trained = sum(len(t.intermediate_values) for t in configurations)
    print(
        f"{len(configurations)} configurations, {len(paused)} pauses, {len(resumptions)} resumptions; "
        f"{trained} epochs trained of {len(configurations) * args.epochs}; "
        f"best validation accuracy {study.best_value:.4f} (trial {study.best_trial.number})"
    )
    for trial in resumptions:
        values = ", ".join(f"{v:.3f}" for _, v in sorted(trial.intermediate_values.items()))
        state = "paused again" if "qhpo.paused" in trial.user_attrs else trial.state.name.lower()
        print(f"  trial {trial.number} resumed trial {trial.user_attrs[RESUME_OF_ATTR]} ({state}): {values}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
