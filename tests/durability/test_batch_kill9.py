"""Batches committed together keep durability: four loaders post batches of 500 leads, the
server is killed with SIGKILL mid-load, and after a restart every lead of every batch answered
201 is stored (and a batch never answered may be stored whole or not at all, never in part).

A batch is decided in memory and committed as one group commit (one fsync); the answer is
sent only after that commit, so an acknowledged batch must survive the kill.
"""

import tempfile
import threading
import urllib.error

import pytest

from test_kill9 import BIN, all_ids, call, free_port, kill_when, start


@pytest.mark.skipif(not BIN, reason="KLOZEO_BIN is not set")
def test_acknowledged_batches_survive_kill_9():
    data_dir = tempfile.mkdtemp()
    port = free_port()
    proc, key = start(data_dir, port)
    assert key, "first start must print the development account's key"

    acked, sent, lock, stop = [], [], threading.Lock(), threading.Event()

    def loader(n):
        b = 0
        while not stop.is_set():
            b += 1
            names = [f"batch{n}-{b}-{i}" for i in range(500)]
            with lock:
                sent.append(names)
            leads = [{"name": nm, "source": "durability", "email": f"{nm}@x.com"} for nm in names]
            try:
                status, body = call(port, key, "POST", "/leads/batch", {"leads": leads})
            except (urllib.error.URLError, ConnectionError, OSError):
                return  # the server died mid-request: not acknowledged
            if status == 201:
                with lock:
                    acked.append([c["id"] for c in body["created"]])

    threads = [threading.Thread(target=loader, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    kill_when(proc, acked, 1, 4.0)
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) >= 2, f"too few batches before the kill ({len(acked)})"

    proc, _ = start(data_dir, port)
    try:
        stored = set(all_ids(port, key))
        for ids in acked:
            assert len(ids) == 500
            lost = [i for i in ids if i not in stored]
            assert not lost, f"{len(lost)} leads of an acknowledged batch lost after kill -9"
        # Every batch is stored whole or not at all: leads come in multiples of 500.
        assert len(stored) % 500 == 0, f"{len(stored)} leads stored: a batch was cut"
        assert len(stored) <= 500 * len(sent)
    finally:
        proc.terminate()
        proc.wait()
