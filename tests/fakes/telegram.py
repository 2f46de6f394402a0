"""A stateful local Telegram Bot API, checked against the machine-readable Bot API description.

Every request is validated (the method exists, required parameters are present, every parameter
has a type the description allows, no unknown parameters) and so is every `result` the fake
returns (required fields, field types, no unknown fields, recursively). Violations are collected
in `violations`; the test fixture fails the test when any remain.

Semantics kept from the real service: an update is confirmed only by a later getUpdates `offset`
(older updates are then forgotten), at most `limit` (1-100) updates per call, updates older than
24 hours are dropped, a long poll returns as soon as an update arrives, a second concurrent long
poll ends the first with 409, a set webhook makes getUpdates answer 409, a wrong token 401,
and sendMessage refuses empty or over-long texts and users who never started the bot.

The control API is plain Python (thread-safe): add users, inject messages, edits, photos,
documents and business messages, queue errors, revoke the token, move the clock.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from console.model import Address
from fakes import peer
from fakes.spec import spec_path
from servers import http

RETENTION = 24 * 3600
BOT = {"id": 7000001, "is_bot": True, "first_name": "Acme Bot", "username": "acme_bot",
       "can_join_groups": False, "can_read_all_group_messages": False, "supports_inline_queries": False,
       "can_connect_to_business": True}


_SPEC_CACHE: dict[Path, "BotApiSpec"] = {}


class BotApiSpec:
    """Validation of values against the Bot API description's types."""

    PRIMITIVES = {
        "Integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "String": lambda v: isinstance(v, str),
        "Boolean": lambda v: isinstance(v, bool),
        "True": lambda v: v is True,
        "Float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "InputFile": lambda v: True,
    }

    def __init__(self, path: Path):
        data = json.loads(path.read_text(encoding="utf-8"))
        self.methods: dict[str, dict] = data["methods"]
        self.types: dict[str, dict] = data["types"]
        self.version = data.get("version", "")

    @classmethod
    def load(cls) -> "BotApiSpec":
        path = spec_path("telegram_bot_api.json")
        if path not in _SPEC_CACHE:
            _SPEC_CACHE[path] = cls(path)
        return _SPEC_CACHE[path]

    def errors(self, value: Any, types: list[str], where: str) -> list[str]:
        """Why `value` matches none of `types` (empty when it matches one)."""
        first: list[str] | None = None
        for name in types:
            found = self._errors_one(value, name, where)
            if not found:
                return []
            first = first if first is not None else found
        return first or [f"{where}: no type given"]

    def _errors_one(self, value: Any, name: str, where: str) -> list[str]:
        if name.startswith("Array of "):
            if not isinstance(value, list):
                return [f"{where}: expected {name}, got {type(value).__name__}"]
            inner = name[len("Array of "):]
            out: list[str] = []
            for i, item in enumerate(value):
                out += self._errors_one(item, inner, f"{where}[{i}]")
            return out
        if name in self.PRIMITIVES:
            return [] if self.PRIMITIVES[name](value) else [f"{where}: expected {name}, got {value!r:.60}"]
        spec = self.types.get(name)
        if spec is None:
            return [f"{where}: the description has no type {name}"]
        if spec.get("subtypes"):
            for sub in spec["subtypes"]:
                if not self._errors_one(value, sub, where):
                    return []
            return [f"{where}: matches none of {name}'s forms {spec['subtypes']}"]
        if not isinstance(value, dict):
            return [f"{where}: expected a {name} object, got {type(value).__name__}"]
        fields = {f["name"]: f for f in spec.get("fields", [])}
        out = [f"{where}.{key}: not a field of {name}" for key in value if key not in fields]
        for key, field in fields.items():
            if key not in value:
                if field["required"]:
                    out.append(f"{where}: required field {name}.{key} missing")
                continue
            out += self.errors(value[key], field["types"], f"{where}.{key}")
        return out

    def request_errors(self, method: str, params: dict[str, Any]) -> list[str]:
        spec = self.methods.get(method)
        if spec is None:
            return [f"{method}: not a Bot API method"]
        fields = {f["name"]: f for f in spec.get("fields", [])}
        out = [f"{method}({key}): unknown parameter" for key in params if key not in fields]
        for key, field in fields.items():
            if key not in params:
                if field["required"]:
                    out.append(f"{method}: required parameter {key} missing")
                continue
            out += self.errors(params[key], field["types"], f"{method}({key})")
        return out

    def result_errors(self, method: str, result: Any) -> list[str]:
        return self.errors(result, self.methods[method]["returns"], f"{method} -> result")


class ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None):
        super().__init__(description)
        self.code, self.description, self.retry_after = code, description, retry_after


