"""A stateful local Twilio (REST API 2010-04-01, Messages) that checks itself against Twilio's spec.

It keeps numbers, messages, media, opt-outs and the WhatsApp 24-hour window, moves outbound
messages through queued -> sent -> delivered as they are looked at, pages newest-first with real
`next_page_uri`s (PageSize, Page, PageToken), filters `DateSent` by whole days, and checks Basic
auth (Account SID + auth token, or API key + secret) the way Twilio does.

Every request it receives and every response it returns is validated against the official
OpenAPI description (`twilio_api_v2010.json`, matched with the host rewritten to
https://api.twilio.com). The description defines no error bodies, so errors are checked against
Twilio's documented error shape instead. Violations are recorded in `violations`; the test
fixture asserts there are none.

The control API is plain Python (the fake runs in the test's process): `inbound()` injects a
customer message, `fail_next()` injects errors (429 storms, 20429, 5xx), `drop_next_post()`
makes the next send succeed on Twilio's side but lose the connection before the answer.
"""

from __future__ import annotations

import base64
import email.utils
import functools
import json
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

from console.model import Address
from fakes import peer
from fakes.spec import spec_path
from servers import http

SPEC_HOST = "https://api.twilio.com"
API = "/2010-04-01"

OPT_OUT = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"}
OPT_IN = {"START", "YES", "UNSTOP"}

ERROR_SCHEMA = {
    "type": "object",
    "required": ["code", "message", "more_info", "status"],
    "properties": {"code": {"type": "integer"}, "message": {"type": "string"},
                   "more_info": {"type": "string"}, "status": {"type": "integer"}},
}
E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def _phone_number_format(value: object) -> bool:
    """Twilio's `phone-number` format: E.164, or a channel address such as whatsapp:+E.164."""
    if not isinstance(value, str):
        return False
    address = value.split(":", 1)[1] if value.startswith("whatsapp:") else value
    return bool(E164.match(address))


def _rfc2822_format(value: object) -> bool:
    try:
        return isinstance(value, str) and email.utils.parsedate_to_datetime(value) is not None
    except (TypeError, ValueError):
        return False


@functools.lru_cache(maxsize=1)
def load_spec():
    """The official description as an openapi-core object (about 2 s: load it once per session)."""
    from openapi_core import Config, OpenAPI

    formats = {"phone-number": _phone_number_format, "date-time-rfc-2822": _rfc2822_format,
               "uri-map": lambda v: isinstance(v, dict), "currency": lambda v: isinstance(v, str)}
    config = Config(extra_format_validators=formats,
                    extra_format_unmarshallers={name: (lambda v: v) for name in formats})
    with spec_path("twilio_api_v2010.json").open(encoding="utf-8") as fh:
        return OpenAPI.from_dict(json.load(fh), config=config)


def rfc2822(epoch: float | None) -> str | None:
    return None if epoch is None else email.utils.formatdate(int(epoch), usegmt=False).replace("-0000", "+0000")


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


@dataclass
class FakeMessage:
    sid: str
    from_: str
    to: str
    body: str
    direction: str  # inbound | outbound-api
    created: int
    status: str
    sent: int | None = None
    script: list[str] = field(default_factory=list)  # statuses still to come, one per look
    error_code: int | None = None
    error_message: str | None = None
    fail_with: tuple[int, str] | None = None  # applied when the script reaches failed/undelivered
    messaging_service_sid: str | None = None
    seq: int = 0


@dataclass
class FakeMedia:
    sid: str
    parent: str
    content_type: str
    data: bytes
    created: int


@dataclass
class Fault:
    status: int
    code: int
    message: str
    retry_after: str | None
    methods: tuple[str, ...]
    count: int


@dataclass
class Seen:
    method: str
    path: str
    params: dict[str, str]


