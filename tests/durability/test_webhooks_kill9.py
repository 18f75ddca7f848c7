"""Webhook deliveries survive kill -9: every event of an acknowledged write reaches the
receiver at least once, even when `klozeo serve` is killed while deliveries are in flight and
restarted on the same data. Runs on the embedded store, and on DynamoDB with the jobs on SQS
when the test command's emulator is up (KLOZEO_TEST_DYNAMODB_ENDPOINT).

The receiver answers slowly, so the kill lands while events are recorded but not yet
dispatched, dispatched but not yet attempted, and attempted but not yet recorded.
"""

import json
import os
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from test_kill9 import BIN, call, free_port, kill_when, start, stream_creates

EMULATOR = os.environ.get("KLOZEO_TEST_DYNAMODB_ENDPOINT", "")
STORES = ["embedded"] + (["dynamodb"] if EMULATOR else [])


def dynamodb_args(monkeypatch):
    """Fresh tables and SQS queues on the emulator; the serve arguments that use them."""
    prefix = f"k9-{uuid.uuid4().hex[:8]}-"
    monkeypatch.setenv("AWS_ENDPOINT_URL", EMULATOR)
    monkeypatch.setenv("KLOZEO_SIGNING_KEY", "kill9-webhooks-signing-key-0123")
    subprocess.run([BIN, "dynamodb", "create-tables", "--table-prefix", prefix],
                   check=True, capture_output=True)
    out = subprocess.run([BIN, "sqs", "create-queues", "--prefix", prefix],
                         check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        name, _, value = line.partition("=")
        monkeypatch.setenv(name, value)
    return ["--store", "dynamodb", "--table-prefix", prefix]


def receiver():
    got, lock = {}, threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the stdlib's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            time.sleep(0.2)
            lead_id = json.loads(body)["data"]["id"]
            with lock:
                got.setdefault(lead_id, []).append(self.headers.get("webhook-id"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, got, lock


@pytest.mark.skipif(not BIN, reason="KLOZEO_BIN is not set")
@pytest.mark.parametrize("store", STORES)
def test_no_delivery_is_lost_when_the_server_is_killed_mid_delivery(monkeypatch, store):
    import tempfile

    monkeypatch.setenv("KLOZEO_WEBHOOK_ALLOW_PRIVATE", "1")
    monkeypatch.setenv("KLOZEO_WEBHOOK_RETRY_SCHEDULE", "1,1,2,2,3")
    extra = dynamodb_args(monkeypatch) if store == "dynamodb" else []
    server, got, lock = receiver()
    data_dir = tempfile.mkdtemp()
    port = free_port()
    proc, key = start(data_dir, port, *extra)
    try:
        status, _ = call(port, key, "POST", "/webhooks", {
            "url": f"http://127.0.0.1:{server.server_address[1]}/hook",
            "events": ["lead.created"],
        })
        assert status == 201

        acked, stop, threads = stream_creates(port, key, "h", 4)
        kill_when(proc, acked, 20, 1.5)
        stop.set()
        for t in threads:
            t.join()
        with lock:
            before_restart = len(got)
        assert len(acked) > 20, f"too few creates before the kill ({len(acked)})"
        assert before_restart < len(acked), "the kill should land before every delivery"

        proc, _ = start(data_dir, port, *extra)
        deadline = time.time() + 120
        while time.time() < deadline:
            with lock:
                missing = [i for i in acked if i not in got]
            if not missing:
                break
            time.sleep(0.2)
        assert not missing, f"{len(missing)} of {len(acked)} events never delivered"
        with lock:
            # Redelivery after a crash keeps the delivery's id, so a receiver can drop repeats.
            for lead_id in acked:
                assert len(set(got[lead_id])) == 1, got[lead_id]
    finally:
        proc.terminate()
        proc.wait()
        server.shutdown()
