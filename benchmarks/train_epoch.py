"""Seconds per epoch of qhpo's trial trainer against a conventional per-sample DataLoader pipeline.

Both pipelines train the same CNN (same initial weights, same SGD settings) on the same
CIFAR-10 subset and evaluate on the same validation images; their epochs are interleaved,
so load from other processes hits both alike. The conventional pipeline is what a typical
training script does: a ``Dataset`` whose ``__getitem__`` turns one HWC uint8 image into a
PIL image, pads it by 4, crops a random 32x32 window, flips it with probability 1/2 and
converts and normalises it (torchvision's transforms, written out); a ``DataLoader`` (default collate, ``--loader-workers`` processes, 0 by
default) batches it; the model runs in NCHW float32. qhpo's pipeline keeps the data as one
uint8 tensor on the device, augments whole batches with one gather, runs channels-last and,
on a GPU, under bf16 autocast.

Run (about 3 minutes on 2 CPU cores)::

    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=4294967296 \\
        python benchmarks/train_epoch.py --data-dir ../shared/data --subset 2048 --threads 1

The figure is the ratio column: conventional seconds per epoch / qhpo seconds per epoch.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, Dataset

from qhpo.workload import TrialTrainer, load_cifar10, resolve_device
from qhpo.workload._precision import cpu_has_native_bf16
from qhpo.workload._trainer import _MEAN, _STD

# (num_layers, num_filters, batch_size): the smallest, a middle and the largest network.
CORNERS = ((2, 16, 512), (3, 32, 128), (4, 64, 64))
LEARNING_RATE, MOMENTUM = 0.01, 0.9


class PerSampleCifar(Dataset):
    """CIFAR-10 as ``torchvision.datasets.CIFAR10`` serves it, with its usual per-sample transforms.

    ``__getitem__`` makes a PIL image of one HWC uint8 array and applies RandomCrop(32,
    padding=4), RandomHorizontalFlip, ToTensor and Normalize, as torchvision does them.
    """

    def __init__(self, images_nchw: torch.Tensor, labels: torch.Tensor, *, augment: bool, seed: int = 0) -> None:
        self.images = images_nchw.permute(0, 2, 3, 1).contiguous().numpy()  # HWC uint8, as torchvision keeps it
        self.labels = labels.tolist()
        self.augment = augment
        self.rng = np.random.default_rng(seed)
        self.mean = torch.tensor(_MEAN).view(3, 1, 1) / 255
        self.std = torch.tensor(_STD).view(3, 1, 1) / 255

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        image = Image.fromarray(self.images[i])
        if self.augment:
            image = ImageOps.expand(image, border=4, fill=0)  # RandomCrop(32, padding=4)
            dy, dx = self.rng.integers(0, 9, size=2)
            image = image.crop((dx, dy, dx + 32, dy + 32))
            if self.rng.random() < 0.5:  # RandomHorizontalFlip
                image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        tensor = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1).contiguous().float().div(255)  # ToTensor
        return (tensor - self.mean) / self.std, self.labels[i]  # Normalize


class ConventionalTrainer:
    """The textbook loop: DataLoader batches, NCHW float32 model, optimiser step per batch."""

    def __init__(self, config: dict, data, device: torch.device, workers: int, seed: int = 0) -> None:
        reference = TrialTrainer(config, data, device="cpu", seed=seed)  # same initial weights
        self.model = reference.model.to(memory_format=torch.contiguous_format).to(device)
        self.device = device
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=config["learning_rate"], momentum=config["momentum"]
        )
        generator = torch.Generator().manual_seed(seed)
        self.train_loader = DataLoader(
            PerSampleCifar(data.train.images.cpu(), data.train.labels.cpu(), augment=True, seed=seed),
            batch_size=config["batch_size"],
            shuffle=True,
            num_workers=workers,
            generator=generator,
            persistent_workers=workers > 0,
        )
        self.val_loader = DataLoader(
            PerSampleCifar(data.val.images.cpu(), data.val.labels.cpu(), augment=False),
            batch_size=1000,
            num_workers=workers,
            persistent_workers=workers > 0,
        )

    def train_epoch(self) -> float:
        self.model.train()
        for images, labels in self.train_loader:
            images, labels = images.to(self.device), labels.to(self.device)
            loss = F.cross_entropy(self.model(images), labels)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        self.model.eval()
        correct = total = 0
        with torch.no_grad():
            for images, labels in self.val_loader:
                predicted = self.model(images.to(self.device)).argmax(1).cpu()
                correct += int((predicted == labels).sum())
                total += len(labels)
        return correct / total


def timed_epoch(trainer, device: torch.device) -> tuple[float, float]:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    accuracy = trainer.train_epoch()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, accuracy


def time_qhpo_only(corners, variants: dict[str, str], data, device: torch.device, epochs: int) -> None:
    print("seconds per epoch (training + validation) of qhpo's trainer")
    header = f"{'layers':>6} {'filters':>7} {'batch':>5} | " + " ".join(f"{name:>10}" for name in variants)
    print(header)
    print("-" * len(header))
    for num_layers, num_filters, batch_size in corners:
        config = dict(
            num_layers=num_layers,
            num_filters=num_filters,
            batch_size=batch_size,
            learning_rate=LEARNING_RATE,
            momentum=MOMENTUM,
        )
        cells = []
        for precision in variants.values():
            trainer = TrialTrainer(config, data, device=device, precision=precision)
            times = [timed_epoch(trainer, device)[0] for _ in range(epochs)]
            cells.append(f"{statistics.median(times[1:] or times):>10.2f}")
        print(f"{num_layers:>6} {num_filters:>7} {batch_size:>5} | " + " ".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="folder that contains cifar-10-batches-py/")
    parser.add_argument("--subset", type=int, default=2048, help="training images per epoch")
    parser.add_argument("--val-size", type=int, default=1000, help="validation images evaluated after each epoch")
    parser.add_argument(
        "--epochs", type=int, default=2, help="epochs per pipeline; the first is a warm-up when there are more"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument(
        "--configs",
        nargs="+",
        default=None,
        metavar="L/F/B",
        help="configurations as num_layers/num_filters/batch_size (default: the three corners)",
    )
    parser.add_argument("--qhpo-only", action="store_true", help="time only qhpo's trainer (seconds per epoch table)")
    parser.add_argument(
        "--loader-workers", type=int, default=0, help="DataLoader worker processes of the conventional pipeline"
    )
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    data = load_cifar10(args.data_dir, subset=args.subset, val_size=args.val_size, device=device)
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU, {torch.get_num_threads()} torch thread(s)"
    )
    print(
        f"device: {name}; {args.subset} training + {args.val_size} validation images per epoch; "
        f"conventional DataLoader workers: {args.loader_workers}; timed epochs: {max(args.epochs - 1, 1)} after "
        f"{1 if args.epochs > 1 else 0} warm-up"
    )
    corners = CORNERS if args.configs is None else [tuple(int(v) for v in c.split("/")) for c in args.configs]
    # On a CPU both arithmetics are timed; precision="auto" (the default) is bf16 where the CPU has native bf16.
    variants = {"qhpo": "auto"} if device.type == "cuda" else {"qhpo fp32": "fp32", "qhpo bf16": "bf16"}
    if device.type == "cpu":
        default = "qhpo bf16" if cpu_has_native_bf16() else "qhpo fp32"
        print(f"the trainer's default on this CPU (precision='auto'): {default}")
    if args.qhpo_only:
        time_qhpo_only(corners, variants, data, device, args.epochs)
        return
    header = (
        f"{'layers':>6} {'filters':>7} {'batch':>5} | {'conventional':>12} "
        + " ".join(f"{name:>10} {'ratio':>6}" for name in variants)
        + " | val acc (conventional, "
        + ", ".join(variants)
        + ")"
    )
    print("seconds per epoch (training + validation); ratio = conventional / qhpo")
    print(header)
    print("-" * len(header))
    ratios: dict[str, list[float]] = {name: [] for name in variants}
    for num_layers, num_filters, batch_size in corners:
        config = dict(
            num_layers=num_layers,
            num_filters=num_filters,
            batch_size=batch_size,
            learning_rate=LEARNING_RATE,
            momentum=MOMENTUM,
        )
        trainers = {"conventional": ConventionalTrainer(config, data, device, args.loader_workers)}
        trainers.update(
            {
                name: TrialTrainer(config, data, device=device, precision=precision)
                for name, precision in variants.items()
            }
        )
        seconds: dict[str, list[float]] = {name: [] for name in trainers}
        accuracy: dict[str, float] = {}
        for epoch in range(args.epochs):
            for name, trainer in trainers.items():
                elapsed, accuracy[name] = timed_epoch(trainer, device)
                if epoch > 0 or args.epochs == 1:
                    seconds[name].append(elapsed)
        median = {name: statistics.median(values) for name, values in seconds.items()}
        cells = []
        for name in variants:
            ratios[name].append(median["conventional"] / median[name])
            cells.append(f"{median[name]:>10.2f} {ratios[name][-1]:>5.2f}x")
        print(
            f"{num_layers:>6} {num_filters:>7} {batch_size:>5} | {median['conventional']:>12.2f} "
            + " ".join(cells)
            + " | "
            + ", ".join(f"{accuracy[name]:.3f}" for name in trainers)
        )
    for name, values in ratios.items():
        print(
            f"speed-up of {name} over conventional: geometric mean {statistics.geometric_mean(values):.2f}x, min {min(values):.2f}x"
        )


if __name__ == "__main__":
    main()
