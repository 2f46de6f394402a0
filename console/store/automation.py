"""The store's side of the automation rules: the events they read, what they look at, and what
they do — each firing recorded once, its actions and its activity lines in one transaction.

- `events_after(seq)`: what the episode hook noted (console/store/episodes.py), in order;
- `subjects(ids)`: a conversation as a rule sees it (channel, account, tags, attributes, the
  customer's latest words);
- `apply_firing(plan)`: records (rule, event) — a rule fires at most once per event — and does
  the plan's actions, each leaving a line in the timeline ("rule 'wholesale' assigned ana");
- `enqueue_automatic`: a reply console sends on its own (a rule's template, the satisfaction
  question) through the durable outbox like any reply, but which leaves the conversation as it
  was: an automatic answer is not an agent's, the customer still waits for one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from console.store.db import Database, now
from console.store.episodes import AUTOMATIC
from console.store.outbox import OptedOut


@dataclass
class Plan:
    """What one firing of a rule does to one conversation (all optional)."""

    rule: str
    event_key: str
    conversation_id: int
    at: float
    add_tags: tuple[str, ...] = ()
    assign: str | None = None
    assign_turns: tuple[str, ...] = ()  # several agents: the next in turn for this rule
    note: str | None = None
    reply: str | None = None  # the filled template text
    reply_template: str = ""
    reply_every: float = 86400.0  # at most one automatic reply of this rule per customer per this
    status: str | None = None
    snooze_until: float | None = None
    notify: str | None = None
    notify_to: str | None = None
    skipped: list[str] = field(default_factory=list)  # reasons for actions not taken, for the activity line


@dataclass
class Activity:
    id: int
    conversation_id: int
    at: float
    actor: str
    text: str


class AutomationMixin:
    db: Database

    # ---- small facts kept in `meta` (high-water marks, whose turn it is) ---------------------------
    def setting(self, key: str, default: str | None = None) -> str | None:
        row = self.db.query_one("SELECT value FROM meta WHERE key = ?", (key,))
        return row["value"] if row else default

    def set_setting(self, key: str, value: str) -> None:
        with self.db.write() as conn:
            conn.execute("""INSERT INTO meta (key, value) VALUES (?, ?)
                            ON CONFLICT (key) DO UPDATE SET value = excluded.value""", (key, value))

    # ---- events -----------------------------------------------------------------------------
    def events_after(self, seq: int, limit: int = 500) -> list[dict]:
        return [dict(r) for r in self.db.query(
            "SELECT seq, kind, conversation_id, message_id, at FROM event WHERE seq > ? ORDER BY seq LIMIT ?",
            (seq, limit))]

    def last_event_seq(self) -> int:
        return self.db.query_one("SELECT COALESCE(MAX(seq), 0) FROM event")[0]

    def new_messages_after(self, seq: int, limit: int = 200) -> list[dict]:
        """Customers' new messages since `seq` (what a console notifies about): who, where, whose."""
        return [dict(r) for r in self.db.query(
            """SELECT e.seq, e.conversation_id, c.account, c.channel, c.assignee, c.customer_id, cu.name
               FROM event e JOIN conversation c ON c.id = e.conversation_id JOIN customer cu ON cu.id = c.customer_id
               WHERE e.seq > ? AND e.kind = 'message_received' ORDER BY e.seq LIMIT ?""", (seq, limit))]

    # ---- what a rule looks at -----------------------------------------------------------------
    def subjects(self, conversation_ids: list[int]) -> dict[int, dict]:
        """Each conversation with its customer's name, tags and attributes, and the text of the
        customer's latest message."""
        if not conversation_ids:
            return {}
        out: dict[int, dict] = {}
        for first in range(0, len(conversation_ids), 500):
            part = conversation_ids[first:first + 500]
            marks = ",".join("?" * len(part))
            for r in self.db.query(
                    f"""SELECT c.id, c.customer_id, c.channel, c.account, c.status, c.assignee, c.identity_id,
                               c.waiting_since, c.last_inbound_at, cu.name, cu.attributes
                        FROM conversation c JOIN customer cu ON cu.id = c.customer_id WHERE c.id IN ({marks})""", part):
                out[r["id"]] = {**dict(r), "attributes": json.loads(r["attributes"] or "{}"), "tags": set(), "text": ""}
        tags = self.tags_of(sorted({s["customer_id"] for s in out.values()}))
        for subject in out.values():
            subject["tags"] = tags.get(subject["customer_id"], set())
        for cid, subject in out.items():
            row = self.db.query_one(
                """SELECT subject, body FROM message WHERE conversation_id = ? AND direction = 'in'
                   ORDER BY sent_at DESC, id DESC LIMIT 1""", (cid,))
            if row is not None:
                subject["text"] = f"{row['subject']}\n{row['body']}".strip()
        return out

    def tags_of(self, customer_ids: list[int]) -> dict[int, set[str]]:
        out: dict[int, set[str]] = {}
        for first in range(0, len(customer_ids), 500):
            part = customer_ids[first:first + 500]
            for r in self.db.query(f"SELECT customer_id, name FROM tag WHERE customer_id IN ({','.join('?' * len(part))})",
                                   part):
                out.setdefault(r["customer_id"], set()).add(r["name"])
        return out

    def message_text(self, message_id: int) -> str:
        row = self.db.query_one("SELECT subject, body FROM message WHERE id = ?", (message_id,))
        return f"{row['subject']}\n{row['body']}".strip() if row else ""

    def waiting_between(self, earliest: float, latest: float, unassigned: bool = False) -> list[dict]:
        """Open conversations whose customer has waited since a moment in [earliest, latest] for an
        answer from a person (`unassigned`: that nobody is assigned to). Automatic replies leave
        `last_outbound_at` as it was (`enqueue_automatic`), so they do not end the wait."""
        clause = "AND assignee IS NULL" if unassigned else ""
        return [dict(r) for r in self.db.query(
            f"""SELECT id, waiting_since FROM conversation
                WHERE status = 'open' AND COALESCE(waiting_since, last_inbound_at, last_message_at) >= ?
                AND COALESCE(waiting_since, last_inbound_at, last_message_at) <= ?
                AND waiting_since IS NOT NULL AND last_inbound_at IS NOT NULL
                AND (last_outbound_at IS NULL OR last_inbound_at > last_outbound_at) {clause}""", (earliest, latest))]

    def fired_keys(self, rule: str, since: float) -> set[str]:
        return {r[0] for r in self.db.query("SELECT event_key FROM rule_firing WHERE rule = ? AND fired_at >= ?",
                                            (rule, since))}

    def rules_fired(self, since: float) -> dict[str, tuple[float, int]]:
        """Per rule: when it last fired, and how often since `since`."""
        out = {r["rule"]: (r["last"], 0) for r in self.db.query(
            "SELECT rule, MAX(fired_at) AS last FROM rule_firing GROUP BY rule")}
        for r in self.db.query("SELECT rule, COUNT(*) AS n FROM rule_firing WHERE fired_at >= ? GROUP BY rule",
                               (since,)):
            out[r["rule"]] = (out.get(r["rule"], (None, 0))[0], r["n"])
        return out

    def replied_recently(self, customer_id: int, author: str, since: float) -> bool:
        """Whether console already sent this customer an automatic reply by `author` since `since`."""
        return self.db.query_one(
            """SELECT 1 FROM conversation c JOIN message m ON m.conversation_id = c.id AND m.sent_at >= ?
               WHERE c.customer_id = ? AND m.direction = 'out' AND m.author = ? LIMIT 1""",
            (since, customer_id, author)) is not None

    # ---- doing it -----------------------------------------------------------------------------
    def apply_firing(self, plan: Plan) -> list[str] | None:
        """Record the firing and do its actions, in one transaction. Returns the activity lines
        written, or None when this rule already fired for this event."""
        actor = f"rule '{plan.rule}'"
        lines: list[str] = []
        with self.db.write() as conn:
            taken = conn.execute(
                """INSERT INTO rule_firing (rule, event_key, conversation_id, fired_at) VALUES (?, ?, ?, ?)
                   ON CONFLICT (rule, event_key) DO NOTHING RETURNING rule""",
                (plan.rule, plan.event_key, plan.conversation_id, plan.at)).fetchone()
            if taken is None:
                return None
            conv = conn.execute("SELECT * FROM conversation WHERE id = ?", (plan.conversation_id,)).fetchone()
            if conv is None:
                return []
            customer = conv["customer_id"]
            for tag in plan.add_tags:
                conn.execute("""INSERT INTO tag (customer_id, name, created_at) VALUES (?, ?, ?)
                                ON CONFLICT (customer_id, name) DO NOTHING""", (customer, tag, plan.at))
                lines.append(f"tagged #{tag}")
            agent = plan.assign
            if plan.assign_turns:
                key = f"turn:{plan.rule}"
                row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
                turn = int(row["value"]) if row else 0
                agent = plan.assign_turns[turn % len(plan.assign_turns)]
                conn.execute("""INSERT INTO meta (key, value) VALUES (?, ?)
                                ON CONFLICT (key) DO UPDATE SET value = excluded.value""", (key, str(turn + 1)))
            if agent:
                conn.execute("UPDATE conversation SET assignee = ? WHERE customer_id = ? AND status != 'done'",
                             (agent, customer))
                lines.append(f"assigned {agent}")
            if plan.note:
                conn.execute("INSERT INTO note (customer_id, author, body, created_at) VALUES (?, ?, ?, ?)",
                             (customer, actor, plan.note, plan.at))
                lines.append("added a note")
            if plan.reply:
                author = f"{AUTOMATIC}rule {plan.rule}"
                if self.replied_recently(customer, author, plan.at - plan.reply_every):
                    lines.append(f"did not reply with '{plan.reply_template}': it answered this customer "
                                 f"less than {plan.reply_every / 3600:g} h ago")
                else:
                    try:
                        self.enqueue_automatic(plan.conversation_id, plan.reply, author)
                        lines.append(f"replied with '{plan.reply_template}'")
                    except OptedOut:
                        lines.append(f"did not reply with '{plan.reply_template}': the customer opted out")
            if plan.status:
                self.set_status(plan.status, conversation_id=plan.conversation_id)
                lines.append(f"set it {plan.status}")
            if plan.snooze_until is not None:
                self.set_status("snoozed", conversation_id=plan.conversation_id, snooze_until=plan.snooze_until,
                                from_statuses=("open", "waiting"))
                lines.append("snoozed it")
            if plan.notify:
                conn.execute("INSERT INTO notice (at, agent, conversation_id, text) VALUES (?, ?, ?, ?)",
                             (plan.at, plan.notify_to, plan.conversation_id, plan.notify))
                lines.append(f"notified {plan.notify_to or 'everyone'}")
            lines += plan.skipped
            for line in lines:
                conn.execute("INSERT INTO activity (conversation_id, at, actor, text) VALUES (?, ?, ?, ?)",
                             (plan.conversation_id, plan.at, actor, line))
            conn.execute("UPDATE rule_firing SET summary = ? WHERE rule = ? AND event_key = ?",
                         ("; ".join(lines), plan.rule, plan.event_key))
        return lines

    def enqueue_automatic(self, conversation_id: int, body: str, author: str) -> int:
        """Queue a reply console writes on its own on this conversation; the conversation keeps
        its status, waiting clock and preview (OptedOut if the identity opted out)."""
        with self.db.write() as conn:
            conv = conn.execute("SELECT * FROM conversation WHERE id = ?", (conversation_id,)).fetchone()
            if conv is None:
                raise ValueError(f"no conversation {conversation_id}")
            message_id = self.enqueue_reply(conv["identity_id"], conv["account"], conv["channel"], body,
                                            author=author, conversation_id=conversation_id)
            conn.execute(
                """UPDATE conversation SET status = ?, waiting_since = ?, snooze_until = ?, preview = ?,
                       last_outbound_at = ? WHERE id = ?""",
                (conv["status"], conv["waiting_since"], conv["snooze_until"], conv["preview"],
                 conv["last_outbound_at"], conversation_id))
        return message_id

    # ---- what the timeline shows ------------------------------------------------------------------
    def activities(self, customer_id: int, since: float | None = None, before: float | None = None) -> list[Activity]:
        clauses, params = ["c.customer_id = ?"], [customer_id]
        if since is not None:
            clauses.append("a.at >= ?")
            params.append(since)
        if before is not None:
            clauses.append("a.at < ?")
            params.append(before)
        return [Activity(r["id"], r["conversation_id"], r["at"], r["actor"], r["text"]) for r in self.db.query(
            f"""SELECT a.* FROM activity a JOIN conversation c ON c.id = a.conversation_id
                WHERE {' AND '.join(clauses)} ORDER BY a.at, a.id""", params)]

    def notices_after(self, notice_id: int, agent: str) -> list[dict]:
        return [dict(r) for r in self.db.query(
            "SELECT * FROM notice WHERE id > ? AND (agent IS NULL OR agent = ?) ORDER BY id", (notice_id, agent))]

    def last_notice_id(self) -> int:
        return self.db.query_one("SELECT COALESCE(MAX(id), 0) FROM notice")[0]

    def record_activity(self, conversation_id: int, actor: str, text: str, at: float | None = None) -> None:
        with self.db.write() as conn:
            conn.execute("INSERT INTO activity (conversation_id, at, actor, text) VALUES (?, ?, ?, ?)",
                         (conversation_id, now() if at is None else at, actor, text))

    # ---- what a rule would have done (console/rules/simulate.py) --------------------------------
    def inbound_between(self, since: float, until: float) -> list[dict]:
        """Customers' messages in [since, until], oldest first."""
        return [dict(r) for r in self.db.query(
            """SELECT m.id, m.conversation_id, m.sent_at, m.subject, m.body FROM message m
               WHERE m.direction = 'in' AND m.sent_at >= ? AND m.sent_at <= ? ORDER BY m.sent_at, m.id""",
            (since, until))]

    def episodes_between(self, since: float, until: float) -> list[dict]:
        """Episodes with a moment in [since, until] (begun then, or still owed then), oldest first,
        with the text of the message that began each."""
        rows = self.db.query(
            """SELECT e.*, (SELECT m.subject || '\n' || m.body FROM message m WHERE m.conversation_id = e.conversation_id
                               AND m.direction = 'in' AND m.sent_at >= e.started_at ORDER BY m.sent_at LIMIT 1) AS text,
                      (SELECT m.id FROM message m WHERE m.conversation_id = e.conversation_id
                               AND m.direction = 'in' AND m.sent_at >= e.started_at ORDER BY m.sent_at LIMIT 1) AS message_id
               FROM episode e WHERE e.started_at <= ? AND (e.resolved_at IS NULL OR e.resolved_at >= ?)
               ORDER BY e.started_at""", (until, since))
        return [{**dict(r), "owed": json.loads(r["owed"] or "[]"), "text": (r["text"] or "").strip()} for r in rows]
