"""Whether a search without a budget should finish its best paused trial when it ends.

Under a budget ``qhpo`` finishes its best-standing paused trial at the end (``endgame_slack``
of :class:`qhpo.policies.PredictiveHalving`). A search of ``--trials`` configurations has an
end too: once no new configuration follows, nothing runs and the rule resumes nothing, the
paused trials count as stopped. This benchmark measures the same end there: at that moment
the ``k`` best-standing paused trials (one after the other, each the best of those left:
its value at the epoch it paused at or above the largest share of the trials that reached
that epoch) resume and train to their end unjudged. ``k = 0`` is ``qhpo`` as it is, equal to
``qhpo bench --predictor svr``'s qhpo seed for seed. Scores as ``qhpo bench``: cost = share of
the epochs, regret / spread averaged over the tables.

    python benchmarks/search_end.py --seeds 100 --first-seed 100 --finish 0,1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from qhpo.curves import builtin_tables_folder, read_curve_table
from qhpo.policies import TrialStatus, make_policy
from qhpo.replay import PolicyAgent, SeedResult, draw_order, first_rung, simulate
from qhpo.replay._scores import score, table_spread


class SearchEndAgent(PolicyAgent):
    """A :class:`PolicyAgent` that, once the search would end, resumes the ``k`` best-standing
    paused trials to finish, one at a time."""

    def __init__(self, policy, curves, params, k: int):
        super().__init__(policy, curves, params)
        self.k, self.finished = int(k), 0

    def promote(self, limit: int, more_trials: bool = False) -> list[int]:
        chosen = super().promote(limit, more_trials=more_trials)
        running = TrialStatus.RUNNING in self.status.values()
        if chosen or more_trials or running or self.finished >= self.k:
            return chosen
        best = self.policy.best_standing(self._views()[1])
        if best is None:
            return chosen
        self.finished += 1
        self.finishing.add(int(best[0].key))  # no rung judges it again
        return [int(best[0].key)]


def replay_seed(table, seed: int, trials: int, k: int, predictor: str = "svr") -> tuple[float, float]:
    """(cost share, regret) of qhpo on one seed with ``k`` trials finished at the search's end."""
    drawn = table.take(draw_order(table.n_trials, trials, seed))
    policy = make_policy("qhpo", max_epochs=table.epochs, mode=table.mode, predictor=predictor, random_state=seed)
    agent = SearchEndAgent(policy, drawn.curves, drawn.param_rows(), k)
    out = simulate(drawn.curves, agent, first_rung=first_rung("", table.epochs, policy=policy))
    policy.service.close()
    result = SeedResult(out.epochs_trained, out.complete, out.wallclock, 0.0, out.pauses, out.resumptions)
    scores = score(drawn, result)
    return scores["cost_fraction"], scores["regret"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=100, help="first seed (default 100: the design seeds)")
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--finish", default="0,1", help="comma-separated k: paused trials finished at the end")
    parser.add_argument("--predictor", default="svr")
    parser.add_argument("--suite", type=Path, default=None, help="folder of tables (default: the built-in ones)")
    args = parser.parse_args(argv)
    try:
        ks = [int(x) for x in args.finish.split(",") if x.strip()]
    except ValueError:
        parser.error("--finish takes whole numbers, comma-separated")
    if not ks or min(ks) < 0:
        parser.error("--finish takes whole numbers of at least 0")
    tables = [read_curve_table(p) for p in sorted(Path(args.suite or builtin_tables_folder()).glob("*.csv"))]
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    started = time.perf_counter()
    print(
        f"qhpo, {args.trials} trials, seeds {seeds.start}-{seeds.stop - 1}, predictor {args.predictor}: cost / regret ÷ spread"
    )
    means = {}
    for k in ks:
        costs, regrets = [], []
        for table in tables:
            rows = [replay_seed(table, s, args.trials, k, args.predictor) for s in seeds]
            costs.append(np.mean([c for c, _ in rows]))
            regrets.append(np.mean([r for _, r in rows]) / table_spread(table))
            print(f"  finish {k}  {table.name:<22} {100 * costs[-1]:6.2f} % / {regrets[-1]:.5f}", flush=True)
        means[k] = (float(np.mean(costs)), float(np.mean(regrets)))
    for k, (cost, regret) in means.items():
        print(f"finish {k}: mean over tables {100 * cost:.2f} % / {regret:.5f}")
    print(f"wall time: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