class FakeTelegram:
    """The fake service. `url` is what the adapter's `api_base_url` should be set to."""

    def __init__(self, token: str = "123456:TEST-token_abcdefghijklmnopqrstuvwxyz"):
        self.spec = BotApiSpec.load()
        self.token = token
        self.violations: list[str] = []
        self.calls: list[tuple[str, dict]] = []
        self.sent: list[dict] = []
        self.webhook_url = ""
        self.clock_offset = 0.0
        self._cond = threading.Condition()
        self._updates: list[tuple[float, dict]] = []  # (created at, update)
        self._next_update = 500_000_001
        self._users: dict[int, dict] = {}
        self._started: set[int] = set()  # users who pressed Start: the bot may write to them
        self._message_ids: dict[tuple, itertools.count] = {}
        self._files: dict[str, tuple[bytes, str, str]] = {}  # file_id -> (data, path, unique id)
        self._connections: dict[str, dict] = {}
        self._failures: dict[str, list[ApiError]] = {}
        self._poll_generation = 0
        self._stopping = False
        self._ids = itertools.count(1)
        self.server: ThreadingHTTPServer | None = None

    # ---- lifecycle ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return http.url(self.server)

    def start(self) -> "FakeTelegram":
        self.server = http.serve(lambda request, method: self._handle(request))
        return self

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        http.stop(self.server)

    def now(self) -> float:
        return time.time() + self.clock_offset

    def advance(self, seconds: float) -> None:
        with self._cond:
            self.clock_offset += seconds

    # ---- control API ----------------------------------------------------------------------------
    def add_user(self, first_name: str, last_name: str | None = None, username: str | None = None,
                 started: bool = True) -> dict:
        with self._cond:
            user = {"id": 100_000_000 + next(self._ids), "is_bot": False, "first_name": first_name}
            if last_name:
                user["last_name"] = last_name
            if username:
                user["username"] = username
            self._users[user["id"]] = user
            if started:
                self._started.add(user["id"])
            return user

    def connect_business(self, owner_first_name: str = "Acme Bakery", username: str = "acmebakery") -> str:
        """A Telegram Business account connects the bot; returns the business_connection_id."""
        owner = self.add_user(owner_first_name, username=username, started=False)
        with self._cond:
            connection_id = f"BC{next(self._ids):04d}x-y"
            self._connections[connection_id] = {
                "id": connection_id, "user": owner, "user_chat_id": owner["id"], "date": int(self.now()),
                "rights": {"can_reply": True, "can_read_messages": True}, "is_enabled": True}
            return connection_id

    def message(self, user: dict, text: str | None = None, *, caption: str | None = None,
                photo: bytes | None = None, document: tuple[str, str, bytes] | None = None,
                contact: dict | None = None, business: str | None = None, from_owner: bool = False) -> dict:
        """The user writes to the bot (or, with `business`, to the connected business account;
        with `from_owner` the business owner writes to the user). Returns the Message."""
        with self._cond:
            chat = self._chat(user)
            sender = self._connections[business]["user"] if from_owner else user
            msg: dict[str, Any] = {"message_id": self._next_message_id(chat["id"], business), "from": sender,
                                   "date": int(self.now()), "chat": chat}
            if business:
                msg["business_connection_id"] = business
            if text is not None:
                msg["text"] = text
            if caption is not None:
                msg["caption"] = caption
            if photo is not None:
                msg["photo"] = [self._file(photo, "photos", ".jpg", w) for w in (90, 320, 1280)]
            if document is not None:
                name, mime, data = document
                doc = self._file(data, "documents", "." + name.rsplit(".", 1)[-1], None)
                msg["document"] = {**doc, "file_name": name, "mime_type": mime}
            if contact is not None:
                msg["contact"] = contact
            self._push({"business_message" if business else "message": msg})
            return msg

    def edit(self, msg: dict, text: str) -> dict:
        with self._cond:
            edited = {**msg, "edit_date": int(self.now())}
            edited["text" if "text" in msg else "caption"] = text
            self._push({"edited_business_message" if "business_connection_id" in msg else "edited_message": edited})
            return edited

    def set_webhook(self, url: str) -> None:
        with self._cond:
            self.webhook_url = url

    def fail_next(self, method: str, code: int, description: str | None = None,
                  retry_after: int | None = None, times: int = 1) -> None:
        default = {401: "Unauthorized", 429: f"Too Many Requests: retry after {retry_after}",
                   500: "Internal Server Error", 502: "Bad Gateway"}.get(code, "Bad Request")
        with self._cond:
            self._failures.setdefault(method, []).extend(
                ApiError(code, description or default, retry_after) for _ in range(times))

    def revoke_token(self) -> None:
        """Like /revoke in @BotFather: the old token gets 401 from now on."""
        with self._cond:
            self.token = self.token.split(":")[0] + ":REVOKED-" + os.urandom(6).hex()

    @property
    def last_update_id(self) -> int:
        return self._next_update - 1

    def pending(self) -> int:
        with self._cond:
            self._expire()
            return len(self._updates)

    def method_calls(self, method: str) -> list[dict]:
        return [params for name, params in self.calls if name == method]

    # ---- internals ----------------------------------------------------------------------------
    def _chat(self, user: dict) -> dict:
        chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        for key in ("last_name", "username"):
            if key in user:
                chat[key] = user[key]
        return chat

    def _next_message_id(self, chat_id: int, business: str | None) -> int:
        return next(self._message_ids.setdefault((chat_id, business), itertools.count(1)))

    def _file(self, data: bytes, folder: str, suffix: str, width: int | None) -> dict:
        n = next(self._ids)
        file_id, unique = f"AgAC{n:06d}file", f"AQAD{n:06d}"
        self._files[file_id] = (data, f"{folder}/file_{n}{suffix}", unique)
        item: dict[str, Any] = {"file_id": file_id, "file_unique_id": unique, "file_size": len(data)}
        if width is not None:
            item.update(width=width, height=width * 3 // 4)
        return item

    def _push(self, payload: dict) -> None:
        update = {"update_id": self._next_update, **payload}
        self._next_update += 1
        self._updates.append((self.now(), update))
        self._cond.notify_all()

    def _expire(self) -> None:
        limit = self.now() - RETENTION
        self._updates = [(at, u) for at, u in self._updates if at >= limit]

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        segments = parts.path.lstrip("/").split("/", 1)
        if parts.path.startswith("/file/"):
            self._download(request, parts.path)
            return
        if len(segments) != 2 or not segments[0].startswith("bot"):
            self._reply(request, 404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        token, method = segments[0][3:], segments[1]
        params: dict[str, Any] = dict(parse_qsl(parts.query))
        content_type = request.headers.get("Content-Type", "")
        try:
            if raw and "json" in content_type:
                params.update(json.loads(raw))
            elif raw:
                params.update(self._form(method, dict(parse_qsl(raw.decode()))))
        except (ValueError, TypeError):
            self.violations.append(f"{method}: body is not valid JSON")
            self._reply(request, 400, {"ok": False, "error_code": 400, "description": "Bad Request: invalid JSON"})
            return
        self.calls.append((method, params))
        problems = self.spec.request_errors(method, params)
        if problems:
            self.violations.extend(problems)
            self._reply(request, 400, {"ok": False, "error_code": 400,
                                       "description": "Bad Request: " + "; ".join(problems)})
            return
        try:
            if token != self.token:
                raise ApiError(401, "Unauthorized")
            with self._cond:
                queued = self._failures.get(method)
                failure = queued.pop(0) if queued else None
            if failure is not None:
                raise failure
            handler = getattr(self, "_m_" + method, None)
            if handler is None:
                raise ApiError(501, f"the fake does not implement {method}")
            result = handler(params)
        except ApiError as exc:
            body: dict[str, Any] = {"ok": False, "error_code": exc.code, "description": exc.description}
            if exc.retry_after is not None:
                body["parameters"] = {"retry_after": exc.retry_after}
                problems = self.spec.errors(body["parameters"], ["ResponseParameters"], "parameters")
                self.violations.extend(problems)
            self._reply(request, exc.code, body)
            return
        self.violations.extend(self.spec.result_errors(method, result))
        self._reply(request, 200, {"ok": True, "result": result})

    def _form(self, method: str, form: dict[str, str]) -> dict[str, Any]:
        """Form and query parameters are strings; JSON-decode those the description types otherwise."""
        fields = {f["name"]: f for f in self.spec.methods.get(method, {}).get("fields", [])}
        out: dict[str, Any] = {}
        for key, value in form.items():
            types = fields.get(key, {}).get("types", ["String"])
            out[key] = value if "String" in types else json.loads(value)
        return out

    def _reply(self, request: BaseHTTPRequestHandler, status: int, body: dict | bytes,
               content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            request.send_response(status)
            request.send_header("Content-Type", content_type)
            request.send_header("Content-Length", str(len(data)))
            request.end_headers()
            request.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a cancelled long poll)

    def _download(self, request: BaseHTTPRequestHandler, path: str) -> None:
        prefix = f"/file/bot{self.token}/"
        if not path.startswith(prefix):
            self._reply(request, 401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
            return
        wanted = path[len(prefix):]
        for data, file_path, _ in self._files.values():
            if file_path == wanted:
                self._reply(request, 200, data, "application/octet-stream")
                return
        self._reply(request, 404, {"ok": False, "error_code": 404, "description": "Not Found"})

    # ---- Bot API methods ------------------------------------------------------------------------
    def _m_getMe(self, params: dict) -> dict:
        return dict(BOT)

    def _m_getWebhookInfo(self, params: dict) -> dict:
        return {"url": self.webhook_url, "has_custom_certificate": False, "pending_update_count": self.pending()}

    def _m_deleteWebhook(self, params: dict) -> bool:
        with self._cond:
            self.webhook_url = ""
            if params.get("drop_pending_updates"):
                self._updates.clear()
        return True

    def _m_setWebhook(self, params: dict) -> bool:
        self.set_webhook(params["url"])
        return True

    def _m_getUpdates(self, params: dict) -> list[dict]:
        limit = params.get("limit", 100)
        if not 1 <= limit <= 100:
            raise ApiError(400, "Bad Request: limit must be between 1 and 100")
        timeout = max(0, params.get("timeout", 0))
        offset = params.get("offset")
        deadline = time.monotonic() + timeout
        with self._cond:
            if self.webhook_url:
                raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                    "use deleteWebhook to delete the webhook first")
            self._poll_generation += 1
            generation = self._poll_generation
            if offset is not None:
                if offset < 0:
                    self._updates = self._updates[offset:]
                else:
                    self._updates = [(at, u) for at, u in self._updates if u["update_id"] >= offset]
            while True:
                self._expire()
                if self._updates or self._stopping:
                    return [u for _, u in self._updates[:limit]]
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                self._cond.wait(left)
                if self._poll_generation != generation:
                    raise ApiError(409, "Conflict: terminated by other getUpdates request; "
                                        "make sure that only one bot instance is running")

    def _m_sendMessage(self, params: dict) -> dict:
        text = params["text"]
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text.encode("utf-16-le")) // 2 > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        chat_id = params["chat_id"]
        if isinstance(chat_id, str):
            chat_id = int(chat_id) if chat_id.lstrip("-").isdigit() else None
        with self._cond:
            user = self._users.get(chat_id)
            if user is None:
                raise ApiError(400, "Bad Request: chat not found")
            business = params.get("business_connection_id")
            if business is not None:
                connection = self._connections.get(business)
                if connection is None or not connection["is_enabled"]:
                    raise ApiError(400, "Bad Request: BUSINESS_CONNECTION_INVALID")
                sender = connection["user"]
            elif chat_id not in self._started:
                raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
            else:
                sender = dict(BOT)
            msg = {"message_id": self._next_message_id(chat_id, business), "from": sender,
                   "date": int(self.now()), "chat": self._chat(user), "text": text}
            if business is not None:
                msg["business_connection_id"] = business
                msg["sender_business_bot"] = dict(BOT)
            self.sent.append({"chat_id": chat_id, "text": text, "business_connection_id": business, "message": msg})
            return msg

    def _m_getFile(self, params: dict) -> dict:
        found = self._files.get(params["file_id"])
        if found is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        data, path, unique = found
        if len(data) > 20 * 1024 * 1024:
            raise ApiError(400, "Bad Request: file is too big")
        return {"file_id": params["file_id"], "file_unique_id": unique, "file_size": len(data), "file_path": path}


class Peer(peer.Peer):
    """The Telegram bot account for the contract suite."""

    kind = "telegram"
    channels = ("telegram",)
    reconciles = False  # a bot cannot read back the messages it sent

    def new_fake(self) -> FakeTelegram:
        fake = FakeTelegram()
        self.token = fake.token  # the one the account is configured with, whatever is revoked later
        return fake

    def account(self, url: str | None = None) -> str:
        return (f'bot_token = "{self.token}"\napi_base_url = "{url or self.fake.url}"\n'
                "poll_timeout = 0\npoll_interval = 0.01\ntimeout = 5\n")

    def secrets(self) -> list[str]:
        return [self.token, self.token.split(":", 1)[1]]

    def customer(self, channel: str) -> peer.Customer:
        n = next(self.people)
        user = self.fake.add_user(f"Customer{n}", username=f"customer{n}")
        return peer.Customer(channel, Address("telegram", str(user["id"]), f"@customer{n}"), user)

    def writes(self, customer: peer.Customer, text: str) -> None:
        self.fake.message(customer.handle, text)

    def received(self, customer: peer.Customer) -> list[str]:
        return [f"{s['chat_id']}:{s['message']['message_id']}" for s in self.fake.sent
                if str(s["chat_id"]) == str(customer.handle["id"])]

    def refuse_credentials(self) -> None:
        self.fake.revoke_token()

    def rate_limit_next_pull(self, seconds: int) -> float | None:
        self.fake.fail_next("getUpdates", 429, retry_after=seconds)
        return float(seconds)
