"""The predictive scheduler on real Ray Tune trials: does a refit make trials wait?

Recorded CIFAR-10 curves (``N`` rows of ``curves/cifar10_cnn.csv`` in a seeded random
order, cut at ``E`` epochs) are replayed as Ray trials on ``W`` concurrent workers; each
epoch sleeps ``time_scale`` seconds and reports the recorded value
(:func:`qhpo.ray.replay_on_ray`). The same curves, order and policy run three ways:

- ``none``: no stopping (every trial trains ``E`` epochs);
- ``qhpo sync``: the qhpo policy, whose PredictionService refits inside ``decide``
  (``background=False``): the Tune event loop, and with it every trial's next epoch,
  waits for each refit;
- ``qhpo background``: the same policy refitting in a worker thread (``background=True``,
  what ``qhpo run --backend ray`` uses): ``decide`` answers with the last fitted model.

Printed per run: epochs trained, measured wall clock ``T`` of the Ray run, the ideal wall
clock ``T_sim * time_scale`` of the simulated replay (:func:`qhpo.replay.simulate`) with
the same decisions' epochs, the overhead per reported epoch
``(T - T_sim * time_scale) / epochs``, predictor fits and their seconds, and the longest and
total time the scheduler spent in ``decide``.

Run: python benchmarks/ray_scheduler.py            (about 3 minutes on 2 cores)
     python benchmarks/ray_scheduler.py --sampler pegasus-sa   (the annealer behind a QPU's embedding)
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from qhpo.curves import read_curve_table
from qhpo.policies import make_policy
from qhpo.ray import connect_ray, replay_on_ray
from qhpo.replay import PolicyAgent, simulate

TABLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "curves" / "cifar10_cnn.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--curves", type=Path, default=Path(os.environ.get("QHPO_CURVES", TABLE)))
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--time-scale", type=float, default=0.01, help="real seconds per replayed epoch")
    parser.add_argument("--predictor", default="qsvr")
    parser.add_argument(
        "--sampler", default=None, help="annealer of the qsvr predictors (qhpo.samplers name; default: the predictor's)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    full = read_curve_table(args.curves)
    order = np.random.default_rng(args.seed).permutation(full.n_trials)[: args.trials]
    table = full.take(order).truncate(args.epochs)
    connect_ray(num_cpus=max(2, args.workers))
    print(
        f"{table.n_trials} trials x {table.epochs} epochs, {args.workers} Ray workers, "
        f"{args.time_scale * 1e3:.0f} ms per epoch, predictor {args.predictor}, sampler {args.sampler or 'default'}"
    )
    print(
        f"{'run':<18}{'epochs':>7}{'T [s]':>8}{'T_sim [s]':>10}{'overhead/epoch':>16}"
        f"{'fits':>6}{'fit s':>7}{'decide max s':>14}{'decide sum s':>14}"
    )
    for label, name, background in (
        ("none", "none", False),
        ("qhpo sync", "qhpo", False),
        ("qhpo background", "qhpo", True),
    ):

        def policy(name=name, background=background):
            return make_policy(
                name,
                max_epochs=table.epochs,
                mode=table.mode,
                predictor=args.predictor,
                sampler=args.sampler,
                random_state=args.seed,
                **({"background": background} if name != "none" else {}),
            )

        live = policy()
        start = time.perf_counter()
        out = replay_on_ray(
            table.curves, live, params=table.param_rows(), workers=args.workers, time_scale=args.time_scale
        )
        elapsed = time.perf_counter() - start
        service = getattr(live, "service", None)
        if service is not None:
            service.wait(timeout=60)
        # The ideal: the simulated replay of the epochs this run trained, at the same scale.
        ideal = _ideal_seconds(out.epochs_trained, args.workers) * args.time_scale
        decide = np.asarray(out.decide_seconds or [0.0])
        print(
            f"{label:<18}{out.cost:>7}{out.measured_seconds:>8.1f}{ideal:>10.1f}"
            f"{(out.measured_seconds - ideal) / out.cost * 1e3:>13.1f} ms"
            f"{(service.n_fits if service else 0):>6}{(service.fit_seconds if service else 0.0):>7.1f}"
            f"{decide.max():>14.3f}{decide.sum():>14.2f}   (driver {elapsed:.0f} s)"
        )
        if service is not None:
            service.close()
    sync = simulate(
        table.curves,
        PolicyAgent(
            make_policy(
                "qhpo",
                max_epochs=table.epochs,
                mode=table.mode,
                predictor=args.predictor,
                sampler=args.sampler,
                random_state=args.seed,
            ),
            table.curves,
            table.param_rows(),
        ),
        workers=args.workers,
    )
    print(f"simulated qhpo (in-process, synchronous): {sync.cost} epochs, wall clock {sync.wallclock:.0f} epochs")


def _ideal_seconds(epochs_trained: np.ndarray, workers: int) -> float:
    """Wall clock, in epochs, of trials of these lengths started in row order on ``workers`` workers."""
    free = np.zeros(workers)
    for length in epochs_trained:
        w = int(np.argmin(free))
        free[w] += length
    return float(free.max())


if __name__ == "__main__":
    main()
