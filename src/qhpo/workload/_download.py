"""Fetching CIFAR-10: the official archive, checked by its MD5 and unpacked atomically."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from qhpo._errors import QhpoError
from qhpo._files import remove_orphans
from qhpo.workload._data import BATCHES_FOLDER, _missing_files, resolve_data_dir

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
_CHUNK = 1 << 20


def _complete_copy(target: Path) -> bool:
    """Whether ``target`` holds every CIFAR-10 batch (False when it is missing); a folder that
    lacks some is one sentence."""
    if not target.exists():
        return False
    missing = _missing_files(target)
    if missing:
        raise QhpoError(
            f"{target} exists but lacks {', '.join(missing)}; delete that folder and run again with --download."
        )
    return True


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
    if _complete_copy(target):
        return target
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
