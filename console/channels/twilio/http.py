"""Twilio's HTTP side, for the channel (console/channels/twilio/channel.py): the library's client
pointed at another base URL, what a failed request means (refused before it left, or perhaps
carried out), and the delivery error codes said for a person."""

from __future__ import annotations

import threading
from urllib.parse import urlsplit, urlunsplit

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient

DEFAULT_API = "https://api.twilio.com"

# Error codes of a message that failed after Twilio accepted it, said for a person.
DELIVERY_ERRORS = {
    21610: "The customer replied STOP to this number, so carriers will not deliver to them until they text START.",
    30003: "The customer's phone could not be reached (switched off or out of coverage).",
    30004: "The customer's carrier or phone blocked the message.",
    30005: "The number is unknown to its carrier or no longer exists; check the customer's number.",
    30006: "The number is a landline or cannot receive text messages.",
    30007: "A carrier filtered the message as possible spam.",
    30008: "The carrier could not deliver the message and gave no reason.",
    63016: "More than 24 hours have passed since the customer last wrote on WhatsApp, so WhatsApp only "
           "allows an approved template now; send a template instead.",
    63024: "The recipient is not a valid WhatsApp user.",
}


class ApiClient(TwilioHttpClient):
    """The library's own HTTP client, sending to `base_url` instead of https://api.twilio.com, and
    remembering each thread's last response headers (a 429's Retry-After is not in the exception)."""

    def __init__(self, base_url: str, timeout: float):
        super().__init__(timeout=timeout)
        self._base = urlsplit(base_url) if base_url.rstrip("/") != DEFAULT_API else None
        self.local = threading.local()

    def rewrite(self, url: str) -> str:
        if self._base is None:
            return url
        parts = urlsplit(url)
        return urlunsplit((self._base.scheme, self._base.netloc, self._base.path.rstrip("/") + parts.path,
                           parts.query, parts.fragment))

    def request(self, method, url, params=None, data=None, headers=None, auth=None, timeout=None,
                allow_redirects=False):
        self.local.headers = {}
        response = super().request(method, self.rewrite(url), params=params, data=data, headers=headers,
                                   auth=auth, timeout=timeout, allow_redirects=allow_redirects)
        self.local.headers = dict(response.headers or {})
        return response


def delivery_detail(code: int | None, message: str | None) -> str:
    """One sentence for why Twilio could not deliver a message."""
    if code is None and not message:
        return ""
    sentence = DELIVERY_ERRORS.get(code or 0)
    if sentence:
        return f"{sentence} (Twilio error {code})"
    said = (message or "").strip().rstrip(".")
    return f"Twilio could not deliver it: {said or 'no reason given'} (error {code})" if code else \
        f"Twilio could not deliver it: {said}"


class Ambiguous(Exception):
    """The request may have reached Twilio, but its answer was lost."""


def status_of(exc: TwilioException) -> int:
    if isinstance(exc, TwilioRestException):
        return exc.status
    response = exc.args[1] if len(exc.args) > 1 else None
    return getattr(response, "status_code", 0) or 0


def refused(exc: Exception) -> bool:
    """True when the connection was never made, so the request certainly did not reach Twilio."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        name = type(item).__name__
        if name in ("NewConnectionError", "ConnectionRefusedError", "NameResolutionError", "ConnectTimeoutError",
                    "gaierror"):
            return True
        stack.extend(a for a in getattr(item, "args", ()) if isinstance(a, BaseException))
        for attr in ("reason", "__cause__", "__context__"):
            inner = getattr(item, attr, None)
            if isinstance(inner, BaseException):
                stack.append(inner)
    return False
