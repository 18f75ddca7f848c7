"""Fixtures of the MCP suite: the official `mcp` Python SDK (2.x) against `klozeo serve`.

Environment (set by tests/run.sh, which starts the server):
    KLOZEO_MCP_URL        the endpoint, e.g. http://127.0.0.1:8080/mcp. REQUIRED.
    KLOZEO_API_KEY        key of account 1. REQUIRED.
    KLOZEO_API_KEY_2      key of account 2 (tenant isolation). REQUIRED.
    KLOZEO_API_KEY_BURST  key on the "burst" plan (3 requests per 3 s). REQUIRED.
    KLOZEO_BIN            the klozeo binary, for `klozeo mcp` over stdio. REQUIRED.
A missing variable fails the tests instead of skipping them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client


def env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        pytest.fail(f"{name} is not set: run this suite through tests/run.sh", pytrace=False)
    return value


@contextlib.asynccontextmanager
async def http_session(key: str | None = None) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {key or env('KLOZEO_API_KEY')}"}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as client:
        async with streamable_http_client(env("KLOZEO_MCP_URL"), http_client=client) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


class Tools:
    """Calls tools on one session and unpacks the envelope."""

    def __init__(self, session: ClientSession) -> None:
        self.session = session

    async def raw(self, tool: str, /, **args: Any):
        return await self.session.call_tool(tool, args)

    async def ok(self, tool: str, /, **args: Any) -> Any:
        r = await self.raw(tool, **args)
        assert not r.is_error, f"{tool} failed: {r.structured_content}"
        # The same JSON is also given as text, for clients that read only content.
        assert json.loads(r.content[0].text) == r.structured_content
        return r.structured_content["data"]

    async def err(self, tool: str, /, **args: Any) -> dict:
        r = await self.raw(tool, **args)
        assert r.is_error, f"{tool} unexpectedly succeeded: {r.structured_content}"
        assert json.loads(r.content[0].text) == r.structured_content
        e = r.structured_content["error"]
        assert set(e) == {"code", "message", "status"}
        return e


def run(coro):
    return asyncio.run(coro)
