"""Plumbing shared by the adapters that speak HTTPS with a token (Telegram, Mastodon, Meta)."""

from __future__ import annotations

import asyncio

import httpx

from console.config import Secret


class TokenHttp:
    """A lazily read secret token and one lazily opened httpx client (no redirects followed: a
    redirect could carry the token to another host).

    Subclasses set `timeout`, `_secret` (a Secret, or the token itself in tests), `_token` (the
    token once read, else None) and `_client = None` in their constructor."""

    timeout: float
    _secret: Secret | str
    _token: str | None
    _client: httpx.AsyncClient | None

    async def _token_value(self) -> str:
        if self._token is None:
            assert isinstance(self._secret, Secret)
            self._token = await asyncio.to_thread(self._secret.get)
        return self._token

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout), follow_redirects=False)
        return self._client
