"""What restraint needs to know about recipients, gathered in bulk, and the check at claim time.

`recipients()` reads, for many customers at once (a campaign's whole segment: a handful of
queries whatever its size, in chunks of ids), everything console/outreach/restraint.py decides
on: identities, consent, where and when each last wrote, open conversations, our last reply,
the marketing messages already sent or queued to them, and the routes (account x channel x
identity) a message can take. `restrain()` is what the outbox's claim calls for every row it is
about to hand to a channel: the store's `policy` (console/outreach/restraint.py `Policy`, given
when the store is opened) decides, on facts read in the same transaction as the claim, with the
same function the dry run used. The store only gathers and writes; it knows no channel's rules.
"""

from __future__ import annotations

import json
import sqlite3
import time

from console.outreach.facts import Identity, Recipient, Route, Send, Verdict
from console.outreach.reasons import Reason
from console.store.db import Database, chunks


def _in(ids) -> str:
    return ",".join("?" * len(ids))


def gather(conn: sqlite3.Connection, customer_ids, at: float, window: float,
           senders: dict[str, tuple[str, str]] | None = None, since: float | None = None,
           queued: bool = True, as_of: bool = False) -> dict[int, Recipient]:
    """Facts about each customer. `window`: how far back marketing sends count (the cap's);
    `senders` (channel -> (account, identity kind)) adds a route from that account to identities
    of that kind that never wrote on the channel (an imported customer); `since` (a campaign's
    start) reads our non-marketing replies after it; `queued` counts marketing rows still in the
    outbox against the cap (planning), not only those sent (claiming). With `as_of`, when each
    customer last wrote is read as it was at `at` (a plan for a moment in the past: the demo's
    finished campaign); their conversations' states are today's, the only ones kept."""
    out: dict[int, Recipient] = {}
    for chunk in chunks(customer_ids):
        marks = _in(chunk)
        for r in conn.execute(f"SELECT id, name, attributes FROM customer WHERE id IN ({marks})", chunk):
            try:
                attributes = json.loads(r["attributes"] or "{}")
            except ValueError:
                attributes = {}
            out[r["id"]] = Recipient(r["id"], r["name"], attributes if isinstance(attributes, dict) else {})
        for r in conn.execute(f"SELECT id, customer_id, kind, address FROM identity WHERE customer_id IN ({marks})",
                              chunk):
            out[r["customer_id"]].identities.append(Identity(r["id"], r["kind"], r["address"]))
        for r in conn.execute(
                f"""SELECT i.customer_id, c.identity_id, c.channel, c.purpose, c.state FROM consent c
                    JOIN identity i ON i.id = c.identity_id WHERE i.customer_id IN ({marks})""", chunk):
            out[r["customer_id"]].consent[(r["identity_id"], r["channel"], r["purpose"])] = r["state"]
        for r in conn.execute(
                f"""SELECT customer_id, account, channel, identity_id, MAX(last_inbound_at) AS last_in,
                           MAX(id) AS conversation_id, MAX(CASE WHEN status = 'open' THEN 1 ELSE 0 END) AS open
                    FROM conversation WHERE customer_id IN ({marks})
                    GROUP BY customer_id, account, channel, identity_id""", chunk):
            rec = out[r["customer_id"]]
            if r["last_in"] is not None:
                rec.last_inbound[r["channel"]] = max(rec.last_inbound.get(r["channel"], 0.0), r["last_in"])
            rec.open_conversation |= bool(r["open"])
            rec.routes.append(Route(r["channel"], r["account"], r["identity_id"], r["conversation_id"],
                                    r["last_in"] or 0.0))
        if as_of:
            for rec in (out[c] for c in chunk if c in out):
                rec.last_inbound = {}
            last = {}
            for r in conn.execute(
                    f"""SELECT c.customer_id, c.channel, c.identity_id, c.account, MAX(m.sent_at) AS t FROM message m
                        JOIN conversation c ON c.id = m.conversation_id
                        WHERE c.customer_id IN ({marks}) AND m.direction = 'in' AND m.sent_at <= ?
                        GROUP BY c.customer_id, c.channel, c.identity_id, c.account""", (*chunk, at)):
                out[r["customer_id"]].last_inbound[r["channel"]] = max(
                    out[r["customer_id"]].last_inbound.get(r["channel"], 0.0), r["t"])
                last[(r["customer_id"], r["channel"], r["identity_id"], r["account"])] = r["t"]
            for rec in (out[c] for c in chunk if c in out):
                rec.routes = [Route(x.channel, x.account, x.identity_id, x.conversation_id,
                                    last.get((rec.customer_id, x.channel, x.identity_id, x.account), 0.0))
                              for x in rec.routes]
        for r in conn.execute(f"SELECT customer_id, at FROM marketing_send WHERE customer_id IN ({marks}) AND at > ?",
                              (*chunk, at - window)):
            out[r["customer_id"]].marketing_times.append(r["at"])
        if queued:
            for r in conn.execute(
                    f"""SELECT c.customer_id, o.next_try_at FROM outbox o JOIN message m ON m.id = o.message_id
                        JOIN conversation c ON c.id = m.conversation_id
                        WHERE o.purpose = 'marketing' AND o.state = 'pending' AND c.customer_id IN ({marks})""",
                    chunk):
                out[r["customer_id"]].marketing_times.append(max(at, r["next_try_at"]))
        if since is not None:
            for r in conn.execute(
                    f"""SELECT c.customer_id, MAX(m.sent_at) AS at FROM message m
                        JOIN conversation c ON c.id = m.conversation_id
                        LEFT JOIN outbox o ON o.message_id = m.id
                        WHERE c.customer_id IN ({marks}) AND m.direction = 'out' AND m.sent_at >= ? AND m.sent_at <= ?
                          AND (o.id IS NULL OR o.purpose = 'service')
                          AND (m.status IS NULL OR m.status NOT IN ('failed', 'undelivered'))
                        GROUP BY c.customer_id""", (*chunk, since, at if as_of else float("inf"))):
                out[r["customer_id"]].last_service_reply_at = r["at"]
    for rec in out.values():
        rec.routes.sort(key=lambda route: -route.last_used)
        if senders:
            known = {(route.channel, route.identity_id) for route in rec.routes}
            for ident in rec.identities:
                for channel, (account, kind) in senders.items():
                    if kind == ident.kind and (channel, ident.id) not in known:
                        rec.routes.append(Route(channel, account, ident.id, None, 0.0))
    return out


