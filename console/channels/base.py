"""The contract between the sync engine and every channel adapter."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from console.model import Outgoing, PullResult, SendResult


@runtime_checkable
class Channel(Protocol):
    """One configured account on one service.

    - `pull(cursor)` returns what is new since `cursor` (None on the first run) and the cursor that
      covers it. It may block for a long poll (IMAP IDLE, Telegram getUpdates) up to `poll_timeout`.
      It must be safe to repeat: the store de-duplicates by (account, external id).
    - `send(out)` sends one message and returns its external id; it raises TransientError,
      AuthError or PermanentError. Blocking libraries run in a worker thread (asyncio.to_thread).
    - `reconcile(out)` is asked after a crash left a send in doubt (the outbox says "sending"):
      return the SendResult if the service already has the message, None if it certainly does
      not. Raise NotImplementedError if the service cannot tell; the engine then never resends
      automatically and asks the user. Never answer with one of `out.taken_external_ids` (other
      replies' messages); among look-alikes pick by console.channels.reconcile.closest_after.
    - Before sending, check the length with `catalog.enforce_length` (console.channels.catalog),
      so that a refusal is what the composer showed.
    - `check()` tests the connection and credentials; returns a short description.
    """

    account: str
    kind: str
    channels: tuple[str, ...]  # the channels this account carries, e.g. ("sms", "whatsapp")
    poll_interval: float  # seconds between pulls when nothing is happening

    async def pull(self, cursor: str | None) -> PullResult: ...

    async def send(self, out: Outgoing) -> SendResult: ...

    async def reconcile(self, out: Outgoing) -> SendResult | None: ...

    async def check(self) -> str: ...

    async def close(self) -> None: ...
