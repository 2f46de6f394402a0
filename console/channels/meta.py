"""A Facebook Page account: Messenger conversations with the Page and, through the same Page token,
Instagram direct messages with the Instagram professional account linked to it.

Inbound comes from polling the Conversations API (no webhook, no public URL). For each platform,
`GET /{version}/{page-id}/conversations?platform=...&fields=id,updated_time` lists conversations
newest first (`paging.next`); those whose `updated_time` moved past the cursor are read with
`GET /{conversation-id}?fields=messages{id,created_time,from,to,message,attachments}` (newest first,
following `paging.next` back to the cursor). The cursor is per platform: the newest `updated_time`
handed to the store, the conversation ids and message ids seen at exactly that second (Graph times
have one-second precision), and when that was read. Changed conversations are handled oldest
first, 25 a pull (`more` for the rest), so the cursor only moves over work the store has; a
message older than the cursor, or of its second and already handed over, is not handed over again.
A message can still arrive in the cursor's very second after it was read, without moving the
conversation's `updated_time`: until a read has happened `BOUNDARY_SLACK` seconds after that
second (clocks differ), the conversations of that second are read again. The first sync reads the
conversations of the last `history_days` (default 7: older ones can no longer be answered anyway).

Instagram hands over only the 20 most recent messages of a conversation; a conversation that got
more than 20 messages between two pulls loses the earlier ones, and the pull says so in its
notice. Messenger pages back as far as needed.

Meta allows 2 Conversations API calls per second per Page: every call here goes through one
sliding-window limiter (`calls_per_second`).

A customer is their page-scoped id (PSID on Messenger, IGSID on Instagram), shown by name
(Messenger) or @username (Instagram); the thread key is "<platform>:<id>". Messages from the Page
itself (sent here or from Meta Business Suite) are direction "out".

Replies use the Send API. Meta's policy decides what may be sent, from the customer's last message
(asked from Meta at send time): within 24 hours free text (`messaging_type` RESPONSE); within 7
days only a human agent's reply tagged HUMAN_AGENT (when the composer chose `options["tag"] =
"HUMAN_AGENT"`); after that nothing. A refusal is a PermanentError saying which case it is. The
Send API has no idempotency key: an answer lost after the request may have reached Meta is an
InDoubtError, and `reconcile()` looks for the reply among the Page's newest messages.

The Page token travels in the Authorization header; Graph's `paging.next` URLs carry it in their
query, so it is removed before they are followed, and scrubbed from any log line or error.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import deque
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any, AsyncIterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from console.channels import catalog
from console.channels.httpbase import TokenHttp, scrub_httpx_logs
from console.channels.reconcile import closest_after
from console.config import AccountConfig, Secret, WorkspaceConfig
from console.model import (Address, Attachment, AuthError, ChannelError, InboundMessage, InDoubtError, Outgoing,
                           PermanentError, PullResult, SendResult, TransientError)

KIND = "meta"
DEFAULT_API = "https://graph.facebook.com"
DEFAULT_VERSION = "v21.0"
PLATFORMS = ("messenger", "instagram")
CONVERSATIONS_PER_PULL = 25
MESSAGE_PAGES = 10  # at most this many pages of one conversation's messages per pull
INSTAGRAM_MESSAGE_CAP = 20
MESSAGE_FIELDS = "messages{id,created_time,from,to,message,attachments}"
BOUNDARY_SLACK = 120  # seconds after the cursor's second when no message of that second can still come

RATE_LIMIT_CODES = {4, 17, 32, 613, 80001, 80006}
TRANSIENT_CODES = {1, 2, 1200}
WINDOW_SUBCODES = {2018278, 2534022}
_TOKEN_IN_TEXT = re.compile(r"(access_token=)[^&\s\"']+")


def scrub(text: str, token: str = "") -> str:
    """`text` with the Page token (and any `access_token=` query value) replaced by a placeholder."""
    if token:
        text = text.replace(token, "<page_access_token>")
    return _TOKEN_IN_TEXT.sub(r"\1<page_access_token>", text)


scrub_httpx_logs(scrub)


def configure(account: AccountConfig, workspace: WorkspaceConfig) -> "MetaChannel":
    page_id = account.str("page_id", required=True) or ""
    if not page_id.isdigit():
        raise account.error("page_id", "expected the Page's numeric id (Page settings > About > Page ID)")
    base = (account.str("api_base_url", DEFAULT_API) or DEFAULT_API).rstrip("/")
    if not base.startswith(("https://", "http://")):
        raise account.error("api_base_url", f"expected an http(s) URL such as {DEFAULT_API}")
    version = account.str("api_version", DEFAULT_VERSION) or DEFAULT_VERSION
    if not re.fullmatch(r"v\d+\.\d+", version):
        raise account.error("api_version", f'expected a Graph API version such as "{DEFAULT_VERSION}"')
    return MetaChannel(
        account.name,
        page_id,
        account.secret("page_access_token"),
        instagram=account.bool("instagram", True),
        api_base_url=base,
        api_version=version,
        poll_interval=account.float("poll_interval", 30.0),
        calls_per_second=account.float("calls_per_second", 2.0, minimum=0.1),
        history_days=account.int("history_days", 7, minimum=0, maximum=3650),
        timeout=account.float("timeout", 30.0, minimum=1.0),
    )


def _epoch(value: Any) -> float | None:
    """Graph times look like 2024-05-01T12:00:00+0000."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _ago(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours:.0f} hours ago" if hours < 48 else f"{hours / 24:.0f} days ago"


