"""A Twilio account's settings read from the config, each mistake named by its key."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from console.channels.twilio.channel import E164, WHATSAPP, TwilioChannel
from console.channels.twilio.http import DEFAULT_API
from console.config import AccountConfig, WorkspaceConfig

_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_KEY_SID = re.compile(r"^SK[0-9a-fA-F]{32}$")
_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
_CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")


def configure(account: AccountConfig, workspace: WorkspaceConfig) -> "TwilioChannel":
    sid = account.str("account_sid", required=True).strip()
    if not _ACCOUNT_SID.match(sid):
        raise account.error("account_sid", "expected the Account SID from the Twilio console: 'AC' and 32 hex digits")
    api_key = account.str("api_key")
    token = account.secret("auth_token", required=False)
    api_secret = account.secret("api_secret", required=False)
    if api_key is not None:
        if not _KEY_SID.match(api_key.strip()):
            raise account.error("api_key", "expected an API key SID: 'SK' and 32 hex digits")
        if token is not None:
            raise account.error("api_key", "give either auth_token or api_key + api_secret, not both")
        if api_secret is None:
            raise account.error("api_secret", "missing; an api_key needs api_secret_cmd or api_secret_env "
                                              f"(account '{account.name}')")
        username, secret = api_key.strip(), api_secret
    else:
        if api_secret is not None:
            raise account.error("api_key", "missing; api_secret is only used together with api_key")
        if token is None:
            raise account.error("auth_token", "missing; set auth_token_cmd (a command that prints it) or "
                                              "auth_token_env (an environment variable), or api_key + api_secret "
                                              f"for account '{account.name}'")
        username, secret = sid, token
    numbers = account.str_list("numbers", [])
    for number in numbers:
        if not E164.match(number.removeprefix(WHATSAPP)):
            raise account.error("numbers", f"{number!r} is not an E.164 number; write numbers like "
                                           "\"+15551234567\" or \"whatsapp:+15551234567\"")
    service = account.str("messaging_service_sid")
    if service is not None and not _SERVICE_SID.match(service.strip()):
        raise account.error("messaging_service_sid", "expected a Messaging Service SID: 'MG' and 32 hex digits")
    if not numbers and not service:
        raise account.error("numbers", "list the account's numbers (e.g. [\"+15551234567\", "
                                       "\"whatsapp:+15551234567\"]) or set messaging_service_sid")
    templates = account.table("templates")
    for name, content_sid in templates.items():
        if not isinstance(content_sid, str) or not _CONTENT_SID.match(content_sid):
            raise account.error("templates", f"template {name!r}: expected a Content SID ('HX' and 32 hex digits) "
                                             "of an approved WhatsApp template")
    base = (account.str("api_base_url", DEFAULT_API) or DEFAULT_API).rstrip("/")
    if not base.startswith(("https://", "http://")) or not urlsplit(base).netloc:
        raise account.error("api_base_url", f"expected an http(s) URL such as {DEFAULT_API}")
    return TwilioChannel(
        account.name, sid, username, secret,
        numbers=tuple(numbers),
        messaging_service_sid=service.strip() if service else None,
        templates=dict(templates),
        api_base_url=base,
        poll_interval=account.float("poll_interval", 10.0, minimum=0.01),
        timeout=account.float("timeout", 30.0, minimum=1.0),
        history_days=account.int("history_days", 30, minimum=0, maximum=400),
    )
