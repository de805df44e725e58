"""CIFAR-10 on disk: where it lives, how to fetch it, and how it is split.

The data folder is the folder that *contains* ``cifar-10-batches-py/`` (the layout of the
official python archive: ``data_batch_1`` .. ``data_batch_5``, ``test_batch``,
``batches.meta``). The 50,000 training images are split once, by a fixed seed, into a
training part and a validation part; the validation accuracy drives early stopping and the
test split is touched only for the final report.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from qhpo._errors import QhpoError
from qhpo._files import remove_orphans
from qhpo.workload._device import resolve_device

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
BATCHES_FOLDER = "cifar-10-batches-py"
DATA_DIR_ENV = "QHPO_DATA_DIR"
_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
_TEST_BATCH = "test_batch"
_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_CHUNK = 1 << 20


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


def download_cifar10(
    data_dir: str | os.PathLike | None = None,
    progress: bool = True,
    *,
    url: str = CIFAR10_URL,
    md5: str = CIFAR10_MD5,
    timeout: float = 60.0,
) -> Path:
    """Fetch the CIFAR-10 python archive, check its MD5 and unpack it atomically.

    The archive is streamed into a temporary file inside ``data_dir`` while its MD5 is
    computed; a mismatch deletes it and raises. It is unpacked into a temporary folder inside
    ``data_dir`` and ``cifar-10-batches-py/`` is moved into place with one rename, so an
    interrupted download never leaves a half-written data folder behind. Nothing is fetched
    when a complete copy is already there.

    Example:
        >>> download_cifar10("~/data")          # doctest: +SKIP
        PosixPath('/home/me/data/cifar-10-batches-py')

    Args:
        data_dir: Folder to hold ``cifar-10-batches-py/`` (see :func:`resolve_data_dir`).
        progress: Print download progress to standard error.
        url: Where the archive is fetched from.
        md5: Expected hex MD5 digest of the archive.
        timeout: Seconds to wait for the server before giving up.

    Returns:
        The path of ``cifar-10-batches-py/``.
    """
    root = resolve_data_dir(data_dir)
    target = root / BATCHES_FOLDER
    if target.exists():
        missing = _missing_files(target)
        if not missing:
            return target
        raise QhpoError(
            f"{target} exists but lacks {', '.join(missing)}; delete that folder and run again with --download."
        )
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise QhpoError(
            f"cannot create the data folder {root} ({error.strerror}); pass --data-dir with a writable folder."
        ) from None
    remove_partial_downloads(root)

    fd, archive_name = tempfile.mkstemp(prefix=f".cifar-10-{os.getpid()}-", suffix=".tar.gz.part", dir=root)
    archive = Path(archive_name)
    try:
        with os.fdopen(fd, "wb") as sink:
            digest = _fetch(url, sink, progress=progress, timeout=timeout)
        if digest != md5.lower():
            raise QhpoError(
                f"the archive downloaded from {url} has MD5 {digest} instead of {md5.lower()}, so it was corrupted "
                "on the way or is not the CIFAR-10 archive; run with --download again."
            )
        _unpack(archive, root, target)
    finally:
        archive.unlink(missing_ok=True)
    return target


def remove_partial_downloads(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Remove archives and unpack folders left in the data folder by a killed download."""
    root = resolve_data_dir(data_dir)
    return [
        *remove_orphans(root, r"\.cifar-10-(\d+)-.*\.tar\.gz\.part"),
        *remove_orphans(root, r"\.cifar-10-unpack-(\d+)-.*"),
    ]


def _fetch(url: str, sink, *, progress: bool, timeout: float) -> str:
    """Stream ``url`` into ``sink``; return the hex MD5 of what was written."""
    digest = hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            report = _Progress(total, enabled=progress)
            while chunk := response.read(_CHUNK):
                _write(sink, chunk)
                digest.update(chunk)
                done += len(chunk)
                report(done)
            report.finish(done)
    except _WriteFailed as error:
        raise QhpoError(
            f"could not write the CIFAR-10 archive into the data folder ({error}); free disk space there or pass "
            "--data-dir with another folder."
        ) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
        reason = getattr(error, "reason", None) or error.strerror or error
        raise QhpoError(
            f"could not download CIFAR-10 from {url} ({reason}); check the network connection, or fetch the "
            "archive on another machine, unpack it and pass --data-dir with the folder that contains cifar-10-batches-py."
        ) from None
    return digest.hexdigest()