class RateLimiter:
    """At most `rate` calls in any one-second window, as Meta counts them (a sliding log).

    A call is logged from its start and its time moved to when its answer came: Meta saw it
    somewhere in between, so spacing from the answer keeps the limit on Meta's side too."""

    def __init__(self, rate: float, margin: float = 0.05):
        self.per_window = max(1, int(rate))
        self.window = 1.0 if rate >= 1 else 1.0 / rate
        self.margin = margin
        self._log: deque[list[float]] = deque()
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._lock:
            while True:
                now = time.monotonic()
                while self._log and self._log[0][0] <= now - self.window - self.margin:
                    self._log.popleft()
                if len(self._log) < self.per_window:
                    break
                await asyncio.sleep(self._log[0][0] + self.window + self.margin - now)
            entry = [now]
            self._log.append(entry)
        try:
            yield
        finally:
            entry[0] = time.monotonic()


def _retry_after(response: httpx.Response) -> float | None:
    """Minutes until access returns, from Meta's X-Business-Use-Case-Usage header, in seconds."""
    raw = response.headers.get("X-Business-Use-Case-Usage") or response.headers.get("X-Page-Usage")
    if not raw:
        return None
    try:
        usage = json.loads(raw)
    except ValueError:
        return None
    minutes = [entry.get("estimated_time_to_regain_access") for entries in usage.values() if isinstance(entries, list)
               for entry in entries if isinstance(entry, dict)] if isinstance(usage, dict) else []
    minutes = [m for m in minutes if isinstance(m, (int, float)) and m > 0]
    return max(minutes) * 60.0 if minutes else None


