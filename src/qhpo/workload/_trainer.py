"""One trial of the CNN: a fast training epoch, validation accuracy, checkpoints."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from qhpo._errors import QhpoError
from qhpo._files import fsync_folder
from qhpo.workload._data import CifarData, ImageSplit
from qhpo.workload._device import resolve_device
from qhpo.workload._model import CifarCNN
from qhpo.workload._precision import resolve_precision
from qhpo.workload._space import TRAINER_PARAMETERS

# Per-channel mean and standard deviation of the CIFAR-10 training images, on the 0..255 scale.
_MEAN = (0.4914 * 255, 0.4822 * 255, 0.4465 * 255)
_STD = (0.2470 * 255, 0.2435 * 255, 0.2616 * 255)
_PAD = 4
_SIDE = 32
_EVAL_BATCH = 1000
# On a GPU the loss is checked every this many steps: each check waits for the device.
_GPU_CHECK_EVERY = 25
# Format 1 also stored the state of a device-bound generator; format 2 stores none (each
# epoch's randomness is derived from the seed and the epoch), so it restores on any device.
_CHECKPOINT_FORMAT = 2
_READABLE_FORMATS = (1, 2)


class TrialDiverged(RuntimeError):
    """The training loss became NaN or infinite; the trial cannot go on.

    Attributes:
        reason: One sentence for the trial's record, e.g. ``"training loss became nan at
            step 3 of epoch 1"``.
        epoch: The 1-based epoch in which it happened.
    """

    def __init__(self, reason: str, epoch: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.epoch = epoch


def _check_config(config: Mapping[str, Any]) -> dict[str, Any]:
    missing = [name for name in TRAINER_PARAMETERS if name not in config]
    if missing:
        raise ValueError(f"config lacks {', '.join(missing)}; it needs {', '.join(TRAINER_PARAMETERS)}")
    checked: dict[str, Any] = {}
    for name in ("num_layers", "num_filters", "batch_size"):
        value = config[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer() or value < 1:
            raise ValueError(f"config[{name!r}] must be a positive integer, got {value!r}")
        checked[name] = int(value)
    for name in ("learning_rate", "momentum"):
        value = config[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"config[{name!r}] must be a finite number, got {value!r}")
        checked[name] = float(value)
    if checked["learning_rate"] <= 0:
        raise ValueError(f"config['learning_rate'] must be positive, got {checked['learning_rate']!r}")
    if not 0 <= checked["momentum"] < 1:
        raise ValueError(f"config['momentum'] must be in [0, 1), got {checked['momentum']!r}")
    return checked


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of the shuffling and augmentation of 0-based ``epoch`` of a trial seeded ``seed``.

    Derived with :class:`numpy.random.SeedSequence` from ``(seed, epoch)``, so an epoch's
    randomness depends on nothing a checkpoint would have to carry.

    Example:
        >>> epoch_seed(0, 0) == epoch_seed(0, 0) != epoch_seed(0, 1)
        True
    """
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1, dtype=np.uint64)[0] >> 1)