class FakeTwilio:
    def __init__(self, account_sid: str | None = None, auth_token: str | None = None,
                 numbers: tuple[str, ...] = ("+15550001111",), spec=None):
        self.account_sid = account_sid or new_sid("AC")
        self.auth_token = auth_token or secrets.token_hex(16)
        self.api_keys: dict[str, str] = {}
        self.numbers = list(numbers)
        self.spec = spec
        self.lock = threading.RLock()
        self.messages: dict[str, FakeMessage] = {}
        self.media: dict[str, list[FakeMedia]] = {}
        self.blocked: set[tuple[str, str]] = set()  # (customer, our number) after STOP
        self.whatsapp_last_inbound: dict[str, int] = {}
        self.contents: dict[str, str] = {}  # ContentSid -> body with {{1}} placeholders
        self.undeliverable: set[str] = set()
        self.invalid: set[str] = set()  # E.164-shaped numbers Twilio refuses with 21211 (no such number)
        self.filtered: set[str] = set()  # numbers whose messages a carrier filters at once (30007)
        self.faults: list[Fault] = []
        self._drop_next_post = False
        self._misanswer_next_fetch = False
        self.requests: list[Seen] = []
        self.posts: list[dict[str, str]] = []  # every accepted or refused send, in order
        self.violations: list[str] = []
        self._seq = 0
        self._server: ThreadingHTTPServer | None = None

    # ---- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "FakeTwilio":
        self._server = http.serve(self._handle)
        return self

    def stop(self) -> None:
        http.stop(self._server)
        self._server = None

    @property
    def url(self) -> str:
        """What the adapter's `api_base_url` is set to."""
        return http.url(self._server)

    # ---- control API ----------------------------------------------------------------------------
    def inbound(self, from_: str, body: str, to: str | None = None,
                media: list[tuple[str, bytes]] = (), at: float | None = None) -> str:
        """A customer texts (or WhatsApps, with `whatsapp:` addresses) one of our numbers."""
        whatsapp = from_.startswith("whatsapp:")
        to = to or (("whatsapp:" if whatsapp else "") + self.numbers[0])
        created = int(at if at is not None else time.time())
        with self.lock:
            msg = self._add(FakeMessage(new_sid("MM" if media else "SM"), from_, to, body, "inbound",
                                        created, "received", sent=created))
            for content_type, data in media:
                self.media.setdefault(msg.sid, []).append(
                    FakeMedia(new_sid("ME"), msg.sid, content_type, data, created))
            word = body.strip().upper()
            if whatsapp:
                self.whatsapp_last_inbound[from_] = max(created, self.whatsapp_last_inbound.get(from_, 0))
            elif word in OPT_OUT:
                self.blocked.add((from_, to))
            elif word in OPT_IN:
                self.blocked.discard((from_, to))
        return msg.sid

    def sent_elsewhere(self, from_: str, to: str, body: str) -> str:
        """Another tool (the Twilio console, a script) sent a message from our number."""
        now = int(time.time())
        with self.lock:
            return self._add(FakeMessage(new_sid("SM"), from_, to, body, "outbound-api", now, "sent",
                                         sent=now, script=["delivered"])).sid

    def fail_next(self, count: int = 1, status: int = 429, code: int = 20429,
                  message: str = "Too Many Requests", retry_after: str | None = "1",
                  methods: tuple[str, ...] = ("GET", "POST")) -> None:
        with self.lock:
            self.faults.append(Fault(status, code, message, retry_after, methods, count))

    def drop_next_post(self) -> None:
        """The next send is created on Twilio's side, then the connection drops before the answer."""
        with self.lock:
            self._drop_next_post = True

    def misanswer_next_fetch(self) -> None:
        """The next fetch of one message answers with another message (a peer that mixes up its
        answers): a client must not take what it says for the message it asked about."""
        with self.lock:
            self._misanswer_next_fetch = True

    def rotate_auth_token(self) -> str:
        with self.lock:
            self.auth_token = secrets.token_hex(16)
            return self.auth_token

    def add_api_key(self) -> tuple[str, str]:
        key, secret = new_sid("SK"), secrets.token_hex(16)
        self.api_keys[key] = secret
        return key, secret

    def add_content(self, body: str) -> str:
        sid = new_sid("HX")
        self.contents[sid] = body
        return sid

    def count(self, method: str | None = None, path_suffix: str = "") -> int:
        with self.lock:
            return sum(1 for r in self.requests
                       if (method is None or r.method == method) and r.path.endswith(path_suffix))

    def outbound(self) -> list[FakeMessage]:
        with self.lock:
            return sorted((m for m in self.messages.values() if m.direction != "inbound"), key=lambda m: m.seq)

    # ---- state ----------------------------------------------------------------------------------
    def _add(self, msg: FakeMessage) -> FakeMessage:
        self._seq += 1
        msg.seq = self._seq
        self.messages[msg.sid] = msg
        return msg

    def _look(self, msg: FakeMessage) -> None:
        """Outbound messages move one step along their script each time they are looked at."""
        if not msg.script:
            return
        msg.status = msg.script.pop(0)
        if msg.status in ("sent", "delivered") and msg.sent is None:
            msg.sent = int(time.time())
        if msg.status in ("failed", "undelivered") and msg.fail_with:
            msg.error_code, msg.error_message = msg.fail_with

    def _uri(self, suffix: str) -> str:
        return f"{API}/Accounts/{self.account_sid}{suffix}"

    def _render(self, msg: FakeMessage) -> dict:
        media = len(self.media.get(msg.sid, ()))
        segments = max(1, -(-len(msg.body) // 153)) if msg.body else 1
        return {
            "account_sid": self.account_sid, "api_version": "2010-04-01", "body": msg.body,
            "date_created": rfc2822(msg.created), "date_sent": rfc2822(msg.sent),
            "date_updated": rfc2822(max(msg.created, msg.sent or 0)), "direction": msg.direction,
            "error_code": msg.error_code, "error_message": msg.error_message, "from": msg.from_,
            "messaging_service_sid": msg.messaging_service_sid, "num_media": str(media),
            "num_segments": str(segments), "price": None, "price_unit": "USD", "sid": msg.sid,
            "status": msg.status, "to": msg.to, "uri": self._uri(f"/Messages/{msg.sid}.json"),
            "subresource_uris": {"media": self._uri(f"/Messages/{msg.sid}/Media.json"),
                                 "feedback": self._uri(f"/Messages/{msg.sid}/Feedback.json")},
        }

    def _render_media(self, media: FakeMedia) -> dict:
        return {"account_sid": self.account_sid, "content_type": media.content_type,
                "date_created": rfc2822(media.created), "date_updated": rfc2822(media.created),
                "parent_sid": media.parent, "sid": media.sid,
                "uri": self._uri(f"/Messages/{media.parent}/Media/{media.sid}.json")}

    # ---- endpoints ------------------------------------------------------------------------------
    def list_messages(self, params: dict[str, str]) -> tuple[int, dict]:
        def day(value: str) -> str:
            return value[:10]

        items = sorted(self.messages.values(), key=lambda m: (m.created, m.seq), reverse=True)
        if "To" in params:
            items = [m for m in items if m.to == params["To"]]
        if "From" in params:
            items = [m for m in items if m.from_ == params["From"]]
        for name, test in (("DateSent", lambda d, v: d == v), ("DateSent<", lambda d, v: d <= v),
                           ("DateSent>", lambda d, v: d >= v)):
            if name in params:
                items = [m for m in items if m.sent is not None
                         and test(time.strftime("%Y-%m-%d", time.gmtime(m.sent)), day(params[name]))]
        size = min(int(params.get("PageSize", 50)), 1000)
        page = int(params.get("Page", 0))
        token = params.get("PageToken")
        start = 0
        if token:  # PageToken names the last item of the previous page: stable while new ones arrive
            sids = [m.sid for m in items]
            start = sids.index(token[2:]) + 1 if token[2:] in sids else len(items)
        chunk = items[start:start + size]
        for msg in chunk:
            self._look(msg)
        filters = [(k, params[k]) for k in ("To", "From", "DateSent", "DateSent<", "DateSent>") if k in params]
        base = self._uri("/Messages.json")

        def uri(extra: list[tuple[str, object]]) -> str:
            return base + "?" + urlencode(filters + [("PageSize", size)] + extra)

        more = start + size < len(items)
        return 200, {
            "end": start + len(chunk) - 1 if chunk else start, "start": start, "page": page, "page_size": size,
            "first_page_uri": uri([("Page", 0)]), "previous_page_uri": None,
            "next_page_uri": uri([("Page", page + 1), ("PageToken", "PA" + chunk[-1].sid)]) if more and chunk else None,
            "uri": uri([("Page", page)] + ([("PageToken", token)] if token else [])),
            "messages": [self._render(m) for m in chunk],
        }

    def create_message(self, form: dict[str, str]) -> tuple[int, dict]:
        self.posts.append(dict(form))
        to, sender = form.get("To", ""), form.get("From", "")
        service = form.get("MessagingServiceSid")
        whatsapp = to.startswith("whatsapp:")
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        if not E164.match(to.removeprefix("whatsapp:")) or to.removeprefix("whatsapp:") in self.invalid:
            return _error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if service and not sender:
            sender = ("whatsapp:" if whatsapp else "") + self.numbers[0]
        if sender.removeprefix("whatsapp:") not in self.numbers:
            return _error(400, 21606, f"The From phone number {sender} is not a valid, SMS-capable inbound "
                                      "phone number or short code for your account.")
        if sender.startswith("whatsapp:") != whatsapp:
            return _error(400, 21910, "Invalid From and To pair. From and To should be of the same channel")
        content = form.get("ContentSid")
        body = form.get("Body", "")
        if content:
            if content not in self.contents:
                return _error(400, 21655, "The ContentSid is Invalid.")
            body = self.contents[content]
            for key, value in json.loads(form.get("ContentVariables") or "{}").items():
                body = body.replace("{{" + key + "}}", str(value))
        if not body and not form.get("MediaUrl"):
            return _error(400, 21602, "Message body is required.")
        if len(body) > 1600:
            return _error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        if (to, sender) in self.blocked:
            return _error(400, 21610, "Attempt to send to unsubscribed recipient")
        msg = FakeMessage(new_sid("SM"), sender, to, body, "outbound-api", int(time.time()), "queued",
                          script=["sent", "delivered"], messaging_service_sid=service)
        if whatsapp and not content and time.time() - self.whatsapp_last_inbound.get(to, 0) > 24 * 3600:
            # As on Twilio: accepted, then failed asynchronously once WhatsApp refuses it.
            msg.script, msg.fail_with = ["failed"], (
                63016, "Failed to send freeform message because you are outside the allowed window. "
                       "If you are using WhatsApp, please use a Message Template.")
        elif to.removeprefix("whatsapp:") in self.filtered:
            msg.script, msg.fail_with = ["failed"], (30007, "Message filtered")
        elif to.removeprefix("whatsapp:") in self.undeliverable:
            msg.script, msg.fail_with = ["sent", "undelivered"], (30003, "Unreachable destination handset")
        self._add(msg)
        return 201, self._render(msg)

    def route(self, method: str, path: str, params: dict[str, str], form: dict[str, str]) -> tuple[int, object]:
        prefix = f"{API}/Accounts/{self.account_sid}"
        if path == prefix + ".json" and method == "GET":
            return 200, {"sid": self.account_sid, "friendly_name": "Acme Bakery", "status": "active",
                         "type": "Full", "auth_token": self.auth_token, "owner_account_sid": self.account_sid,
                         "date_created": rfc2822(0), "date_updated": rfc2822(0), "uri": prefix + ".json",
                         "subresource_uris": {"messages": prefix + "/Messages.json"}}
        if not path.startswith(prefix + "/"):
            return _error(404, 20404, f"The requested resource {path} was not found")
        rest = path[len(prefix):]
        if rest == "/Messages.json":
            return self.list_messages(params) if method == "GET" else self.create_message(form)
        if rest == "/IncomingPhoneNumbers.json":
            wanted = params.get("PhoneNumber")
            found = [n for n in self.numbers if wanted in (None, n)]
            return 200, {"start": 0, "end": max(0, len(found) - 1), "page": 0, "page_size": 50,
                         "first_page_uri": prefix + "/IncomingPhoneNumbers.json", "next_page_uri": None,
                         "previous_page_uri": None, "uri": prefix + "/IncomingPhoneNumbers.json",
                         "incoming_phone_numbers": [{"account_sid": self.account_sid, "phone_number": n,
                                                     "friendly_name": n, "sid": "PN" + "0" * 31 + str(i),
                                                     "capabilities": {"sms": True, "mms": True, "voice": True}}
                                                    for i, n in enumerate(found)]}
        match = re.fullmatch(r"/Messages/((?:SM|MM)[0-9a-f]{32})(?:/Media(?:/(ME[0-9a-f]{32}))?)?(\.json)?", rest)
        if not match or match.group(1) not in self.messages:
            return _error(404, 20404, f"The requested resource {path} was not found")
        msg = self.messages[match.group(1)]
        media = self.media.get(msg.sid, [])
        if "/Media" not in rest:
            if self._misanswer_next_fetch:
                self._misanswer_next_fetch = False
                msg = max((m for m in self.messages.values() if m.sid != msg.sid), key=lambda m: m.seq)
            self._look(msg)
            return 200, self._render(msg)
        if match.group(2) is None:
            return 200, {"start": 0, "end": max(0, len(media) - 1), "page": 0, "page_size": 50,
                         "first_page_uri": self._uri(f"/Messages/{msg.sid}/Media.json"), "next_page_uri": None,
                         "previous_page_uri": None, "uri": self._uri(f"/Messages/{msg.sid}/Media.json"),
                         "media_list": [self._render_media(m) for m in media]}
        item = next((m for m in media if m.sid == match.group(2)), None)
        if item is None:
            return _error(404, 20404, f"The requested resource {path} was not found")
        if match.group(3):
            return 200, self._render_media(item)
        return 307, f"/_cdn/{item.sid}?Expires={int(time.time()) + 300}"  # Twilio redirects to its CDN

    def authenticate(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        if user == self.account_sid:
            return secrets.compare_digest(password, self.auth_token)
        return user in self.api_keys and secrets.compare_digest(password, self.api_keys[user])

    # ---- contract checks ------------------------------------------------------------------------
    def check_request(self, method: str, path: str, query: list[tuple[str, str]], headers: dict,
                      body: bytes, content_type: str) -> object | None:
        if self.spec is None:
            return None
        from openapi_core.testing import MockRequest

        request = MockRequest(SPEC_HOST, method, path, args=query, headers=headers, data=body,
                              content_type=content_type or "application/json")
        try:
            self.spec.validate_request(request)
        except Exception as exc:
            self.violations.append(f"request {method} {path}: {_explain(exc)}")
        return request

    def check_response(self, request: object | None, status: int, payload: bytes, where: str) -> None:
        if self.spec is None or request is None:
            return
        if status >= 400:
            import jsonschema

            try:
                jsonschema.validate(json.loads(payload), ERROR_SCHEMA)
            except Exception as exc:
                self.violations.append(f"error response {where}: {exc}")
            return
        from openapi_core.testing import MockResponse

        try:
            self.spec.validate_response(request, MockResponse(payload, status, content_type="application/json"))
        except Exception as exc:
            self.violations.append(f"response {status} {where}: {_explain(exc)}")

    # ---- HTTP ---------------------------------------------------------------------------------
    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        split = urlsplit(request.path)
        path = split.path
        query = parse_qsl(split.query, keep_blank_values=True)
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip()
        form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True)) if body else {}

        if path.startswith("/_cdn/"):  # the media CDN: outside the REST API and its description
            media = next((m for ms in self.media.values() for m in ms if m.sid == path[6:]), None)
            if media is None:
                _reply(request, 404, b"not found", "text/plain")
            else:
                _reply(request, 200, media.data, media.content_type)
            return

        with self.lock:
            self.requests.append(Seen(method, path, dict(query)))
        in_spec = path.endswith(".json")
        checked = self.check_request(method, path, query, dict(request.headers.items()), body, content_type) \
            if in_spec else None
        extra: dict[str, str] = {}
        drop = False
        with self.lock:
            fault = next((f for f in self.faults if method in f.methods and f.count > 0), None)
            if not self.authenticate(request.headers.get("Authorization")):
                status, result = _error(401, 20003, "Authentication Error - invalid username")
                extra["WWW-Authenticate"] = 'Basic realm="Twilio API"'
            elif fault is not None:
                fault.count -= 1
                status, result = _error(fault.status, fault.code, fault.message)
                if fault.retry_after is not None:
                    extra["Retry-After"] = fault.retry_after
            else:
                status, result = self.route(method, path, dict(query), form)
                if method == "POST" and status == 201 and self._drop_next_post:
                    self._drop_next_post, drop = False, True
        if drop:
            request.close_connection = True
            try:
                request.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if status == 307:
            _reply(request, 307, b"", "text/plain", {"Location": str(result)})
            return
        payload = json.dumps(result).encode()
        self.check_response(checked, status, payload, f"{method} {path}")
        _reply(request, status, payload, headers=extra)


def _reply(request: BaseHTTPRequestHandler, status: int, payload: bytes, content_type: str = "application/json",
           headers: dict[str, str] | None = None) -> None:
    request.send_response(status)
    request.send_header("Content-Type", content_type)
    request.send_header("Content-Length", str(len(payload)))
    for key, value in (headers or {}).items():
        request.send_header(key, value)
    request.end_headers()
    request.wfile.write(payload)


def _explain(exc: BaseException) -> str:
    parts = [repr(exc)]
    cause = exc.__cause__
    while cause is not None:
        parts.append(repr(cause))
        for err in getattr(cause, "schema_errors", None) or ():
            parts.append(f"{list(err.absolute_path)}: {err.message}")
        cause = cause.__cause__
    return "; ".join(parts)


def _error(status: int, code: int, message: str) -> tuple[int, dict]:
    return status, {"code": code, "message": message,
                    "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}


class Peer(peer.Peer):
    """The Twilio account for the contract suite: SMS and WhatsApp on one number."""

    kind = "twilio"
    channels = ("sms", "whatsapp")
    OURS = "+15550001111"

    def new_fake(self) -> FakeTwilio:
        fake = FakeTwilio(numbers=(self.OURS,), spec=load_spec())
        self.token = fake.auth_token  # the one the account is configured with, whatever is rotated later
        return fake

    def account(self, url: str | None = None) -> str:
        return (f'account_sid = "{self.fake.account_sid}"\nauth_token = "{self.token}"\n'
                f'numbers = ["{self.OURS}", "whatsapp:{self.OURS}"]\napi_base_url = "{url or self.fake.url}"\n'
                "poll_interval = 0.01\ntimeout = 5\n")

    def secrets(self) -> list[str]:
        return [self.token, self.fake.auth_token]

    def customer(self, channel: str) -> peer.Customer:
        number = f"+1555765{next(self.people):04d}"
        return peer.Customer(channel, Address("phone", number), ("whatsapp:" if channel == "whatsapp" else "") + number)

    def writes(self, customer: peer.Customer, text: str) -> None:
        self.fake.inbound(customer.handle, text)

    def received(self, customer: peer.Customer) -> list[str]:
        return [m.sid for m in self.fake.outbound() if m.to == customer.handle]

    def refuse_credentials(self) -> None:
        self.fake.rotate_auth_token()

    def rate_limit_next_pull(self, seconds: int) -> float | None:
        self.fake.fail_next(retry_after=str(seconds), methods=("GET",))
        return float(seconds)
