"""Campaigns in the store: the campaign and its steps, writing a planned step, what is due,
control (pause, resume, cancel), finishing and progress.

Only facts and writes live here; the decisions (who gets what, when, on which channel) are
console/outreach/planner.py's, which calls `write_step` inside its own transaction. A step is
written as a `campaign_recipient` row per customer (queued, excluded with its reason code, or
holdout) and, for each queued one, a message and its outbox row, purpose marketing, with an
idempotency key derived from the launch's key, the step and the customer: planning a step twice
after a crash can never make a second row (the UNIQUE key and the check in `write_step`).
Pause stops the claim of the campaign's rows (they wait), cancel ends the ones not sent yet.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass

from console.outreach.campaign import RULES, Campaign, Step
from console.outreach.reasons import Reason
from console.store.db import Database, chunks, now
from console.store.outbox import hold
from console.store.restraint import gather

_KEYS = uuid.UUID("6f1d7c1e-4b43-4d0c-9d5e-0c0a5e7a11e5")  # namespace of campaign idempotency keys


@dataclass
class Progress:
    total: int = 0  # queued recipients x steps so far
    sent: int = 0
    sending: int = 0
    waiting: int = 0  # due now, paced
    held: int = 0  # waiting for quiet hours to end
    failed: int = 0
    refused: int = 0  # restraint said no at the moment of sending
    cancelled: int = 0
    excluded: int = 0

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.refused + self.cancelled


class CampaignError(ValueError):
    """A campaign that cannot be saved, launched or changed as asked; the message says why."""


def _key(run_key: str, position: int, customer_id: int) -> str:
    return uuid.uuid5(_KEYS, f"{run_key}:{position}:{customer_id}").hex


class CampaignMixin:
    db: Database

    # ---- editing ------------------------------------------------------------------------------
    def save_campaign(self, campaign: Campaign) -> int:
        """Create or change a draft campaign with its steps; returns its id."""
        name = " ".join(campaign.name.split())
        if not name:
            raise CampaignError("a campaign needs a name")
        if not 0 <= campaign.holdout < 1:
            raise CampaignError("the holdout is a share between 0 and 0.99 (e.g. 0.1 for 10%)")
        for step in campaign.steps:
            if step.rule not in RULES:
                raise CampaignError(f"step {step.position}: the channel rule is one of {', '.join(RULES)}")
        with self.db.write() as conn:
            clash = conn.execute("SELECT id FROM campaign WHERE lower(name) = lower(?) AND id IS DISTINCT FROM ?",
                                 (name, campaign.id)).fetchone()
            if clash is not None:
                raise CampaignError(f"a campaign is already named {name!r}")
            values = (name, campaign.segment_id, campaign.reply_days, campaign.convert_on.strip(),
                      campaign.convert_days, campaign.holdout, now())
            if campaign.id is None:
                campaign_id = conn.execute(
                    """INSERT INTO campaign (name, segment_id, reply_days, convert_on, convert_days, holdout, updated_at,
                           created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id""", (*values, now())).fetchone()[0]
            else:
                state = conn.execute("SELECT state FROM campaign WHERE id = ?", (campaign.id,)).fetchone()
                if state is None:
                    raise CampaignError("no such campaign")
                if state["state"] != "draft":
                    raise CampaignError(f"the campaign is {state['state']}: only a draft can be changed")
                campaign_id = campaign.id
                conn.execute("""UPDATE campaign SET name = ?, segment_id = ?, reply_days = ?, convert_on = ?,
                                    convert_days = ?, holdout = ?, updated_at = ? WHERE id = ?""", (*values, campaign_id))
                conn.execute("DELETE FROM campaign_step WHERE campaign_id = ?", (campaign_id,))
            for position, step in enumerate(campaign.steps, 1):
                conn.execute(
                    """INSERT INTO campaign_step (campaign_id, position, delay_seconds, channel_rule, channel_order, texts)
                       VALUES (?, ?, ?, ?, ?, ?)""",
                    (campaign_id, position, max(0.0, step.delay_seconds), step.rule, json.dumps(list(step.order)),
                     step.texts_json()))
            return campaign_id

    def campaigns(self) -> list[Campaign]:
        return [self._campaign(r) for r in self.db.query(
            """SELECT c.*, s.name AS segment_name FROM campaign c LEFT JOIN segment s ON s.id = c.segment_id
               ORDER BY CASE c.state WHEN 'running' THEN 0 WHEN 'paused' THEN 1 WHEN 'draft' THEN 2 ELSE 3 END,
                        c.updated_at DESC""")]

    def campaign(self, ref: int | str) -> Campaign | None:
        column = "c.id = ?" if isinstance(ref, int) else "lower(c.name) = lower(?)"
        row = self.db.query_one(f"""SELECT c.*, s.name AS segment_name FROM campaign c
                                    LEFT JOIN segment s ON s.id = c.segment_id WHERE {column}""",
                                (ref if isinstance(ref, int) else ref.strip(),))
        return self._campaign(row) if row else None

    def _campaign(self, row) -> Campaign:
        steps = [Step(r["position"], r["delay_seconds"], r["channel_rule"], tuple(json.loads(r["channel_order"] or "[]")),
                      Step.texts_from(r["texts"]), r["id"])
                 for r in self.db.query("SELECT * FROM campaign_step WHERE campaign_id = ? ORDER BY position",
                                        (row["id"],))]
        return Campaign(row["id"], row["name"], row["segment_id"], row["segment_name"] or "", row["state"], steps,
                        row["reply_days"], row["convert_on"], row["convert_days"], row["holdout"], row["launched_at"],
                        row["finished_at"], row["launched_by"])

    def delete_campaign(self, campaign_id: int) -> None:
        with self.db.write() as conn:
            state = conn.execute("SELECT state FROM campaign WHERE id = ?", (campaign_id,)).fetchone()
            if state is None or state["state"] != "draft":
                raise CampaignError("only a draft campaign can be deleted (a launched one is history)")
            conn.execute("DELETE FROM campaign_step WHERE campaign_id = ?", (campaign_id,))
            conn.execute("DELETE FROM campaign WHERE id = ?", (campaign_id,))

    # ---- what the planner writes and asks (console/outreach/planner.py) --------------------------
    def begin_launch(self, conn: sqlite3.Connection, campaign: Campaign, agent: str, at: float) -> str:
        """The campaign runs from `at`; returns the launch's key (every idempotency key derives
        from it). Refused unless it is a draft: a campaign is launched once."""
        state = conn.execute("SELECT state FROM campaign WHERE id = ?", (campaign.id,)).fetchone()["state"]
        if state != "draft":
            raise CampaignError(f"the campaign {campaign.name!r} is {state}, not a draft: it was launched already")
        run_key = uuid.uuid4().hex
        conn.execute("""UPDATE campaign SET state = 'running', launched_at = ?, launched_by = ?, run_key = ?,
                            updated_at = ? WHERE id = ?""", (at, agent, run_key, now(), campaign.id))
        return run_key

    def running_key(self, conn: sqlite3.Connection, campaign_id: int) -> str | None:
        """The launch key of a running campaign; None when it is paused, cancelled or finished."""
        row = conn.execute("SELECT state, run_key FROM campaign WHERE id = ?", (campaign_id,)).fetchone()
        return row["run_key"] if row is not None and row["state"] == "running" else None

    def due_for_step(self, campaign_id: int, position: int, sent_before: float) -> list[int]:
        """Customers whose message of the previous step went before `sent_before` and who have no
        row of step `position` yet."""
        return [r[0] for r in self.db.query(
            """SELECT cr.customer_id FROM campaign_recipient cr JOIN outbox o ON o.id = cr.outbox_id
               JOIN message m ON m.id = cr.message_id
               WHERE cr.campaign_id = ? AND cr.position = ? AND o.state = 'sent' AND m.sent_at <= ?
                 AND NOT EXISTS (SELECT 1 FROM campaign_recipient nx WHERE nx.campaign_id = cr.campaign_id
                                 AND nx.position = ? AND nx.customer_id = cr.customer_id)
               ORDER BY cr.customer_id""", (campaign_id, position - 1, sent_before, position))]

    def names_of(self, conn: sqlite3.Connection, customer_ids: list[int]) -> dict[int, str]:
        names = {}
        for chunk in chunks(customer_ids):
            names.update(dict(conn.execute(f"SELECT id, name FROM customer WHERE id IN ({','.join('?' * len(chunk))})",
                                           chunk).fetchall()))
        return names

    def recipients(self, conn: sqlite3.Connection, customer_ids, at: float, window: float,
                   senders: dict[str, tuple[str, str]] | None = None, since: float | None = None,
                   as_of: bool = False):
        """What restraint needs to know about these customers (console/store/restraint.py)."""
        return gather(conn, customer_ids, at, window, senders, since, as_of=as_of)

    def customer_of_message(self, message_id: int) -> int | None:
        row = self.db.query_one("SELECT c.customer_id FROM message m JOIN conversation c ON c.id = m.conversation_id "
                                "WHERE m.id = ?", (message_id,))
        return row[0] if row else None

    def write_step(self, conn: sqlite3.Connection, campaign_id: int, run_key: str, plan, agent: str) -> None:
        """Write a planned step (console/outreach/planner.py `Plan`); a customer it was already
        written for is left alone (this check and the UNIQUE key make planning twice harmless)."""
        done = {r[0] for r in conn.execute("SELECT customer_id FROM campaign_recipient WHERE campaign_id = ? "
                                           "AND position = ?", (campaign_id, plan.position))}
        for p in plan.rows:
            if p.customer_id in done:
                continue
            message_id = outbox_id = None
            if p.queued:
                # An email is a mail of its own, never a "Re:" in an old thread; a chat message joins
                # the customer's chat. A route with no conversation (console/store/restraint.py
                # `gather`, read in this transaction) has none to join: a new one, with no search for
                # it (by account x identity x channel, which no index serves: 1.5 ms a row).
                own = p.channel == "email"
                fresh = own or p.conversation_id is None
                message_id, outbox_id = self._enqueue(
                    conn, p.identity_id, p.account, p.channel, p.rendered.body, subject=p.rendered.subject,
                    author=agent, conversation_id=None if own else p.conversation_id, options=p.rendered.options,
                    due=p.at, purpose="marketing", key=_key(run_key, plan.position, p.customer_id), status="done",
                    new_thread=fresh)
                if p.reason is Reason.HELD:
                    hold(conn, outbox_id, message_id, p.at, p.detail)
            state = "queued" if p.queued else "holdout" if p.holdout else "excluded"
            conn.execute(
                """INSERT INTO campaign_recipient (campaign_id, position, customer_id, state, reason, detail, channel,
                       account, identity_id, message_id, outbox_id, planned_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (campaign_id, position, customer_id) DO NOTHING""",
                (campaign_id, plan.position, p.customer_id, state,
                 "" if p.reason in (None, Reason.HELD) else p.reason.value, p.detail, p.channel, p.account,
                 p.identity_id, message_id, outbox_id, plan.at))

    def finish_if_done(self, campaign: Campaign, at: float) -> bool:
        """Nothing left to send and no later step that can still come: the campaign is finished."""
        with self.db.write() as conn:
            busy = conn.execute(
                """SELECT 1 FROM campaign_recipient cr JOIN outbox o ON o.id = cr.outbox_id
                   WHERE cr.campaign_id = ? AND o.state IN ('pending', 'sending') LIMIT 1""", (campaign.id,)).fetchone()
            if busy is not None:
                return False
            for step in campaign.steps[1:]:
                waiting = conn.execute(
                    """SELECT 1 FROM campaign_recipient cr JOIN outbox o ON o.id = cr.outbox_id
                       WHERE cr.campaign_id = ? AND cr.position = ? AND o.state = 'sent'
                         AND NOT EXISTS (SELECT 1 FROM campaign_recipient nx WHERE nx.campaign_id = cr.campaign_id
                                         AND nx.position = ? AND nx.customer_id = cr.customer_id) LIMIT 1""",
                    (campaign.id, step.position - 1, step.position)).fetchone()
                if waiting is not None:
                    return False
            return conn.execute("""UPDATE campaign SET state = 'finished', finished_at = ?, updated_at = ?
                                   WHERE id = ? AND state = 'running'""", (at, now(), campaign.id)).rowcount > 0

    # ---- control ------------------------------------------------------------------------------
    def set_campaign_state(self, ref: int | str, action: str) -> str:
        """pause | resume | cancel; returns the new state."""
        campaign = self.campaign(ref)
        if campaign is None:
            raise CampaignError(f"no campaign named {ref!r}")
        allowed = {"pause": ("running",), "resume": ("paused",), "cancel": ("running", "paused")}
        target = {"pause": "paused", "resume": "running", "cancel": "cancelled"}[action]
        if campaign.state not in allowed[action]:
            raise CampaignError(f"the campaign {campaign.name!r} is {campaign.state}: it cannot be {action}d")
        with self.db.write() as conn:
            conn.execute("UPDATE campaign SET state = ?, updated_at = ? WHERE id = ?", (target, now(), campaign.id))
            if action == "cancel":
                rows = conn.execute(
                    """SELECT o.id, o.message_id FROM campaign_recipient cr JOIN outbox o ON o.id = cr.outbox_id
                       WHERE cr.campaign_id = ? AND o.state = 'pending'""", (campaign.id,)).fetchall()
                for row in rows:
                    conn.execute("UPDATE outbox SET state = 'cancelled', last_error = 'campaign cancelled', "
                                 "updated_at = ? WHERE id = ?", (now(), row["id"]))
                    conn.execute("UPDATE message SET status = 'failed', status_detail = 'cancelled with the campaign' "
                                 "WHERE id = ?", (row["message_id"],))
                conn.execute("UPDATE campaign SET finished_at = ? WHERE id = ?", (now(), campaign.id))
        return target

    def campaign_progress(self, ref: int | str, at: float | None = None) -> Progress:
        at = now() if at is None else at
        campaign = self.campaign(ref)
        if campaign is None:
            raise CampaignError(f"no campaign named {ref!r}")
        progress = Progress()
        for r in self.db.query(
                """SELECT cr.state AS planned, o.state, o.refusal, o.next_try_at, o.last_error, m.status
                   FROM campaign_recipient cr LEFT JOIN outbox o ON o.id = cr.outbox_id
                   LEFT JOIN message m ON m.id = cr.message_id WHERE cr.campaign_id = ?""", (campaign.id,)):
            if r["planned"] != "queued":
                progress.excluded += 1
                continue
            progress.total += 1
            if r["state"] == "sent":
                if r["status"] in ("failed", "undelivered"):
                    progress.failed += 1
                else:
                    progress.sent += 1
            elif r["state"] == "sending":
                progress.sending += 1
            elif r["state"] == "pending":
                if r["next_try_at"] > at:
                    progress.held += 1
                else:
                    progress.waiting += 1
            elif r["state"] == "failed":
                progress.failed += 1
            elif r["refusal"]:
                progress.refused += 1
            else:
                progress.cancelled += 1
        return progress
