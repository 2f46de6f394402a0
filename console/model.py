"""The normalised shapes every channel adapter speaks, and the typed errors it raises.

Adapters translate a service's protocol into these; the sync engine moves them into the store.
Nothing here knows about SQLite, Textual or any network library. What is known about each
channel (identity kinds, reply windows, lengths) is in console.channels.catalog.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Direction = Literal["in", "out"]

# Delivery states of an outbound message, in the order they normally happen.
DELIVERY_STATES = ("queued", "sending", "sent", "delivered", "read", "failed", "undelivered", "unknown")
FINAL_DELIVERY_STATES = ("delivered", "read", "failed", "undelivered")


@dataclass(frozen=True, slots=True)
class Address:
    """A person on a channel: the identity kind, the normalised address and a display name."""

    kind: str
    address: str
    display_name: str = ""


@dataclass(frozen=True, slots=True)
class Attachment:
    name: str
    content_type: str = "application/octet-stream"
    size: int | None = None
    # Where the adapter can fetch it again: an IMAP section, a media URL, a Telegram file_id...
    ref: str = ""


@dataclass(slots=True)
class InboundMessage:
    """One message as an adapter found it on the service, inbound or outbound.

    `peer` is always the customer: the sender of an inbound message, the recipient of an outbound
    one (e.g. a reply the business sent from another mail client, found in the Sent folder).
    """

    external_id: str
    thread_key: str
    channel: str
    direction: Direction
    peer: Address
    sent_at: float  # UTC epoch seconds
    body: str = ""
    subject: str = ""
    html: str | None = None
    raw: bytes | None = None
    attachments: list[Attachment] = field(default_factory=list)
    status: str | None = None  # for outbound: a DELIVERY_STATES value
    status_detail: str = ""
    # Thread keys this message may belong to when `thread_key` is not known yet (email References).
    related_keys: tuple[str, ...] = ()
    # Last resort for a reply whose thread keys match nothing stored (email: a client that dropped
    # References): its subject without "Re:" (console.subjects.reply_subject). It joins the same
    # customer's latest conversation with that subject from the last SUBJECT_THREAD_DAYS.
    reply_subject: str = ""
    # What makes this message itself beyond its external id (email: sender, Date and Subject). A
    # message whose id is stored with another fingerprint is a different one reusing that id: the
    # store keeps it as "<id>#<fingerprint>" rather than dropping it as a duplicate.
    fingerprint: str = ""
    edited: bool = False
    # Other addresses the service itself vouches belong to the same person (a Telegram contact's
    # shared phone number, the demo's made-up customers). A *new* identity joins the customer of
    # a linked identity already stored; existing customers are never merged by this.
    peer_links: tuple[Address, ...] = ()


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """A delivery status change for an outbound message the store already has."""

    external_id: str
    status: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class OptOutChange:
    """A customer opted out, or back in, on one channel.

    Adapters report what the service tells by other means than a message; the sync engine adds
    what customers wrote (STOP, START, mail to the unsubscribe address: console/outreach/
    keywords.py). The store applies them in the transaction that stores the pull."""

    peer: Address
    opted_out: bool
    channel: str = ""  # "" = every channel the identity has conversations on
    purposes: tuple[str, ...] = ("service", "marketing")  # what a stop ends
    at: float | None = None  # when the customer decided (UTC epoch), if known
    source: str = "reported by the service"
    external_id: str = ""  # the message of this pull that carried it
    acknowledge: str = ""  # a confirmation to send once, when the withdrawal is new (SMS)
    restore_marketing: bool = False  # a START: marketing that a keyword ended comes back
    token: str = ""  # an unsubscribe token naming the identity (it may write from another address)


@dataclass(slots=True)
class PullResult:
    """What one `pull()` found, and the cursor that covers it.

    The store applies messages, status updates and the new cursor in one transaction, so a crash
    either keeps all of them or none, and the next pull repeats the work safely.
    """

    messages: list[InboundMessage] = field(default_factory=list)
    cursor: str | None = None  # opaque to everyone but the adapter; None = unchanged
    status_updates: list[StatusUpdate] = field(default_factory=list)
    opt_outs: list[OptOutChange] = field(default_factory=list)
    more: bool = False  # True: call pull again at once (a long first sync in batches)
    progress: tuple[int, int] | None = None  # (done, total) during a long sync
    notice: str = ""  # something the user should know, e.g. "UIDVALIDITY changed; re-mapped"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to send. Built by the store from the outbox before any network call."""

    outbox_id: int
    message_id: int
    account: str
    channel: str
    to: Address
    body: str
    subject: str = ""
    # Stable for every attempt at this message: adapters use it as an idempotency key (Mastodon),
    # to derive a Message-ID (email), or to recognise their own message when reconciling.
    idempotency_key: str = ""
    thread_key: str = ""
    # External ids of earlier messages of the thread, oldest first (email References).
    thread_external_ids: tuple[str, ...] = ()
    # Channel-specific extras chosen in the composer. Known keys:
    #   "template"  - WhatsApp: the name of a configured approved template (sent instead of body)
    #   "variables" - WhatsApp: JSON object of template variables
    #   "tag"       - Messenger/Instagram: a message tag such as "HUMAN_AGENT"
    #   "quote"     - email: "1" to quote the message replied to
    options: dict[str, str] = field(default_factory=dict)
    attempt: int = 1
    # When the reply was written (UTC epoch): a reconcile looks for it after this moment.
    created_at: float = 0.0
    # External ids the store already records for *other* replies of ours to this recipient, since
    # shortly before `created_at`. A reconcile never answers with one of these: an identical
    # earlier reply ("Thanks!" twice) is not this one.
    taken_external_ids: frozenset[str] = frozenset()
    # service (a reply), marketing, test or ack (console/store/outbox.py): what it is for.
    purpose: str = "service"


@dataclass(frozen=True, slots=True)
class SendResult:
    external_id: str
    status: str = "sent"
    detail: str = ""
    thread_key: str = ""  # set when the send started a new thread (e.g. a new email Message-ID)
    sent_at: float | None = None


class ChannelError(Exception):
    """Base of the errors adapters raise. The message is one sentence for a person."""


class TransientError(ChannelError):
    """Try again later (network down, 5xx, rate limit). `retry_after` in seconds if known."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class AuthError(ChannelError):
    """The credentials were refused: stop this account and tell the user what to fix."""


class PermanentError(ChannelError):
    """This message can never be sent as it is. Never retried.

    `opted_out` marks the recipient identity as having opted out (e.g. Twilio 21610).
    """

    def __init__(self, message: str, code: str = "", opted_out: bool = False):
        super().__init__(message)
        self.code = code
        self.opted_out = opted_out



class InDoubtError(ChannelError):
    """The send may or may not have happened (the answer was lost). Never resent blindly: the
    engine keeps it 'sending' and asks `reconcile()` again later."""
