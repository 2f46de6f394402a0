"""A stateful local Mastodon: the `mastodon-mock` package (a FastAPI server on 127.0.0.1 with its
own SQLite state), seen through the same shape as every other fake.

The business is `@acmebakery` (seeded with `TOKEN`); customers are accounts created on the same
server, writing direct statuses with their own tokens. Faults (rate limits, outages) go through
the mock's fault-injection control plane. The mock counts a status's length in raw characters,
where Mastodon counts every URL as 23: length rules are checked against the catalog, not it.

Starting the server costs about a second, so one server is started per test process and
`start()` resets its state instead (`/api/v1/_mock/reset`): every fake begins empty.
"""

from __future__ import annotations

import atexit
import os
import time
from datetime import datetime, timezone

import httpx
import pytest

from console.model import Address
from fakes import peer

TOKEN = "acme-secret-token-0123456789abcdef"  # a fixture for the mock server, not a real credential
BUSINESS = "acmebakery"

_server = None  # the process's one MockServer, started on first use


def _mock():
    if os.environ.get("CI"):  # CI must run every test: a missing peer is an error there, not a skip
        import mastodon_mock.testing as mastodon_mock
    else:
        mastodon_mock = pytest.importorskip("mastodon_mock.testing",
                                            reason="install it with: pip install -e '.[test]'")
    return mastodon_mock


def _running_server():
    global _server
    if _server is None:
        from mastodon_mock.config import SeedAccount, SeedConfig

        seed = SeedConfig(accounts=[SeedAccount(username=BUSINESS, display_name="Acme Bakery", access_token=TOKEN)])
        _server = _mock().MockServer(seed=seed).start()
        atexit.register(_server.stop)
    return _server


class FakeMastodon:
    """The mock server seen from a test: customers, their DMs, faults, what the business posted."""

    def __init__(self):
        self.token = TOKEN
        self.violations: list[str] = []  # the mock is the service itself: nothing to check it against
        self.http: httpx.Client | None = None
        self.me: dict = {}

    # ---- lifecycle ----------------------------------------------------------------------------
    def start(self) -> "FakeMastodon":
        server = _running_server()
        self.url = server.base_url
        # One client: a new one per call costs ~50 ms of connection setup.
        self.http = httpx.Client(base_url=self.url)
        self.http.post("/api/v1/_mock/reset").raise_for_status()
        self.token = TOKEN
        self.me = self.get("/api/v1/accounts/verify_credentials")
        return self

    def stop(self) -> None:
        if self.http is not None:
            self.http.close()
            self.http = None

    # ---- control API ----------------------------------------------------------------------------
    def get(self, path: str, token: str | None = None, **params):
        response = self.http.get(path, params=params, headers={"Authorization": f"Bearer {token or self.token}"})
        response.raise_for_status()
        return response.json()

    def add_user(self, username: str, display_name: str = "") -> dict:
        response = self.http.post("/api/v1/_mock/dev_user",
                                  json={"username": username, "display_name": display_name or username})
        response.raise_for_status()
        return response.json()

    def dm(self, user: dict, text: str, in_reply_to: str | None = None, visibility: str = "direct",
           to: str = BUSINESS) -> dict:
        """`user` writes to the business (a direct status mentioning it)."""
        body = {"status": f"@{to} {text}" if to else text, "visibility": visibility}
        if in_reply_to:
            body["in_reply_to_id"] = in_reply_to
        response = self.http.post("/api/v1/statuses", json=body,
                                  headers={"Authorization": f"Bearer {user['access_token']}"})
        response.raise_for_status()
        return response.json()

    def business_statuses(self) -> list[dict]:
        return self.get(f"/api/v1/accounts/{self.me['id']}/statuses")

    def fail(self, path: str, effect: dict, methods: tuple[str, ...] = ("GET", "POST"), count: int = 1) -> None:
        response = self.http.post("/api/v1/_mock/faults", json={
            "match": {"path": path, "methods": list(methods)}, "effect": effect, "count": count})
        response.raise_for_status()

    def revoke_token(self) -> None:
        """The business's access token stops working (revoked under Preferences > Development)."""
        self.http.post("/oauth/revoke", data={"token": self.token}).raise_for_status()


class Peer(peer.Peer):
    """The Mastodon account for the contract suite."""

    kind = "mastodon"
    channels = ("mastodon",)

    def new_fake(self) -> FakeMastodon:
        return FakeMastodon()

    def account(self, url: str | None = None) -> str:
        return f'access_token = "{TOKEN}"\ninstance_url = "{url or self.fake.url}"\npoll_interval = 0.01\ntimeout = 5\n'

    def secrets(self) -> list[str]:
        return [TOKEN]

    def customer(self, channel: str) -> peer.Customer:
        name = f"customer{next(self.people)}"
        user = self.fake.add_user(name)
        return peer.Customer(channel, Address("mastodon", str(user["id"]), "@" + name), user)

    def writes(self, customer: peer.Customer, text: str) -> None:
        self.fake.dm(customer.handle, text)

    def received(self, customer: peer.Customer) -> list[str]:
        mine = [s for s in self.fake.business_statuses()
                if any(str(m.get("id")) == str(customer.handle["id"]) for m in s.get("mentions") or [])]
        return [str(s["id"]) for s in reversed(mine)]  # the API lists newest first

    def refuse_credentials(self) -> None:
        self.fake.revoke_token()

    def rate_limit_next_pull(self, seconds: int) -> float | None:
        reset = datetime.fromtimestamp(time.time() + seconds, timezone.utc).isoformat().replace("+00:00", "Z")
        self.fake.fail("/api/v1/conversations", {"type": "ratelimit", "headers": {"X-RateLimit-Reset": reset}})
        return float(seconds)
