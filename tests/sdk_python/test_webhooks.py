"""Webhooks through the official Python SDK (klozeo==0.1.4), with deliveries received by a
real HTTP server in this process and verified with the vendor's documented verifier.

`klozeo serve` must run with KLOZEO_WEBHOOK_ALLOW_PRIVATE=1 (the full test script sets it), so
it may deliver to this loopback receiver.
"""

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from klozeo import BadRequestError, Klozeo, Lead, NotFoundError, WebhookInput

from conftest import uid


def verify_webhook(payload_bytes: bytes, signature_header: str, secret: str) -> bool:
    """The verifier of klozeo-docs.txt ("Verifying signatures"), verbatim in substance."""
    expected = hmac.new(secret.encode(), payload_bytes, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature_header)


@pytest.fixture()
def receiver():
    got = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the stdlib's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            got.append((dict(self.headers), body))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", got
    server.shutdown()


def test_webhook_create_list_delete(client: Klozeo, client2: Klozeo):
    hook = client.create_webhook(
        WebhookInput(url="https://hooks.example.com/k", events=["lead.created"], secret="s")
    )
    assert hook.id and hook.active is True
    assert hook.events == ["lead.created"]
    assert isinstance(hook.created_at, str) and hook.created_at.endswith("Z")
    assert hook.id in [w.id for w in client.list_webhooks()]
    assert hook.id not in [w.id for w in client2.list_webhooks()]
    with pytest.raises(NotFoundError):
        client2.delete_webhook(hook.id)
    client.delete_webhook(hook.id)
    assert hook.id not in [w.id for w in client.list_webhooks()]
    with pytest.raises(NotFoundError):
        client.delete_webhook(hook.id)
    with pytest.raises(BadRequestError):
        client.create_webhook(WebhookInput(url="https://hooks.example.com/k", events=["nope"]))
    with pytest.raises(BadRequestError):
        client.create_webhook(WebhookInput(url="not a url"))


def test_deliveries_arrive_signed(client: Klozeo, receiver):
    url, got = receiver
    secret = "py-" + uid()
    hook = client.create_webhook(WebhookInput(url=url, events=["lead.created"], secret=secret))
    try:
        name = "Hooked " + uid()
        lead_id = client.create(Lead(name=name, source="sdk")).id
        deadline = time.time() + 15
        while time.time() < deadline and not any(
            json.loads(b)["data"]["id"] == lead_id for _, b in got
        ):
            time.sleep(0.05)
        matching = [(h, b) for h, b in got if json.loads(b)["data"]["id"] == lead_id]
        assert len(matching) == 1, got
        headers, body = matching[0]
        payload = json.loads(body)
        assert payload["event"] == "lead.created"
        assert payload["data"]["name"] == name
        assert isinstance(payload["timestamp"], int)
        sig = {k.lower(): v for k, v in headers.items()}["x-klozeo-signature"]
        assert verify_webhook(body, sig, secret)
        assert not verify_webhook(body, sig, secret + "x")
    finally:
        client.delete_webhook(hook.id)