class RestraintMixin:
    db: Database
    policy: "object"  # console.outreach.restraint.Policy: judge(recipient, send, at) -> Verdict

    def restrain(self, conn: sqlite3.Connection, rows: list[sqlite3.Row], at: float) -> dict[int, Verdict]:
        """The verdict on each outbox row about to be claimed (marketing, test, ack and replies
        alike), keyed by outbox id. The row's route is fixed: restraint does not choose again."""
        if not rows:
            return {}
        ids = [r["id"] for r in rows]
        facts = {}
        for chunk in chunks(ids):
            for r in conn.execute(
                    f"""SELECT o.id, o.purpose, o.options, m.channel, m.identity_id, c.customer_id,
                               cp.launched_at AS started
                        FROM outbox o JOIN message m ON m.id = o.message_id JOIN conversation c ON c.id = m.conversation_id
                        LEFT JOIN campaign_recipient cr ON cr.outbox_id = o.id
                        LEFT JOIN campaign cp ON cp.id = cr.campaign_id
                        WHERE o.id IN ({_in(chunk)})""", chunk):
                facts[r["id"]] = r
        people = gather(conn, {f["customer_id"] for f in facts.values()}, at, self.policy.settings.cap_seconds,
                        queued=False, as_of=at < time.time() - 60,
                        since=min((f["started"] for f in facts.values() if f["started"] is not None), default=None))
        verdicts = {}
        for outbox_id in ids:  # in claiming order: a row let through counts against the next
            f = facts[outbox_id]
            try:
                options = json.loads(f["options"] or "{}")
            except ValueError:
                options = {}
            send = Send(f["purpose"], f["channel"], f["identity_id"], template=bool(options.get("template")),
                        tag=str(options.get("tag", "")), campaign_started=f["started"])
            person = people[f["customer_id"]]
            verdicts[outbox_id] = verdict = self.policy.judge(person, send, at)
            if verdict.ok and send.purpose == "marketing":
                person.marketing_times.append(at)
        return verdicts


def refusal_sentence(code: str) -> str:
    reason = Reason.of(code)
    return reason.sentence if reason else code
