"""The Sent folder as a journal, so that a reply is never sent twice.

Before SMTP, the message is APPENDed to the Sent folder flagged `$ConsoleSending` (`\\Draft` on
servers without keywords); between RCPT and DATA the copy also gets `$ConsoleSmtpData`; after the
SMTP server accepts the message both flags are removed. `reconcile` (and a repeated `send`) looks
for the deterministic Message-ID in Sent: absent, or present without `$ConsoleSmtpData`, means DATA
never started, so the copy is removed and the message is sent; present and cleared means sent;
present with `$ConsoleSmtpData` means the process stopped during the SMTP exchange, so the outcome
is reported as "unknown" and never retried automatically (at most once beats at least once for a
reply). A connection that breaks during DATA gives the same "unknown" result; a definite SMTP
refusal removes the journal copy again. The pull skips pending copies (`is_pending`): the outbox
owns them.

The journal works on a connection of its own (the "side" connection, also used to find a message
on the server for quoting or an attachment), never the pull's, under one lock.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

from console.channels.email import outgoing
from console.channels.email.connection import Connector, close_imap
from console.channels.email.mailparse import ParsedMail, parse
from console.model import ChannelError, Outgoing, SendResult, TransientError

log = logging.getLogger("console.channels.email")

PENDING = "$ConsoleSending"  # on the Sent copy from APPEND until the SMTP server accepted it
DATA_STARTED = "$ConsoleSmtpData"  # added just before SMTP DATA: from then on it may have left
IN_DOUBT = ("console stopped while handing this to the mail server; check whether it arrived before "
            "sending it again")


@dataclass(frozen=True, slots=True)
class SentCopy:
    uid: int
    pending: bool  # still flagged PENDING: the send was not confirmed
    data_started: bool  # SMTP DATA had begun: the mail may have left


class SentJournal:
    def __init__(self, connector: Connector, step: Callable[[str], None]):
        self.connector = connector
        self.settings = connector.settings
        self.account = connector.account
        self.step = step
        self.keywords_ok = True  # the Sent folder takes our own keywords (PERMANENTFLAGS \*)
        self.lock = threading.Lock()
        self._side = None

    # ---- the side connection --------------------------------------------------------------------
    def conn(self):
        if self._side is None:
            self._side = self.connector.imap()
            with self.connector.errors("IMAP"):
                folder = self.settings.sent_folder
                info = self._side.select_folder(folder) if self._side.folder_exists(folder) else None
            if info is None:
                raise TransientError(f"{self.account}: the Sent folder {self.settings.sent_folder!r} does not exist "
                                     "on the server; create it or set sent_folder")
            self.keywords_ok = b"\\*" in info.get(b"PERMANENTFLAGS", ())
        return self._side

    def drop(self) -> None:
        side, self._side = self._side, None
        close_imap(side)

    @property
    def pending_flag(self) -> bytes:
        return PENDING.encode() if self.keywords_ok else b"\\Draft"

    def is_pending(self, flags: tuple[bytes, ...]) -> bool:
        """A Sent copy of a send still in progress (the outbox owns it until it is settled)."""
        return PENDING.encode() in flags or (not self.keywords_ok and b"\\Draft" in flags)

    # ---- sending --------------------------------------------------------------------------------
    def send(self, out: Outgoing) -> SendResult:
        message_id = outgoing.message_id(self.settings, self.account, out)
        with self.lock:
            conn = self.conn()
            with self.connector.errors("IMAP"):
                try:
                    copies = self._find_in_sent(conn, message_id)
                    quoted = None
                    if out.options.get("quote") == "1" or not out.subject:
                        quoted = self._find_parsed(conn, out.thread_external_ids[-1:])
                    message_id, data = outgoing.build(self.settings, self.account, out, quoted)
                    settled = self._settled(out, message_id, copies)
                    if settled is not None:
                        return settled
                    if copies:  # leftovers of an attempt that never reached SMTP DATA: remove them
                        self._remove(conn, [copy.uid for copy in copies])
                    self.step("before_append")
                    conn.append(self.settings.sent_folder, data, flags=[b"\\Seen", self.pending_flag])
                    self.step("appended")
                except ChannelError:
                    raise
                except BaseException:
                    self.drop()
                    raise
            thread = outgoing.thread_of(out, message_id)
            try:
                outgoing.smtp_send(self.connector, data, lambda: self._mark_data(message_id), self.step)
            except outgoing.SendInDoubt as exc:
                # The journal copy stays marked: nobody can tell whether the mail left, so it is
                # reported, never sent again.
                log.warning("%s", exc)
                return SendResult(message_id, "unknown", detail=str(exc), thread_key=thread)
            except ChannelError:
                self._cleanup_after_failure(message_id)
                raise
            except BaseException:
                self.drop()
                raise
            self.step("smtp_accepted")
            try:
                with self.connector.errors("IMAP"):
                    conn = self.conn()
                    uids = [copy.uid for copy in self._find_in_sent(conn, message_id)]
                    if uids:
                        conn.remove_flags(uids, [self.pending_flag, DATA_STARTED.encode()], silent=True)
            except ChannelError as exc:
                # The mail left; only the journal flag could not be cleared. Reconcile reports such a
                # copy as "unknown" rather than sending again, which is the safe side.
                log.warning("%s: sent, but could not update the Sent copy: %s", self.account, exc)
                self.drop()
            return SendResult(message_id, "sent", thread_key=thread, sent_at=time.time())

    def reconcile(self, out: Outgoing) -> SendResult | None:
        message_id = outgoing.message_id(self.settings, self.account, out)
        with self.lock:
            conn = self.conn()
            try:
                with self.connector.errors("IMAP"):
                    copies = self._find_in_sent(conn, message_id)
                    settled = self._settled(out, message_id, copies)
                    if settled is None and copies:
                        # Appended, but SMTP DATA never started: the mail cannot have left.
                        self._remove(conn, [copy.uid for copy in copies])
                    return settled
            except BaseException:
                self.drop()
                raise

    def _settled(self, out: Outgoing, message_id: str, copies: list[SentCopy]) -> SendResult | None:
        """What the journal says about an earlier attempt: sent, in doubt, or None (send it)."""
        thread = outgoing.thread_of(out, message_id)
        if any(not copy.pending for copy in copies):  # an earlier attempt went through completely
            return SendResult(message_id, "sent", thread_key=thread)
        if any(copy.data_started or not self.keywords_ok for copy in copies):
            return SendResult(message_id, "unknown", thread_key=thread, detail=IN_DOUBT)
        return None

    def _mark_data(self, message_id: str) -> None:
        """Record in the journal that SMTP DATA is about to start (called between RCPT and DATA)."""
        if not self.keywords_ok:
            return  # without keywords any pending copy already counts as "maybe sent"
        try:
            with self.connector.errors("IMAP"):
                conn = self.conn()
                uids = [copy.uid for copy in self._find_in_sent(conn, message_id)]
                if not uids:
                    raise TransientError(f"{self.account}: the copy of this message vanished from "
                                         f"{self.settings.sent_folder!r}; will try again")
                conn.add_flags(uids, [DATA_STARTED.encode()], silent=True)
        except BaseException:
            self.drop()  # DATA was not sent; the cleanup that follows reconnects
            raise

    def _cleanup_after_failure(self, message_id: str) -> None:
        """Remove the journal copy of a message the SMTP server certainly refused (lock held)."""
        try:
            with self.connector.errors("IMAP"):
                conn = self.conn()
                uids = [copy.uid for copy in self._find_in_sent(conn, message_id) if copy.pending]
                if uids:
                    self._remove(conn, uids)
        except ChannelError as exc:
            log.warning("%s: could not remove the unsent copy from Sent: %s", self.account, exc)
            self.drop()

    def _remove(self, conn, uids: list[int]) -> None:
        conn.select_folder(self.settings.sent_folder)
        conn.delete_messages(uids, silent=True)
        if b"UIDPLUS" in conn.capabilities():
            conn.uid_expunge(uids)
        else:
            conn.expunge()

    def _find_in_sent(self, conn, message_id: str) -> list[SentCopy]:
        """Copies of `message_id` in the Sent folder, with their journal state."""
        conn.select_folder(self.settings.sent_folder)
        uids = conn.search(["HEADER", "Message-ID", message_id])
        if not uids:
            return []
        flags = conn.get_flags(uids)
        return [SentCopy(uid, self.pending_flag in flags.get(uid, ()), DATA_STARTED.encode() in flags.get(uid, ()))
                for uid in uids]

    # ---- finding a stored message on the server ------------------------------------------------
    def find_raw(self, message_id: str) -> bytes | None:
        """The raw bytes of the message with `message_id` in a watched folder, or None."""
        with self.lock:
            conn = self.conn()
            try:
                with self.connector.errors("IMAP"):
                    return self._find_raw(conn, message_id)
            except BaseException:
                self.drop()
                raise

    def _find_parsed(self, conn, ids: tuple[str, ...] | list[str]) -> ParsedMail | None:
        raw = self._find_raw(conn, ids[-1]) if ids else None
        return parse(raw) if raw else None

    def _find_raw(self, conn, message_id: str) -> bytes | None:
        if not outgoing.MSGID_OK.match(message_id) or message_id.endswith("@console.invalid>"):
            return None
        for folder in self.settings.watched_names():
            if not conn.folder_exists(folder):
                continue
            conn.select_folder(folder, readonly=True)
            for uid in conn.search(["HEADER", "Message-ID", message_id]):
                item = conn.fetch([uid], ["BODY.PEEK[]"]).get(uid)
                raw = item.get(b"BODY[]") if item else None
                if raw and parse(raw).message_id == message_id:
                    return raw
        return None
