"""Seconds per epoch on one GPU when 1, 2 or 4 trials share it, on all 45,000 training images.

For each K in ``--trials-per-gpu`` the script starts K processes on the same GPU (as K
workers of ``qhpo run --trials-per-gpu K`` would be); each loads CIFAR-10 onto the GPU and
trains the three configurations of ``CORNERS`` one after the other with
:class:`qhpo.workload.TrialTrainer` (``precision="auto"``): one warm-up epoch (cuDNN times
its algorithms there), then ``--epochs`` timed epochs started together behind a barrier.
An epoch includes its validation pass over 5,000 images, as in a search.

Printed per configuration and K: seconds per epoch of one trial, and epochs per second of
the GPU (K / seconds per epoch), the figure that decides how many trials should share a GPU.
``--json`` writes the figures after every K, so a run cut short keeps what it measured.

Run (about 2.5 minutes on one GPU; part of ``benchmarks/gpu_check.sh``)::

    python benchmarks/gpu_epochs.py --data-dir ~/.cache/qhpo/data --trials-per-gpu 1 2 4 --json gpu-epochs.json
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
import torch.multiprocessing as mp

# (num_layers, num_filters, batch_size): the smallest, a middle and the largest network of the space.
CORNERS = ((2, 16, 512), (3, 32, 128), (4, 64, 64))
LEARNING_RATE, MOMENTUM = 0.01, 0.9
_BARRIER_TIMEOUT_S = 600


def _worker(rank: int, data_dir: str, device: str, subset: int | None, epochs: int, barrier, results) -> None:
    from qhpo.workload import TrialTrainer, load_cifar10

    torch.set_num_threads(1)  # a CPU dry run only; the GPU does the work otherwise
    data = load_cifar10(data_dir, subset=subset, device=device)
    on_gpu = torch.device(device).type == "cuda"
    for layers, filters, batch in CORNERS:
        config = dict(
            num_layers=layers, num_filters=filters, batch_size=batch, learning_rate=LEARNING_RATE, momentum=MOMENTUM
        )
        trainer = TrialTrainer(config, data, device=device, seed=rank)
        trainer.train_epoch()  # warm-up
        if on_gpu:
            torch.cuda.synchronize()
        barrier.wait(timeout=_BARRIER_TIMEOUT_S)
        start = time.perf_counter()
        for _ in range(epochs):
            trainer.train_epoch()  # ends with .item() of the accuracy: the GPU is done
        seconds = (time.perf_counter() - start) / epochs
        results.put((rank, f"{layers}/{filters}/{batch}", seconds, trainer.arithmetic))
        barrier.wait(timeout=_BARRIER_TIMEOUT_S)
        del trainer


def measure(data_dir: str, device: str, trials_per_gpu: int, epochs: int, subset: int | None = None) -> dict[str, dict]:
    """``{"L/F/B": {"seconds_per_epoch": mean over the K trials, "epochs_per_second": K / that, ...}}``."""
    context = mp.get_context("spawn")
    barrier, results = context.Barrier(trials_per_gpu), context.Queue()
    processes = [
        context.Process(target=_worker, args=(rank, data_dir, device, subset, epochs, barrier, results))
        for rank in range(trials_per_gpu)
    ]
    for process in processes:
        process.start()
    rows: dict[str, list] = {}
    try:
        for _ in range(trials_per_gpu * len(CORNERS)):
            rank, name, seconds, arithmetic = results.get(timeout=_BARRIER_TIMEOUT_S)
            rows.setdefault(name, []).append((seconds, arithmetic))
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    figures = {}
    for name, values in rows.items():
        mean = sum(s for s, _ in values) / len(values)
        figures[name] = {
            "seconds_per_epoch": mean,
            "epochs_per_second": trials_per_gpu / mean,
            "arithmetic": values[0][1],
            "trials": len(values),
        }
    return figures


def best_trials_per_gpu(table: dict[int, dict[str, dict]]) -> int:
    """The K whose GPU throughput, as the geometric mean over the configurations, is highest."""

    def score(k: int) -> float:
        rates = [row["epochs_per_second"] for row in table[k].values()]
        return math.exp(sum(map(math.log, rates)) / len(rates)) if len(rates) == len(CORNERS) else 0.0

    return max(table, key=score)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="folder that contains cifar-10-batches-py/")
    parser.add_argument("--device", default="cuda", help="the GPU (default cuda)")
    parser.add_argument("--trials-per-gpu", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per configuration (default 2)")
    parser.add_argument("--subset", type=int, help="training images (default all 45,000; a small one for a dry run)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    on_gpu = torch.device(args.device).type == "cuda"
    if on_gpu and not torch.cuda.is_available():
        raise SystemExit(
            "gpu_epochs.py: torch sees no CUDA GPU; install a CUDA build (QHPO_TORCH=cu126 scripts/install.sh)."
        )
    name = torch.cuda.get_device_name(torch.device(args.device)) if on_gpu else "CPU (dry run)"
    table: dict[int, dict[str, dict]] = {}
    for k in args.trials_per_gpu:
        table[k] = measure(args.data_dir, args.device, k, args.epochs, args.subset)
        if args.json:
            with open(args.json, "w") as handle:
                json.dump(
                    {"device": name, "table": table, "best_trials_per_gpu": best_trials_per_gpu(table)},
                    handle,
                    indent=1,
                )
    images = "45,000" if args.subset is None else f"{args.subset:,}"
    print(
        f"{name}, {images} training + 5,000 validation images, precision auto "
        f"({next(iter(next(iter(table.values())).values()))['arithmetic']}), {args.epochs} timed epoch(s)"
    )
    print("| layers/filters/batch | " + " | ".join(f"K={k}: s/epoch, epochs/s/GPU" for k in table) + " |")
    print("|---|" + "---|" * len(table))
    for layers, filters, batch in CORNERS:
        name = f"{layers}/{filters}/{batch}"
        cells = [
            f"{table[k][name]['seconds_per_epoch']:.2f}, {table[k][name]['epochs_per_second']:.2f}"
            if name in table[k]
            else "-"
            for k in table
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"best trials per GPU (highest geometric-mean throughput): {best_trials_per_gpu(table)}")


if __name__ == "__main__":
    main()
