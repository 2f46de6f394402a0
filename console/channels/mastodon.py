"""A Mastodon account: customers write to the business by direct message ("mentioned people
only" visibility), and replies go out as direct statuses.

Inbound comes from polling `GET /api/v1/conversations`, which Mastodon orders and pages by each
conversation's *last status id* (`min_id`/`max_id`, the keys of its Link header). The cursor is
the newest last-status id seen: a pull asks for `min_id=<cursor>` (`0` on the first sync), gets the
oldest 40 conversations that moved since, and hands them to the store with the new cursor in one
PullResult; a full page sets `more`, so a long first sync goes in batches, oldest first. A
conversation only shows its last status, so when that status answers one newer than the cursor,
the earlier statuses come from `GET /api/v1/statuses/:id/context` (its ancestors). Only
`visibility = direct` statuses between the business and exactly one other account are customer
messages; group DMs and public replies are not. The store de-duplicates by status id, so a
repeated pull is harmless.

A customer is their account id on the business's instance (stable across renames), shown as
`@acct`; the thread key is that id too, so one person is one chat. Statuses written by the
business itself (from here or another app) are direction "out". Content is HTML, turned into text
with `html_to_text`; the mention links that address the DM are reduced to their text and the
leading `@business` / `@customer` addressing is dropped from the body (the HTML is kept).

A reply is `@acct <body>` as a direct status, `in_reply_to_id` the thread's newest status, with
`Idempotency-Key` = the outbox key: Mastodon remembers the key for an hour, so a retry after a lost
answer returns the status already posted instead of posting twice. `reconcile()` looks for our
reply among the replies to that newest status.

Known limits: a status federated late from another server gets an id from its *creation* time,
so if it arrives after a newer conversation moved the cursor past it, it is not seen (Mastodon's
own conversation list has the same order). Lengths are counted by the catalog's Mastodon entry, in
code points, which can only over-count Mastodon's grapheme clusters.

The access token travels in the Authorization header only; it never appears in an error message
or a log line.
"""

from __future__ import annotations

import mimetypes
import re
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from console.channels import catalog
from console.channels.httpbase import TokenHttp
from console.channels.reconcile import closest_after
from console.config import AccountConfig, Secret, WorkspaceConfig
from console.htmltext import html_to_text
from console.model import (Address, Attachment, AuthError, ChannelError, InboundMessage, Outgoing,
                           PermanentError, PullResult, SendResult, TransientError)

KIND = "mastodon"
PAGE = 40  # /api/v1/conversations accepts a limit of at most 40

_MENTION_LINK = re.compile(r"<a\b[^>]*\bclass=\"[^\"]*\bmention\b[^\"]*\"[^>]*>(.*?)</a>", re.S | re.I)
_LEADING_MENTION = re.compile(r"^\s*@([A-Za-z0-9_]+)(?:@[A-Za-z0-9.-]+)?[\s,:]*")
_ACCT = re.compile(r"^@?([A-Za-z0-9_]+(?:@[A-Za-z0-9.-]+)?)$")


def configure(account: AccountConfig, workspace: WorkspaceConfig) -> "MastodonChannel":
    url = (account.str("instance_url", required=True) or "").rstrip("/")
    if not url.startswith(("https://", "http://")) or not urlsplit(url).netloc:
        raise account.error("instance_url", "expected the address of the Mastodon server, such as https://mastodon.social")
    return MastodonChannel(
        account.name,
        account.secret("access_token"),
        instance_url=url,
        poll_interval=account.float("poll_interval", 30.0),
        timeout=account.float("timeout", 30.0, minimum=1.0),
        # Mastodon's default is the catalog's; instances may allow more.
        max_characters=account.int("max_characters", catalog.channel(KIND).length.limit, minimum=1,
                                   maximum=1_000_000),
    )


def _id_key(status_id: str) -> tuple[int, str]:
    """Mastodon ids are numeric strings of growing length: compare by length, then text."""
    return len(status_id), status_id


def _newer(status_id: str, than: str | None) -> bool:
    return than is None or _id_key(status_id) > _id_key(than)


def _epoch(value: Any) -> float:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return time.time()


