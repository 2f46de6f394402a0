"""Plumbing shared by the adapters that speak HTTPS with a token (Telegram, Mastodon, Meta)."""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

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


class _ScrubbingFilter(logging.Filter):
    """httpx logs every request URL at INFO level, and some services put the token in the URL."""

    def __init__(self, scrub: Callable[[str], str]):
        super().__init__()
        self.scrub = scrub

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(self.scrub(str(a)) if isinstance(a, (str, httpx.URL)) else a for a in args)
        if isinstance(record.msg, str):
            record.msg = self.scrub(record.msg)
        return True


def scrub_httpx_logs(scrub: Callable[[str], str]) -> None:
    """Pass every httpx log line through `scrub` (once per function, however often imported)."""
    httpx_log = logging.getLogger("httpx")
    if not any(isinstance(f, _ScrubbingFilter) and f.scrub is scrub for f in httpx_log.filters):
        httpx_log.addFilter(_ScrubbingFilter(scrub))
