"""Fixtures of the OAuth suite: a `klozeo serve` started by tests/run.sh.

Environment:
    KLOZEO_ORIGIN     the server, e.g. http://127.0.0.1:8080 (its KLOZEO_PUBLIC_URL). REQUIRED.
    KLOZEO_CHROMIUM   the Chromium binary for the browser test; unset skips only that test
                      (tests/run.sh says why).
    KLOZEO_ARTIFACTS  where the consent page screenshot goes (default target/artifacts).
"""

from __future__ import annotations

import os
import secrets
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest

PASSWORD = "correct horse battery staple"


def env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        pytest.fail(f"{name} is not set: run this suite through tests/run.sh", pytrace=False)
    return value


@pytest.fixture
def origin() -> str:
    return env("KLOZEO_ORIGIN").rstrip("/")


@pytest.fixture
def account(origin: str) -> dict:
    """A freshly registered account that can sign in: {email, password, api_key}."""
    email = f"oauth-{secrets.token_hex(6)}@example.com"
    r = httpx.post(f"{origin}/api/v1/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    return {"email": email, "password": PASSWORD, "api_key": r.json()["api_key"]}


class Callback:
    """A loopback listener standing in for a native client's redirect URI (RFC 8252)."""

    def __init__(self) -> None:
        self.params: dict[str, str] | None = None
        self.got = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                u = urllib.parse.urlparse(self.path)
                # Browsers also ask for /favicon.ico.
                if u.path == "/callback":
                    outer.params = dict(urllib.parse.parse_qsl(u.query))
                    outer.got.set()
                self.send_response(200)
                self.send_header("content-type", "text/plain")
                self.end_headers()
                self.wfile.write(b"You can close this window.")

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/callback"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def callback():
    cb = Callback()
    yield cb
    cb.close()
