"""Group commit keeps durability: 64 concurrent writers, kill -9 mid-stream, and every create
answered 201 is present after a restart.

The embedded store commits the transactions that arrive while one commits together, in one
SQLite transaction with one fsync. An acknowledgement is sent only after that commit, so a
create acknowledged to any of the 64 writers must survive the kill, whichever group it rode in.
"""

import tempfile

import pytest

from test_kill9 import BIN, all_ids, call, free_port, kill_when, start, stream_creates


@pytest.mark.skipif(not BIN, reason="KLOZEO_BIN is not set")
def test_64_concurrent_writers_lose_no_acknowledged_create_on_kill_9():
    data_dir = tempfile.mkdtemp()
    port = free_port()
    proc, key = start(data_dir, port)
    assert key, "first start must print the development account's key"

    acked, stop, threads = stream_creates(port, key, "g", 64)
    kill_when(proc, acked, 64, 3.0)
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) > 64, f"too few creates before the kill ({len(acked)})"
    assert len(set(acked)) == len(acked), "one id acknowledged twice"

    proc, _ = start(data_dir, port)
    try:
        stored = set(all_ids(port, key))
        lost = [i for i in acked if i not in stored]
        assert not lost, f"{len(lost)} of {len(acked)} acknowledged creates lost after kill -9"
        # The store is whole after the kill: it keeps taking writes and listing them.
        status, body = call(port, key, "POST", "/leads", {"name": "after", "source": "durability"})
        assert status == 201
        assert body["id"] in set(all_ids(port, key))
    finally:
        proc.terminate()
        proc.wait()
