"""Freeze-thaw in a plain Optuna objective: qhpo's pruner pauses trials, and the search
resumes the paused trials its policy ranks among the best once more curves are in.

Optuna cannot resume a pruned trial, so a resumption is a new trial with the same
parameters that loads the paused trial's checkpoint, reports the epochs the checkpoint
recorded and trains on. ``qhpo.optuna.resumable_trials`` lists the paused trials worth
resuming now; ``ResumableTrial.enqueue`` makes the study's next trial their resumption.

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

from qhpo.optuna import CHECKPOINT_ATTR, RESUME_OF_ATTR, PredictivePruner, checkpoint_key, resumable_trials


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
        # A resumption carries the paused trial's checkpoint key; a new trial takes its number.
        key = checkpoint_key(trial)
        trial.set_user_attr(CHECKPOINT_ATTR, key)
        path = folder / f"trial-{key}.pt"
        model, optimizer = build(params, seed=key)
        curve: list[float] = []
        if trial.user_attrs.get(RESUME_OF_ATTR) is not None:
            state = torch.load(path, weights_only=True)  # tensors and numbers only: no code is run
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            curve = list(state["curve"])
            for epoch, value in enumerate(curve, start=1):  # the epochs before the pause, as they were
                trial.report(value, epoch)
        for epoch in range(len(curve) + 1, epochs + 1):
            train_epoch(model, optimizer, train, seed=key, epoch=epoch)
            curve.append(accuracy(model, val))
            save_checkpoint(path, model, optimizer, curve)
            trial.report(curve[-1], epoch)
            if trial.should_prune():
                if not trial.study.pruner.paused(trial):
                    path.unlink(missing_ok=True)  # stopped for good; a paused trial keeps its checkpoint
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
        "qhpo", "svr", max_epochs=epochs, random_state=seed, policy_options={"min_completed": 4, "background": False}
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
    started = sum(RESUME_OF_ATTR not in t.user_attrs for t in study.trials)
    while True:
        # A free worker first asks whether a paused trial is worth resuming now ...
        resumable = resumable_trials(study, limit=1)
        if resumable:
            paused = resumable[0]
            print(f"resuming trial {paused.number} after epoch {paused.epoch}: {paused.resumption.reason}")
            paused.enqueue(study)
        elif started < configurations:  # ... and only then starts a new configuration.
            started += 1
        else:
            break  # nothing new to start, nothing to resume (and nothing running)
        study.optimize(objective, n_trials=1)
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
