"""How the tests find CIFAR-10 on a machine that may have it anywhere, or nowhere."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import socket
import tarfile
import threading
from pathlib import Path

import pytest

from cifar_location import cifar10_candidates, find_cifar10, locate_cifar10

BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")


def _with_batches(folder: Path) -> Path:
    batches = folder / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    for name in BATCHES:
        (batches / name).write_bytes(b"batch")
    return folder


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty home folder, so that the default download cache is empty too."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("QHPO_DATA_DIR", raising=False)
    return tmp_path / "home"


def test_candidates_are_tried_in_the_documented_order(tmp_path, home):
    env = {"QHPO_TEST_DATA": str(tmp_path / "t"), "QHPO_DATA_DIR": str(tmp_path / "d")}
    shared = tmp_path / "shared"
    # QHPO_DATA_DIR is also where qhpo's downloader caches, so it is tried once.
    assert cifar10_candidates(env, shared) == [tmp_path / "t", tmp_path / "d", shared]
    assert cifar10_candidates({}, shared) == [shared, home / ".cache" / "qhpo" / "data"]


def test_the_first_folder_that_holds_the_batches_wins(tmp_path, home):
    shared = _with_batches(tmp_path / "shared")
    data_dir = _with_batches(tmp_path / "d")
    test_data = _with_batches(tmp_path / "t")
    assert find_cifar10({"QHPO_TEST_DATA": str(test_data), "QHPO_DATA_DIR": str(data_dir)}, shared) == test_data
    assert find_cifar10({"QHPO_DATA_DIR": str(data_dir)}, shared) == data_dir
    assert find_cifar10({"QHPO_TEST_DATA": str(tmp_path / "empty")}, shared) == shared
    cache = _with_batches(home / ".cache" / "qhpo" / "data")
    assert find_cifar10({}, tmp_path / "no-shared") == cache


def test_a_folder_missing_a_batch_does_not_count(tmp_path, home):
    partial = _with_batches(tmp_path / "partial")
    (partial / "cifar-10-batches-py" / "test_batch").unlink()
    assert find_cifar10({"QHPO_TEST_DATA": str(partial)}, tmp_path / "no-shared") is None


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_offline_without_data_is_one_sentence_naming_the_variable(tmp_path, home):
    url = f"http://127.0.0.1:{_closed_port()}/cifar-10-python.tar.gz"
    with pytest.raises(LookupError) as error:
        locate_cifar10({}, tmp_path / "no-shared", url=url)
    message = str(error.value)
    assert message.endswith("set QHPO_TEST_DATA to the folder that contains cifar-10-batches-py/.")
    assert "could not download CIFAR-10" in message and "\n" not in message and message.count("; ") == 1
    assert not (home / ".cache" / "qhpo" / "data" / "cifar-10-batches-py").exists()


class _CountingHandler(http.server.SimpleHTTPRequestHandler):
    requests = 0

    def do_GET(self):  # noqa: N802 - the base class's name
        type(self).requests += 1
        super().do_GET()

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


def test_without_data_it_downloads_once_into_the_cache(tmp_path, home):
    serve = tmp_path / "serve"
    serve.mkdir()
    archive = serve / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in BATCHES:
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = 5
            tar.addfile(info, io.BytesIO(b"batch"))
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_CountingHandler, directory=str(serve))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/cifar-10-python.tar.gz"
        cache = home / ".cache" / "qhpo" / "data"
        assert locate_cifar10({}, tmp_path / "no-shared", url=url, md5=md5) == cache
        assert locate_cifar10({}, tmp_path / "no-shared", url=url, md5=md5) == cache
    finally:
        server.shutdown()
        thread.join()
    assert _CountingHandler.requests == 1
    assert sorted(p.name for p in (cache / "cifar-10-batches-py").iterdir()) == sorted(BATCHES)
