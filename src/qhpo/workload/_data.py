"""CIFAR-10 on disk: where it lives, how it is read, and how it is split (fetching it: ``_download``).

The data folder is the folder that *contains* ``cifar-10-batches-py/`` (the layout of the
official python archive: ``data_batch_1`` .. ``data_batch_5``, ``test_batch``,
``batches.meta``). The 50,000 training images are split once, by a fixed seed, into a
training part and a validation part; the validation accuracy drives early stopping and the
test split is touched only for the final report.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from qhpo._errors import QhpoError
from qhpo.workload._device import resolve_device

BATCHES_FOLDER = "cifar-10-batches-py"
DATA_DIR_ENV = "QHPO_DATA_DIR"
_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
_TEST_BATCH = "test_batch"
_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The folder that holds (or will hold) ``cifar-10-batches-py/``.

    Precedence: the ``data_dir`` argument, then the environment variable ``QHPO_DATA_DIR``,
    then ``~/.cache/qhpo/data``. The folder need not exist yet.
    """
    if data_dir is None or str(data_dir) == "":
        data_dir = os.environ.get(DATA_DIR_ENV) or Path.home() / ".cache" / "qhpo" / "data"
    return Path(data_dir).expanduser().resolve()


def _missing_files(batches: Path) -> list[str]:
    return [name for name in (*_TRAIN_BATCHES, _TEST_BATCH) if not (batches / name).is_file()]


class ImageSplit(NamedTuple):
    """One part of the data: ``images`` uint8 (N, 3, 32, 32) and ``labels`` int64 (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class CifarData:
    """CIFAR-10 as uint8 image tensors on one device, split into train / val / test.

    Attributes:
        train: The training images (``subset`` of them when a subset was asked for).
        val: The validation images, held out of the 50,000 training images by a fixed seed.
        test: The 10,000 test images; read only for the final report.
        classes: The ten class names.
        split_seed: The seed of the train/validation split.
    """

    train: ImageSplit
    val: ImageSplit
    test: ImageSplit
    classes: tuple[str, ...]
    split_seed: int

    @property
    def device(self) -> torch.device:
        return self.train.images.device


#: The only callables a CIFAR-10 batch may name: what numpy pickles a plain array with
#: (``numpy.core`` before numpy 2, ``numpy._core`` since) and what Python 3 writes bytes
#: with in pickle protocol 2 (``_codecs.encode``, a pure conversion).
_BATCH_GLOBALS = frozenset(
    {
        ("_codecs", "encode"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }
)


class _BatchUnpickler(pickle.Unpickler):
    """Builds dicts, lists, strings, numbers and plain numpy arrays, and nothing else.

    A pickle names every callable it calls; a batch that names anything but numpy's array
    reconstruction (``os.system``, ``builtins.eval``, ...) is refused before it is called.
    """

    def find_class(self, module: str, name: str):
        if (module, name) not in _BATCH_GLOBALS:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a CIFAR-10 batch never holds")
        return super().find_class(module, name)

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("it holds a persistent reference, which a CIFAR-10 batch never holds")


def _unpickle(path: Path):
    """``path`` unpickled by :class:`_BatchUnpickler` (no object of the file's choosing is built)."""
    with open(path, "rb") as handle:
        return _BatchUnpickler(handle, encoding="latin1").load()


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _unpickle(path)
        if not isinstance(batch, dict):
            raise TypeError(f"it holds a {type(batch).__name__}, not a dict")
        data, labels = batch["data"], batch["labels"]
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise ValueError("its 'data' is not a uint8 array of rows of 3072 pixels")
        if not isinstance(labels, (list, np.ndarray)) or not all(
            isinstance(y, (int, np.integer)) and 0 <= y < 10 for y in labels
        ):
            raise ValueError("its 'labels' are not class numbers 0..9")
        images = data.reshape(-1, 3, 32, 32)
        labels = np.asarray(labels, dtype=np.int64)
    except (
        OSError,
        pickle.UnpicklingError,
        EOFError,
        KeyError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        MemoryError,
        RecursionError,
    ) as error:
        raise QhpoError(
            f"{path} is not a readable CIFAR-10 batch ({type(error).__name__}: {error}), so nothing of it was used; "
            f"delete {path.parent} and fetch it again with --download."
        ) from None
    if images.shape[0] != labels.shape[0]:
        raise QhpoError(
            f"{path} holds {images.shape[0]} images but {labels.shape[0]} labels; delete {path.parent} and fetch it again with --download."
        )
    return images, labels


def _read_classes(batches: Path) -> tuple[str, ...]:
    try:
        names = _unpickle(batches / "batches.meta")["label_names"]
        if not isinstance(names, list) or len(names) != len(_CLASSES) or not all(isinstance(n, str) for n in names):
            return _CLASSES
        return tuple(names)
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError, IndexError):
        return _CLASSES


