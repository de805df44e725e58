"""When a search's first trial finishes, and what it has found by half its epochs.

For every built-in table, replays ``qhpo`` (SVR, 100 trials, the benchmark's draws) with the
rung quorum off and at its default, and prints per table, over the seeds: the trials
completed per seed and the cost (share of the epochs of full training), where the first
trial completes (as a share of the epochs the whole replay spends), the share of seeds
with no trial complete by half those epochs, and the mean regret (÷ the table's spread, as
``qhpo bench`` reports it) of the best trial completed by then (over the seeds that have one).

Run:

    python benchmarks/anytime.py --seeds 10 --first-seed 100      # about 2 min on 2 cores
"""

from __future__ import annotations

import argparse

import numpy as np

from qhpo.curves import builtin_tables_folder, read_curve_table
from qhpo.replay import replay_rule
from qhpo.replay._benchmark import draw_order


def anytime(table, seed: int, quorum: int) -> tuple[float, float, float, float]:
    """(first completion as a share of the epochs spent, regret ÷ spread at half of them (NaN:
    none complete by then), trials completed, cost)."""
    drawn = table.take(draw_order(table.n_trials, 100, seed))
    out = replay_rule("qhpo", drawn, seed=seed, predictor="svr", options={"quorum": quorum})
    total = int(out.epochs_trained.sum())
    at = np.asarray(out.completed_at)
    finals = drawn.sign * drawn.curves[:, -1]
    best = np.nanmax(finals)
    spread = best - np.nanmedian(finals)
    first = at[at >= 0].min() / total if (at >= 0).any() else 1.0
    by_half = (at >= 0) & (at <= total / 2)
    regret = (best - np.nanmax(finals[by_half])) / spread if by_half.any() else np.nan
    return first, regret, float(out.complete.sum()), total / (len(drawn.curves) * drawn.epochs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=100)
    args = parser.parse_args()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    for path in sorted(builtin_tables_folder().glob("*.csv")):
        table = read_curve_table(path)
        cells = []
        for quorum in (0, 4):
            first, half, done, cost = np.array([anytime(table, s, quorum) for s in seeds]).T
            none = np.isnan(half).mean()
            regret = np.nanmean(half) if not np.isnan(half).all() else float("nan")
            cells.append(
                f"quorum {quorum}: {done.mean():.1f} completed, cost {cost.mean():.1%}, first completion at "
                f"{first.mean():.0%}, none by half on {none:.0%}, regret {regret:.3f} at half"
            )
        print(f"{table.name:22s} " + " | ".join(cells))


if __name__ == "__main__":
    main()
