"""``download_cifar10`` against a real HTTP server on 127.0.0.1 serving a real archive.

The archive holds a small slice of the real CIFAR-10 batches in the official layout, so the
download, the checksum, the atomic unpack and the loader are all exercised end to end.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import pickle
import socket
import tarfile
import threading

import numpy as np
import pytest
import torch

from qhpo import QhpoError
from qhpo.workload import download_cifar10, load_cifar10

PER_TRAIN_BATCH = 30
PER_TEST = 20


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


@pytest.fixture(scope="module")
def archive(cifar_dir, tmp_path_factory):
    """A cifar-10-python.tar.gz built from the first images of each real batch, and its MD5."""
    source = cifar_dir / "cifar-10-batches-py"
    serve = tmp_path_factory.mktemp("serve")
    path = serve / "cifar-10-python.tar.gz"
    expected = {}
    with tarfile.open(path, "w:gz") as tar:
        for name, keep in [
            *((f"data_batch_{i}", PER_TRAIN_BATCH) for i in range(1, 6)),
            ("test_batch", PER_TEST),
            ("batches.meta", None),
        ]:
            with open(source / name, "rb") as handle:
                batch = pickle.load(handle, encoding="latin1")
            if keep is not None:
                batch = {
                    "batch_label": batch["batch_label"],
                    "labels": list(batch["labels"][:keep]),
                    "data": np.ascontiguousarray(batch["data"][:keep]),
                    "filenames": list(batch["filenames"][:keep]),
                }
                expected[name] = batch["data"]
            payload = pickle.dumps(batch, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    return serve, md5, expected


@pytest.fixture(scope="module")
def server(archive):
    serve, _, _ = archive
    handler = functools.partial(_QuietHandler, directory=str(serve))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/cifar-10-python.tar.gz"
    httpd.shutdown()
    httpd.server_close()


def test_download_verifies_unpacks_atomically_and_loads(archive, server, tmp_path, capsys):
    _, md5, expected = archive
    data_dir = tmp_path / "data"
    target = download_cifar10(data_dir, url=server, md5=md5)
    assert target == data_dir.resolve() / "cifar-10-batches-py"
    assert sorted(p.name for p in data_dir.iterdir()) == ["cifar-10-batches-py"]  # no archive or scratch left
    assert "downloading CIFAR-10" in capsys.readouterr().err

    data = load_cifar10(data_dir, val_size=50)
    assert (len(data.train), len(data.val), len(data.test)) == (5 * PER_TRAIN_BATCH - 50, 50, PER_TEST)
    assert torch.equal(data.test.images, torch.from_numpy(expected["test_batch"].reshape(-1, 3, 32, 32)))
    everything = np.concatenate([expected[f"data_batch_{i}"] for i in range(1, 6)]).reshape(-1, 3, 32, 32)
    ours = torch.cat([data.train.images, data.val.images]).numpy()
    assert sorted(map(bytes, ours)) == sorted(map(bytes, everything))

    # A complete copy is not fetched again, even with the server unreachable.
    assert download_cifar10(data_dir, url="http://127.0.0.1:9/none.tar.gz", md5=md5, progress=False) == target


def test_checksum_mismatch_leaves_nothing_behind(server, tmp_path):
    data_dir = tmp_path / "data"
    with pytest.raises(QhpoError) as caught:
        download_cifar10(data_dir, url=server, md5="0" * 32, progress=False)
    assert "MD5" in str(caught.value) and "--download" in str(caught.value)
    assert list(data_dir.iterdir()) == []


def test_no_network_says_so_in_one_sentence(tmp_path):
    with socket.socket() as probe:  # a port on which nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(QhpoError) as caught:
        download_cifar10(tmp_path, url=f"http://127.0.0.1:{port}/cifar-10-python.tar.gz", progress=False, timeout=5)
    message = str(caught.value)
    assert message.startswith("could not download CIFAR-10") and "--data-dir" in message and "\n" not in message
    assert not (tmp_path / "cifar-10-batches-py").exists()


def test_incomplete_existing_folder_is_reported(server, archive, tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"")
    with pytest.raises(QhpoError, match="lacks data_batch_2"):
        download_cifar10(tmp_path, url=server, md5=archive[1], progress=False)
