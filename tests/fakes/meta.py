"""A stateful local Meta Graph API: one Facebook Page with its Messenger inbox and the linked
Instagram professional account, as the Conversations API and the Send API show them.

Shapes follow Meta's references: `GET /{version}/{page-id}/conversations?platform=messenger|instagram
&fields=id,updated_time` pages newest first with `paging.cursors` and a `paging.next` URL that
carries the access token (as Graph's do); `GET /{version}/{conversation-id}?fields=messages{...}`
returns the messages edge newest first (25 a page with `paging.next` on Messenger; on Instagram
only the 20 most recent messages are ever returned); `POST /{version}/{page-id}/messages` takes
`recipient{id}`, `messaging_type`, `message{text}` and `tag`, and answers `recipient_id` and
`message_id`. Times are Graph's `2024-05-01T12:00:00+0000`.

Rules kept from the real service: free text (RESPONSE) only within 24 hours of the customer's
last message, MESSAGE_TAG + HUMAN_AGENT within 7 days, otherwise error 10 / subcode 2018278;
Messenger text at most 2000 characters, Instagram 1000 bytes; a wrong token is error 190; unknown
fields are error 100. Errors have Graph's shape `{"error": {"message", "type", "code",
"error_subcode", "fbtrace_id"}}`. Every call is recorded with its time so a test can check the
client kept to Meta's 2 calls per second per Page (`max_calls_per_second()`), and queued failures
(`fail_next`) inject rate limits, permission errors and outages; `drop_answer_next` carries a
call out and hangs up before answering (a send whose answer was lost).

Requests outside these shapes are collected in `violations`; the test fixture fails on any.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from console.model import Address
from fakes import peer
from servers import http

PAGE_SIZE = 25
INSTAGRAM_MESSAGE_CAP = 20
WINDOW_RESPONSE = 24 * 3600
WINDOW_HUMAN_AGENT = 7 * 24 * 3600
MESSENGER_TEXT = 2000
INSTAGRAM_TEXT_BYTES = 1000
MESSAGE_FIELDS = {"id", "created_time", "from", "to", "message", "attachments"}


def graph_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")


class GraphError(Exception):
    def __init__(self, code: int, message: str, subcode: int | None = None, kind: str = "OAuthException",
                 http: int = 400, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.code, self.message, self.subcode, self.kind, self.http = code, message, subcode, kind, http
        self.headers = headers or {}

    def body(self) -> dict:
        error: dict[str, Any] = {"message": self.message, "type": self.kind, "code": self.code,
                                 "fbtrace_id": "AbCdEf" + str(self.code)}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        return {"error": error}


def _fields(spec: str) -> dict[str, set[str] | None]:
    """`id,messages{id,from}` -> {"id": None, "messages": {"id", "from"}}."""
    out: dict[str, set[str] | None] = {}
    for match in re.finditer(r"([a-z_]+)(?:\{([^{}]*)\})?", spec or ""):
        out[match.group(1)] = set(filter(None, match.group(2).split(","))) if match.group(2) is not None else None
    return out


class FakeMeta:
    """The fake Graph API. `url` is what the adapter's `api_base_url` should be set to."""

    def __init__(self, page_id: str = "104500000000001", token: str = "EAAGpage-token-SECRET-0123456789",
                 version: str = "v21.0", instagram: bool = True):
        self.page_id, self.token, self.version = page_id, token, version
        self.page_name = "Acme Bakery"
        self.instagram = {"id": "17841400000000001", "username": "acmebakery"} if instagram else None
        self.violations: list[str] = []
        self.calls: list[tuple[float, str, str, dict]] = []  # (monotonic time, method, path, params)
        self.sent: list[dict] = []
        self._lock = threading.RLock()
        self._users: dict[str, dict] = {}  # id -> {"id", "platform", "name"/"username"}
        self._conversations: dict[str, dict] = {}  # id -> {"id", "platform", "user", "messages": [...]}
        self._failures: list[tuple[str, GraphError]] = []
        self._drops: list[str] = []
        self._ids = itertools.count(1)
        self.server: ThreadingHTTPServer | None = None

    # ---- lifecycle ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return http.url(self.server)

    def start(self) -> "FakeMeta":
        self.server = http.serve(self._handle)
        return self

    def stop(self) -> None:
        http.stop(self.server)

    # ---- control API ----------------------------------------------------------------------------
    def add_user(self, name: str, platform: str = "messenger") -> dict:
        """A person who can write to the Page (Messenger: a PSID and a name; Instagram: an IGSID
        and a username)."""
        with self._lock:
            n = next(self._ids)
            if platform == "messenger":
                user = {"id": f"{24000000000000 + n}", "platform": platform, "name": name}
            else:
                user = {"id": f"{17800000000000 + n}", "platform": platform, "username": name}
            self._users[user["id"]] = user
            return user

    def message(self, user: dict, text: str, ago: float = 0.0, attachment: dict | None = None) -> dict:
        """`user` writes to the Page (`ago` seconds in the past). Returns the Graph message."""
        with self._lock:
            conv = self._conversation_of(user)
            msg = self._new_message(conv, self._person(user), self._us(conv["platform"]), text, time.time() - ago)
            if attachment:
                msg["attachments"] = {"data": [attachment]}
            return msg

    def page_message(self, user: dict, text: str, ago: float = 0.0) -> dict:
        """The Page answers from another app (Meta Business Suite)."""
        with self._lock:
            conv = self._conversation_of(user)
            return self._new_message(conv, self._us(conv["platform"]), self._person(user), text, time.time() - ago)

    def fail_next(self, what: str, code: int, message: str = "", subcode: int | None = None,
                  kind: str = "OAuthException", http: int = 400, headers: dict[str, str] | None = None,
                  times: int = 1) -> None:
        """Queue an error for the next call of `what`: "conversations", "conversation", "messages"
        (the Send API) or "page"."""
        default = {190: "Invalid OAuth access token - Cannot parse access token",
                   4: "(#4) Application request limit reached", 17: "(#17) User request limit reached",
                   32: "(#32) Page request limit reached", 613: "(#613) Calls to this api have exceeded the rate limit.",
                   10: "(#10) Application does not have permission for this action",
                   200: "(#200) Requires pages_messaging permission to manage the object",
                   551: "(#551) This person isn't available right now.", 2: "An unexpected error has occurred. "
                   "Please retry your request later."}.get(code, "(#100) Invalid parameter")
        with self._lock:
            self._failures += [(what, GraphError(code, message or default, subcode, kind, http, headers))
                               for _ in range(times)]

    def drop_answer_next(self, what: str) -> None:
        """The next call of `what` is carried out, but the connection closes before the answer."""
        with self._lock:
            self._drops.append(what)

    def revoke_token(self) -> None:
        with self._lock:
            self.token = "EAAGrevoked-" + str(next(self._ids))

    def conversation_of(self, user: dict) -> dict:
        with self._lock:
            return self._conversation_of(user)

    def max_calls_per_second(self) -> int:
        """The most calls made in any one-second window (half-open), over the whole run."""
        times = sorted(t for t, *_ in self.calls)
        best, start = 0, 0
        for end, t in enumerate(times):
            while times[start] <= t - 1.0:
                start += 1
            best = max(best, end - start + 1)
        return best

    def paths(self, method: str = "GET") -> list[str]:
        return [path for _, m, path, _ in self.calls if m == method]

    # ---- state ----------------------------------------------------------------------------------
    def _us(self, platform: str) -> dict:
        if platform == "instagram":
            assert self.instagram is not None, "this Page has no Instagram account"
            return dict(self.instagram)
        return {"id": self.page_id, "name": self.page_name}

    @staticmethod
    def _person(user: dict) -> dict:
        if user["platform"] == "instagram":
            return {"username": user["username"], "id": user["id"]}
        return {"name": user["name"], "email": f"{user['id']}@facebook.com", "id": user["id"]}

    def _conversation_of(self, user: dict) -> dict:
        for conv in self._conversations.values():
            if conv["user"] == user["id"]:
                return conv
        prefix = "t_" if user["platform"] == "messenger" else "aWdfRGlyZWN0X"
        conv = {"id": f"{prefix}{next(self._ids):012d}", "platform": user["platform"], "user": user["id"],
                "messages": []}
        self._conversations[conv["id"]] = conv
        return conv

    def _new_message(self, conv: dict, sender: dict, recipient: dict, text: str, at: float) -> dict:
        prefix = "m_" if conv["platform"] == "messenger" else "aWdfZAG1faXRlbT"
        msg = {"id": f"{prefix}{next(self._ids):010d}AbC", "created_time": graph_time(at), "_at": at,
               "from": sender, "to": {"data": [recipient]}, "message": text}
        conv["messages"].append(msg)
        conv["messages"].sort(key=lambda m: m["_at"])
        return msg

    @staticmethod
    def _updated(conv: dict) -> float:
        return max(m["_at"] for m in conv["messages"])

    # ---- HTTP -----------------------------------------------------------------------------------
    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(request.path)
        params: dict[str, Any] = dict(parse_qsl(parts.query))
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        if raw:
            try:
                params.update(json.loads(raw) if "json" in request.headers.get("Content-Type", "")
                              else dict(parse_qsl(raw.decode())))
            except ValueError:
                self.violations.append(f"{method} {parts.path}: body is not valid JSON")
        with self._lock:
            self.calls.append((time.monotonic(), method, parts.path, params))
        token = params.pop("access_token", None)
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = auth[len("Bearer "):]
        try:
            segments = parts.path.strip("/").split("/")
            if len(segments) < 2 or segments[0] != self.version:
                self.violations.append(f"{method} {parts.path}: not /{self.version}/...")
                raise GraphError(2500, "Unknown path components: " + parts.path, kind="OAuthException")
            if token != self.token:
                raise GraphError(190, "Invalid OAuth access token - Cannot parse access token", http=400)
            what, handler = self._route(method, segments[1:])
            with self._lock:
                for i, (name, failure) in enumerate(self._failures):
                    if name == what:
                        del self._failures[i]
                        raise failure
            result = handler(params)
        except GraphError as exc:
            self._reply(request, exc.http, exc.body(), exc.headers)
            return
        with self._lock:
            drop = what in self._drops
            if drop:
                self._drops.remove(what)
        if drop:
            request.close_connection = True
            request.connection.shutdown(2)  # done, but the client never hears about it
            return
        self._reply(request, 200, result)

    def _route(self, method: str, segments: list[str]):
        if method == "GET" and segments == [self.page_id, "conversations"]:
            return "conversations", self._list_conversations
        if method == "POST" and segments == [self.page_id, "messages"]:
            return "messages", self._send
        if method == "GET" and segments == [self.page_id]:
            return "page", self._page
        if method == "GET" and len(segments) == 1 and segments[0] in self._conversations:
            return "conversation", lambda p: self._conversation(segments[0], p)
        if method == "GET" and len(segments) == 2 and segments[1] == "messages" and segments[0] in self._conversations:
            return "conversation", lambda p: self._messages_edge(segments[0], p)
        self.violations.append(f"{method} /{'/'.join(segments)}: not an endpoint of the fake")
        raise GraphError(100, "(#100) Unsupported get request. Object does not exist", 33, "GraphMethodException")

    def _reply(self, request: BaseHTTPRequestHandler, status: int, body: dict,
               headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        try:
            request.send_response(status)
            request.send_header("Content-Type", "application/json; charset=UTF-8")
            request.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                request.send_header(key, value)
            request.end_headers()
            request.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _next_url(self, path: str, params: dict, after: int) -> str:
        query = {**{k: v for k, v in params.items() if k not in ("after", "before")},
                 "access_token": self.token, "after": str(after)}
        return f"{self.url}/{self.version}/{path}?{urlencode(query)}"

    # ---- endpoints ------------------------------------------------------------------------------
    def _page(self, params: dict) -> dict:
        fields = _fields(params.get("fields", "id,name"))
        out: dict[str, Any] = {"id": self.page_id}
        if "name" in fields:
            out["name"] = self.page_name
        if "instagram_business_account" in fields and self.instagram:
            out["instagram_business_account"] = dict(self.instagram)
        return out

    def _list_conversations(self, params: dict) -> dict:
        platform = params.get("platform")
        if platform not in ("messenger", "instagram"):
            self.violations.append(f"conversations: platform must be messenger or instagram, got {platform!r}")
            raise GraphError(100, "(#100) param platform must be one of {MESSENGER, INSTAGRAM}")
        if platform == "instagram" and self.instagram is None:
            raise GraphError(100, "(#100) No Instagram account is connected to this Page")
        fields = _fields(params.get("fields", "id"))
        unknown = set(fields) - {"id", "updated_time", "messages"}
        if unknown:
            raise GraphError(100, f"(#100) Tried accessing nonexisting field ({sorted(unknown)[0]})")
        limit = int(params.get("limit", PAGE_SIZE))
        after = int(params.get("after", 0))
        with self._lock:
            convs = [c for c in self._conversations.values() if c["platform"] == platform and c["messages"]]
            if "user_id" in params:
                convs = [c for c in convs if c["user"] == params["user_id"]]
            convs.sort(key=self._updated, reverse=True)
            page = convs[after:after + limit]
            data = []
            for conv in page:
                item: dict[str, Any] = {"id": conv["id"]}
                if "updated_time" in fields:
                    item["updated_time"] = graph_time(self._updated(conv))
                if "messages" in fields:
                    item["messages"] = self._edge(conv, fields["messages"] or {"id"}, {}, conv["id"])
                data.append(item)
        out: dict[str, Any] = {"data": data}
        if data:
            out["paging"] = {"cursors": {"before": f"b{after}", "after": f"a{after + len(page)}"}}
            if after + limit < len(convs):
                out["paging"]["next"] = self._next_url(f"{self.page_id}/conversations", params, after + limit)
        return out

    def _conversation(self, conv_id: str, params: dict) -> dict:
        fields = _fields(params.get("fields", "id"))
        unknown = set(fields) - {"id", "updated_time", "messages", "participants"}
        if unknown:
            raise GraphError(100, f"(#100) Tried accessing nonexisting field ({sorted(unknown)[0]})")
        with self._lock:
            conv = self._conversations[conv_id]
            out: dict[str, Any] = {"id": conv_id}
            if "updated_time" in fields:
                out["updated_time"] = graph_time(self._updated(conv))
            if "messages" in fields:
                out["messages"] = self._edge(conv, fields["messages"] or {"id"}, {}, f"{conv_id}/messages")
            return out

    def _messages_edge(self, conv_id: str, params: dict) -> dict:
        with self._lock:
            conv = self._conversations[conv_id]
            return self._edge(conv, set(_fields(params.get("fields", "id"))), params, f"{conv_id}/messages")

    def _edge(self, conv: dict, fields: set[str], params: dict, path: str) -> dict:
        unknown = fields - MESSAGE_FIELDS
        if unknown:
            raise GraphError(100, f"(#100) Tried accessing nonexisting field ({sorted(unknown)[0]}) on node type (Message)")
        newest_first = sorted(conv["messages"], key=lambda m: m["_at"], reverse=True)
        if conv["platform"] == "instagram":
            newest_first = newest_first[:INSTAGRAM_MESSAGE_CAP]  # details of older ones are not available
        after = int(params.get("after", 0))
        page = newest_first[after:after + PAGE_SIZE]
        data = [{k: v for k, v in m.items() if k in fields | {"id"}} for m in page]
        out: dict[str, Any] = {"data": data}
        if data:
            out["paging"] = {"cursors": {"before": f"b{after}", "after": f"a{after + len(page)}"}}
            if after + PAGE_SIZE < len(newest_first):
                query = {"fields": ",".join(sorted(fields))}
                out["paging"]["next"] = self._next_url(path, query, after + PAGE_SIZE)
        return out

    def _send(self, params: dict) -> dict:
        recipient = params.get("recipient")
        if isinstance(recipient, str):
            recipient = json.loads(recipient)
        message = params.get("message")
        if isinstance(message, str):
            message = json.loads(message)
        kind, tag = params.get("messaging_type"), params.get("tag")
        problems = []
        if not isinstance(recipient, dict) or "id" not in recipient:
            problems.append("recipient{id} is required")
        if kind not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
            problems.append(f"messaging_type {kind!r} is not RESPONSE, UPDATE or MESSAGE_TAG")
        if kind == "MESSAGE_TAG" and not tag:
            problems.append("MESSAGE_TAG needs a tag")
        if kind != "MESSAGE_TAG" and tag:
            problems.append("a tag is only allowed with MESSAGE_TAG")
        if not isinstance(message, dict) or not isinstance(message.get("text"), str):
            problems.append("message{text} is required")
        unknown = set(params) - {"recipient", "message", "messaging_type", "tag", "notification_type"}
        if unknown:
            problems.append(f"unknown parameters {sorted(unknown)}")
        if problems:
            self.violations.extend(f"send: {p}" for p in problems)
            raise GraphError(100, "(#100) " + "; ".join(problems))
        with self._lock:
            user = self._users.get(str(recipient["id"]))
            if user is None:
                raise GraphError(100, "(#100) No matching user found", 2018001)
            conv = self._conversation_of(user)
            text = message["text"]
            if user["platform"] == "messenger" and len(text) > MESSENGER_TEXT:
                raise GraphError(100, "(#100) Length of param message[text] must be less than or equal to 2000")
            if user["platform"] == "instagram" and len(text.encode()) > INSTAGRAM_TEXT_BYTES:
                raise GraphError(100, "(#100) Length of param message[text] must be less than or equal to 1000")
            theirs = [m["_at"] for m in conv["messages"] if m["from"]["id"] == user["id"]]
            age = time.time() - max(theirs) if theirs else float("inf")
            allowed = WINDOW_HUMAN_AGENT if kind == "MESSAGE_TAG" and tag == "HUMAN_AGENT" else WINDOW_RESPONSE
            if kind == "MESSAGE_TAG" and tag != "HUMAN_AGENT":
                allowed = 0  # other tags are not for conversations with customers
            if age > allowed:
                raise GraphError(10, "(#10) This message is sent outside of allowed window.", 2018278)
            msg = self._new_message(conv, self._us(user["platform"]), self._person(user), text, time.time())
            self.sent.append({"recipient": recipient, "messaging_type": kind, "tag": tag, "text": text,
                              "platform": user["platform"], "message_id": msg["id"]})
            return {"recipient_id": user["id"], "message_id": msg["id"]}


class Peer(peer.Peer):
    """The Facebook Page account for the contract suite: Messenger and the linked Instagram."""

    kind = "meta"
    channels = ("messenger", "instagram")

    def new_fake(self) -> FakeMeta:
        fake = FakeMeta()
        self.token = fake.token  # the one the account is configured with, whatever is revoked later
        return fake

    def account(self, url: str | None = None) -> str:
        return (f'page_id = "{self.fake.page_id}"\npage_access_token = "{self.token}"\n'
                f'api_base_url = "{url or self.fake.url}"\npoll_interval = 0.01\ncalls_per_second = 200\ntimeout = 5\n')

    def secrets(self) -> list[str]:
        return [self.token]

    def customer(self, channel: str) -> peer.Customer:
        name = f"Customer {next(self.people)}" if channel == "messenger" else f"customer_{next(self.people)}"
        user = self.fake.add_user(name, channel)
        return peer.Customer(channel, Address(channel, user["id"], name if channel == "messenger" else "@" + name), user)

    def writes(self, customer: peer.Customer, text: str) -> None:
        self.fake.message(customer.handle, text)

    def received(self, customer: peer.Customer) -> list[str]:
        return [s["message_id"] for s in self.fake.sent if s["recipient"]["id"] == customer.handle["id"]]

    def refuse_credentials(self) -> None:
        self.fake.revoke_token()

    def rate_limit_next_pull(self, seconds: int) -> float | None:
        minutes = -(-seconds // 60)  # Meta says how long in whole minutes
        usage = json.dumps({self.fake.page_id: [{"type": "pages", "call_count": 100, "total_cputime": 30,
                                                 "total_time": 30, "estimated_time_to_regain_access": minutes}]})
        self.fake.fail_next("conversations", 32, headers={"X-Business-Use-Case-Usage": usage})
        return minutes * 60.0
