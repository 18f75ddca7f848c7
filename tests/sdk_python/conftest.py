"""Shared fixtures for the Python SDK (klozeo==0.1.4) compatibility suite.

Environment:
    KLOZEO_BASE_URL     base URL incl. the /api/v1 prefix, no trailing slash
                        (e.g. http://127.0.0.1:8080/api/v1). REQUIRED.
    KLOZEO_API_KEY      API key of account 1. REQUIRED.
    KLOZEO_API_KEY_2    API key of a second account (tenant isolation). REQUIRED
                        by the tests that use it.
    KLOZEO_API_KEY_BURST  API key of an account on the "burst" plan (3 requests per
                        3 s, tests/plans.json). REQUIRED by the 429 tests.
    KLOZEO_MAX_RETRIES  optional, SDK retries on 429/5xx/network errors (default 0,
                        so a failing server fails fast instead of sleeping 1+2+4 s).
    KLOZEO_TIMEOUT      optional, per-request timeout in seconds (default 15).

If a required variable is missing, every test FAILS (it is not skipped): this
suite is only meant to be run by the full test script, which sets them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from klozeo import KlozeoError, Klozeo, Lead

def _require_env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        pytest.fail(
            f"environment variable {name} is not set. The Python SDK compatibility "
            f"tests must be run by the full test script, which starts the server and "
            f"exports KLOZEO_BASE_URL (e.g. http://127.0.0.1:8080/api/v1, no trailing "
            f"slash), KLOZEO_API_KEY and KLOZEO_API_KEY_2.",
            pytrace=False,
        )
    return value


def pytest_report_header(config: pytest.Config) -> list[str]:
    import klozeo

    return [
        f"klozeo SDK {klozeo.__version__}; "
        f"KLOZEO_BASE_URL={os.environ.get('KLOZEO_BASE_URL', '<UNSET: tests will fail>')}"
    ]


def uid() -> str:
    """A fresh 32-hex-digit unique suffix."""
    return uuid.uuid4().hex


@pytest.fixture(scope="session")
def base_url() -> str:
    return _require_env("KLOZEO_BASE_URL")


@pytest.fixture(scope="session")
def api_key(base_url: str) -> str:
    return _require_env("KLOZEO_API_KEY")


@pytest.fixture(scope="session")
def api_key_2(base_url: str) -> str:
    return _require_env("KLOZEO_API_KEY_2")


@pytest.fixture(scope="session")
def client_kwargs() -> dict:
    """Keyword arguments shared by every SDK client the tests construct."""
    return {
        "timeout": float(os.environ.get("KLOZEO_TIMEOUT", "15")),
        "max_retries": int(os.environ.get("KLOZEO_MAX_RETRIES", "0")),
    }


@pytest.fixture(scope="session")
def make_client(base_url: str, client_kwargs: dict) -> Iterator[Callable[[str], Klozeo]]:
    """Factory: make_client(api_key) -> Klozeo pointed at the server under test."""
    made: list[Klozeo] = []

    def _make(key: str) -> Klozeo:
        c = Klozeo(api_key=key, base_url=base_url, **client_kwargs)
        made.append(c)
        return c

    yield _make
    for c in made:
        c.close()


@pytest.fixture(scope="session")
def client(make_client, api_key: str) -> Klozeo:
    """SDK client for account 1."""
    return make_client(api_key)


@pytest.fixture(scope="session")
def client2(make_client, api_key_2: str) -> Klozeo:
    """SDK client for account 2."""
    return make_client(api_key_2)


@pytest.fixture
def cleanup(client: Klozeo) -> Iterator[list[tuple[Klozeo, str]]]:
    """List of (client, lead_id) that are deleted (best effort) after the test,
    so repeated runs do not grow the database towards any plan lead limit."""
    created: list[tuple[Klozeo, str]] = []
    yield created
    for owner, lead_id in created:
        try:
            owner.delete(lead_id)
        except KlozeoError:
            pass  # already deleted by the test, or server error: not this test's concern
        except Exception:  # network trouble during teardown must not mask the test result
            pass


@pytest.fixture
def create_lead(client: Klozeo, cleanup) -> Callable[..., str]:
    """Factory: create_lead(source=..., [client=...], **fields) -> lead id.

    Defaults to a unique name and unique e-mail (so server-side deduplication can
    never merge two test leads) and registers the lead for cleanup.
    """

    def _create(*, owner: Klozeo | None = None, **fields) -> str:
        owner = owner or client
        suffix = uid()
        fields.setdefault("name", f"sdkpy lead {suffix}")
        fields.setdefault("source", f"sdkpy-{suffix}")
        fields.setdefault("email", f"sdkpy-{suffix}@example.com")
        resp = owner.create(Lead(**fields))
        assert isinstance(resp.id, str) and resp.id.startswith("cl_"), resp
        cleanup.append((owner, resp.id))
        return resp.id

    return _create


# ---------------------------------------------------------------------------
# rate-limited account ("burst" plan: 3 requests per 3 s)
# ---------------------------------------------------------------------------

# The burst plan's window, and how long to wait until a spent window is free again
# (window + the server's 1 s bucket + slack).
BURST_LIMIT = 3
BURST_WINDOW_SECS = 3
BURST_RESET_SECS = BURST_WINDOW_SECS + 1.5


@pytest.fixture(scope="session")
def api_key_burst(base_url: str) -> str:
    return _require_env("KLOZEO_API_KEY_BURST")


@pytest.fixture
def make_burst_client(base_url: str, api_key_burst: str,
                      client_kwargs: dict) -> Iterator[Callable[..., Klozeo]]:
    """Factory: make_burst_client(max_retries=None) -> Klozeo for the burst account.

    ``max_retries=None`` keeps the SDK's own default (3 retries that honour
    ``Retry-After``). The fixture first waits until the account's window is free, so
    one rate-limit test cannot leak its spent requests into the next one.
    """
    import time

    time.sleep(BURST_RESET_SECS)
    made: list[Klozeo] = []

    def _make(max_retries: int | None = None) -> Klozeo:
        kwargs: dict = {"timeout": client_kwargs["timeout"]}
        if max_retries is not None:
            kwargs["max_retries"] = max_retries
        c = Klozeo(api_key=api_key_burst, base_url=base_url, **kwargs)
        made.append(c)
        return c

    yield _make
    for c in made:
        c.close()