def _batches_folder(root: Path) -> Path:
    """``root``'s ``cifar-10-batches-py/`` with every batch in it, or one sentence saying what is missing."""
    batches = root / BATCHES_FOLDER
    if not batches.is_dir():
        raise QhpoError(
            f"CIFAR-10 was not found: {root} has no {BATCHES_FOLDER} folder; pass --data-dir with the folder "
            f"that contains {BATCHES_FOLDER}, or --download to fetch it there."
        )
    missing = _missing_files(batches)
    if missing:
        raise QhpoError(
            f"{batches} lacks {', '.join(missing)}; delete that folder and fetch CIFAR-10 again with --download."
        )
    return batches


def _split(n: int, val_size: int, split_seed: int, subset: int | None) -> tuple[np.ndarray, np.ndarray]:
    """``(validation, training)`` indices of ``n`` images (see :func:`load_cifar10`)."""
    if not isinstance(val_size, (int, np.integer)) or not 0 < val_size < n:
        raise ValueError(f"val_size must be an integer between 1 and {n - 1}, got {val_size!r}")
    order = np.random.default_rng(split_seed).permutation(n)
    val_idx, train_idx = order[:val_size], order[val_size:]
    if subset is not None:
        if not isinstance(subset, (int, np.integer)) or not 0 < subset <= train_idx.size:
            raise ValueError(f"subset must be an integer between 1 and {train_idx.size}, got {subset!r}")
        train_idx = train_idx[:subset]
    return val_idx, train_idx


def load_cifar10(
    data_dir: str | os.PathLike | None = None,
    *,
    subset: int | None = None,
    val_size: int = 5000,
    split_seed: int = 0,
    device: str | torch.device = "cpu",
) -> CifarData:
    """Read CIFAR-10 into uint8 tensors on ``device`` and split off the validation images.

    The 50,000 training images are permuted by ``numpy.random.default_rng(split_seed)``; the
    first ``val_size`` of the permutation are the validation split and the rest the training
    split, so the split is the same on every machine. ``subset=N`` keeps the first ``N``
    images of the training split (a fixed random sample, nested: a larger subset contains a
    smaller one); the validation and test splits are unchanged by it.

    Example:
        >>> data = load_cifar10("/data", subset=5000)     # doctest: +SKIP
        >>> len(data.train), len(data.val), len(data.test)  # doctest: +SKIP
        (5000, 5000, 10000)

    Args:
        data_dir: Folder that contains ``cifar-10-batches-py/`` (see :func:`resolve_data_dir`).
        subset: Number of training images to keep; ``None`` keeps all.
        val_size: Number of training images held out for validation.
        split_seed: Seed of the train/validation permutation.
        device: Where the tensors live (``"cpu"``, ``"cuda"``, ``"auto"``).
    """
    batches = _batches_folder(resolve_data_dir(data_dir))
    parts = [_read_batch(batches / name) for name in _TRAIN_BATCHES]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    test_images, test_labels = _read_batch(batches / _TEST_BATCH)

    val_idx, train_idx = _split(labels.shape[0], val_size, split_seed, subset)
    target = resolve_device(device)

    def split(x: np.ndarray, y: np.ndarray) -> ImageSplit:
        return ImageSplit(torch.from_numpy(np.ascontiguousarray(x)).to(target), torch.from_numpy(y).to(target))

    return CifarData(
        train=split(images[train_idx], labels[train_idx]),
        val=split(images[val_idx], labels[val_idx]),
        test=split(test_images, test_labels),
        classes=_read_classes(batches),
        split_seed=int(split_seed),
    )
