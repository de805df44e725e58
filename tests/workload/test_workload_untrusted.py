"""CIFAR-10 batches are untrusted files: reading one never runs code of the file's choosing,
and temporary files of a killed download are removed on the next start."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from qhpo._errors import QhpoError
from qhpo.workload import download_cifar10, load_cifar10
from qhpo.workload._data import BATCHES_FOLDER
from qhpo.workload._download import remove_partial_downloads


class _RunsCommand:
    """Pickles to ``os.system(command)``: what a hostile batch would hold."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _data_folder(tmp_path, cifar_dir, name: str, payload: bytes):
    """A data folder whose batch ``name`` is ``payload`` and whose other files are the real ones."""
    folder = tmp_path / "data" / BATCHES_FOLDER
    folder.mkdir(parents=True)
    for real in (cifar_dir / BATCHES_FOLDER).iterdir():
        (folder / real.name).symlink_to(real)
    (folder / name).unlink()
    (folder / name).write_bytes(payload)
    return folder.parent


@pytest.mark.parametrize("name", ["data_batch_3", "test_batch"])
def test_a_batch_that_would_run_a_command_is_refused_and_runs_nothing(tmp_path, cifar_dir, name):
    witness = tmp_path / "executed"
    hostile = pickle.dumps({"data": _RunsCommand(f"touch {witness}"), "labels": [0]})
    root = _data_folder(tmp_path, cifar_dir, name, hostile)
    with pytest.raises(QhpoError) as caught:
        load_cifar10(root, subset=10, val_size=10)
    message = str(caught.value)
    assert "\n" not in message and name in message and "system" in message and "--download" in message
    assert not witness.exists()


@pytest.mark.parametrize(
    "payload, what",
    [
        (b"\x80\x04not a pickle at all", "UnpicklingError"),
        (pickle.dumps([1, 2, 3]), "not a dict"),
        (pickle.dumps({"data": np.zeros((4, 3072), dtype=np.float64), "labels": [0, 1, 2, 3]}), "uint8"),
        (pickle.dumps({"data": np.zeros((2, 3072), dtype=np.uint8), "labels": [0, 11]}), "class numbers"),
        (pickle.dumps({"data": np.zeros((2, 3072), dtype=object), "labels": [0, 1]}), "uint8"),
        (pickle.dumps({"labels": [0, 1]}), "KeyError"),
    ],
)
def test_a_malformed_batch_gets_one_sentence(tmp_path, cifar_dir, payload, what):
    root = _data_folder(tmp_path, cifar_dir, "data_batch_1", payload)
    with pytest.raises(QhpoError) as caught:
        load_cifar10(root, subset=10, val_size=10)
    assert what in str(caught.value) and "\n" not in str(caught.value)


def test_real_batches_load_through_the_restricted_reader(cifar_dir):
    data = load_cifar10(cifar_dir, subset=100, val_size=100)
    assert data.train.images.dtype.is_floating_point is False and len(data.test) == 10_000
    assert data.classes[0] == "airplane" and int(data.test.labels.max()) == 9


def test_leftovers_of_a_killed_download_are_removed_on_the_next_start(tmp_path, cifar_dir):
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs
    root = tmp_path / "data"
    root.mkdir()
    part = root / f".cifar-10-{dead.pid}-abc123.tar.gz.part"
    part.write_bytes(b"half an archive")
    unpack = root / f".cifar-10-unpack-{dead.pid}-xyz"
    (unpack / BATCHES_FOLDER).mkdir(parents=True)
    live = root / f".cifar-10-{os.getpid()}-live.tar.gz.part"  # a download in progress stays
    live.write_bytes(b"")
    assert sorted(p.name for p in remove_partial_downloads(root)) == sorted([part.name, unpack.name])
    assert not part.exists() and not unpack.exists() and live.exists()
    # download_cifar10 cleans up before it fetches: an existing complete copy is left as it is.
    (root / BATCHES_FOLDER).symlink_to(cifar_dir / BATCHES_FOLDER)
    part.write_bytes(b"again")
    assert download_cifar10(root, progress=False) == root / BATCHES_FOLDER
