"""The email channel: IMAP in (UID sync per folder, IDLE), SMTP out, the Sent folder as a journal.

Pulling: each watched folder (default INBOX) and the Sent folder are read by UID. The cursor is
JSON `{"folders": {name: {"uidvalidity": V, "last_uid": U}}, "synced": n}` and comes back in the
same PullResult as the messages it covers, so the store advances it in one transaction with them.
A first sync goes in batches (`batch_size`, default 500) with `more=True` and progress. A changed
UIDVALIDITY re-reads that folder from the start: messages are keyed by Message-ID, so the store
keeps what it has and adds nothing twice; nothing is ever deleted locally, and a notice says so.
When caught up and the server has IDLE, `pull` waits in IDLE on the first folder for new mail.

Identity of a message: its Message-ID (`<...>`), or for mail without one a hash of its bytes. A
different mail reusing a stored Message-ID (other sender, Date or Subject: the fingerprint) is
kept as `<id>#<fingerprint>`; copies of one mail (INBOX and Sent, two folders) are stored once.
Thread key: the thread's root Message-ID; `related_keys` (References + In-Reply-To) let a reply
whose References were trimmed still find its conversation; a reply whose headers match nothing
stored joins the same customer's recent conversation with the same subject ("Re:" and the like
removed; console/subjects.py), the last resort the store applies.

Peer: the sender for inbound mail; for our own mail (found in the Sent folder, or From our
address) the first To recipient, direction "out". A Reply-To that differs from the sender is shown
as a first line of the body ("Reply-To: ..."); replies go to the sender's identity.

Sending never sends twice. Before SMTP, the message is APPENDed to the Sent folder flagged
`$ConsoleSending` (`\\Draft` on servers without keywords); between RCPT and DATA the copy also gets
`$ConsoleSmtpData`; after the SMTP server accepts the message both flags are removed. `reconcile`
(and a repeated `send`) looks for the deterministic Message-ID in Sent: absent, or present without
`$ConsoleSmtpData`, means DATA never started, so the copy is removed and the message is sent;
present and cleared means sent; present with `$ConsoleSmtpData` means the process stopped during
the SMTP exchange, so the outcome is reported as "unknown" and never retried automatically. A
connection that breaks during DATA gives the same "unknown" result; a definite SMTP refusal
removes the journal copy again. Pending copies are skipped when the Sent folder is pulled: the
outbox owns them.

A pull waiting in IDLE ends within a second of `interrupt()` or `close()` (or of its task being
cancelled), so stopping the engine does not wait for the IDLE timeout.

Speed of a first sync: bodies are fetched by a lean reader of the FETCH answer on imapclient's
connection (console/channels/imapfetch.py); while the store applies one batch, the next one is already being fetched
(a prefetch for the cursor just returned, used only if the next pull asks for exactly that
cursor), and large fetches are parsed by worker processes (`parse_workers`, default: one per
core beyond the first, at most 2; 0 parses in this process), which are started for the first
large batch and stopped once the sync has caught up.

Every socket has a timeout, certificates are always verified (`ca_file` adds a CA to trust), and
neither the password nor server responses containing it ever reach an exception or a log.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import logging
import re
import smtplib
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate
from pathlib import Path
from typing import Callable

from console.config import AccountConfig, ConfigError, Secret, WorkspaceConfig
from console.channels.imapfetch import Fetched, UnexpectedResponse, fetch_bodies
from console.mailparse import ParsedMail, parse, part_bytes
from console.subjects import reply_subject
from console.model import (Address, AuthError, ChannelError, InboundMessage, Outgoing, PermanentError, PullResult,
                           SendResult, TransientError)

log = logging.getLogger("console.channels.email")

PENDING = "$ConsoleSending"  # on the Sent copy from APPEND until the SMTP server accepted it
DATA_STARTED = "$ConsoleSmtpData"  # added just before SMTP DATA: from then on it may have left
IN_DOUBT = ("console stopped while handing this to the mail server; check whether it arrived before "
            "sending it again")
FETCH_CHUNK = 100
POOL_THRESHOLD = 200  # parse in worker processes only when a pull fetches at least this many
_UNSAFE_HEADER = re.compile(r"[\r\n\x00]")
_MSGID_OK = re.compile(r"^<[!-;=?-~]{1,900}>$")  # printable ASCII without < > or space


class SendInDoubt(ChannelError):
    """The connection broke while the SMTP server was taking the message: it may have left."""


@dataclass(frozen=True, slots=True)
class _SentCopy:
    uid: int
    pending: bool  # still flagged PENDING: the send was not confirmed
    data_started: bool  # SMTP DATA had begun: the mail may have left


@dataclass
class EmailSettings:
    imap_host: str
    imap_port: int
    imap_security: str
    username: str
    password: Secret
    smtp_host: str
    smtp_port: int
    smtp_security: str
    smtp_username: str
    from_address: str
    from_name: str = ""
    signature: str = ""
    folders: list[str] = field(default_factory=lambda: ["INBOX"])
    sent_folder: str = "Sent"
    ca_file: str | None = None
    poll_interval: float = 60.0
    idle_timeout: float = 25 * 60.0
    timeout: float = 30.0
    batch_size: int = 500
    parse_workers: int = -1  # -1: one per core beyond the first, at most 2


def configure(account: AccountConfig, workspace: WorkspaceConfig) -> "EmailChannel":
    def choice(key: str, default: str, options: tuple[str, ...]) -> str:
        value = account.str(key, default)
        if value not in options:
            raise account.error(key, f"expected one of {', '.join(repr(o) for o in options)}, got {value!r}")
        return value

    def text(key: str, default: str = "") -> str:
        value = account.str(key, default) or ""
        if _UNSAFE_HEADER.search(value):
            raise account.error(key, "must be one line (no line breaks)")
        return value

    imap_security = choice("imap_security", "tls", ("tls", "starttls"))
    smtp_security = choice("smtp_security", "tls", ("tls", "starttls"))
    username = text("username") or text("imap_user")
    if not username:
        raise account.error("username", f"missing; expected the IMAP login name (account '{account.name}')")
    from_address = text("from_address") or text("email") or (username if "@" in username else "")
    try:
        parsed_from = HeaderAddress(addr_spec=from_address)
        if not parsed_from.domain:
            raise ValueError
    except Exception:
        raise account.error("from_address", f"expected an email address such as shop@example.com, got {from_address!r}") from None
    ca_file = account.str("ca_file")
    if ca_file is not None:
        path = Path(ca_file).expanduser()
        if not path.is_file():
            raise account.error("ca_file", f"no such file: {path}; give the PEM certificate of the CA to trust")
        ca_file = str(path)
    folders = account.str_list("folders", ["INBOX"])
    if not folders:
        raise account.error("folders", "list at least one folder to watch, e.g. [\"INBOX\"]")
    settings = EmailSettings(
        imap_host=text("imap_host") or account.str("imap_host", required=True),
        imap_port=account.int("imap_port", 993 if imap_security == "tls" else 143, 1, 65535),
        imap_security=imap_security,
        username=username,
        password=account.secret("password"),
        smtp_host=text("smtp_host") or account.str("smtp_host", required=True),
        smtp_port=account.int("smtp_port", 465 if smtp_security == "tls" else 587, 1, 65535),
        smtp_security=smtp_security,
        smtp_username=text("smtp_username") or username,
        from_address=from_address,
        from_name=text("from_name") or text("display_name"),
        signature=account.str("signature", "") or "",
        folders=folders,
        sent_folder=text("sent_folder", "Sent"),
        ca_file=ca_file,
        poll_interval=account.float("poll_interval", 60.0, minimum=1.0),
        idle_timeout=account.float("idle_timeout", 25 * 60.0, minimum=1.0),
        timeout=account.float("timeout", 30.0, minimum=1.0),
        batch_size=account.int("batch_size", 500, 1, 10_000),
        parse_workers=account.int("parse_workers", -1, -1, 16),
    )
    return EmailChannel(account.name, settings)


# ---- the adapter -----------------------------------------------------------------------------------

class EmailChannel:
    kind = "email"
    channels = ("email",)

    def __init__(self, account: str, settings: EmailSettings):
        self.account = account
        self.settings = settings
        self.poll_interval = settings.poll_interval
        # Tests set this to interrupt a sync at a named step (see `_step`).
        self.checkpoint: Callable[[str], None] | None = None
        self._imap = None  # the pull connection, only touched by pull's worker thread
        self._side = None  # a second connection for send / reconcile / attachments
        self._side_lock = threading.Lock()
        self._closing = threading.Event()
        self._interrupt = threading.Event()
        self._pulled_once = False
        self._pull_lock = threading.Lock()  # held while a pull runs in its worker thread
        self._idle_ok = False
        self._keywords_ok = True
        self._ahead: tuple[str | None, concurrent.futures.Future] | None = None  # (cursor, prefetch)
        self._ahead_runner: concurrent.futures.ThreadPoolExecutor | None = None
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._pool_broken = False

    # ---- connections ----------------------------------------------------------------------------
    def _context(self) -> ssl.SSLContext:
        try:
            return ssl.create_default_context(cafile=self.settings.ca_file)
        except (OSError, ssl.SSLError):
            raise ChannelError(f"{self.account}: cannot read ca_file {self.settings.ca_file}; give a PEM certificate") from None

    def _password(self) -> str:
        return self.settings.password.get()

    def _connect_imap(self):
        from imapclient import IMAPClient

        s = self.settings
        with self._errors("IMAP"):
            if s.imap_security == "tls":
                conn = IMAPClient(s.imap_host, s.imap_port, ssl=True, ssl_context=self._context(), timeout=s.timeout)
            else:
                conn = IMAPClient(s.imap_host, s.imap_port, ssl=False, timeout=s.timeout)
                conn.starttls(self._context())
            try:
                conn.normalise_times = False
                conn.login(s.username, self._password())
                caps = conn.capabilities()
            except BaseException:
                _quietly(conn.shutdown)
                raise
        self._idle_ok = b"IDLE" in caps
        # With IDLE, pull itself waits for mail, so the engine should call it again at once.
        self.poll_interval = 0.0 if self._idle_ok else s.poll_interval
        return conn

    def _drop(self, which: str) -> None:
        conn = getattr(self, which)
        setattr(self, which, None)
        if conn is not None:
            _quietly(conn.logout)
            _quietly(conn.shutdown)

    def _step(self, name: str) -> None:
        if self.checkpoint is not None:
            self.checkpoint(name)

    class _ErrorMap:
        def __init__(self, channel: "EmailChannel", what: str):
            self.channel, self.what = channel, what

        def __enter__(self):
            return self

        def __exit__(self, kind, exc, tb):
            if exc is None or not isinstance(exc, Exception) or isinstance(exc, (ChannelError, ConfigError)):
                return False
            raise self.channel._translate(exc, self.what) from None

    def _errors(self, what: str) -> "_ErrorMap":
        return EmailChannel._ErrorMap(self, what)

    def _translate(self, exc: Exception, what: str) -> ChannelError:
        from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

        s = self.settings
        host, port = (s.imap_host, s.imap_port) if what == "IMAP" else (s.smtp_host, s.smtp_port)
        key = s.password.key
        if isinstance(exc, ssl.SSLCertVerificationError):
            reason = getattr(exc, "verify_message", "") or "verification failed"
            hint = (f"the CA in ca_file ({s.ca_file}) did not sign it" if s.ca_file
                    else "if this server uses its own CA, set ca_file to that CA's certificate")
            return AuthError(f"{self.account}: the {what} server {host}:{port} presented a certificate that is not "
                             f"trusted ({reason}); {hint}")
        if isinstance(exc, (LoginError, smtplib.SMTPAuthenticationError)):
            return AuthError(f"{self.account}: the {what} server refused the username or password; check {key}")
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return AuthError(f"{self.account}: the SMTP server does not offer login on {host}:{port}; "
                             "check smtp_port and smtp_security")
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return TransientError(f"{self.account}: the {what} server {host}:{port} did not answer in "
                                  f"{s.timeout:.0f}s")
        if isinstance(exc, ssl.SSLError):
            return TransientError(f"{self.account}: TLS with {host}:{port} failed ({exc.reason or 'ssl error'}); "
                                  f"check {what.lower()}_security and the port")
        if isinstance(exc, smtplib.SMTPResponseException):
            code = exc.smtp_code
            if 500 <= code < 600:
                return PermanentError(f"{self.account}: the SMTP server refused the message ({code})", str(code))
            return TransientError(f"{self.account}: the SMTP server is busy ({code}); will retry")
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            return PermanentError(f"{self.account}: the SMTP server refused the recipient")
        if isinstance(exc, (smtplib.SMTPException, IMAPClientAbortError, OSError, EOFError)):
            detail = type(exc).__name__ if not isinstance(exc, OSError) else (exc.strerror or type(exc).__name__)
            return TransientError(f"{self.account}: lost the connection to {host}:{port} ({detail})")
        if isinstance(exc, IMAPClientError):
            text = _server_text(exc, self.settings)
            return TransientError(f"{self.account}: the IMAP server said: {text}")
        return ChannelError(f"{self.account}: {what} failed ({type(exc).__name__})")

    # ---- pulling --------------------------------------------------------------------------------
    async def pull(self, cursor: str | None) -> PullResult:
        work = asyncio.ensure_future(asyncio.to_thread(self._pull, cursor))
        work.add_done_callback(lambda done: done.cancelled() or done.exception())  # never "unretrieved"
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            # The worker thread cannot be cancelled; end its IDLE so it lets go of the connection.
            self._interrupt.set()
            raise

    def interrupt(self) -> None:
        """End the pull waiting in IDLE within a second, or keep the next pull from waiting at all
        (thread-safe; the engine calls it on stop, which may come between two pulls)."""
        self._interrupt.set()

    def _pull(self, cursor: str | None) -> PullResult:
        with self._pull_lock:
            try:
                return self._pull_locked(cursor)
            finally:
                self._interrupt.clear()  # consumed by this pull, never by the start of the next one

    def _pull_locked(self, cursor: str | None) -> PullResult:
        ahead = self._take_ahead(cursor)
        if self._imap is None:
            self._imap = self._connect_imap()
        self._step("connected")
        try:
            with self._errors("IMAP"):
                result = ahead.result() if ahead is not None else self._sync(self._imap, cursor)
                if result.more and not self._closing.is_set() and not self._interrupt.is_set():
                    self._start_ahead(result.cursor)
                elif not result.more:
                    self._stop_pool()  # caught up: no idle worker processes while waiting for mail
                first, self._pulled_once = not self._pulled_once, True
                if (result.messages or result.more or first or not self._idle_ok or self._closing.is_set()
                        or self._interrupt.is_set()):
                    return result
                folders = self._watched(self._imap)
                wait = self.settings.idle_timeout if len(folders) == 1 else min(
                    self.settings.idle_timeout, self.settings.poll_interval)
                if self._idle(self._imap, folders[0], wait):
                    return self._sync(self._imap, result.cursor or cursor)
                return result
        except BaseException:
            self._settle_ahead()
            self._drop("_imap")
            raise

    # ---- prefetch and parse workers -------------------------------------------------------------
    def _start_ahead(self, cursor: str | None) -> None:
        """Fetch the batch after `cursor` in the background while the store applies this one."""
        if self._ahead_runner is None:
            self._ahead_runner = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"{self.account}-prefetch")
        conn = self._imap
        self._ahead = (cursor, self._ahead_runner.submit(self._sync, conn, cursor, True))

    def _take_ahead(self, cursor: str | None) -> concurrent.futures.Future | None:
        """The prefetch for exactly `cursor`, or None. A prefetch for another cursor (the last batch
        was not stored) is waited for and dropped, with its connection if it failed."""
        if self._ahead is None:
            return None
        wanted, future = self._ahead
        self._ahead = None
        if wanted == cursor:
            return future
        concurrent.futures.wait([future])
        if future.cancelled() or future.exception() is not None:
            self._drop("_imap")
        return None

    def _settle_ahead(self) -> None:
        """Wait for a running prefetch to let go of the pull connection; its result is dropped."""
        if self._ahead is not None:
            _, future = self._ahead
            self._ahead = None
            concurrent.futures.wait([future])

    def _workers(self) -> int:
        wanted = self.settings.parse_workers
        if wanted < 0:
            wanted = min(2, (os.cpu_count() or 1) - 1)
        return wanted

    def _parse_all(self, raws: list[bytes]) -> "concurrent.futures.Future | list[ParsedMail]":
        """Parse in the worker processes (a future of the list) or, without them, right here."""
        pool = self._pool
        if pool is not None:
            try:
                return pool.submit(_parse_many, raws)
            except Exception:  # a broken pool (a worker died): parse here from now on
                self._pool_broken = True
                self._stop_pool()
        return [parse(raw) for raw in raws]

    def _parsed(self, job, raws: list[bytes]) -> list[ParsedMail]:
        if isinstance(job, list):
            return job
        try:
            return job.result()
        except Exception:
            self._pool_broken = True
            self._stop_pool()
            return [parse(raw) for raw in raws]

    def _ensure_pool(self) -> None:
        workers = self._workers()
        if self._pool is None and workers > 0 and not self._pool_broken:
            try:
                # spawn, not fork: this process has threads (and a SQLite connection) of its own.
                self._pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
            except Exception:
                self._pool_broken = True

    def _stop_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _watched(self, conn) -> list[str]:
        folders = list(dict.fromkeys(self.settings.folders))
        if self.settings.sent_folder and self.settings.sent_folder not in folders:
            if getattr(self, "_sent_exists", None) is None:
                self._sent_exists = conn.folder_exists(self.settings.sent_folder)
            if self._sent_exists:
                folders.append(self.settings.sent_folder)
        return folders

    def _sync(self, conn, cursor: str | None, ahead: bool = False) -> PullResult:
        state = _load_cursor(cursor)
        known = state["folders"]
        budget = self.settings.batch_size
        messages: list[InboundMessage] = []
        notices: list[str] = []
        remaining = 0
        for folder in self._watched(conn):
            try:
                info = conn.select_folder(folder, readonly=True)
            except Exception as exc:
                from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

                if isinstance(exc, IMAPClientError) and not isinstance(exc, IMAPClientAbortError):
                    raise TransientError(f"{self.account}: cannot open folder {folder!r} "
                                         f"({_server_text(exc, self.settings)}); check folders") from None
                raise
            self._step("selected")
            uidvalidity = int(info.get(b"UIDVALIDITY", 0))
            uidnext = int(info.get(b"UIDNEXT", 0) or 0)
            mine = known.get(folder)
            if mine is None or mine["uidvalidity"] != uidvalidity:
                if mine is not None:
                    notices.append(f"{folder}: the server renumbered its messages (UIDVALIDITY changed); "
                                   "re-reading it and matching by Message-ID, nothing was deleted")
                mine = known[folder] = {"uidvalidity": uidvalidity, "last_uid": 0}
            if uidnext and uidnext - 1 <= mine["last_uid"]:
                continue
            if int(info.get(b"EXISTS", 1)) == 0:
                if uidnext:
                    mine["last_uid"] = max(mine["last_uid"], uidnext - 1)
                continue
            uids = sorted(u for u in conn.search(["UID", f"{mine['last_uid'] + 1}:*"]) if u > mine["last_uid"])
            self._step("searched")
            take = uids[:budget] if budget > 0 else []
            remaining += len(uids) - len(take)
            if take:
                messages.extend(self._fetch(conn, folder, take, ahead))
                self._step("parsed")
                budget -= len(take)
            if len(take) == len(uids):
                mine["last_uid"] = max([mine["last_uid"], *take, uidnext - 1 if uidnext else 0])
            else:
                mine["last_uid"] = take[-1] if take else mine["last_uid"]
        more = remaining > 0
        done = state["synced"] + len(messages)
        progress = (done, done + remaining) if more or state["synced"] else None
        state["synced"] = done if more else 0
        return PullResult(messages=messages, cursor=json.dumps(state, sort_keys=True), more=more,
                          progress=progress, notice="; ".join(notices))

    def _fetch(self, conn, folder: str, uids: list[int], ahead: bool = False) -> list[InboundMessage]:
        found: list[InboundMessage] = []
        sent = folder == self.settings.sent_folder
        if len(uids) >= POOL_THRESHOLD:
            self._ensure_pool()
        # While the workers parse one chunk, the next one is fetched: (jobs, raws, dates) per chunk.
        waiting: list[tuple[list, list[bytes], list[float | None]]] = []

        def collect(upto: int) -> None:
            while len(waiting) > upto:
                jobs, raws, dates = waiting.pop(0)
                parsed = [mail for job, part in jobs for mail in self._parsed(job, part)]
                for mail, raw, internal in zip(parsed, raws, dates):
                    found.append(self.to_inbound(mail, raw, sent, internal))

        for start in range(0, len(uids), FETCH_CHUNK):
            if ahead and self._closing.is_set():
                raise TransientError(f"{self.account}: stopped")  # a prefetch nobody will use
            chunk = uids[start:start + FETCH_CHUNK]
            data = self._fetch_chunk(conn, chunk)
            self._step("fetched")
            raws: list[bytes] = []
            dates: list[float | None] = []
            for uid in chunk:
                item = data.get(uid)
                if item is None:
                    continue  # expunged between SEARCH and FETCH: it is gone from the server
                if sent and (PENDING.encode() in item.flags or (not self._keywords_ok and b"\\Draft" in item.flags)):
                    continue  # our own send in progress: the outbox owns it until it is settled
                raws.append(item.body)
                dates.append(item.internal)
            del data
            workers = max(1, self._workers()) if self._pool is not None else 1
            step = max(1, -(-len(raws) // workers))
            jobs = [(self._parse_all(raws[i:i + step]), raws[i:i + step]) for i in range(0, len(raws), step)]
            waiting.append((jobs, raws, dates))
            collect(1)
        collect(0)
        return found

    def _fetch_chunk(self, conn, uids: list[int]) -> dict[int, Fetched]:
        """Bodies, flags and dates by UID: the lean reader, or imapclient when it cannot read the answer."""
        try:
            return fetch_bodies(conn, uids)
        except UnexpectedResponse as exc:
            log.info("%s: reading FETCH the slow way (%s)", self.account, exc)
        found = {}
        for uid, item in conn.fetch(uids, ["BODY.PEEK[]", "INTERNALDATE", "FLAGS"]).items():
            body = item.get(b"BODY[]")
            if isinstance(body, bytes):
                internal = item.get(b"INTERNALDATE")
                found[uid] = Fetched(body, tuple(item.get(b"FLAGS", ())), internal.timestamp() if internal else None)
        return found

    def to_inbound(self, mail: ParsedMail, raw: bytes, from_sent_folder: bool, internal: float | None) -> InboundMessage:
        """Turn a parsed mail into the console's message (direction, peer, thread)."""
        me = self.settings.from_address.lower()
        ours = from_sent_folder or mail.from_addr == me
        if ours:
            recipients = [r for r in (*mail.to, *mail.cc) if r[1] != me]
            # Mail to nobody but ourselves (a note, Bcc only): keep it, under a visible placeholder.
            name, addr = recipients[0] if recipients else ("(no recipient)", "undisclosed-recipients@invalid")
        else:
            name, addr = mail.from_name, mail.from_addr
        if not addr:
            name, addr = name or "(no sender)", "unknown-sender@invalid"
        notes = []
        if not ours and mail.reply_to and mail.reply_to[0][1] != addr:
            notes.append(f"Reply-To: {mail.reply_to[0][1]}")
        notes.extend(f"[console: {problem}]" for problem in mail.problems)
        body = mail.body if not notes else "\n".join(notes) + "\n\n" + mail.body
        return InboundMessage(
            external_id=mail.message_id,
            thread_key=mail.thread_root,
            channel="email",
            direction="out" if ours else "in",
            peer=Address("email", addr, name),
            sent_at=mail.date or internal or time.time(),
            body=body,
            subject=mail.subject,
            html=mail.html,
            raw=raw,
            attachments=list(mail.attachments),
            status="sent" if ours else None,
            related_keys=mail.related,
            reply_subject=reply_subject(mail.subject),
            fingerprint=hashlib.sha256(f"{mail.from_addr}\0{mail.date}\0{mail.subject}".encode(
                "utf-8", "surrogatepass")).hexdigest()[:16],
        )

    def _idle(self, conn, folder: str, seconds: float) -> bool:
        """Wait in IDLE on `folder` until something arrives (True) or `seconds` pass (False)."""
        conn.select_folder(folder, readonly=True)
        conn.idle()
        woke = False
        try:
            deadline = time.monotonic() + seconds
            while not self._closing.is_set() and not self._interrupt.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                responses = conn.idle_check(timeout=min(1.0, left))
                if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                    woke = True
                    break
        finally:
            conn.idle_done()
        return woke

    # ---- sending --------------------------------------------------------------------------------
    def build(self, out: Outgoing, quoted: ParsedMail | None = None) -> tuple[str, bytes]:
        """(Message-ID, bytes) of the mail for `out`. Raises PermanentError for unsafe input."""
        s = self.settings
        if out.to.kind != "email":
            raise PermanentError(f"{self.account}: cannot email a {out.to.kind} address")
        message_id = self.message_id(out)
        refs = [r for r in out.thread_external_ids if _MSGID_OK.match(r)] if out.thread_key.startswith("<") else []
        subject = re.sub(r"[\x00-\x1f\x7f]+", " ", out.subject or (quoted.subject if quoted else "")).strip()
        if refs and subject and not subject.lower().startswith("re:"):
            subject = "Re: " + subject
        elif refs and not subject:
            subject = "Re:"
        to_name = out.to.display_name if not _UNSAFE_HEADER.search(out.to.display_name) else ""
        try:
            to = HeaderAddress(display_name=_one_line(to_name), addr_spec=_checked(out.to.address, "recipient"))
            sender = HeaderAddress(display_name=s.from_name, addr_spec=s.from_address)
        except (ValueError, IndexError, TypeError) as exc:
            raise PermanentError(f"{self.account}: not a valid email address ({type(exc).__name__})") from None
        msg = EmailMessage(policy=SMTP_POLICY)
        msg["From"] = sender
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = message_id
        if refs:
            msg["In-Reply-To"] = refs[-1]
            msg["References"] = " ".join(refs[:1] + refs[1:][-30:])
        # A campaign's unsubscribe links (console/outreach/messages.py): RFC 2369 and RFC 8058.
        for header, option in (("List-Unsubscribe", "list_unsubscribe"), ("List-Unsubscribe-Post", "list_unsubscribe_post")):
            value = out.options.get(option, "")
            if value and value.isascii() and not _UNSAFE_HEADER.search(value):
                msg[header] = value
        body = out.body.replace("\r\n", "\n")
        if s.signature:
            body = body.rstrip("\n") + "\n\n-- \n" + s.signature.strip("\n")
        if out.options.get("quote") == "1" and quoted is not None and quoted.body:
            when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(quoted.date)) if quoted.date else "earlier"
            who = quoted.from_name or quoted.from_addr
            body += f"\n\nOn {when} UTC, {who} wrote:\n" + "\n".join(
                "> " + line if line else ">" for line in quoted.body.strip("\n").split("\n"))
        body = body.replace("\x00", "") + "\n"
        plain = body.isascii() and max(len(line) for line in body.split("\n")) <= 998
        msg.set_content(body, charset="utf-8", cte="7bit" if plain else "quoted-printable")
        try:
            return message_id, msg.as_bytes()
        except (ValueError, TypeError, UnicodeError) as exc:  # e.g. a header the policy cannot fold
            raise PermanentError(f"{self.account}: this message cannot be encoded ({type(exc).__name__})") from None

    def message_id(self, out: Outgoing) -> str:
        key = out.idempotency_key
        if not key or not re.fullmatch(r"[A-Za-z0-9._-]{1,200}", key):
            raise PermanentError(f"{self.account}: unusable idempotency key for a Message-ID")
        domain = self.settings.from_address.rpartition("@")[2]
        return f"<console-{key}@{domain}>"

    def thread_of(self, out: Outgoing, message_id: str) -> str:
        return out.thread_key if out.thread_key.startswith("<") else message_id

    async def send(self, out: Outgoing) -> SendResult:
        return await asyncio.to_thread(self._send, out)

    def _send(self, out: Outgoing) -> SendResult:
        s = self.settings
        message_id = self.message_id(out)
        with self._side_lock:
            conn = self._side_conn()
            with self._errors("IMAP"):
                try:
                    copies = self._find_in_sent(conn, message_id)
                    quoted = None
                    if out.options.get("quote") == "1" or not out.subject:
                        quoted = self._find_parsed(conn, out.thread_external_ids[-1:])
                    message_id, data = self.build(out, quoted)
                    settled = self._settled(out, message_id, copies)
                    if settled is not None:
                        return settled
                    if copies:  # leftovers of an attempt that never reached SMTP DATA: remove them
                        self._remove(conn, [copy.uid for copy in copies])
                    flags = [b"\\Seen", self._pending_flag]
                    self._step("before_append")
                    conn.append(s.sent_folder, data, flags=flags)
                    self._step("appended")
                except ChannelError:
                    raise
                except BaseException:
                    self._drop("_side")
                    raise
            try:
                self._smtp_send(data, lambda: self._mark_data(message_id))
            except SendInDoubt as exc:
                # The journal copy stays marked: nobody can tell whether the mail left, so it is
                # reported, never sent again (at most once beats at least once for a reply).
                log.warning("%s", exc)
                return SendResult(message_id, "unknown", detail=str(exc), thread_key=self.thread_of(out, message_id))
            except ChannelError:
                self._cleanup_after_failure(message_id)
                raise
            except BaseException:
                self._drop("_side")
                raise
            self._step("smtp_accepted")
            try:
                with self._errors("IMAP"):
                    conn = self._side_conn()
                    uids = [copy.uid for copy in self._find_in_sent(conn, message_id)]
                    if uids:
                        conn.remove_flags(uids, [self._pending_flag, DATA_STARTED.encode()], silent=True)
            except ChannelError as exc:
                # The mail left; only the journal flag could not be cleared. Reconcile reports such a
                # copy as "unknown" rather than sending again, which is the safe side.
                log.warning("%s: sent, but could not update the Sent copy: %s", self.account, exc)
                self._drop("_side")
            return SendResult(message_id, "sent", thread_key=self.thread_of(out, message_id), sent_at=time.time())

    @property
    def _pending_flag(self) -> bytes:
        return PENDING.encode() if self._keywords_ok else b"\\Draft"

    def _settled(self, out: Outgoing, message_id: str, copies: list["_SentCopy"]) -> SendResult | None:
        """What the journal says about an earlier attempt: sent, in doubt, or None (send it)."""
        thread = self.thread_of(out, message_id)
        if any(not copy.pending for copy in copies):  # an earlier attempt went through completely
            return SendResult(message_id, "sent", thread_key=thread)
        if any(copy.data_started or not self._keywords_ok for copy in copies):
            return SendResult(message_id, "unknown", thread_key=thread, detail=IN_DOUBT)
        return None

    def _mark_data(self, message_id: str) -> None:
        """Record in the journal that SMTP DATA is about to start (called between RCPT and DATA)."""
        if not self._keywords_ok:
            return  # without keywords any pending copy already counts as "maybe sent"
        try:
            with self._errors("IMAP"):
                conn = self._side_conn()
                uids = [copy.uid for copy in self._find_in_sent(conn, message_id)]
                if not uids:
                    raise TransientError(f"{self.account}: the copy of this message vanished from "
                                         f"{self.settings.sent_folder!r}; will try again")
                conn.add_flags(uids, [DATA_STARTED.encode()], silent=True)
        except BaseException:
            self._drop("_side")  # DATA was not sent; the cleanup that follows reconnects
            raise

    def _smtp_send(self, data: bytes, before_data: Callable[[], None] = lambda: None) -> None:
        s = self.settings
        with self._errors("SMTP"):
            if s.smtp_security == "tls":
                client = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, context=self._context(), timeout=s.timeout)
            else:
                client = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.timeout)
            try:
                client.ehlo()
                if s.smtp_security == "starttls":
                    client.starttls(context=self._context())
                    client.ehlo()
                client.login(s.smtp_username, self._password())
                code, _ = client.mail(s.from_address)
                if code >= 400:
                    raise smtplib.SMTPSenderRefused(code, b"", s.from_address)
                code, _ = client.rcpt(_recipient(data))
                if code >= 400:
                    raise smtplib.SMTPRecipientsRefused({}) if code >= 500 else smtplib.SMTPResponseException(code, b"")
                self._step("rcpt_accepted")
                before_data()
                self._step("before_data")
                try:
                    code, _ = client.data(data)
                except (smtplib.SMTPServerDisconnected, OSError) as exc:
                    raise SendInDoubt(f"{self.account}: the connection to the SMTP server broke while it was taking "
                                      f"the message ({type(exc).__name__}); it may have been sent, check before "
                                      "sending it again") from None
                if code >= 400:
                    raise smtplib.SMTPResponseException(code, b"")
            finally:
                _quietly(client.quit)
                _quietly(client.close)

    def _cleanup_after_failure(self, message_id: str) -> None:
        """Remove the journal copy of a message the SMTP server certainly refused (lock held)."""
        try:
            with self._errors("IMAP"):
                conn = self._side_conn()
                uids = [copy.uid for copy in self._find_in_sent(conn, message_id) if copy.pending]
                if uids:
                    self._remove(conn, uids)
        except ChannelError as exc:
            log.warning("%s: could not remove the unsent copy from Sent: %s", self.account, exc)
            self._drop("_side")

    def _remove(self, conn, uids: list[int]) -> None:
        conn.select_folder(self.settings.sent_folder)
        conn.delete_messages(uids, silent=True)
        if b"UIDPLUS" in conn.capabilities():
            conn.uid_expunge(uids)
        else:
            conn.expunge()

    def _side_conn(self):
        if self._side is None:
            self._side = self._connect_imap()
            with self._errors("IMAP"):
                info = self._side.select_folder(self.settings.sent_folder) if self._side.folder_exists(
                    self.settings.sent_folder) else None
            if info is None:
                raise TransientError(f"{self.account}: the Sent folder {self.settings.sent_folder!r} does not exist "
                                     "on the server; create it or set sent_folder")
            self._keywords_ok = b"\\*" in info.get(b"PERMANENTFLAGS", ())
        return self._side

    def _find_in_sent(self, conn, message_id: str) -> list["_SentCopy"]:
        """Copies of `message_id` in the Sent folder, with their journal state."""
        conn.select_folder(self.settings.sent_folder)
        uids = conn.search(["HEADER", "Message-ID", message_id])
        if not uids:
            return []
        flags = conn.get_flags(uids)
        return [_SentCopy(uid, self._pending_flag in flags.get(uid, ()), DATA_STARTED.encode() in flags.get(uid, ()))
                for uid in uids]

    def _find_parsed(self, conn, ids: tuple[str, ...] | list[str]) -> ParsedMail | None:
        raw = self._find_raw(conn, ids[-1]) if ids else None
        return parse(raw) if raw else None

    def _find_raw(self, conn, message_id: str) -> bytes | None:
        if not _MSGID_OK.match(message_id) or message_id.endswith("@console.invalid>"):
            return None
        for folder in self._watched(conn):
            conn.select_folder(folder, readonly=True)
            for uid in conn.search(["HEADER", "Message-ID", message_id]):
                item = conn.fetch([uid], ["BODY.PEEK[]"]).get(uid)
                raw = item.get(b"BODY[]") if item else None
                if raw and parse(raw).message_id == message_id:
                    return raw
        return None

    async def reconcile(self, out: Outgoing) -> SendResult | None:
        return await asyncio.to_thread(self._reconcile, out)

    def _reconcile(self, out: Outgoing) -> SendResult | None:
        message_id = self.message_id(out)
        with self._side_lock:
            conn = self._side_conn()
            try:
                with self._errors("IMAP"):
                    copies = self._find_in_sent(conn, message_id)
                    settled = self._settled(out, message_id, copies)
                    if settled is None and copies:
                        # Appended, but SMTP DATA never started: the mail cannot have left.
                        self._remove(conn, [copy.uid for copy in copies])
                    return settled
            except BaseException:
                self._drop("_side")
                raise

    # ---- attachments, check, close --------------------------------------------------------------
    async def fetch_attachment(self, external_id: str, ref: str) -> bytes:
        return await asyncio.to_thread(self._fetch_attachment, external_id, ref)

    def _fetch_attachment(self, external_id: str, ref: str) -> bytes:
        with self._side_lock:
            conn = self._side_conn()
            try:
                with self._errors("IMAP"):
                    raw = self._find_raw(conn, external_id)
            except BaseException:
                self._drop("_side")
                raise
        if raw is None:
            raise ChannelError(f"{self.account}: that message is no longer on the server")
        data = part_bytes(raw, ref)
        if data is None:
            raise ChannelError(f"{self.account}: that attachment is not in the message")
        return data

    async def check(self) -> str:
        return await asyncio.to_thread(self._check)

    def _check(self) -> str:
        conn = self._connect_imap()
        try:
            with self._errors("IMAP"):
                folders = conn.list_folders()
                missing = [f for f in self._watched_names() if not conn.folder_exists(f)]
        finally:
            _quietly(conn.logout)
        s = self.settings
        with self._errors("SMTP"):
            if s.smtp_security == "tls":
                client = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, context=self._context(), timeout=s.timeout)
            else:
                client = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.timeout)
                client.starttls(context=self._context())
            try:
                client.login(s.smtp_username, self._password())
            finally:
                _quietly(client.quit)
        text = f"IMAP ok{' (IDLE)' if self._idle_ok else ''}, SMTP ok, {len(folders)} folders"
        if missing:
            text += f"; missing: {', '.join(missing)}"
        return text

    def _watched_names(self) -> list[str]:
        return list(dict.fromkeys([*self.settings.folders, self.settings.sent_folder]))

    async def close(self) -> None:
        self._closing.set()
        self._interrupt.set()
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._side_lock:
            self._drop("_side")
        self._stop_pool()
        # The pull connection belongs to the pull thread, which notices `_closing` within a second
        # and then stops using it; when no pull is running it is closed here.
        if self._pull_lock.acquire(timeout=2):
            try:
                self._settle_ahead()  # a prefetch stops at its next chunk once `_closing` is set
                self._drop("_imap")
                self._stop_pool()
                if self._ahead_runner is not None:
                    self._ahead_runner.shutdown(wait=False)
                    self._ahead_runner = None
            finally:
                self._pull_lock.release()


