"""OAuth 2.1 end to end against `klozeo serve`:

- the official `mcp` client's OAuth support (discovery from the 401, dynamic registration,
  PKCE, the token exchange) with the sign-in and consent page driven over HTTP, ending in
  tools/list, and the issued token working on REST GET /leads;
- a real browser: headless Chromium (driven over the DevTools protocol) opens the authorize
  page, signs in, allows, follows the redirect to a loopback listener; the code exchanges for a
  token that lists the MCP tools. The consent page's screenshot is kept as an artifact.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import secrets
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

from conftest import env


def hidden(html: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert m, f"no hidden {name} in page: {html[:400]}"
    return m.group(1)


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client

    async def set_client_info(self, info):
        self.client = info


def test_mcp_client_oauth_flow_lists_tools_and_token_works_on_rest(origin, account):
    redirect_uri = "http://127.0.0.1:33418/callback"
    answer: dict[str, str] = {}

    async def redirect_handler(url: str) -> None:
        # What a person does in the browser: the page, sign in and allow in one form.
        async with httpx.AsyncClient() as c:
            page = await c.get(url)
            assert page.status_code == 200, page.text
            assert "name=\"password\"" in page.text
            r = await c.post(
                f"{origin}/oauth/authorize",
                data={
                    "request": hidden(page.text, "request"),
                    "csrf": hidden(page.text, "csrf"),
                    "email": account["email"],
                    "password": account["password"],
                    "decision": "allow",
                },
            )
            assert r.status_code == 302, r.text
            loc = urllib.parse.urlparse(r.headers["location"])
            assert loc.geturl().startswith(redirect_uri)
            answer.update(urllib.parse.parse_qsl(loc.query))

    async def callback_handler():
        # The issuer travels back too (RFC 9207); the client checks it against the metadata.
        return AuthorizationCodeResult(code=answer["code"], state=answer.get("state"), iss=answer.get("iss"))

    storage = MemoryStorage()
    auth = OAuthClientProvider(
        server_url=f"{origin}/mcp",
        client_metadata=OAuthClientMetadata(
            client_name="mcp python test",
            redirect_uris=[redirect_uri],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )

    async def main():
        async with httpx2.AsyncClient(auth=auth, timeout=30) as client:
            async with streamable_http_client(f"{origin}/mcp", http_client=client) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    tools = await session.list_tools()
                    return [t.name for t in tools.tools]

    names = asyncio.run(main())
    assert len(names) == 33, names
    assert "create_lead" in names
    assert storage.client is not None and storage.client.client_id.startswith("klcl_")
    token = storage.tokens.access_token
    r = httpx.get(f"{origin}/api/v1/leads", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert r.json()["leads"] == []
    # The grant shows with the account's keys.
    keys = httpx.get(f"{origin}/api/v1/api-keys", headers={"X-API-Key": account["api_key"]}).json()
    assert any(k["name"] == "OAuth: mcp python test" for k in keys["api_keys"]), keys


class Cdp:
    """A minimal Chrome DevTools Protocol client over one WebSocket (flattened sessions)."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: list[dict] = []

    async def call(self, method: str, session: str | None = None, **params):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        await self.ws.send(json.dumps(msg))
        while True:
            m = json.loads(await asyncio.wait_for(self.ws.recv(), 30))
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    async def wait_event(self, name: str, timeout: float = 30):
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e.get("method") == name:
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            assert left > 0, f"no {name} event"
            self.events.append(json.loads(await asyncio.wait_for(self.ws.recv(), left)))


def test_real_browser_signs_in_allows_and_the_code_works(origin, account, callback):
    chromium = os.environ.get("KLOZEO_CHROMIUM", "").strip()
    if not chromium:
        pytest.skip("KLOZEO_CHROMIUM is not set (Chromium could not be installed)")
    import websockets

    reg = httpx.post(
        f"{origin}/oauth/register",
        json={"client_name": "Browser Test", "redirect_uris": [callback.url]},
    )
    assert reg.status_code == 201, reg.text
    client_id = reg.json()["client_id"]
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_hex(8)
    url = f"{origin}/oauth/authorize?" + urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": callback.url,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": state,
            "scope": "read write",
            "resource": f"{origin}/mcp",
        }
    )
    artifacts = Path(os.environ.get("KLOZEO_ARTIFACTS", "target/artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="klozeo-chromium-")
    proc = subprocess.Popen(
        [
            chromium,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            "--window-size=900,900",
            "about:blank",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        ws_url = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            if m:
                ws_url = m.group(1)
                break
            assert line or proc.poll() is None, "Chromium exited before listening"
        assert ws_url, "Chromium did not start its DevTools endpoint"

        async def drive():
            async with websockets.connect(ws_url, max_size=50_000_000) as ws:
                cdp = Cdp(ws)
                target = await cdp.call("Target.createTarget", url="about:blank")
                sess = (await cdp.call("Target.attachToTarget", targetId=target["targetId"], flatten=True))["sessionId"]
                await cdp.call("Page.enable", session=sess)

                async def navigate_and_wait(fn):
                    cdp.events.clear()
                    await fn()
                    await cdp.wait_event("Page.loadEventFired")

                async def js(expr: str):
                    r = await cdp.call("Runtime.evaluate", session=sess, expression=expr, returnByValue=True)
                    return r["result"].get("value")

                await navigate_and_wait(lambda: cdp.call("Page.navigate", session=sess, url=url))
                assert await js("!!document.querySelector('input[name=password]')")
                # Types like a person and submits the form (the page itself has no script).
                email = json.dumps(account["email"])
                password = json.dumps(account["password"])
                await navigate_and_wait(
                    lambda: js(
                        f"document.querySelector('#email').value={email};"
                        f"document.querySelector('#password').value={password};"
                        "document.querySelector('#sign-in').click(); true"
                    )
                )
                text = await js("document.body.innerText")
                assert "Browser Test" in text and account["email"] in text and "read write" in text, text
                shot = await cdp.call("Page.captureScreenshot", session=sess, format="png")
                (artifacts / "oauth-consent.png").write_bytes(base64.b64decode(shot["data"]))
                await navigate_and_wait(lambda: js("document.querySelector('#allow').click(); true"))
                return await js("location.href")

        final = asyncio.run(drive())
    finally:
        proc.kill()
        proc.wait()
    assert callback.got.wait(10), "the browser never reached the redirect URI"
    assert final.startswith(callback.url), final
    assert callback.params["state"] == state
    code = callback.params["code"]
    t = httpx.post(
        f"{origin}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": callback.url,
            "client_id": client_id,
            "code_verifier": verifier,
            "resource": f"{origin}/mcp",
        },
    )
    assert t.status_code == 200, t.text
    token = t.json()["access_token"]
    r = httpx.post(
        f"{origin}/mcp",
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2025-06-18",
        },
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
    )
    assert r.status_code == 200, r.text
    assert len(r.json()["result"]["tools"]) == 33
    assert (artifacts / "oauth-consent.png").stat().st_size > 1000
