"""Temporary files that carry the id of the process writing them, and their clean-up.

A process killed with SIGKILL cannot remove what it was writing. Every temporary file or
folder qhpo writes holds the writer's process id in its name (``.trial-3.pt.4711.tmp``,
``.cifar-10-4711-x8f2.tar.gz.part``), so the next start removes those whose writer no
longer runs and leaves the ones of live writers alone.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_orphans(folder: str | os.PathLike, pattern: str) -> list[Path]:
    """Remove the entries of ``folder`` that match ``pattern`` and whose writer is dead.

    Args:
        folder: Where to look (a missing folder holds nothing).
        pattern: Regular expression of a whole file name with one group: the writer's pid.

    Returns:
        The paths removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    compiled = re.compile(pattern)
    removed = []
    for path in folder.iterdir():
        match = compiled.fullmatch(path.name)
        if match is None or process_alive(int(match.group(1))):
            continue
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        except OSError:
            continue  # not ours to remove (read-only folder): harmless, it only takes space
        removed.append(path)
    return removed


def fsync_folder(folder: str | os.PathLike) -> None:
    """Make a rename inside ``folder`` durable (best effort: some file systems refuse)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def check_writable(path: str | os.PathLike, flag: str) -> None:
    """Raise a one-sentence :class:`qhpo.QhpoError` unless ``path`` can be written, without writing it.

    The folder must exist and take new files; an existing file must open for appending.
    """
    from qhpo._errors import QhpoError

    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise QhpoError(f"cannot write {path}: the folder {folder} does not exist; pass {flag} with another path.")
    if path.is_dir():
        raise QhpoError(f"cannot write {path}: it is a folder; pass {flag} with a file name.")
    try:
        if path.exists():
            with open(path, "ab"):
                pass
        else:
            remove_orphans(folder, r"\.qhpo-write-test-(\d+)")
            probe = folder / f".qhpo-write-test-{os.getpid()}"
            probe.touch()
            probe.unlink()
    except OSError as error:
        raise QhpoError(f"cannot write {path} ({error.strerror or error}); pass {flag} with a writable path.") from None