class TrialTrainer:
    """Trains one configuration of :class:`CifarCNN` epoch by epoch.

    The training images stay on the device as one uint8 tensor, zero-padded by 4 pixels and
    stored channels-last ``(N, 40, 40, 3)``. Each epoch draws a permutation and, per image, a
    crop offset ``(dy, dx)`` in ``{0..8}^2`` and a flip bit ``f``; a batch is then one gather

        ``x[b, i, j, c] = padded[idx[b], dy[b] + i, dx[b] + (31 - j if f[b] else j), c]``

    followed by ``(x - mean_c) / std_c`` in float, which is the random crop with 4-pixel
    padding and horizontal flip of the conventional pipeline without per-sample Python work.
    The model runs channels-last in the arithmetic of :func:`resolve_precision` (bf16
    autocast on GPUs of compute capability >= 8.0 and on CPUs with native bf16, float32
    elsewhere), with SGD of the configuration's ``learning_rate`` and ``momentum`` on the
    cross-entropy loss. The initial weights come from ``seed`` on the CPU; the permutation,
    crops and flips of epoch ``e`` are drawn on the CPU from a generator seeded with
    ``epoch_seed(seed, e)``, so they are the same on every device and a checkpoint needs no
    generator state. A resumed trial therefore repeats the uninterrupted one bit for bit on
    the CPU; on a GPU it sees the same batches but not the same rounding (cuDNN picks its
    algorithms by timing, and some backward kernels sum with atomics in varying order).

    Example:
        >>> data = load_cifar10("/data", subset=5000)                 # doctest: +SKIP
        >>> trainer = TrialTrainer(default_search_space().sample(0), data)  # doctest: +SKIP
        >>> trainer.train_epoch()  # validation accuracy     # doctest: +SKIP
        0.2874

    Args:
        config: ``num_layers``, ``num_filters``, ``batch_size``, ``learning_rate``,
            ``momentum`` (other keys are ignored).
        data: The images, from :func:`load_cifar10`.
        device: ``"cpu"``, ``"cuda"``, ``"auto"`` or a ``torch.device``.
        seed: Seed of the initial weights, the shuffling and the augmentation.
        precision: ``"auto"`` (see :func:`resolve_precision`), ``"bf16"`` (bf16 autocast
            everywhere; slow on CPUs without native bf16 and on GPUs below compute
            capability 8.0) or ``"fp32"``.

    Attributes:
        arithmetic: ``"bf16"`` or ``"fp32"``, what ``precision`` resolved to.
        epoch: Number of completed epochs.
        curve: Validation accuracy after each completed epoch.
        train_loss: Mean training loss of the last epoch.
        epoch_seconds: Wall-clock seconds of the last :meth:`train_epoch` (with validation).
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        data: CifarData,
        *,
        device: str | torch.device = "cpu",
        seed: int = 0,
        precision: str = "auto",
    ) -> None:
        self.config = _check_config(config)
        self.device = resolve_device(device)
        self.precision = precision
        self.arithmetic = resolve_precision(precision, self.device)
        self.seed = int(seed)
        self.data = data
        # Only the CPU generator is saved, seeded and restored: the CUDA ones stay untouched.
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(self.seed)
            model = CifarCNN(self.config["num_layers"], self.config["num_filters"])
        self.model = model.to(self.device, memory_format=torch.channels_last)
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=self.config["learning_rate"], momentum=self.config["momentum"]
        )
        self.generator = torch.Generator()  # on the CPU: the same draws on every device
        self.epoch = 0
        self.curve: list[float] = []
        self.train_loss = math.nan
        self.epoch_seconds = math.nan

        self._padded = F.pad(data.train.images.to(self.device), (_PAD,) * 4).permute(0, 2, 3, 1).contiguous()
        self._train_labels = data.train.labels.to(self.device)
        self._scale = (1.0 / torch.tensor(_STD, device=self.device)).view(1, 3, 1, 1)
        self._shift = (-torch.tensor(_MEAN, device=self.device) / torch.tensor(_STD, device=self.device)).view(
            1, 3, 1, 1
        )
        self._offsets = torch.arange(_SIDE, device=self.device)
        self._on_gpu = self.device.type == "cuda"
        self._bf16 = self.arithmetic == "bf16"
        if self._on_gpu:
            # Every batch but an epoch's last has the same shape: let cuDNN time its algorithms once.
            torch.backends.cudnn.benchmark = True

    def _normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 3, 32, 32) -> float channels-last ``(x - mean_c) / std_c``."""
        return images.float().contiguous(memory_format=torch.channels_last) * self._scale + self._shift

    def _augmented(self, idx: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
        """Training images ``idx`` cropped at ``(dy, dx)`` from the padded images, mirrored where ``flip``.

        Returns uint8 (B, 3, 32, 32) with channels-last strides, gathered in one indexing op.
        """
        rows = self._offsets + dy[:, None]
        columns = torch.where(flip[:, None], _SIDE - 1 - self._offsets, self._offsets) + dx[:, None]
        crops = self._padded[idx[:, None, None], rows[:, :, None], columns[:, None, :]]
        return crops.permute(0, 3, 1, 2)

    def _epoch_draws(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Permutation, crop offsets and flips of the next epoch, drawn on the CPU, on the device."""
        n = self._train_labels.shape[0]
        g = self.generator
        g.manual_seed(epoch_seed(self.seed, self.epoch))
        draws = (
            torch.randperm(n, generator=g),
            torch.randint(0, 2 * _PAD + 1, (n,), generator=g),
            torch.randint(0, 2 * _PAD + 1, (n,), generator=g),
            torch.randint(0, 2, (n,), generator=g, dtype=torch.bool),
        )
        return tuple(d.to(self.device) for d in draws)

    def train_epoch(self) -> float:
        """Train one epoch on the training split; return the validation accuracy after it.

        Raises:
            TrialDiverged: The training loss became NaN or infinite.
        """
        start = time.perf_counter()
        self.model.train()
        n = self._train_labels.shape[0]
        batch = self.config["batch_size"]
        order, dy, dx, flip = self._epoch_draws()
        loss_sum = torch.zeros((), device=self.device)
        steps = 0
        for first in range(0, n, batch):
            idx = order[first : first + batch]
            images = self._normalise(self._augmented(idx, dy[idx], dx[idx], flip[idx]))
            labels = self._train_labels[idx]
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self._bf16):
                logits = self.model(images)
            loss = F.cross_entropy(logits.float(), labels)
            steps += 1
            if not self._on_gpu or steps % _GPU_CHECK_EVERY == 0:
                total = (loss_sum + loss.detach()).item()
                if not math.isfinite(total):
                    self._diverged(total, steps)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            loss_sum += loss.detach()
        mean_loss = loss_sum.item() / max(steps, 1)
        if not math.isfinite(mean_loss):
            self._diverged(mean_loss, steps)
        self.epoch += 1
        self.train_loss = mean_loss
        accuracy = self._accuracy(self.data.val)
        self.curve.append(accuracy)
        self.epoch_seconds = time.perf_counter() - start
        return accuracy

    def _diverged(self, value: float, step: int) -> None:
        epoch = self.epoch + 1
        raise TrialDiverged(
            f"training loss became {'nan' if math.isnan(value) else 'inf'} by step {step} of epoch {epoch} "
            f"(learning_rate={self.config['learning_rate']:.3g}, momentum={self.config['momentum']:.3g})",
            epoch,
        )

    @torch.inference_mode()
    def _accuracy(self, split: ImageSplit) -> float:
        """Fraction of ``split`` classified correctly, without augmentation.

        Raises:
            TrialDiverged: The network's outputs are no longer finite.
        """
        self.model.eval()
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        finite = torch.ones((), dtype=torch.bool, device=self.device)
        for first in range(0, len(split), _EVAL_BATCH):
            images = split.images[first : first + _EVAL_BATCH].to(self.device, non_blocking=True)
            labels = split.labels[first : first + _EVAL_BATCH].to(self.device, non_blocking=True)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self._bf16):
                logits = self.model(self._normalise(images))
            finite &= torch.isfinite(logits).all()
            correct += (logits.argmax(dim=1) == labels).sum()
        if not bool(finite):
            raise TrialDiverged(f"the network's outputs became non-finite after epoch {self.epoch}", self.epoch)
        return correct.item() / len(split)

    def test_accuracy(self) -> float:
        """Accuracy on the 10,000 test images; for the final report only, never for decisions."""
        return self._accuracy(self.data.test)

    def save_checkpoint(self, path: str | os.PathLike) -> None:
        """Write model, optimiser, epoch and curve to ``path`` atomically.

        The file is written beside ``path``, flushed to disk and renamed over it, so a process
        (or machine) stopped while saving leaves the previous checkpoint intact. It holds no
        device-bound state: a checkpoint written on a GPU restores on the CPU and the other way round.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "format": _CHECKPOINT_FORMAT,
            "config": dict(self.config),
            "epoch": self.epoch,
            "curve": list(self.curve),
            "train_size": int(self._train_labels.shape[0]),
            "split_seed": int(self.data.split_seed),
            "seed": self.seed,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
        }
        scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(scratch, "wb") as handle:
                torch.save(state, handle)
                handle.flush()
                os.fsync(handle.fileno())  # on disk before the rename makes it the checkpoint
            os.replace(scratch, path)
            fsync_folder(path.parent)
        finally:
            scratch.unlink(missing_ok=True)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        config: Mapping[str, Any],
        data: CifarData,
        *,
        device: str | torch.device = "cpu",
        precision: str = "auto",
    ) -> TrialTrainer:
        """A trainer that continues where :meth:`save_checkpoint` left off, on any device.

        The file is read with ``torch.load(weights_only=True)``, which unpickles tensors and
        plain containers only, onto ``device`` whatever device wrote it. A checkpoint of
        format 1 (qhpo 0.1) holds the state of a generator of the device that wrote it and
        no seed; that state is not used, and its later epochs draw from seed 0.

        Raises:
            QhpoError: The file cannot be read, or was written for another configuration or
                another training split.
        """
        path = Path(path)
        target = resolve_device(device)
        try:
            state = torch.load(path, map_location=target, weights_only=True)
        except FileNotFoundError:
            raise QhpoError(f"the checkpoint {path} does not exist; start the trial from epoch 0 instead.") from None
        except Exception as error:  # torch raises several types for a damaged file
            raise QhpoError(
                f"the checkpoint {path} cannot be read ({type(error).__name__}); delete it to restart that trial from epoch 0."
            ) from None
        if not isinstance(state, dict) or state.get("format") not in _READABLE_FORMATS:
            raise QhpoError(f"{path} is not a qhpo trial checkpoint; delete it to restart that trial from epoch 0.")
        trainer = cls(config, data, device=target, seed=int(state.get("seed", 0)), precision=precision)
        if state["config"] != trainer.config:
            raise QhpoError(
                f"the checkpoint {path} belongs to configuration {state['config']}, not {trainer.config}; delete it or resume the trial it belongs to."
            )
        train_size = int(trainer._train_labels.shape[0])
        if state["train_size"] != train_size or state["split_seed"] != data.split_seed:
            raise QhpoError(
                f"the checkpoint {path} was trained on {state['train_size']} images of split {state['split_seed']} but the data now has "
                f"{train_size} of split {data.split_seed}; resume with the same --subset, or start a new study."
            )
        trainer.model.load_state_dict(state["model"])
        trainer.optimizer.load_state_dict(state["optimizer"])
        trainer.epoch = int(state["epoch"])
        trainer.curve = [float(v) for v in state["curve"]]
        return trainer