def _unaddressed(text: str) -> str:
    """A reply's text without the one @-mention `send()` puts first, whitespace folded: what the
    agent wrote (which may itself start with a mention)."""
    match = _LEADING_MENTION.match(text)
    return " ".join((text[match.end():] if match else text).split())


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds until Mastodon lifts a rate limit: X-RateLimit-Reset is an ISO 8601 time (some
    servers send epoch seconds), Retry-After a number of seconds."""
    reset = response.headers.get("X-RateLimit-Reset", "").strip()
    if reset:
        try:
            at = float(reset) if reset.replace(".", "", 1).isdigit() else \
                datetime.fromisoformat(reset.replace("Z", "+00:00")).timestamp()
            return max(1.0, at - time.time())
        except ValueError:
            pass
    after = response.headers.get("Retry-After", "").strip()
    if after.replace(".", "", 1).isdigit():
        return max(1.0, float(after))
    return None


class MastodonChannel(TokenHttp):
    """One Mastodon account, polled through its conversations. See the module docstring."""

    kind = KIND
    channels = ("mastodon",)

    def __init__(self, account: str, token: Secret | str, *, instance_url: str, poll_interval: float = 30.0,
                 timeout: float = 30.0, max_characters: int | None = None):
        self.account = account
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.max_characters = max_characters or catalog.channel(KIND).length.limit
        self._secret = token
        self._token: str | None = token if isinstance(token, str) else None
        self._base = instance_url.rstrip("/")
        self._host = urlsplit(self._base).netloc
        self._client: httpx.AsyncClient | None = None
        self._me: dict[str, Any] | None = None

    # ---- plumbing -----------------------------------------------------------------------------
    def scrub(self, text: str) -> str:
        return text.replace(self._token, "<access_token>") if self._token else text

    async def request(self, method: str, path: str, what: str, *, params: dict[str, Any] | None = None,
                      json: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Any:
        """One API call; returns the decoded JSON body or raises a typed error."""
        token = await self._token_value()
        try:
            response = await self._http().request(
                method, self._base + path, params=params, json=json,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json", **(headers or {})})
        except httpx.HTTPError as exc:
            detail = self.scrub(str(exc))
            reason = type(exc).__name__ + (f": {detail}" if detail else "")
            raise TransientError(f"Mastodon ({self._host}) could not be reached while {what} ({reason}); "
                                 "will retry") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code < 300 and body is not None:
            return body
        raise self._error(what, response, body)

    def _error(self, what: str, response: httpx.Response, body: Any) -> ChannelError:
        status = response.status_code
        said = body.get("error") if isinstance(body, dict) else None
        said = self.scrub(str(said)) if said else f"HTTP {status}"
        if status == 401:
            return AuthError(f"Mastodon ({self._host}) refused the access token ({said}); check access_token for "
                             f"account '{self.account}' (create a new one under Preferences > Development, with the "
                             "read and write scopes)")
        if status == 403:
            return AuthError(f"Mastodon ({self._host}) does not allow this account to do that while {what} "
                             f"({said}); check that the access token has the read and write scopes and that the "
                             "account is not suspended")
        if status == 429:
            retry_after = _retry_after(response)
            wait = f"; Mastodon asks to wait {retry_after:.0f}s" if retry_after is not None else ""
            return TransientError(f"Mastodon ({self._host}) is rate limiting this account while {what}{wait}",
                                  retry_after)
        if status >= 500 or body is None:
            return TransientError(f"Mastodon ({self._host}) had a problem while {what} ({said}); will retry")
        if status == 404:
            return PermanentError(f"Mastodon no longer has what was asked for while {what} ({said}); "
                                  "it may have been deleted", str(status))
        return PermanentError(f"Mastodon refused this while {what}: {said}", str(status))

    async def me(self) -> dict[str, Any]:
        """The business's own account (verify_credentials), asked once per run."""
        if self._me is None:
            found = await self.request("GET", "/api/v1/accounts/verify_credentials", "checking the access token")
            if not isinstance(found, dict) or "id" not in found:
                raise TransientError("Mastodon answered verify_credentials without an account; will retry")
            self._me = found
        return self._me

    # ---- pulling ------------------------------------------------------------------------------
    async def pull(self, cursor: str | None) -> PullResult:
        me = await self.me()
        page = await self.request("GET", "/api/v1/conversations", "reading conversations",
                                  params={"limit": PAGE, "min_id": cursor or "0"})
        if not isinstance(page, list):
            raise TransientError("Mastodon answered /api/v1/conversations without a list; will retry")
        newest = cursor
        messages: list[InboundMessage] = []
        for conversation in page:
            last = conversation.get("last_status") if isinstance(conversation, dict) else None
            if not isinstance(last, dict) or "id" not in last:
                continue
            last_id = str(last["id"])
            if _newer(last_id, newest):
                newest = last_id
            others = [a for a in conversation.get("accounts") or [] if str(a.get("id")) != str(me["id"])]
            if len(others) != 1:
                continue  # a group DM (or a note to self) is not one customer's conversation
            peer = others[0]
            statuses = [last]
            replied = last.get("in_reply_to_id")
            if replied and _newer(str(replied), cursor):
                statuses = await self._ancestors(last_id) + statuses
            for status in statuses:
                if _newer(str(status.get("id", "")), cursor):
                    msg = self.to_message(status, peer, me)
                    if msg is not None:
                        messages.append(msg)
        if newest == cursor:
            return PullResult()
        return PullResult(messages, cursor=newest, more=len(page) >= PAGE)

    async def _ancestors(self, status_id: str) -> list[dict[str, Any]]:
        try:
            context = await self.request("GET", f"/api/v1/statuses/{status_id}/context", "reading a conversation")
        except PermanentError:
            return []  # deleted meanwhile: the last status alone is what is left
        ancestors = context.get("ancestors") if isinstance(context, dict) else None
        return [s for s in ancestors or [] if isinstance(s, dict)]

    def to_message(self, status: dict[str, Any], peer: dict[str, Any], me: dict[str, Any]) -> InboundMessage | None:
        """The InboundMessage a direct status between us and `peer` is, else None."""
        author = status.get("account") or {}
        if status.get("visibility") != "direct" or "id" not in status:
            return None
        author_id, peer_id = str(author.get("id")), str(peer.get("id"))
        if author_id == str(me.get("id")):
            direction = "out"
        elif author_id == peer_id:
            direction = "in"
        else:
            return None  # someone else joined the thread
        html = status.get("content") or ""
        names = {str(me.get("username", "")).lower(), str(peer.get("username", "")).lower()} - {""}
        body = self.text(html, names)
        attachments = [self._attachment(media) for media in status.get("media_attachments") or []
                       if isinstance(media, dict) and media.get("url")]
        if not body and not attachments:
            body = "(an empty message)"
        return InboundMessage(
            external_id=str(status["id"]),
            thread_key=peer_id,
            channel="mastodon",
            direction=direction,
            peer=Address(KIND, peer_id, "@" + str(peer.get("acct") or peer.get("username") or peer_id)),
            sent_at=_epoch(status.get("created_at")),
            body=body,
            subject=status.get("spoiler_text") or "",
            html=html or None,
            attachments=attachments,
            status="sent" if direction == "out" else None,
            edited=bool(status.get("edited_at")),
        )

    @staticmethod
    def text(html: str, addressed: set[str]) -> str:
        """Plain text of a status: mention links reduced to their text, the leading mentions of
        the two people in the DM (its addressing) removed."""
        text = html_to_text(_MENTION_LINK.sub(r"\1", html))
        while True:
            match = _LEADING_MENTION.match(text)
            if not match or match.group(1).lower() not in addressed:
                return text.strip()
            text = text[match.end():]

    @staticmethod
    def _attachment(media: dict[str, Any]) -> Attachment:
        url = str(media["url"])
        name = url.rsplit("/", 1)[-1].split("?", 1)[0] or str(media.get("type") or "file")
        guessed = mimetypes.guess_type(name)[0]
        kind = {"image": "image/*", "gifv": "video/mp4", "video": "video/*", "audio": "audio/*"}.get(
            str(media.get("type")), "application/octet-stream")
        return Attachment(name, guessed or kind, None, url)

    # ---- sending ------------------------------------------------------------------------------
    async def _acct(self, to: Address) -> str:
        """The @-name to address a DM to: from the stored display name, else asked from Mastodon."""
        match = _ACCT.match(to.display_name or "")
        if match:
            return match.group(1)
        account = await self.request("GET", f"/api/v1/accounts/{to.address}", "looking up the customer's account")
        if not isinstance(account, dict) or not account.get("acct"):
            raise PermanentError("Mastodon does not know this customer's account any more")
        return str(account["acct"])

    async def send(self, out: Outgoing) -> SendResult:
        if not out.body.strip():
            raise PermanentError("Mastodon cannot send an empty message", "empty")
        acct = await self._acct(out.to)
        catalog.enforce_length(KIND, out.body, catalog.LengthSettings(self.max_characters, acct))
        text = f"@{acct} {out.body}"
        params: dict[str, Any] = {"status": text, "visibility": "direct"}
        if out.thread_external_ids:
            params["in_reply_to_id"] = out.thread_external_ids[-1]
        headers = {"Idempotency-Key": out.idempotency_key} if out.idempotency_key else {}
        sent = await self.request("POST", "/api/v1/statuses", "sending a reply", json=params, headers=headers)
        if not isinstance(sent, dict) or "id" not in sent:
            raise PermanentError("Mastodon accepted the message but did not say which status it became")
        return SendResult(external_id=str(sent["id"]), status="sent", sent_at=_epoch(sent.get("created_at")))

    async def reconcile(self, out: Outgoing) -> SendResult | None:
        """Our reply, if it exists, answers the thread's newest status: look among its replies."""
        if not out.thread_external_ids:
            raise NotImplementedError  # a first message has nothing to look under
        me = await self.me()
        parent = out.thread_external_ids[-1]
        context = await self.request("GET", f"/api/v1/statuses/{parent}/context", "checking an interrupted send")
        wanted = " ".join(out.body.split())
        candidates = [  # descendants come oldest first
            status for status in ((context.get("descendants") or []) if isinstance(context, dict) else [])
            if isinstance(status, dict)
            and str((status.get("account") or {}).get("id")) == str(me["id"])
            and str(status.get("in_reply_to_id")) == parent
            and str(status.get("id")) not in out.taken_external_ids
            and _unaddressed(html_to_text(status.get("content") or "")) == wanted]
        found = closest_after(candidates, out.created_at or time.time(), lambda s: _epoch(s.get("created_at")))
        if found is None:
            return None
        return SendResult(external_id=str(found["id"]), status="sent", sent_at=_epoch(found.get("created_at")))

    # ---- the rest -----------------------------------------------------------------------------
    async def check(self) -> str:
        self._me = None
        me = await self.me()
        return f"Mastodon @{me.get('acct') or me.get('username')} on {self._host}"

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
