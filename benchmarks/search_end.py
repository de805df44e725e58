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


class SearchEndAgent:
    """A :class:`PolicyAgent` that, once the search would end, resumes the ``k`` best-standing
    paused trials to finish, one at a time."""

    def __init__(self, inner: PolicyAgent, k: int):
        self.inner, self.k, self.finished = inner, int(k), 0

    def start(self, index: int) -> None:
        self.inner.start(index)

    def report(self, index: int, epoch: int, value: float):
        return self.inner.report(index, epoch, value)

    def finish(self, index: int, status: TrialStatus) -> None:
        self.inner.finish(index, status)

    def resume(self, index: int) -> None:
        self.inner.resume(index)

    def promote(self, limit: int, more_trials: bool = False) -> list[int]:
        chosen = self.inner.promote(limit, more_trials=more_trials)
        running = TrialStatus.RUNNING in self.inner.status.values()
        if chosen or more_trials or running or self.finished >= self.k:
            return chosen
        _, views = self.inner._views()
        paused = [(k, o) for k, o in enumerate(views) if o.status == TrialStatus.PAUSED]
        if not paused:
            return chosen
        policy = self.inner.policy
        standing = {k: policy._finish_standing(o, views)[0] for k, o in paused}
        _, best = max(paused, key=lambda item: (standing[item[0]], item[1].epochs, -item[0]))
        self.finished += 1
        self.inner.finishing.add(int(best.key))  # no rung judges it again
        return [int(best.key)]


def replay_seed(table, seed: int, trials: int, k: int, predictor: str = "svr") -> tuple[float, float]:
    """(cost share, regret) of qhpo on one seed with ``k`` trials finished at the search's end."""
    drawn = table.take(draw_order(table.n_trials, trials, seed))
    policy = make_policy("qhpo", max_epochs=table.epochs, mode=table.mode, predictor=predictor, random_state=seed)
    agent = PolicyAgent(policy, drawn.curves, drawn.param_rows())
    out = simulate(drawn.curves, SearchEndAgent(agent, k), first_rung=first_rung("", table.epochs, policy=policy))
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