class _WriteFailed(Exception):
    """Writing the archive to disk failed (kept apart from network errors)."""


def _write(sink, chunk: bytes) -> None:
    try:
        sink.write(chunk)
    except OSError as error:
        raise _WriteFailed(error.strerror or str(error)) from None


class _Progress:
    """Prints ``downloaded/total MB (percent)`` to stderr: on a terminal at most twice a
    second on one line, otherwise one line per 10 % (or per 20 MB when the size is unknown)."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.last_time = 0.0
        self.last_step = 0
        self.start = time.monotonic()

    def __call__(self, done: int) -> None:
        if not self.enabled:
            return
        if self.tty:
            now = time.monotonic()
            if now - self.last_time >= 0.5:
                self.last_time = now
                self._print(done, end="\r")
            return
        step = int(10 * done / self.total) if self.total else done // (20 << 20)
        if step > self.last_step:
            self.last_step = step
            self._print(done, end="\n")

    def finish(self, done: int) -> None:
        if self.enabled:
            self._print(done, end="\n")

    def _print(self, done: int, end: str) -> None:
        rate = done / max(time.monotonic() - self.start, 1e-9) / 1e6
        if self.total:
            text = f"downloading CIFAR-10: {done / 1e6:6.1f}/{self.total / 1e6:.1f} MB ({100 * done / self.total:3.0f}%), {rate:.1f} MB/s"
        else:
            text = f"downloading CIFAR-10: {done / 1e6:6.1f} MB, {rate:.1f} MB/s"
        print(text, end=end, file=sys.stderr, flush=True)


def _unpack(archive: Path, root: Path, target: Path) -> None:
    scratch = Path(tempfile.mkdtemp(prefix=f".cifar-10-unpack-{os.getpid()}-", dir=root))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                # The "data" filter refuses absolute paths, links out of the folder and devices.
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(scratch, filter="data")
                else:
                    members = tar.getmembers()
                    if any(
                        m.name.startswith("/") or ".." in Path(m.name).parts or not (m.isfile() or m.isdir())
                        for m in members
                    ):
                        raise tarfile.TarError("it holds absolute paths, '..' or links")
                    tar.extractall(scratch, members=members)
        except (tarfile.TarError, OSError, EOFError) as error:
            raise QhpoError(
                f"the downloaded archive could not be unpacked ({error}); run with --download again."
            ) from None
        unpacked = scratch / BATCHES_FOLDER
        missing = _missing_files(unpacked) if unpacked.is_dir() else [BATCHES_FOLDER]
        if missing:
            raise QhpoError(
                f"the downloaded archive lacks {', '.join(missing)}, so it is not the CIFAR-10 python archive; check the URL."
            )
        os.replace(unpacked, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


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
    root = resolve_data_dir(data_dir)
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

    parts = [_read_batch(batches / name) for name in _TRAIN_BATCHES]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    test_images, test_labels = _read_batch(batches / _TEST_BATCH)

    n = labels.shape[0]
    if not isinstance(val_size, (int, np.integer)) or not 0 < val_size < n:
        raise ValueError(f"val_size must be an integer between 1 and {n - 1}, got {val_size!r}")
    order = np.random.default_rng(split_seed).permutation(n)
    val_idx, train_idx = order[:val_size], order[val_size:]
    if subset is not None:
        if not isinstance(subset, (int, np.integer)) or not 0 < subset <= train_idx.size:
            raise ValueError(f"subset must be an integer between 1 and {train_idx.size}, got {subset!r}")
        train_idx = train_idx[:subset]

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