# ---- helpers ---------------------------------------------------------------------------------------

def _parse_many(raws: list[bytes]) -> list[ParsedMail]:
    """Parse a list of messages (runs in a worker process)."""
    return [parse(raw) for raw in raws]


def _quietly(action: Callable[[], object]) -> None:
    try:
        action()
    except Exception:
        pass


def _one_line(value: str) -> str:
    return re.sub(r"[\x00-\x1f\x7f]+", " ", value or "").strip()


def _checked(value: str, what: str) -> str:
    if not value or _UNSAFE_HEADER.search(value) or any(ch in value for ch in "<>,;\" ()"):
        raise PermanentError(f"not a usable {what} address")
    return value


def _recipient(data: bytes) -> str:
    from email import message_from_bytes
    from email.utils import getaddresses

    return getaddresses([message_from_bytes(data).get("To", "")])[0][1]


def _server_text(exc: Exception, settings: EmailSettings) -> str:
    """A server's error text, short, printable, and never containing the password."""
    text = exc.args[0] if exc.args else ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = re.sub(r"[^\x20-\x7e]+", " ", str(text))[:200]
    try:
        secret = settings.password.get() if settings.password.source != "cmd" else ""
    except Exception:
        secret = ""
    if secret and secret in text:
        text = text.replace(secret, "***")
    return text


def _load_cursor(cursor: str | None) -> dict:
    try:
        state = json.loads(cursor) if cursor else {}
    except ValueError:
        state = {}
    if not isinstance(state, dict) or not isinstance(state.get("folders"), dict):
        state = {"folders": {}}
    clean = {}
    for name, value in state["folders"].items():
        if isinstance(value, dict) and isinstance(value.get("uidvalidity"), int) and isinstance(value.get("last_uid"), int):
            clean[name] = {"uidvalidity": value["uidvalidity"], "last_uid": value["last_uid"]}
    return {"folders": clean, "synced": int(state.get("synced", 0) or 0)}
