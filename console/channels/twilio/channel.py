"""A Twilio account as a channel: pulling the Messages list, sending, watching and reconciling
(the package's docstring, console/channels/twilio/__init__.py, tells how). It is one class
because pulling, watching and reconciling share the cursor and the list pages they read.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import re
import threading
import time
from typing import Any, Callable, TypeVar
from urllib.parse import urlsplit

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from console.config import Secret
from console.channels import catalog
from console.model import (FINAL_DELIVERY_STATES, Address, Attachment, AuthError,
                           ChannelError, InboundMessage, InDoubtError, Outgoing, PermanentError, PullResult,
                           SendResult, StatusUpdate, TransientError)
from console.channels.reconcile import closest_after
from console.channels.twilio.http import (DEFAULT_API, DELIVERY_ERRORS, Ambiguous, ApiClient, delivery_detail,
                                          refused, status_of)

KIND = "twilio"
WHATSAPP = "whatsapp:"

POLL_PAGE = 20  # a poll that finds nothing new reads one page this small
SWEEP_PAGE = 100  # the first sync reads history in bigger pages
PAGES_PER_PULL = 5  # then hands a batch to the store (PullResult.more) before reading on
WATCH_HOURS = 72  # an outbound message not final after this long is no longer followed
WATCH_FETCHES = 10  # watched messages fetched one by one per pull, at most
RECENT_SECONDS = 600  # an outbound message this new may be a send of ours still being recorded
RECONCILE_HOURS = 24  # how far back a send in doubt is looked for when its start is unknown
CLOCK_SLACK = 120  # seconds of clock difference tolerated between us and Twilio

E164 = re.compile(r"^\+[1-9]\d{6,14}$")

# Twilio message statuses -> console delivery states (None: an inbound state, not ours to track).
_STATUS = {
    "accepted": "queued", "scheduled": "queued", "queued": "queued", "sending": "sending", "sent": "sent",
    "delivered": "delivered", "read": "read", "partially_delivered": "sent", "undelivered": "undelivered",
    "failed": "failed", "canceled": "failed", "receiving": None, "received": None,
}
_RANK = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "read": 4, "undelivered": 5, "failed": 5}

T = TypeVar("T")


def _epoch(value) -> int | None:
    return int(value.timestamp()) if value is not None else None


def _plain(address: str | None) -> str:
    return (address or "").removeprefix(WHATSAPP)


class TwilioChannel:
    """One Twilio account. See the module docstring for cursors, watching and reconciling."""

    kind = KIND

    def __init__(self, account: str, account_sid: str, username: str, secret: Secret | str, *,
                 numbers: tuple[str, ...] = (), messaging_service_sid: str | None = None,
                 templates: dict[str, str] | None = None, api_base_url: str = DEFAULT_API,
                 poll_interval: float = 10.0, timeout: float = 30.0, history_days: int = 30):
        self.account = account
        self.account_sid = account_sid
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.history_days = history_days
        self.numbers = numbers
        self.messaging_service_sid = messaging_service_sid
        self.templates = templates or {}
        self._ours = {_plain(n) for n in numbers}
        has_whatsapp = any(n.startswith(WHATSAPP) for n in numbers)
        has_sms = any(not n.startswith(WHATSAPP) for n in numbers)
        if not numbers:
            has_sms = has_whatsapp = True  # a Messaging Service may hold senders of either kind
        self.channels = tuple(c for c, on in (("sms", has_sms), ("whatsapp", has_whatsapp)) if on)
        self._username = username
        self._secret = secret
        self._password: str | None = secret if isinstance(secret, str) else None
        self._http = ApiClient(api_base_url, timeout)
        self._client: Client | None = None
        self._lock = threading.Lock()
        self._first_try: dict[str, float] = {}  # idempotency key -> when this process first POSTed it

    # ---- plumbing -----------------------------------------------------------------------------
    def _api(self):
        """The account's API object (resolving the secret on first use, in the worker thread)."""
        with self._lock:
            if self._client is None:
                if self._password is None:
                    assert isinstance(self._secret, Secret)
                    self._password = self._secret.get()
                self._client = Client(self._username, self._password, self.account_sid, http_client=self._http)
            return self._client.api.v2010.accounts(self.account_sid)

    def _scrub(self, text: str) -> str:
        if self._password:
            text = text.replace(self._password, "<auth_token>")
        return text

    async def _call(self, what: str, fn: Callable[[], T], posting: bool = False) -> T:
        return await asyncio.to_thread(self._guarded, what, fn, posting)

    def _guarded(self, what: str, fn: Callable[[], T], posting: bool = False) -> T:
        """Run `fn` and turn whatever goes wrong into one of the typed errors. `posting`: a lost
        answer raises Ambiguous instead, since the request may have been carried out."""
        try:
            return fn()
        except ChannelError:
            raise
        except TwilioRestException as exc:
            raise self._error(what, exc.status, exc.code, exc.msg) from None
        except TwilioException as exc:  # a page that could not be fetched carries the raw response
            response = exc.args[1] if len(exc.args) > 1 else None
            status = getattr(response, "status_code", 0) or 0
            code, message = status, str(exc.args[0]) if exc.args else ""
            try:
                payload = json.loads(getattr(response, "text", "") or "{}")
                code, message = payload.get("code", code), f"{what}: {payload.get('message', message)}"
            except (ValueError, AttributeError):
                pass
            raise self._error(what, status, code, message) from None
        except requests.RequestException as exc:
            if posting and isinstance(exc, (requests.ConnectionError, requests.Timeout)) \
                    and not isinstance(exc, requests.ConnectTimeout) and not refused(exc):
                raise Ambiguous(type(exc).__name__) from None
            raise TransientError(f"Twilio could not be reached while {what} ({type(exc).__name__}); "
                                 "will retry") from None

    def _retry_after(self) -> float | None:
        headers = getattr(self._http.local, "headers", None) or {}
        value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
        try:
            return max(0.0, float(value)) if value is not None else None
        except ValueError:
            return None

    def _error(self, what: str, status: int, code: int | None, message: str | None) -> ChannelError:
        said = self._scrub(str(message or "").partition(": ")[2] or str(message or "")).strip().rstrip(".")
        code = code if isinstance(code, int) else status
        if status == 401 or code == 20003:
            return AuthError(f"Twilio refused the credentials of account '{self.account}' ({said or 'HTTP 401'}); "
                             "check account_sid and auth_token (or api_key and api_secret) in the Twilio console")
        if status == 403:
            return AuthError(f"Twilio does not allow these credentials to {what} ({said}); check the API key's "
                             f"permissions for account '{self.account}'")
        if status == 429 or code == 20429:
            retry_after = self._retry_after()
            wait = f"; Twilio asks to wait {retry_after:.0f}s" if retry_after is not None else ""
            return TransientError(f"Twilio is rate limiting requests while {what}{wait}", retry_after)
        if status >= 500 or status == 0:
            return TransientError(f"Twilio had a problem while {what} ({status} {said}); will retry")
        if code == 21610:
            return PermanentError("The customer replied STOP to this number, so Twilio will not send them "
                                  "messages until they text START.", "21610", opted_out=True)
        if code == 21211:
            return PermanentError(f"Twilio says this is not a valid phone number ({said}); check the customer's "
                                  "number.", "21211")
        if code == 21614:
            return PermanentError("The number is not a mobile number and cannot receive texts.", "21614")
        if code == 21408:
            return PermanentError(f"This Twilio account may not send to that country ({said}); enable it under "
                                  "Messaging > Settings > Geo permissions.", "21408")
        if code in (21606, 21659, 21212, 63007):
            return PermanentError(f"Twilio will not send from this number ({said}); check `numbers` for account "
                                  f"'{self.account}'.", str(code))
        if code == 21617:
            return PermanentError("The message is longer than the 1,600 characters Twilio accepts; shorten it.",
                                  "21617")
        if code == 21655:
            return PermanentError(f"Twilio does not know this template ({said}); check the ContentSid under "
                                  f"[accounts.templates] for account '{self.account}'.", "21655")
        if code in DELIVERY_ERRORS:
            return PermanentError(delivery_detail(code, said), str(code))
        return PermanentError(f"Twilio refused {what}: {said or f'HTTP {status}'} (error {code})", str(code))

    # ---- reading messages ---------------------------------------------------------------------
    def _is_ours(self, m) -> bool:
        if self._ours and (_plain(m.to) in self._ours or _plain(m.from_) in self._ours):
            return True
        return bool(self.messaging_service_sid) and m.messaging_service_sid == self.messaging_service_sid

    def _media(self, sid: str) -> list[Attachment]:
        found = []
        for n, item in enumerate(self._api().messages(sid).media.list(), 1):
            content_type = item.content_type or "application/octet-stream"
            ext = mimetypes.guess_extension(content_type) or ""
            uri = item.uri or ""
            ref = DEFAULT_API + uri.removesuffix(".json") if uri.startswith("/") else ""
            found.append(Attachment(f"media-{n}{ext}", content_type, None, ref))
        return found

    def to_message(self, m) -> InboundMessage | None:
        """The InboundMessage of one Twilio message of ours (the media list is fetched for MMS)."""
        inbound = (m.direction or "") == "inbound"
        ours, peer = (m.to, m.from_) if inbound else (m.from_, m.to)
        channel = "whatsapp" if (peer or "").startswith(WHATSAPP) else "sms"
        customer = _plain(peer)
        if not customer:
            return None
        status = None if inbound else _STATUS.get(m.status or "", "unknown")
        detail = delivery_detail(m.error_code, m.error_message) if status in ("failed", "undelivered") else ""
        try:
            media_count = int(m.num_media or 0)
        except ValueError:
            media_count = 0
        attachments = self._media(m.sid) if media_count else []
        return InboundMessage(
            external_id=m.sid,
            thread_key=f"{channel}:{_plain(ours)}:{customer}",
            channel=channel,
            direction="in" if inbound else "out",
            peer=Address("phone", customer),
            sent_at=float(_epoch(m.date_sent) or _epoch(m.date_created) or time.time()),
            body=m.body or "",
            attachments=attachments,
            status=status,
            status_detail=detail,
        )

    async def pull(self, cursor: str | None) -> PullResult:
        return await self._call("reading messages", lambda: self._pull(_load(cursor), time.time()))

    def _pull(self, state: dict[str, Any], now: float) -> PullResult:
        """One pull, in the worker thread: pages from the newest to the high-water mark (or a batch)."""
        if state["hw"] is None and state["since"] is None:
            state["since"] = int(now - self.history_days * 86400)
        floor = state["hw"] if state["hw"] is not None else state["since"]
        seen = set(state["seen"])
        sweep = state["sweep"]
        watch: dict[str, list] = state["watch"]
        result = PullResult()
        new: list[InboundMessage] = []
        on_page: set[str] = set()
        reached = False
        page = None
        for _ in range(PAGES_PER_PULL):
            if sweep is not None:
                try:
                    page = self._api().messages.get_page(sweep["next"])
                except TwilioException as exc:
                    if status_of(exc) not in (400, 404):
                        raise
                    # The saved page link went stale: read again from the newest (the store
                    # de-duplicates what was already read).
                    sweep = None
            if sweep is None:
                size = POLL_PAGE if state["hw"] is not None else SWEEP_PAGE
                page = self._api().messages.page(page_size=size)
                sweep = {"next": None, "top": None, "top_sids": []}
            for m in page:
                created = _epoch(m.date_created) or 0
                on_page.add(m.sid)
                if sweep["top"] is None or created > sweep["top"]:
                    sweep["top"], sweep["top_sids"] = created, []
                if created == sweep["top"]:
                    sweep["top_sids"].append(m.sid)
                if created < floor:
                    reached = True
                is_new = not reached and not (created == state["hw"] and m.sid in seen)
                if not self._is_ours(m):
                    continue
                if is_new:
                    msg = self.to_message(m)
                    if msg is None:
                        continue
                    new.append(msg)
                    if msg.direction == "out" and created >= now - RECENT_SECONDS:
                        # Possibly our own send, whose answer the store may record after this pull
                        # (overwriting the status): report the status once more next time.
                        watch[m.sid] = ["", created]
                    elif msg.direction == "out" and msg.status not in FINAL_DELIVERY_STATES:
                        watch[m.sid] = [msg.status, created]
                elif m.sid in watch:
                    self._follow(m.sid, m, watch, result)
            if reached or not page.next_page_url:
                break
            sweep["next"] = page.next_page_url
        if reached or not page.next_page_url:
            top = sweep["top"]
            if top is None or top < floor:
                top = floor
            if top == state["hw"]:
                state["seen"] = sorted(seen | set(sweep["top_sids"]))
            else:
                state["seen"] = sorted(set(sweep["top_sids"])) if top == sweep["top"] else []
            state["hw"] = top
            state["sweep"] = None
            self._follow_rest(watch, on_page, result, now)
        else:
            state["sweep"] = sweep
            result.more = True
        new.reverse()  # oldest first, as they happened
        result.messages = new
        result.cursor = json.dumps(state, separators=(",", ":"))
        return result

    def _follow(self, sid: str, m, watch: dict[str, list], result: PullResult) -> None:
        """A watched outbound message `sid` seen again: report a status that moved forward. An
        answer about another message says nothing about this one (a peer can mix answers up)."""
        if m.sid != sid:
            return
        status = _STATUS.get(m.status or "") or "unknown"
        before = watch[sid][0]
        if _RANK.get(status, -1) > _RANK.get(before, -1):
            detail = delivery_detail(m.error_code, m.error_message) if status in ("failed", "undelivered") else ""
            result.status_updates.append(StatusUpdate(sid, status, detail))
            watch[sid][0] = status
        if status in FINAL_DELIVERY_STATES:
            del watch[sid]

    def _follow_rest(self, watch: dict[str, list], on_page: set[str], result: PullResult, now: float) -> None:
        """Watched messages the pages did not show: drop the stale ones, fetch a few of the rest."""
        for sid in [s for s, (_, created) in watch.items() if created < now - WATCH_HOURS * 3600]:
            del watch[sid]
        rest = sorted((s for s in watch if s not in on_page), key=lambda s: watch[s][1])[:WATCH_FETCHES]
        for sid in rest:
            try:
                m = self._api().messages(sid).fetch()
            except TwilioRestException as exc:
                if exc.status == 404:  # deleted on Twilio's side
                    del watch[sid]
                    continue
                raise
            self._follow(sid, m, watch, result)

    async def fetch_attachment(self, external_id: str, ref: str) -> bytes:
        """The bytes of an MMS or WhatsApp media item (`ref` is its Twilio media URL)."""
        target = urlsplit(ref)
        if (target.scheme, target.netloc) != ("https", "api.twilio.com") or not target.path.startswith("/2010-04-01/"):
            raise PermanentError("This attachment does not point at Twilio's API, so console will not send the "
                                 "account's credentials there", "media_ref")

        def download() -> bytes:
            self._api()
            response = self._http.session.get(self._http.rewrite(ref), auth=(self._username, self._password),
                                              timeout=self.timeout, allow_redirects=True)
            if response.status_code == 200:
                return response.content
            if response.status_code == 401:
                raise self._error("downloading media", 401, 20003, "")
            if response.status_code >= 500 or response.status_code == 429:
                raise TransientError(f"Twilio could not hand over the media now (HTTP {response.status_code}); "
                                     "try again")
            raise PermanentError(f"Twilio no longer has this media (HTTP {response.status_code}); it may have "
                                 "been deleted")

        return await self._call("downloading media", download)

    # ---- sending ------------------------------------------------------------------------------
    def _sender(self, out: Outgoing) -> dict[str, str]:
        """From (the number the customer wrote to) or the Messaging Service, for this send."""
        prefix = WHATSAPP if out.channel == "whatsapp" else ""
        channel, _, rest = out.thread_key.partition(":")
        number = rest.partition(":")[0] if channel == out.channel else ""
        if number and number in self._ours and (prefix + number) in self.numbers:
            return {"from_": prefix + number}
        fallback = next((n for n in self.numbers if n.startswith(WHATSAPP) == bool(prefix)), None)
        if self.messaging_service_sid and not fallback:
            return {"messaging_service_sid": self.messaging_service_sid}
        if fallback:
            return {"from_": fallback}
        raise PermanentError(f"Account '{self.account}' has no {'WhatsApp' if prefix else 'SMS'} number to send "
                             "from; add one to `numbers`.", "no_sender")

    def _params(self, out: Outgoing) -> dict[str, Any]:
        if out.channel not in ("sms", "whatsapp"):
            raise PermanentError(f"A Twilio account cannot send {out.channel} messages", "channel")
        if out.to.kind != "phone":
            raise PermanentError(f"Cannot send {out.channel} to a {out.to.kind} address", "address")
        if not E164.match(out.to.address):
            raise PermanentError(f"{out.to.address!r} is not a phone number in international format "
                                 "(+ and country code); correct the customer's number.", "21211")
        prefix = WHATSAPP if out.channel == "whatsapp" else ""
        params: dict[str, Any] = {"to": prefix + out.to.address, **self._sender(out)}
        template = out.options.get("template")
        if template:
            if out.channel != "whatsapp":
                raise PermanentError("Templates are for WhatsApp; send SMS as plain text", "template")
            content_sid = self.templates.get(template)
            if content_sid is None:
                known = ", ".join(sorted(self.templates)) or "none configured"
                raise PermanentError(f"No WhatsApp template named {template!r} for account '{self.account}' "
                                     f"(known: {known}); add it under [accounts.templates]", "template")
            params["content_sid"] = content_sid
            variables = out.options.get("variables") or "{}"
            try:
                parsed = json.loads(variables)
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                raise PermanentError("The template variables are not a JSON object such as {\"1\": \"Maria\"}",
                                     "template")
            params["content_variables"] = json.dumps({str(k): str(v) for k, v in parsed.items()})
            return params
        if not out.body.strip():
            raise PermanentError("Twilio cannot send an empty message", "empty")
        catalog.enforce_length(out.channel, out.body)
        params["body"] = out.body
        return params

    def _result(self, m, thread_channel: str) -> SendResult:
        status = _STATUS.get(m.status or "") or "sent"
        detail = delivery_detail(m.error_code, m.error_message) if status in ("failed", "undelivered") else ""
        return SendResult(external_id=m.sid, status=status, detail=detail,
                          thread_key=f"{thread_channel}:{_plain(m.from_)}:{_plain(m.to)}" if m.from_ else "",
                          sent_at=float(_epoch(m.date_created) or time.time()))

    def _window_open(self, params: dict[str, Any]) -> bool:
        """Whether the customer wrote to this WhatsApp sender within the reply window."""
        query: dict[str, Any] = {"from_": params["to"], "page_size": 1}
        if params.get("from_"):
            query["to"] = params["from_"]
        newest = next(iter(self._api().messages.page(**query)), None)
        return newest is not None and catalog.window_state("whatsapp", _epoch(newest.date_created)).free_text

    async def send(self, out: Outgoing) -> SendResult:
        params = self._params(out)
        if out.channel == "whatsapp" and "body" in params:
            if not await self._call("checking the WhatsApp reply window", lambda: self._window_open(params)):
                raise PermanentError(DELIVERY_ERRORS[63016], "63016")
        self._first_try.setdefault(out.idempotency_key or str(out.outbox_id), time.time())
        try:
            created = await self._call("sending a message", lambda: self._api().messages.create(**params),
                                       posting=True)
        except Ambiguous as exc:
            return await self._after_lost_answer(out, str(exc))
        return self._result(created, out.channel)

    async def _after_lost_answer(self, out: Outgoing, why: str) -> SendResult:
        """The POST may have created the message: look before anything is sent again."""
        absent = 0
        for wait in (0.2, 1.0, 2.0, 3.0):
            await asyncio.sleep(wait)
            try:
                found = await self.reconcile(out)
            except ChannelError:
                absent = 0
                continue
            if found is not None:
                return found
            absent += 1
            if absent == 2:  # twice, a moment apart: not a list that had not caught up yet
                raise TransientError(f"The connection to Twilio dropped while sending ({why}) and Twilio has "
                                     "no such message; will send again")
        raise InDoubtError(f"The connection to Twilio dropped while sending ({why}) and Twilio could not be "
                           "asked yet whether the message left; console keeps checking and never sends it twice.")

    async def reconcile(self, out: Outgoing) -> SendResult | None:
        params = self._params(out)
        started = (getattr(out, "created_at", 0.0) or self._first_try.get(out.idempotency_key or str(out.outbox_id))
                   or time.time() - RECONCILE_HOURS * 3600)
        since = int(started) - CLOCK_SLACK
        template = "content_sid" in params

        def look():
            candidates = []
            page = self._api().messages.page(to=params["to"], page_size=50)
            while page is not None:
                oldest = None
                for m in page:
                    created = _epoch(m.date_created) or 0
                    oldest = created
                    if created < since or (m.direction or "") == "inbound" or m.sid in out.taken_external_ids:
                        continue  # (an identical reply already recorded is another reply's message)
                    if not self._is_ours(m) and not params.get("messaging_service_sid"):
                        continue
                    if template or (m.body or "") == params["body"]:
                        candidates.append(m)
                if oldest is None or oldest < since:
                    break
                page = page.next_page()
            candidates.reverse()  # the list is newest first
            return closest_after(candidates, started, lambda m: _epoch(m.date_created) or 0)

        found = await self._call("checking whether a message was sent", look)
        return self._result(found, out.channel) if found is not None else None

    # ---- the rest -----------------------------------------------------------------------------
    async def check(self) -> str:
        info = await self._call("reading the account", lambda: self._api().fetch())
        if (info.status or "active") != "active":
            raise AuthError(f"The Twilio account '{info.friendly_name}' is {info.status}; reactivate it in the "
                            "Twilio console")
        senders = ", ".join(self.numbers) or f"Messaging Service {self.messaging_service_sid}"
        return f"Twilio account {info.friendly_name} ({info.type or 'account'}), sending from {senders}"

    async def close(self) -> None:
        session = self._http.session
        if session is not None:
            await asyncio.to_thread(session.close)


def _load(cursor: str | None) -> dict[str, Any]:
    state: dict[str, Any] = {"v": 1, "hw": None, "seen": [], "since": None, "sweep": None, "watch": {}}
    if not cursor:
        return state
    try:
        raw = json.loads(cursor)
        state["hw"] = int(raw["hw"]) if raw.get("hw") is not None else None
        state["since"] = int(raw["since"]) if raw.get("since") is not None else None
        state["seen"] = [str(s) for s in raw.get("seen", [])]
        sweep = raw.get("sweep")
        if isinstance(sweep, dict) and sweep.get("next"):
            state["sweep"] = {"next": str(sweep["next"]), "top": sweep.get("top"),
                              "top_sids": [str(s) for s in sweep.get("top_sids", [])]}
        state["watch"] = {str(k): [str(v[0]), int(v[1])] for k, v in (raw.get("watch") or {}).items()}
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        return {"v": 1, "hw": None, "seen": [], "since": None, "sweep": None, "watch": {}}
    return state
