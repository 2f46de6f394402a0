"""Consent per identity x channel x purpose, its history, and the opt-outs customers send.

A consent record says, for one identity on one channel and one purpose (`service`: replies to
the customer; `marketing`: anything they did not ask for), whether it is granted or withdrawn,
from what source ("asked in shop", "wrote STOP on SMS", "import of customers.csv, line 12", an
agent), the text they agreed to and when. With no record, service is implied (they wrote to us)
and marketing is not given. Every change is appended to `consent_log` with the agent and the
reason, so `console consent export` shows what a customer agreed to and when, and what ended it.

A change only moves the current state when it is at least as new as the last one
(`changed_at`): an adapter may hand over an older STOP after a newer START (Twilio's history is
read newest first, in batches), and the newest decision of the customer wins. The older one is
still logged.

Opt-outs arrive with the pulls that carry them (`apply_opt_out_changes`, called by
console/store/ingest.py in the transaction that stores the messages, so a STOP is never stored
without its effect): what the customer wrote is read by console/outreach/keywords.py in the
engine, which knows the channels; this module knows none of their rules. A confirmation an
opt-out comes with is queued once, when the withdrawal is new. A send the service refused for an
opt-out (Twilio 21610) withdraws the channel altogether (`withdraw_for_refusal`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
from dataclasses import dataclass

from console.model import OptOutChange
from console.outreach.facts import KEYWORD_SOURCE, PURPOSES
from console.store.db import Database, now


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


class ConsentMixin:
    db: Database

    # ---- reading ------------------------------------------------------------------------------
    def consent_rows(self, customer_id: int, channels_of) -> list[ConsentRow]:
        """Every identity x channel x purpose of the customer, recorded or not, in card order;
        `channels_of(kind)` names the channels of an identity kind (the catalog's: a phone is
        SMS and WhatsApp)."""
        identities = self.db.query("SELECT id, kind, address FROM identity WHERE customer_id = ? ORDER BY id",
                                   (customer_id,))
        records = {(r["identity_id"], r["channel"], r["purpose"]): r for r in self.db.query(
            """SELECT c.* FROM consent c JOIN identity i ON i.id = c.identity_id WHERE i.customer_id = ?""",
            (customer_id,))}
        rows = []
        for ident in identities:
            for channel in channels_of(ident["kind"]):
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
        """The service refused a send because the customer opted out (Twilio 21610): nothing may
        go there any more, replies included, until they come back."""
        for purpose in PURPOSES:
            _record(conn, identity_id, channel, purpose, "withdrawn", f"the service refused a send: {detail}",
                    "", "", "", now(), None)

    def apply_opt_out_changes(self, conn: sqlite3.Connection, account: str, changes: list[OptOutChange],
                              resolve) -> None:
        """The opt-outs and re-subscriptions of one pull, in its transaction (`resolve(peer)` is
        ingest's identity look-up)."""
        for change in changes:
            identity_id = self._identity_of_token(conn, change.token) if change.token else None
            if identity_id is None:
                identity_id, _ = resolve(change.peer)
            message_id = None
            if change.external_id:
                row = conn.execute("SELECT id, conversation_id FROM message WHERE account = ? AND external_id = ?",
                                   (account, change.external_id)).fetchone()
                message_id = row["id"] if row else None
            channels = [change.channel] if change.channel else [r[0] for r in conn.execute(
                "SELECT DISTINCT channel FROM conversation WHERE identity_id = ?", (identity_id,))]
            at = change.at or now()
            for channel in channels:
                if change.opted_out:
                    changed = False
                    for purpose in change.purposes:
                        changed |= _record(conn, identity_id, channel, purpose, "withdrawn", change.source, "", "", "",
                                           at, message_id)
                    if changed and change.acknowledge:
                        self._acknowledge(conn, account, identity_id, channel, change, message_id)
                else:
                    self._resubscribe(conn, identity_id, channel, change, at, message_id)

    def _acknowledge(self, conn, account: str, identity_id: int, channel: str, change: OptOutChange,
                     message_id: int | None) -> None:
        """The one confirmation of a new opt-out, on the thread the customer wrote on."""
        conversation = conn.execute("SELECT conversation_id FROM message WHERE id = ?", (message_id,)).fetchone() \
            if message_id is not None else None
        self._enqueue(conn, identity_id, account, channel, change.acknowledge,
                      conversation_id=conversation["conversation_id"] if conversation else None, purpose="ack")
        conn.execute("UPDATE consent SET acknowledged_at = ? WHERE identity_id = ? AND channel = ? AND purpose = ?",
                     (now(), identity_id, channel, change.purposes[0]))

    def _resubscribe(self, conn, identity_id: int, channel: str, change: OptOutChange, at: float,
                     message_id: int | None) -> None:
        """START: replies again (recorded even with nothing to undo, so that an older STOP read
        after it never wins), and marketing when it was granted before a keyword ended it."""
        for purpose in change.purposes:
            _record(conn, identity_id, channel, purpose, "granted", change.source, "", "", "", at, message_id)
        if not change.restore_marketing:
            return
        marketing = conn.execute("SELECT * FROM consent WHERE identity_id = ? AND channel = ? AND purpose = 'marketing'",
                                 (identity_id, channel)).fetchone()
        if (marketing is not None and marketing["state"] == "withdrawn" and marketing["granted_at"] is not None
                and marketing["withdrawn_source"].startswith(KEYWORD_SOURCE)):
            _record(conn, identity_id, channel, "marketing", "granted", change.source, marketing["agreed_text"], "", "",
                    at, message_id)

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
    """Log one decision and apply it when it is the newest; True when the state changed. The
    same message read again (a repeated pull) is not a second decision."""
    if message_id is not None and conn.execute(
            """SELECT 1 FROM consent_log WHERE identity_id = ? AND channel = ? AND purpose = ? AND state = ?
               AND message_id = ?""", (identity_id, channel, purpose, state, message_id)).fetchone():
        return False
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