class MetaChannel(TokenHttp):
    """One Facebook Page (Messenger) and its linked Instagram account. See the module docstring."""

    kind = KIND

    def __init__(self, account: str, page_id: str, token: Secret | str, *, instagram: bool = True,
                 api_base_url: str = DEFAULT_API, api_version: str = DEFAULT_VERSION, poll_interval: float = 30.0,
                 calls_per_second: float = 2.0, history_days: int = 7, timeout: float = 30.0):
        self.account = account
        self.page_id = page_id
        self.channels = ("messenger", "instagram") if instagram else ("messenger",)
        self.poll_interval = poll_interval
        self.history_days = history_days
        self.timeout = timeout
        self._secret = token
        self._token: str | None = token if isinstance(token, str) else None
        self._base = api_base_url.rstrip("/")
        self._version = api_version
        self._limiter = RateLimiter(calls_per_second)
        self._client: httpx.AsyncClient | None = None
        self._page: dict[str, Any] | None = None

    # ---- plumbing -----------------------------------------------------------------------------
    def _url(self, path_or_url: str) -> str:
        """An absolute URL for a Graph path, or a paging URL with its access_token removed."""
        if not path_or_url.startswith(("http://", "https://")):
            return f"{self._base}/{self._version}/{path_or_url.lstrip('/')}"
        parts = urlsplit(path_or_url)
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "access_token"])
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))

    async def request(self, method: str, path: str, what: str, *, params: dict[str, Any] | None = None,
                      json_body: dict[str, Any] | None = None, sends: bool = False) -> dict[str, Any]:
        """One Graph call through the rate limiter; the decoded JSON object or a typed error.

        With `sends`, an answer lost after the request may have reached Meta is an InDoubtError:
        the Send API has no idempotency key, so only `reconcile()` may decide to send again."""
        token = await self._token_value()
        try:
            async with self._limiter.slot():
                response = await self._http().request(method, self._url(path), params=params, json=json_body,
                                                       headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            detail = scrub(str(exc), token)
            reason = type(exc).__name__ + (f": {detail}" if detail else "")
            if sends and not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
                raise InDoubtError(f"Meta did not answer while {what} ({reason}); console will check whether "
                                   "it arrived before sending it again") from None
            raise TransientError(f"Meta could not be reached while {what} ({reason}); will retry") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 200 and isinstance(body, dict) and "error" not in body:
            return body
        if sends and response.status_code >= 500 and not (isinstance(body, dict) and "error" in body):
            raise InDoubtError(f"Meta answered HTTP {response.status_code} while {what}; console will check "
                               "whether it arrived before sending it again")
        raise self._error(what, response, body)

    def _error(self, what: str, response: httpx.Response, body: Any) -> ChannelError:
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            if response.status_code >= 500 or response.status_code == 429:
                return TransientError(f"Meta answered HTTP {response.status_code} while {what}; will retry")
            return TransientError(f"Meta answered something that is not the Graph API while {what} "
                                  f"(HTTP {response.status_code}); check api_base_url")
        code = error.get("code") if isinstance(error.get("code"), int) else 0
        subcode = error.get("error_subcode") if isinstance(error.get("error_subcode"), int) else 0
        said = scrub(str(error.get("message") or f"error {code}"), self._token or "")
        ref = f"code {code}" + (f"/{subcode}" if subcode else "")
        if code == 190:
            return AuthError(f"Meta refused the Page access token ({said}); check page_access_token for account "
                             f"'{self.account}' (Page tokens stop working when a password changes or the app is "
                             "removed from the Page; make a new long-lived one)")
        if code in RATE_LIMIT_CODES or 80000 <= code < 80100:
            retry_after = _retry_after(response)
            wait = f"; Meta asks to wait {retry_after / 60:.0f} min" if retry_after else ""
            return TransientError(f"Meta is rate limiting this Page while {what} ({ref}: {said}){wait}", retry_after)
        if subcode in WINDOW_SUBCODES:
            return PermanentError(f"Meta refused the message: it is outside the allowed reply window ({said})",
                                  str(subcode))
        if code in TRANSIENT_CODES or error.get("is_transient") is True or response.status_code >= 500:
            return TransientError(f"Meta had a temporary problem while {what} ({ref}: {said}); will retry")
        if code == 10 or 200 <= code <= 299:
            return AuthError(f"Meta says this Page token lacks a permission needed while {what} ({ref}: {said}); "
                             "the token needs pages_messaging and pages_manage_metadata, plus "
                             "instagram_manage_messages for Instagram, from someone with the MESSAGING task on the Page")
        if code == 551:
            return PermanentError(f"Meta will not deliver it: this person isn't available right now ({said})", str(code))
        if code == 100 and subcode == 2018001:
            return PermanentError(f"Meta knows no such person for this Page ({said})", f"{code}/{subcode}")
        return PermanentError(f"Meta refused this while {what} ({ref}: {said})", str(code))

    async def page(self) -> dict[str, Any]:
        """The Page, with its linked Instagram account if any; asked once per run."""
        if self._page is None:
            self._page = await self.request("GET", self.page_id, "reading the Page",
                                            params={"fields": "id,name,instagram_business_account{id,username}"})
        return self._page

    async def _us(self, platform: str) -> str | None:
        """Our own id on a platform: the Page id, or the linked Instagram account's id."""
        if platform == "messenger":
            return self.page_id
        account = (await self.page()).get("instagram_business_account")
        return str(account["id"]) if isinstance(account, dict) and account.get("id") else None

    # ---- pulling ------------------------------------------------------------------------------
    async def pull(self, cursor: str | None) -> PullResult:
        try:
            state: dict[str, Any] = json.loads(cursor) if cursor else {}
        except ValueError:
            state = {}
        messages: list[InboundMessage] = []
        notices: list[str] = []
        more, moved = False, False
        for platform in self.channels:
            us = await self._us(platform)
            if us is None:
                notices.append("no Instagram account is linked to this Page; link one in the Page settings, "
                               "or set instagram = false")
                continue
            mark = state.get(platform)
            now = time.time()
            floor = float(mark["t"]) if mark else now - self.history_days * 86400
            seen = set(mark.get("ids", [])) if mark else set()
            handed = set(mark.get("mids", [])) if mark else set()
            settled = not mark or float(mark.get("read", 0)) >= floor + BOUNDARY_SLACK
            changed, boundary = await self._changed(platform, floor, seen)
            batch = changed[:CONVERSATIONS_PER_PULL]
            more = more or len(changed) > len(batch)
            again = [] if settled else boundary  # read once more each pull, until the second is long past
            at_newest: set[str] = set()
            newest = batch[-1][0] if batch else floor
            for conv_id in again + [conv_id for _, conv_id in batch]:
                found, capped = await self._messages(platform, conv_id, us, floor)
                if mark:  # what the store already has is not handed over again
                    found = [m for m in found if m.sent_at > floor or (m.sent_at == floor and m.external_id not in handed)]
                messages += found
                at_newest |= {m.external_id for m in found if m.sent_at == newest}
                if capped and mark:
                    who = next((m.peer.display_name for m in found if m.direction == "in"), "a customer")
                    notices.append(f"Instagram only hands over the 20 most recent messages of a conversation; "
                                   f"earlier messages from {who} since the last sync may be missing")
            if batch or again:
                same = bool(mark) and float(mark["t"]) == newest
                state[platform] = {"t": newest, "ids": sorted({cid for t, cid in batch if t == newest} | (seen if same else set())),
                                   "mids": sorted(at_newest | (handed if same else set())), "read": now}
                moved = True
        return PullResult(messages, cursor=json.dumps(state, sort_keys=True) if moved else None, more=more,
                          notice="; ".join(notices))

    async def _changed(self, platform: str, floor: float,
                       seen: set[str]) -> tuple[list[tuple[float, str]], list[str]]:
        """(updated_time, id) of the conversations that moved past the cursor, oldest first; and the
        ids of those seen at the cursor's own second (which may have changed within it)."""
        found: list[tuple[float, str]] = []
        boundary: list[str] = []
        path: str | None = f"{self.page_id}/conversations"
        params: dict[str, Any] | None = {"platform": platform, "fields": "id,updated_time", "limit": 25}
        while path:
            body = await self.request("GET", path, f"listing {platform} conversations", params=params)
            for item in body.get("data") or []:
                updated = _epoch(item.get("updated_time")) if isinstance(item, dict) else None
                if updated is None or "id" not in item:
                    continue
                if updated < floor:
                    return sorted(found), boundary  # the list is newest first: the rest is older still
                if updated > floor or str(item["id"]) not in seen:
                    found.append((updated, str(item["id"])))
                else:
                    boundary.append(str(item["id"]))
            path, params = (body.get("paging") or {}).get("next"), None
        return sorted(found), boundary

    async def _messages(self, platform: str, conv_id: str, us: str,
                        floor: float) -> tuple[list[InboundMessage], bool]:
        """A conversation's messages back to `floor` (at most MESSAGE_PAGES pages), and whether
        Instagram's cap may have hidden some."""
        body = await self.request("GET", conv_id, f"reading a {platform} conversation", params={"fields": MESSAGE_FIELDS})
        edge = body.get("messages") or {}
        raw: list[dict[str, Any]] = []
        for _ in range(MESSAGE_PAGES):
            data = [m for m in edge.get("data") or [] if isinstance(m, dict)]
            raw += data
            times = [t for t in (_epoch(m.get("created_time")) for m in data) if t is not None]
            following = (edge.get("paging") or {}).get("next")
            if not data or not following or (times and min(times) < floor):
                break
            edge = await self.request("GET", following, f"reading a {platform} conversation")
        times = [t for t in (_epoch(m.get("created_time")) for m in raw) if t is not None]
        capped = (platform == "instagram" and len(raw) >= INSTAGRAM_MESSAGE_CAP
                  and bool(times) and min(times) > floor)
        found = [msg for msg in (self.to_message(platform, m, us) for m in reversed(raw)) if msg is not None]
        return found, capped

    def to_message(self, platform: str, msg: dict[str, Any], us: str) -> InboundMessage | None:
        sender = msg.get("from") if isinstance(msg.get("from"), dict) else {}
        recipients = (msg.get("to") or {}).get("data") if isinstance(msg.get("to"), dict) else None
        recipient = recipients[0] if isinstance(recipients, list) and recipients and isinstance(recipients[0], dict) else {}
        if "id" not in msg or "id" not in sender:
            return None
        direction = "out" if str(sender["id"]) == us else "in"
        person = recipient if direction == "out" else sender
        if "id" not in person:
            return None
        if platform == "instagram":
            shown = "@" + person["username"] if person.get("username") else ""
        else:
            shown = str(person.get("name") or "")
        attachments = [self._attachment(a) for a in ((msg.get("attachments") or {}).get("data") or [])
                       if isinstance(a, dict)]
        body = str(msg.get("message") or "")
        if not body and not attachments:
            body = "(a kind of message console cannot show yet)"
        return InboundMessage(
            external_id=str(msg["id"]),
            thread_key=f"{platform}:{person['id']}",
            channel=platform,
            direction=direction,
            peer=Address(platform, str(person["id"]), shown),
            sent_at=_epoch(msg.get("created_time")) or time.time(),
            body=body,
            attachments=attachments,
            status="sent" if direction == "out" else None,
        )

    @staticmethod
    def _attachment(item: dict[str, Any]) -> Attachment:
        url = ((item.get("image_data") or {}).get("url") or (item.get("video_data") or {}).get("url")
               or item.get("file_url") or "")
        return Attachment(str(item.get("name") or "attachment"), str(item.get("mime_type") or "application/octet-stream"),
                          item.get("size") if isinstance(item.get("size"), int) else None, str(url))

    # ---- sending ------------------------------------------------------------------------------
    async def _last_from_customer(self, platform: str, user_id: str) -> tuple[str | None, float | None, list[dict]]:
        """(conversation id, time of the customer's newest message, the newest messages)."""
        body = await self.request(
            "GET", f"{self.page_id}/conversations", "checking Meta's reply window",
            params={"platform": platform, "user_id": user_id, "fields": "id,messages{id,created_time,from,message}"})
        conversations = [c for c in body.get("data") or [] if isinstance(c, dict)]
        if not conversations:
            return None, None, []
        recent = [m for m in (conversations[0].get("messages") or {}).get("data") or [] if isinstance(m, dict)]
        theirs = [t for t in (_epoch(m.get("created_time")) for m in recent
                              if str((m.get("from") or {}).get("id")) == user_id) if t is not None]
        return str(conversations[0].get("id")), (max(theirs) if theirs else None), recent

    async def send(self, out: Outgoing) -> SendResult:
        platform = out.channel if out.channel in PLATFORMS else out.to.kind
        text = out.body
        if platform not in self.channels:
            raise PermanentError(f"This account does not carry {platform} (instagram = false)", "channel")
        if not text.strip():
            raise PermanentError("Meta cannot send an empty message", "empty")
        catalog.enforce_length(platform, text)  # Messenger: 2,000 characters; Instagram: 1,000 UTF-8 bytes
        _, last_in, _ = await self._last_from_customer(platform, out.to.address)
        if last_in is None:
            raise PermanentError("The customer has not written to the Page here, and Meta only allows answering "
                                 "a customer's message", "no_window")
        now = time.time()
        window = catalog.window_state(platform, last_in, now)
        params: dict[str, Any] = {"recipient": {"id": out.to.address}, "message": {"text": text}}
        if window.free_text:
            params["messaging_type"] = "RESPONSE"
        elif window.human_agent:
            if out.options.get("tag") != "HUMAN_AGENT":
                raise PermanentError(f"The customer last wrote {_ago(now - last_in)}, outside Meta's {window.hours}-hour "
                                     f"window; a HUMAN_AGENT reply is possible until "
                                     f"{_when(now + (window.human_agent_left or 0))}", "window")
            params.update(messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT")
        else:
            raise PermanentError(f"The customer last wrote {_ago(now - last_in)}; more than "
                                 f"{catalog.channel(platform).human_agent_days} days: Meta does not allow a reply",
                                 "window_closed")
        sent = await self.request("POST", f"{self.page_id}/messages", "sending a reply", json_body=params, sends=True)
        if not sent.get("message_id"):
            raise PermanentError("Meta accepted the message but did not say which message it became")
        return SendResult(external_id=str(sent["message_id"]), status="sent")

    async def reconcile(self, out: Outgoing) -> SendResult | None:
        """The Send API has no idempotency key: look for the reply among the newest messages."""
        platform = out.channel if out.channel in PLATFORMS else out.to.kind
        us = await self._us(platform)
        _, _, recent = await self._last_from_customer(platform, out.to.address)
        # Not the thread's ids: a copy of this very reply may already be stored by a pull (the store
        # merges it); only another reply's message is certainly not this one.
        known = out.taken_external_ids
        written = out.created_at or time.time()
        candidates = []
        for msg in recent:  # newest first
            if str((msg.get("from") or {}).get("id")) != us:
                break  # the customer wrote after it: anything of ours before is older
            at = _epoch(msg.get("created_time")) or 0.0
            if at < written - 120:
                break  # older than the reply itself (two minutes allowed for clock differences)
            if msg.get("message") == out.body and str(msg.get("id")) not in known:
                candidates.append(msg)
        candidates.reverse()
        found = closest_after(candidates, written, lambda m: _epoch(m.get("created_time")) or 0.0)
        if found is None:
            return None
        return SendResult(external_id=str(found["id"]), status="sent", sent_at=_epoch(found.get("created_time")))

    # ---- the rest -----------------------------------------------------------------------------
    async def check(self) -> str:
        self._page = None
        page = await self.page()
        text = f"Facebook Page {page.get('name') or self.page_id}"
        if "instagram" in self.channels:
            account = page.get("instagram_business_account")
            text += (f" and Instagram @{account.get('username')}" if isinstance(account, dict)
                     else "; no Instagram account is linked to it")
        return text

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
