"""The email adapter: the Channel contract on top of its collaborators.

`EmailChannel` owns no protocol logic of its own: pulling is `Puller` (pull.py, on the pull
connection in the pull's worker thread), sending and reconciling are the Sent journal
(journal.py, on a second connection), connecting and error sentences are `Connector`
(connection.py). What it adds is the asyncio face the engine calls (blocking work in threads, a
pull waiting in IDLE that ends within a second of `interrupt()`, `close()` or cancellation) and
the test hook `checkpoint`, called at each named step so a test can stop a sync there.
"""

from __future__ import annotations

import asyncio
from typing import Callable

from console.channels.email import outgoing
from console.channels.email.connection import Connector, close_imap, close_smtp
from console.channels.email.inbound import to_inbound
from console.channels.email.journal import SentJournal
from console.channels.email.mailparse import ParsedMail, part_bytes
from console.channels.email.pull import Puller
from console.channels.email.settings import EmailSettings
from console.model import InboundMessage, Outgoing, PermanentError, PullResult, SendResult


class EmailChannel:
    kind = "email"
    channels = ("email",)

    def __init__(self, account: str, settings: EmailSettings):
        self.account = account
        self.settings = settings
        # Tests set this to interrupt a sync at a named step (see `_step`).
        self.checkpoint: Callable[[str], None] | None = None
        self.connector = Connector(account, settings)
        self.journal = SentJournal(self.connector, self._step)
        self.puller = Puller(self.connector, self.journal, self._step)

    @property
    def poll_interval(self) -> float:
        # With IDLE, pull itself waits for mail, so the engine should call it again at once.
        return 0.0 if self.connector.idle_ok else self.settings.poll_interval

    def _step(self, name: str) -> None:
        if self.checkpoint is not None:
            self.checkpoint(name)

    # ---- pulling --------------------------------------------------------------------------------
    async def pull(self, cursor: str | None) -> PullResult:
        work = asyncio.ensure_future(asyncio.to_thread(self.puller.pull, cursor))
        work.add_done_callback(lambda done: done.cancelled() or done.exception())  # never "unretrieved"
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            # The worker thread cannot be cancelled; end its IDLE so it lets go of the connection.
            self.puller.interrupted.set()
            raise

    def interrupt(self) -> None:
        """End the pull waiting in IDLE within a second, or keep the next pull from waiting at all
        (thread-safe; the engine calls it on stop, which may come between two pulls)."""
        self.puller.interrupted.set()

    def to_inbound(self, mail: ParsedMail, raw: bytes, from_sent_folder: bool, internal: float | None) -> InboundMessage:
        """Turn a parsed mail into the console's message (direction, peer, thread)."""
        return to_inbound(self.settings, mail, raw, from_sent_folder, internal)

    # ---- sending --------------------------------------------------------------------------------
    def build(self, out: Outgoing, quoted: ParsedMail | None = None) -> tuple[str, bytes]:
        """(Message-ID, bytes) of the mail for `out`. Raises PermanentError for unsafe input."""
        return outgoing.build(self.settings, self.account, out, quoted)

    def message_id(self, out: Outgoing) -> str:
        return outgoing.message_id(self.settings, self.account, out)

    async def send(self, out: Outgoing) -> SendResult:
        return await asyncio.to_thread(self.journal.send, out)

    async def reconcile(self, out: Outgoing) -> SendResult | None:
        return await asyncio.to_thread(self.journal.reconcile, out)

    # ---- attachments, check, close --------------------------------------------------------------
    async def fetch_attachment(self, external_id: str, ref: str, raw: bytes | None = None) -> bytes:
        """The bytes of attachment `ref` of message `external_id`: read from `raw` (the message's
        kept bytes) without the network when given, else from the message on the server.
        Raises PermanentError with a sentence when the attachment cannot be had."""
        if raw is None:
            raw = await asyncio.to_thread(self.journal.find_raw, external_id)
            if raw is None:
                raise PermanentError(f"{self.account}: that message is no longer on the server, and no copy "
                                     "of it is kept here")
        data = await asyncio.to_thread(part_bytes, raw, ref)
        if data is None:
            raise PermanentError(f"{self.account}: that attachment is not in the message (it may have been "
                                 "removed from the mail, or the mail is damaged)")
        return data

    async def check(self) -> str:
        return await asyncio.to_thread(self._check)

    def _check(self) -> str:
        conn = self.connector.imap()
        try:
            with self.connector.errors("IMAP"):
                folders = conn.list_folders()
                missing = [f for f in self.settings.watched_names() if not conn.folder_exists(f)]
        finally:
            close_imap(conn)
        with self.connector.errors("SMTP"):
            close_smtp(self.connector.smtp())
        text = f"IMAP ok{' (IDLE)' if self.connector.idle_ok else ''}, SMTP ok, {len(folders)} folders"
        if missing:
            text += f"; missing: {', '.join(missing)}"
        return text

    async def close(self) -> None:
        self.puller.closing.set()
        self.puller.interrupted.set()
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self.journal.lock:
            self.journal.drop()
        self.puller.close()
