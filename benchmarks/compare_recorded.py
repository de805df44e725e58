"""Train recorded configurations with qhpo's trainer and print both curves side by side.

The recorded table (``cifar10_cnn.csv``) holds 200-epoch test-accuracy curves of the
reference CNN family; this retrains chosen trials (same num_layers, num_filters,
batch_size, learning_rate, momentum) on the full 45,000-image training split for a few
epochs and prints qhpo's validation accuracy beside the recorded accuracy at the same
epochs. Close early curves say the network family and training are comparable, so that
predictors fitted on the recorded curves make sense for qhpo's own trials.

Run (about 3 minutes on 2 CPU cores)::

    python benchmarks/compare_recorded.py --data-dir ../shared/data \\
        --table ../shared/data/curves/cifar10_cnn.csv --trials 61 141 31 --epochs 3 --threads 1
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from qhpo.curves import read_curve_table
from qhpo.workload import TRAINER_PARAMETERS, TrialTrainer, load_cifar10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="folder that contains cifar-10-batches-py/")
    parser.add_argument("--table", required=True, help="recorded curve table (CSV)")
    parser.add_argument("--trials", type=int, nargs="+", required=True, help="trial ids of the table to retrain")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--subset", type=int, default=None, help="training images (default: all 45,000)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    table = read_curve_table(args.table)
    data = load_cifar10(args.data_dir, subset=args.subset, device=args.device)
    print(
        f"{len(data.train)} training images, {len(data.val)} validation images; recorded = test accuracy of the reference run"
    )
    for trial in args.trials:
        (row,) = np.flatnonzero(table.trial_ids == trial)
        config = {name: table.params[name][row].item() for name in TRAINER_PARAMETERS}
        for name in ("num_layers", "num_filters", "batch_size"):
            config[name] = int(config[name])
        trainer = TrialTrainer(config, data, device=args.device)
        ours = [trainer.train_epoch() for _ in range(args.epochs)]
        recorded = table.curves[row, : args.epochs]
        print(f"trial {trial} {config}")
        print("  epoch     " + " ".join(f"{e:>6}" for e in range(1, args.epochs + 1)))
        print("  qhpo      " + " ".join(f"{v:>6.3f}" for v in ours))
        print("  recorded  " + " ".join(f"{v:>6.3f}" for v in recorded))


if __name__ == "__main__":
    main()
