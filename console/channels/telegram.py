"""A Telegram bot account: customers write to the bot (or to a Telegram Business account the bot
is connected to), and replies go out as the bot.

Inbound comes from `getUpdates` long polling. An update is confirmed on Telegram's side only by
the *next* call's `offset`, so the cursor is "last update_id + 1" and travels in the same
PullResult as the messages: the store commits both at once, and a crash in between makes the
next pull fetch the same updates again (de-duplicated by external id) — nothing is lost.

External ids are `"<chat_id>:<message_id>"` (with `"@<business_connection_id>"` appended for
messages of a connected business account, whose message ids live in another numbering), so an
edit lands on the message it edits. Business threads carry the connection id in their thread key
and replies in them are sent on behalf of the business account.

The bot token is part of every URL path; it never appears in an error message or a log line.
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

from console.channels import catalog
from console.channels.httpbase import TokenHttp, scrub_httpx_logs
from console.config import AccountConfig, Secret, WorkspaceConfig
from console.model import (Address, Attachment, AuthError, ChannelError, InboundMessage, Outgoing,
                           PermanentError, PullResult, SendResult, TransientError)

KIND = "telegram"
DEFAULT_API = "https://api.telegram.org"
MAX_UPDATES = 100  # getUpdates accepts a limit of 1-100
ALLOWED_UPDATES = ["message", "edited_message", "business_message", "edited_business_message"]

_TOKEN_IN_TEXT = re.compile(r"bot\d+:[A-Za-z0-9_-]+")


def scrub(text: str, token: str = "") -> str:
    """`text` with any bot token (as in `/bot123:ABC/getMe`) replaced by a placeholder."""
    if token:
        text = text.replace(token, "<bot_token>")
    return _TOKEN_IN_TEXT.sub("bot<bot_token>", text)


scrub_httpx_logs(scrub)


class WebhookActiveError(ChannelError):
    """A webhook is set on the bot, so Telegram refuses getUpdates until it is removed."""


def configure(account: AccountConfig, workspace: WorkspaceConfig) -> "TelegramChannel":
    base = (account.str("api_base_url", DEFAULT_API) or DEFAULT_API).rstrip("/")
    if not base.startswith(("https://", "http://")):
        raise account.error("api_base_url", f"expected an http(s) URL such as {DEFAULT_API}")
    return TelegramChannel(
        account.name,
        account.secret("bot_token"),
        api_base_url=base,
        poll_timeout=account.int("poll_timeout", 25, minimum=0, maximum=600),
        poll_interval=account.float("poll_interval", 1.0),
        timeout=account.float("timeout", 30.0, minimum=1.0),
    )


def _person(user: dict[str, Any]) -> str:
    """How a Telegram user or private chat is shown: @username, else the name they gave."""
    if user.get("username"):
        return "@" + user["username"]
    return " ".join(p for p in (user.get("first_name", ""), user.get("last_name", "")) if p)


# Media kinds that carry one file, with the name to give it when the sender gave none.
_FILE_KINDS = {
    "document": ("document", "application/octet-stream"),
    "audio": ("audio", "audio/mpeg"),
    "video": ("video.mp4", "video/mp4"),
    "voice": ("voice.ogg", "audio/ogg"),
    "video_note": ("video_note.mp4", "video/mp4"),
    "animation": ("animation.mp4", "video/mp4"),
    "sticker": ("sticker.webp", "image/webp"),
}


class TelegramChannel(TokenHttp):
    """One bot, polled with getUpdates. See the module docstring for ids and cursors."""

    kind = KIND
    channels = ("telegram",)

    def __init__(self, account: str, token: Secret | str, *, api_base_url: str = DEFAULT_API,
                 poll_timeout: int = 25, poll_interval: float = 1.0, timeout: float = 30.0):
        self.account = account
        self.poll_interval = poll_interval
        self.poll_timeout = poll_timeout
        self.timeout = timeout
        self._secret = token
        self._token: str | None = token if isinstance(token, str) else None
        self._base = api_base_url.rstrip("/")
        self._client: httpx.AsyncClient | None = None

    # ---- plumbing -----------------------------------------------------------------------------
    def _transport_error(self, exc: Exception, what: str) -> TransientError:
        detail = scrub(str(exc), self._token or "")
        reason = type(exc).__name__ + (f": {detail}" if detail else "")
        return TransientError(f"Telegram could not be reached while {what} ({reason}); will retry")

    async def call(self, method: str, params: dict[str, Any] | None = None, *,
                   read_timeout: float | None = None) -> Any:
        """Call one Bot API method and return its `result`, or raise a typed error."""
        token = await self._token_value()
        url = f"{self._base}/bot{token}/{method}"
        timeout = httpx.Timeout(self.timeout, read=read_timeout or self.timeout)
        try:
            response = await self._http().post(url, json=params or {}, timeout=timeout)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, f"calling {method}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            if response.status_code >= 500 or response.status_code == 429:
                raise TransientError(f"Telegram answered {method} with HTTP {response.status_code}; will retry")
            if response.status_code in (401, 404):
                raise self._auth_error(response.status_code, "")
            raise TransientError(f"Telegram answered {method} with something that is not the Bot API "
                                 f"(HTTP {response.status_code}); check api_base_url")
        if body.get("ok") is True and response.status_code == 200:
            return body.get("result")
        raise self._error(method, response.status_code, body)

    def _auth_error(self, code: int, description: str) -> AuthError:
        why = "refused the bot token" if code == 401 else "does not know this bot token"
        return AuthError(f"Telegram {why} ({code} {scrub(description, self._token or '') or 'Unauthorized'}); "
                         f"check bot_token for account '{self.account}' (ask @BotFather for the current token)")

    def _error(self, method: str, status: int, body: dict[str, Any]) -> ChannelError:
        code = body.get("error_code") if isinstance(body.get("error_code"), int) else status
        description = scrub(str(body.get("description") or f"HTTP {status}"), self._token or "")
        parameters = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
        if code in (401, 404):
            return self._auth_error(code, description)
        if code == 429:
            retry = parameters.get("retry_after")
            retry_after = float(retry) if isinstance(retry, (int, float)) else None
            wait = f"; Telegram asks to wait {retry_after:.0f}s" if retry_after is not None else ""
            return TransientError(f"Telegram is rate limiting {method} ({description}){wait}", retry_after)
        if code == 409 and method == "getUpdates":
            if "webhook" in description.lower():
                return WebhookActiveError(
                    f"A webhook is set on this bot, so Telegram will not hand updates to console ({description}). "
                    f"Remove it by calling deleteWebhook: open https://api.telegram.org/bot<token>/deleteWebhook "
                    f"(or run `curl https://api.telegram.org/bot$TOKEN/deleteWebhook`); console keeps retrying.")
            return TransientError(f"Another program is polling this bot at the same time ({description}); "
                                  "make sure only one console sync (or other bot) uses this token", 30.0)
        if code >= 500:
            return TransientError(f"Telegram had a problem with {method} ({code} {description}); will retry")
        if "migrate_to_chat_id" in parameters:
            return PermanentError(f"This group became a supergroup with id {parameters['migrate_to_chat_id']} "
                                  f"({description})", str(code))
        if code == 403:
            return PermanentError(f"Telegram will not deliver it: {description} (the customer blocked the bot "
                                  "or never started a chat with it)", str(code))
        return PermanentError(f"Telegram refused {method}: {description}", str(code))

    # ---- pulling ------------------------------------------------------------------------------
    async def pull(self, cursor: str | None) -> PullResult:
        params: dict[str, Any] = {"limit": MAX_UPDATES, "timeout": self.poll_timeout,
                                  "allowed_updates": ALLOWED_UPDATES}
        if cursor:
            params["offset"] = int(cursor)
        updates = await self.call("getUpdates", params, read_timeout=self.poll_timeout + self.timeout)
        if not isinstance(updates, list):
            raise TransientError("Telegram answered getUpdates without a list of updates; will retry")
        messages = []
        last = None
        for update in updates:
            update_id = update.get("update_id")
            if isinstance(update_id, int):
                last = update_id if last is None else max(last, update_id)
            msg = self.to_message(update)
            if msg is not None:
                messages.append(msg)
        if last is None:
            return PullResult()
        return PullResult(messages, cursor=str(last + 1), more=len(updates) >= MAX_UPDATES)

    def to_message(self, update: dict[str, Any]) -> InboundMessage | None:
        """The InboundMessage an update carries, or None for updates console does not show."""
        for key, edited, business in (("message", False, False), ("edited_message", True, False),
                                      ("business_message", False, True), ("edited_business_message", True, True)):
            if isinstance(update.get(key), dict):
                return self._message(update[key], edited, business)
        return None

    def _message(self, msg: dict[str, Any], edited: bool, business: bool) -> InboundMessage | None:
        chat = msg.get("chat") or {}
        sender = msg.get("from") or {}
        if chat.get("type") != "private" or "id" not in chat:
            return None  # groups and channels are not customer conversations
        chat_id = chat["id"]
        connection = msg.get("business_connection_id") if business else None
        # In a private chat the chat id is the other person's user id; in a business chat a
        # message from anyone else is the business owner writing to the customer.
        direction = "in" if not sender or sender.get("id") == chat_id else "out"
        peer = Address(KIND, str(chat_id), _person(sender if direction == "in" and sender else chat))
        suffix = f"@{connection}" if connection else ""
        thread_key = f"{chat_id}{suffix}"
        body = msg.get("text") or msg.get("caption") or ""
        attachments = self._attachments(msg)
        links: tuple[Address, ...] = ()
        contact = msg.get("contact")
        if isinstance(contact, dict):
            name = " ".join(p for p in (contact.get("first_name", ""), contact.get("last_name", "")) if p)
            body = body or f"Shared contact: {name} {contact.get('phone_number', '')}".strip()
            if contact.get("user_id") == chat_id and contact.get("phone_number") and direction == "in":
                links = (Address("phone", contact["phone_number"], name),)
        location = msg.get("location")
        if isinstance(location, dict) and not body:
            body = f"Location: {location.get('latitude')}, {location.get('longitude')}"
        if "sticker" in msg and not body:
            body = msg["sticker"].get("emoji", "") or "(sticker)"
        if not body and not attachments:
            body = "(a kind of Telegram message console cannot show yet)"
        return InboundMessage(
            external_id=f"{chat_id}:{msg.get('message_id')}{suffix}",
            thread_key=thread_key,
            channel="telegram",
            direction=direction,
            peer=peer,
            sent_at=float(msg.get("date") or time.time()),
            body=body,
            attachments=attachments,
            status="sent" if direction == "out" else None,
            edited=edited,
            peer_links=links,
        )

    @staticmethod
    def _attachments(msg: dict[str, Any]) -> list[Attachment]:
        found = []
        photos = msg.get("photo")
        if isinstance(photos, list) and photos:
            best = max(photos, key=lambda p: (p.get("width", 0) * p.get("height", 0), p.get("file_size") or 0))
            found.append(Attachment("photo.jpg", "image/jpeg", best.get("file_size"), best["file_id"]))
        for key, (default_name, default_type) in _FILE_KINDS.items():
            item = msg.get(key)
            if isinstance(item, dict) and item.get("file_id"):
                found.append(Attachment(item.get("file_name") or default_name, item.get("mime_type") or default_type,
                                        item.get("file_size"), item["file_id"]))
        return found

    async def fetch_attachment(self, external_id: str, ref: str) -> bytes:
        """The bytes of an attachment (`ref` is its file_id). Bots may download up to 20 MB."""
        info = await self.call("getFile", {"file_id": ref})
        path = info.get("file_path") if isinstance(info, dict) else None
        if not path:
            raise PermanentError("Telegram has no downloadable copy of this file (it may be over 20 MB)")
        token = await self._token_value()
        try:
            response = await self._http().get(f"{self._base}/file/bot{token}/{path}")
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, "downloading an attachment") from None
        if response.status_code == 200:
            return response.content
        if response.status_code == 401:
            raise self._auth_error(401, "")
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(f"Telegram could not hand over the file now (HTTP {response.status_code}); try again")
        raise PermanentError(f"Telegram no longer has this file (HTTP {response.status_code})")

    # ---- sending ------------------------------------------------------------------------------
    async def send(self, out: Outgoing) -> SendResult:
        text = out.body
        if not text.strip():
            raise PermanentError("Telegram cannot send an empty message", "empty")
        catalog.enforce_length("telegram", text)  # 1-4096 characters after entities parsing, in UTF-16 units
        try:
            chat_id: int | str = int(out.to.address)
        except ValueError:
            chat_id = out.to.address
        params: dict[str, Any] = {"chat_id": chat_id, "text": text}
        connection = out.options.get("business_connection_id") or self._connection_of(out.thread_key)
        if connection:
            params["business_connection_id"] = connection
        sent = await self.call("sendMessage", params)
        if not isinstance(sent, dict) or "message_id" not in sent:
            raise PermanentError("Telegram accepted the message but did not say which message it became")
        sent_chat = (sent.get("chat") or {}).get("id", chat_id)
        suffix = f"@{connection}" if connection else ""
        return SendResult(external_id=f"{sent_chat}:{sent['message_id']}{suffix}", status="sent",
                          sent_at=float(sent["date"]) if isinstance(sent.get("date"), int) else None)

    @staticmethod
    def _connection_of(thread_key: str) -> str:
        _, at, connection = thread_key.partition("@")
        return connection if at else ""

    async def reconcile(self, out: Outgoing) -> SendResult | None:
        # A bot cannot read back the messages it sent, so an interrupted send cannot be checked.
        raise NotImplementedError

    # ---- the rest -----------------------------------------------------------------------------
    async def check(self) -> str:
        me = await self.call("getMe")
        hook = await self.call("getWebhookInfo")
        name = "@" + me.get("username", "") if isinstance(me, dict) else "the bot"
        if isinstance(hook, dict) and hook.get("url"):
            raise WebhookActiveError(
                f"{name} has a webhook set, so console cannot poll it; remove it with deleteWebhook "
                "(`curl https://api.telegram.org/bot$TOKEN/deleteWebhook`)")
        pending = hook.get("pending_update_count", 0) if isinstance(hook, dict) else 0
        return f"Telegram bot {name}, {pending} update(s) waiting"

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
