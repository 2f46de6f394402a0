"""Consent per identity x channel x purpose, its history, and the opt-outs customers send.

A consent record says, for one identity on one channel and one purpose (`service`: replies to
the customer; `marketing`: anything they did not ask for), whether it is granted or withdrawn,
from what source ("asked in shop", "texted STOP", "import of customers.csv, row 12", an agent),
the text they agreed to and when. With no record, service is implied (they wrote to us) and
marketing is not given. Every change is appended to `consent_log` with the agent and the reason,
so `console consent export` shows what a customer agreed to and when, and what ended it.

A change only moves the current state when it is at least as new as the last one
(`changed_at`): an adapter may hand over an older STOP after a newer START (Twilio's history is
read newest first, in batches), and the newest decision of the customer wins. The older one is
still logged.

Opt-outs arrive with the messages (`consent_from_messages`, called by console/store/ingest.py
in the transaction that stores them, so a STOP is never stored without its effect): a whole
message that is an opt-out keyword of its channel (console/channels/catalog/optout.py) or of the
workspace's `[outreach] opt_out_words`, an email to the unsubscribe address or one carrying an
unsubscribe token in its subject; a send the service refused for an opt-out (Twilio 21610,
`withdraw_for_refusal`). On SMS the opt-out is confirmed once, by console, when the account's
service does not confirm that word itself, and only for a STOP written in the last day (the
first sync of an old history confirms nothing).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
from dataclasses import dataclass

from console.channels import catalog
from console.channels.catalog.optout import keyword, normal_word
from console.model import InboundMessage, OptOutChange
from console.outreach.restraint import PURPOSES
from console.outreach.settings import OutreachSettings
from console.store.db import Database, now

ACK_WITHIN = 86400.0  # a STOP older than this when it reaches us is not confirmed any more
_TOKEN = re.compile(r"\bunsubscribe\s+(\d+-[0-9a-f]{16})\b", re.IGNORECASE)
KEYWORD_SOURCE = "wrote "  # the source of a keyword opt-out starts so: "wrote STOP on SMS"


@dataclass
class ConsentRow:
    identity_id: int
    kind: str
    address: str
    channel: str
    purpose: str
    state: str  # granted | withdrawn | "" (no record: service implied, marketing not given)
    source: str = ""
    agreed_text: str = ""
    granted_at: float | None = None
    withdrawn_at: float | None = None
    withdrawn_source: str = ""


def identity_channels(kind: str) -> list[str]:
    """The channels an identity of this kind can be reached on (a phone: SMS and WhatsApp)."""
    return [entry.id for entry in catalog.channels() if entry.identity_kind == kind]


def _chunks(ids, size: int = 500):
    ids = list(ids)
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


class ConsentMixin:
    db: Database
    outreach: OutreachSettings

    # ---- reading ------------------------------------------------------------------------------
    def consent_rows(self, customer_id: int) -> list[ConsentRow]:
        """Every identity x channel x purpose of the customer, recorded or not, in card order."""
        identities = self.db.query("SELECT id, kind, address FROM identity WHERE customer_id = ? ORDER BY id",
                                   (customer_id,))
        records = {(r["identity_id"], r["channel"], r["purpose"]): r for r in self.db.query(
            """SELECT c.* FROM consent c JOIN identity i ON i.id = c.identity_id WHERE i.customer_id = ?""",
            (customer_id,))}
        rows = []
        for ident in identities:
            for channel in identity_channels(ident["kind"]):
                for purpose in PURPOSES:
                    r = records.get((ident["id"], channel, purpose))
                    rows.append(ConsentRow(ident["id"], ident["kind"], ident["address"], channel, purpose,
                                           r["state"] if r else "", r["source"] if r else "",
                                           r["agreed_text"] if r else "", r["granted_at"] if r else None,
                                           r["withdrawn_at"] if r else None, r["withdrawn_source"] if r else ""))
        return rows

    def consent_state(self, identity_id: int, channel: str, purpose: str) -> str:
        row = self.db.query_one("SELECT state FROM consent WHERE identity_id = ? AND channel = ? AND purpose = ?",
                                (identity_id, channel, purpose))
        return row["state"] if row else ""

    def consent_history(self, customer_id: int | None = None) -> list[dict]:
        """Every recorded change, oldest first, with the customer and the message that carried it
        (what `console consent export` prints)."""
        where, params = ("WHERE i.customer_id = ?", (customer_id,)) if customer_id is not None else ("", ())
        return [dict(r) for r in self.db.query(
            f"""SELECT l.id, cu.id AS customer_id, cu.name AS customer, i.kind, i.address, l.channel, l.purpose,
                       l.state, l.source, l.agreed_text, l.reason, l.agent, l.at, l.recorded_at, l.message_id,
                       m.body AS message_body
                FROM consent_log l JOIN identity i ON i.id = l.identity_id JOIN customer cu ON cu.id = i.customer_id
                LEFT JOIN message m ON m.id = l.message_id {where}
                ORDER BY cu.id, l.at, l.id""", params)]

    # ---- writing ------------------------------------------------------------------------------
    def set_consent(self, identity_id: int, channel: str, purpose: str, state: str, source: str,
                    agreed_text: str = "", reason: str = "", agent: str = "", at: float | None = None,
                    message_id: int | None = None) -> bool:
        """Record a consent decision; True when it changed the current state. An agent's change
        needs a reason (the card asks for one)."""
        if purpose not in PURPOSES or state not in ("granted", "withdrawn"):
            raise ValueError(f"consent is granted or withdrawn, for service or marketing (got {state} {purpose})")
        if agent and not reason.strip():
            raise ValueError("say why the consent changes (the reason is kept with it)")
        if not source.strip():
            raise ValueError("say where the consent comes from (e.g. asked in shop)")
        with self.db.write() as conn:
            return _record(conn, identity_id, channel, purpose, state, source.strip(), agreed_text.strip(),
                           reason.strip(), agent, now() if at is None else at, message_id)

    def withdraw_for_refusal(self, conn: sqlite3.Connection, identity_id: int, channel: str, detail: str) -> None:
        """The service refused a send because the customer opted out (Twilio 21610)."""
        withdraws = catalog.channel(channel).opt_out.withdraws
        for purpose in withdraws:
            _record(conn, identity_id, channel, purpose, "withdrawn", f"the service refused a send: {detail}",
                    "", "", "", now(), None)

    def apply_opt_out_changes(self, conn: sqlite3.Connection, changes: list[OptOutChange],
                              resolve) -> None:
        """Opt-outs a service reported by other means than a message (`PullResult.opt_outs`)."""
        for change in changes:
            identity_id, _ = resolve(change.peer)
            kind_channels = [change.channel] if change.channel else identity_channels(change.peer.kind)
            for channel in kind_channels:
                state = "withdrawn" if change.opted_out else "granted"
                purposes = catalog.channel(channel).opt_out.withdraws if change.opted_out else ("service",)
                for purpose in purposes:
                    _record(conn, identity_id, channel, purpose, state, "reported by the service", "", "", "",
                            change.at or now(), None)

    def consent_from_messages(self, conn: sqlite3.Connection, account: str,
                              inbound: list[tuple[int, InboundMessage]]) -> None:
        """The ingest hook: opt-out and opt-in keywords, unsubscribe mail. Runs in the transaction
        that stores the messages."""
        settings = self.outreach
        for message_id, msg in inbound:
            if msg.channel == "email" and self._unsubscribe_mail(conn, message_id, msg):
                continue
            entry = catalog.channel(msg.channel)
            head = msg.body.lstrip()[:80].split("\n", 1)[0]
            if normal_word(head) not in entry.opt_out.stop_words | entry.opt_out.start_words \
                    | settings.opt_out_words | settings.opt_in_words:
                continue  # the cheap test first: most messages are not keywords
            word = keyword(entry.opt_out, msg.body, settings.opt_out_words, settings.opt_in_words)
            if word is None:
                continue
            ident = conn.execute("SELECT identity_id, conversation_id FROM message WHERE id = ?", (message_id,)).fetchone()
            written = normal_word(msg.body)
            if word == "stop":
                self._keyword_stop(conn, account, message_id, msg, ident, written)
            else:
                self._keyword_start(conn, message_id, msg, ident["identity_id"], written)

    def _keyword_stop(self, conn, account, message_id, msg, ident, written) -> None:
        entry = catalog.channel(msg.channel)
        source = f"{KEYWORD_SOURCE}{written} on {entry.name}"
        changed = False
        for purpose in entry.opt_out.withdraws:
            changed |= _record(conn, ident["identity_id"], msg.channel, purpose, "withdrawn", source, "", "", "",
                               msg.sent_at, message_id)
        if not (changed and entry.opt_out.acknowledge and msg.sent_at >= now() - ACK_WITHIN):
            return
        kind = conn.execute("SELECT kind FROM account WHERE name = ?", (account,)).fetchone()
        try:
            confirmed_by_service = catalog.account_kind(kind["kind"] if kind else "").confirms(msg.channel, written)
        except KeyError:
            confirmed_by_service = False
        if confirmed_by_service:
            return
        text = self.outreach.opt_out_reply.replace("{business}", self.outreach.business).replace("{channel}", entry.name)
        self.enqueue_reply(ident["identity_id"], account, msg.channel, text, conversation_id=ident["conversation_id"],
                           purpose="ack")
        conn.execute("""UPDATE consent SET acknowledged_at = ? WHERE identity_id = ? AND channel = ?
                        AND purpose = ?""", (now(), ident["identity_id"], msg.channel, entry.opt_out.withdraws[0]))

    def _keyword_start(self, conn, message_id, msg, identity_id, written) -> None:
        """START re-subscribes: replies again, and marketing when a keyword had ended it."""
        entry = catalog.channel(msg.channel)
        source = f"{KEYWORD_SOURCE}{written} on {entry.name}"
        rows = {r["purpose"]: r for r in conn.execute(
            "SELECT * FROM consent WHERE identity_id = ? AND channel = ?", (identity_id, msg.channel))}
        if "service" in entry.opt_out.withdraws:
            # Recorded even with nothing to undo: an older STOP read after it (Twilio's history
            # comes newest first) must not win over this newer START.
            _record(conn, identity_id, msg.channel, "service", "granted", source, "", "", "", msg.sent_at, message_id)
        marketing = rows.get("marketing")
        if (marketing is not None and marketing["state"] == "withdrawn" and marketing["granted_at"] is not None
                and marketing["withdrawn_source"].startswith(KEYWORD_SOURCE)):
            _record(conn, identity_id, msg.channel, "marketing", "granted", source, marketing["agreed_text"], "", "",
                    msg.sent_at, message_id)

    def _unsubscribe_mail(self, conn: sqlite3.Connection, message_id: int, msg: InboundMessage) -> bool:
        """Mail to the unsubscribe address, or with an unsubscribe token in the subject (the
        List-Unsubscribe mailto of our campaigns): the email consent for marketing ends."""
        target = None
        found = _TOKEN.search(msg.subject or "")
        if found:
            target = self._identity_of_token(conn, found.group(1))
        address = self.outreach.unsubscribe_address
        if target is None and address and msg.raw:
            end = msg.raw.find(b"\r\n\r\n")
            head = msg.raw[: end if end >= 0 else 8192].lower()
            if address.encode() in head:
                target = conn.execute("SELECT identity_id FROM message WHERE id = ?", (message_id,)).fetchone()[0]
        if target is None:
            return False
        _record(conn, target, "email", "marketing", "withdrawn", "wrote to the unsubscribe address", "", "", "",
                msg.sent_at, message_id)
        return True

    # ---- unsubscribe tokens -------------------------------------------------------------------
    def _key(self, conn: sqlite3.Connection) -> bytes:
        row = conn.execute("SELECT value FROM outreach_key WHERE name = 'unsubscribe'").fetchone()
        if row is None:
            with self.db.write() as wconn:
                wconn.execute("INSERT INTO outreach_key (name, value) VALUES ('unsubscribe', ?) "
                              "ON CONFLICT (name) DO NOTHING", (secrets.token_hex(32),))
                row = wconn.execute("SELECT value FROM outreach_key WHERE name = 'unsubscribe'").fetchone()
        return bytes.fromhex(row["value"])

    def unsubscribe_tokens(self, identity_ids) -> dict[int, str]:
        """A token per identity for its List-Unsubscribe link: the identity's id and a MAC, so the
        engine knows whom a mail to the unsubscribe address is about, and nobody can make one up."""
        key = self._key(self.db.conn)
        return {i: f"{i}-{_mac(key, i)}" for i in identity_ids}

    def _identity_of_token(self, conn: sqlite3.Connection, token: str) -> int | None:
        ident, _, mac = token.partition("-")
        if not ident.isdigit() or not hmac.compare_digest(mac, _mac(self._key(conn), int(ident))):
            return None
        row = conn.execute("SELECT id FROM identity WHERE id = ?", (int(ident),)).fetchone()
        return row["id"] if row else None

    def unsubscribe(self, token: str, source: str = "One-Click unsubscribe") -> str | None:
        """Honour an unsubscribe token (what the HTTPS endpoint passes on): the address it named,
        or None when the token is not one of ours."""
        with self.db.write() as conn:
            identity_id = self._identity_of_token(conn, token.strip())
            if identity_id is None:
                return None
            _record(conn, identity_id, "email", "marketing", "withdrawn", source, "", "", "", now(), None)
            return conn.execute("SELECT address FROM identity WHERE id = ?", (identity_id,)).fetchone()[0]


def _mac(key: bytes, identity_id: int) -> str:
    return hmac.new(key, f"unsubscribe:{identity_id}".encode(), hashlib.sha256).hexdigest()[:16]


def _record(conn: sqlite3.Connection, identity_id: int, channel: str, purpose: str, state: str, source: str,
            agreed_text: str, reason: str, agent: str, at: float, message_id: int | None) -> bool:
    """Log one decision and apply it when it is the newest; True when the state changed."""
    conn.execute(
        """INSERT INTO consent_log (identity_id, channel, purpose, state, source, agreed_text, reason, agent,
               message_id, at, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (identity_id, channel, purpose, state, source, agreed_text, reason, agent, message_id, at, now()))
    current = conn.execute("SELECT * FROM consent WHERE identity_id = ? AND channel = ? AND purpose = ?",
                           (identity_id, channel, purpose)).fetchone()
    if current is not None and current["changed_at"] > at:
        return False  # a newer decision stands
    if current is not None and current["state"] == state and state == "withdrawn":
        return False  # withdrawn again: nothing to change (and nothing to confirm twice)
    if state == "granted":
        conn.execute(
            """INSERT INTO consent (identity_id, channel, purpose, state, source, agreed_text, granted_at, changed_at)
               VALUES (?, ?, ?, 'granted', ?, ?, ?, ?)
               ON CONFLICT (identity_id, channel, purpose) DO UPDATE SET state = 'granted', source = excluded.source,
                   agreed_text = excluded.agreed_text, granted_at = excluded.granted_at, withdrawn_at = NULL,
                   withdrawn_source = '', acknowledged_at = NULL, changed_at = excluded.changed_at""",
            (identity_id, channel, purpose, source, agreed_text, at, at))
    else:
        conn.execute(
            """INSERT INTO consent (identity_id, channel, purpose, state, withdrawn_at, withdrawn_source, changed_at)
               VALUES (?, ?, ?, 'withdrawn', ?, ?, ?)
               ON CONFLICT (identity_id, channel, purpose) DO UPDATE SET state = 'withdrawn',
                   withdrawn_at = excluded.withdrawn_at, withdrawn_source = excluded.withdrawn_source,
                   acknowledged_at = NULL, changed_at = excluded.changed_at""",
            (identity_id, channel, purpose, at, source, at))
    return current is None or current["state"] != state or state == "granted"
