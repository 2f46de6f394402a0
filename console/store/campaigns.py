"""Campaigns in the store: editing, the dry run, the launch, the steps that follow, and control.

`plan_step` is the dry run and the first half of every send decision: for each customer of the
segment it takes the step's channel rule, asks restraint (console/outreach/restraint.py) which
route may carry the message and when, and renders the exact text (console/outreach/messages.py).
`preview_campaign` shows that plan; `launch_campaign` writes the same plan in one transaction:
a `campaign_recipient` row per customer (queued, excluded with its reason code, or holdout) and,
for each queued one, a message and its outbox row, purpose marketing, with an idempotency key
derived from the launch's own key, the step and the customer, so planning a step twice after a
crash can never make a second row (the UNIQUE key refuses it) and a send in doubt is reconciled
by that key. The engine's campaign duty (console/outreach/duty.py) calls `advance_campaigns`:
a later step is planned per recipient once their previous message went and its delay passed,
on the segment as it is then. Pause stops the claim of the campaign's rows (they wait), cancel
ends the ones not sent yet; the restraint at claim time applies to all of them regardless.
"""

from __future__ import annotations

import json
import random
import sqlite3
import uuid
from collections import Counter
from dataclasses import dataclass, field

from console.channels import catalog
from console.outreach.campaign import RULES, Campaign, Step
from console.outreach.messages import Rendered, render
from console.outreach.reasons import Reason
from console.outreach.restraint import Recipient, choose
from console.outreach.settings import OutreachSettings, Senders
from console.store.db import Database, now
from console.store.outbox import hold
from console.store.restraint import gather

_KEYS = uuid.UUID("6f1d7c1e-4b43-4d0c-9d5e-0c0a5e7a11e5")  # namespace of campaign idempotency keys


@dataclass
class Planned:
    """One customer's part in one step: goes now, held until `at`, or left out for `reason`."""

    customer_id: int
    name: str
    reason: Reason | None
    at: float
    channel: str = ""
    account: str = ""
    identity_id: int | None = None
    conversation_id: int | None = None
    rendered: Rendered | None = None
    detail: str = ""

    @property
    def queued(self) -> bool:
        return self.reason is None or self.reason is Reason.HELD


@dataclass
class Plan:
    campaign: Campaign
    position: int
    rows: list[Planned] = field(default_factory=list)
    at: float = 0.0

    @property
    def selected(self) -> int:
        return len(self.rows)

    @property
    def now(self) -> list[Planned]:
        return [p for p in self.rows if p.reason is None]

    @property
    def held(self) -> list[Planned]:
        return [p for p in self.rows if p.reason is Reason.HELD]

    @property
    def excluded(self) -> dict[Reason, list[Planned]]:
        out: dict[Reason, list[Planned]] = {}
        for p in self.rows:
            if not p.queued:
                out.setdefault(p.reason, []).append(p)
        return out

    @property
    def by_channel(self) -> Counter:
        return Counter(p.channel for p in self.rows if p.queued)

    @property
    def sms_segments(self) -> int:
        return sum(p.rendered.segments for p in self.rows if p.queued and p.rendered)

    @property
    def cost(self) -> float:
        return round(sum(p.rendered.cost for p in self.rows if p.queued and p.rendered), 4)

    @property
    def held_until(self) -> float | None:
        return max((p.at for p in self.held), default=None)

    def find(self, customer_id: int) -> Planned | None:
        return next((p for p in self.rows if p.customer_id == customer_id), None)


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


def in_holdout(campaign_id: int, customer_id: int, share: float) -> bool:
    """The random holdout, fixed per campaign and customer (the dry run shows who it will be)."""
    return share > 0 and random.Random(f"holdout:{campaign_id}:{customer_id}").random() < share


class CampaignMixin:
    db: Database
    outreach: OutreachSettings

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

    # ---- planning -----------------------------------------------------------------------------
    def _audience(self, campaign: Campaign, at: float) -> tuple[list[int], set[int]]:
        """The segment's customers now, the excluded ones among them (the dry run names them)."""
        segment = self.segment(campaign.segment_id) if campaign.segment_id is not None else None
        if segment is None:
            raise CampaignError(f"the campaign {campaign.name!r} has no segment: pick who it is for first")
        members = self.segment_members(segment.query, (), at)
        return members, set(segment.exclude) & set(members)

    def plan_step(self, conn: sqlite3.Connection, campaign: Campaign, step: Step, customer_ids: list[int],
                  at: float, senders: Senders, agent: str, excluded: set[int] = frozenset(),
                  started: float | None = None, first: bool = True) -> Plan:
        """What this step would do for each customer at `at` (nothing is written)."""
        plan = Plan(campaign, step.position, at=at)
        settings = self.outreach
        facts = gather(conn, customer_ids, at, settings, senders.accounts, since=started)
        emails = [i.id for r in facts.values() for i in r.identities if i.kind == "email"]
        tokens = self.unsubscribe_tokens(emails) if emails else {}
        for customer_id in customer_ids:
            person = facts.get(customer_id)
            if person is None:
                continue
            if customer_id in excluded:
                plan.rows.append(Planned(customer_id, person.name, Reason.EXCLUDED, at))
                continue
            if first and in_holdout(campaign.id or 0, customer_id, campaign.holdout):
                plan.rows.append(Planned(customer_id, person.name, Reason.HOLDOUT, at))
                continue
            plan.rows.append(self._plan_one(person, step, at, settings, senders, agent, tokens, started))
        return plan

    def _plan_one(self, person: Recipient, step: Step, at: float, settings: OutreachSettings, senders: Senders,
                  agent: str, tokens: dict[int, str], started: float | None) -> Planned:
        last_used = person.routes[0].channel if person.routes and person.routes[0].last_used else None
        templates = {c for c, t in step.texts.items() if t.template}
        route, verdict = choose(person, step.candidates(last_used), at, settings, templates, started)
        if route is None or not (verdict.ok or verdict.held):
            return Planned(person.customer_id, person.name, verdict.reason, at, detail=verdict.detail,
                           channel=route.channel if route else "")
        text = step.texts[route.channel]
        rendered = render(text, route.channel, person.name, person.attributes, agent, settings,
                          tokens.get(route.identity_id, ""), senders.mailto(route.account, settings))
        problem = rendered.problem
        if not problem and text.template and text.template not in senders.templates.get(route.account, {}):
            problem = f"{text.template!r} is not an approved template of the account '{route.account}'"
        planned = Planned(person.customer_id, person.name, verdict.reason, verdict.at, route.channel, route.account,
                          route.identity_id, route.conversation_id, rendered, verdict.detail)
        if problem:
            planned.reason, planned.detail, planned.at = Reason.UNFILLED, problem, at
        return planned

    def preview_campaign(self, ref: int | str, senders: Senders, agent: str, at: float | None = None,
                         position: int = 1) -> Plan:
        """The dry run of a step (the first by default) as if launched at `at` (now)."""
        at = now() if at is None else at
        campaign = self._need(ref)
        step = self._step(campaign, position)
        members, excluded = self._audience(campaign, at)
        self.unsubscribe_tokens([])  # the key exists before the read snapshot (made once per workspace)
        with self.db.read() as conn:  # as if launched now: the stop conditions count from `at`
            return self.plan_step(conn, campaign, step, members, at, senders, agent, excluded, started=at)

    def _need(self, ref: int | str) -> Campaign:
        campaign = self.campaign(ref)
        if campaign is None:
            raise CampaignError(f"no campaign named {ref!r} (console campaign list shows them)")
        if not campaign.steps:
            raise CampaignError(f"the campaign {campaign.name!r} has no step yet")
        return campaign

    @staticmethod
    def _step(campaign: Campaign, position: int) -> Step:
        step = next((s for s in campaign.steps if s.position == position), None)
        if step is None:
            raise CampaignError(f"the campaign {campaign.name!r} has no step {position}")
        if not step.channels:
            raise CampaignError(f"step {position} of {campaign.name!r} has no text on any channel")
        return step

    # ---- launching and the steps that follow --------------------------------------------------
    def launch_campaign(self, ref: int | str, senders: Senders, agent: str, at: float | None = None) -> Plan:
        """Plan the first step and write it, all in one transaction; the campaign runs."""
        at = now() if at is None else at
        campaign = self._need(ref)
        step = self._step(campaign, 1)
        members, excluded = self._audience(campaign, at)
        with self.db.write() as conn:
            state = conn.execute("SELECT state FROM campaign WHERE id = ?", (campaign.id,)).fetchone()["state"]
            if state != "draft":
                raise CampaignError(f"the campaign {campaign.name!r} is {state}, not a draft: it was launched already")
            run_key = uuid.uuid4().hex
            conn.execute("""UPDATE campaign SET state = 'running', launched_at = ?, launched_by = ?, run_key = ?,
                                updated_at = ? WHERE id = ?""", (at, agent, run_key, now(), campaign.id))
            plan = self.plan_step(conn, campaign, step, members, at, senders, agent, excluded, started=at)
            self._write_plan(conn, campaign.id, run_key, plan, agent)
        campaign.state, campaign.launched_at = "running", at
        return plan

    def _write_plan(self, conn: sqlite3.Connection, campaign_id: int, run_key: str, plan: Plan, agent: str) -> None:
        """Write a planned step; a customer it was already written for is left alone (the
        UNIQUE key and this check make planning twice harmless)."""
        done = {r[0] for r in conn.execute("SELECT customer_id FROM campaign_recipient WHERE campaign_id = ? "
                                           "AND position = ?", (campaign_id, plan.position))}
        for p in plan.rows:
            if p.customer_id in done:
                continue
            message_id = outbox_id = None
            if p.queued:
                # An email is a mail of its own, never a "Re:" in an old thread; a chat message joins
                # the customer's chat.
                own = p.channel == "email"
                message_id, outbox_id = self._enqueue(
                    conn, p.identity_id, p.account, p.channel, p.rendered.body, subject=p.rendered.subject,
                    author=agent, conversation_id=None if own else p.conversation_id, options=p.rendered.options,
                    due=p.at, purpose="marketing", key=_key(run_key, plan.position, p.customer_id), status="done",
                    new_thread=own)
                if p.reason is Reason.HELD:
                    hold(conn, outbox_id, message_id, p.at, self.outreach.timezone)
            state = "queued" if p.queued else "holdout" if p.reason is Reason.HOLDOUT else "excluded"
            conn.execute(
                """INSERT INTO campaign_recipient (campaign_id, position, customer_id, state, reason, detail, channel,
                       account, identity_id, message_id, outbox_id, planned_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (campaign_id, position, customer_id) DO NOTHING""",
                (campaign_id, plan.position, p.customer_id, state,
                 "" if p.reason in (None, Reason.HELD) else p.reason.value, p.detail, p.channel, p.account,
                 p.identity_id, message_id, outbox_id, plan.at))

    def advance_campaigns(self, senders: Senders, at: float | None = None) -> list[str]:
        """The duty's work: plan each running campaign's later steps for the recipients whose
        previous message went long enough ago; finish campaigns with nothing left. Returns a
        line per campaign that moved."""
        at = now() if at is None else at
        said = []
        for campaign in [c for c in self.campaigns() if c.state == "running"]:
            planned = 0
            for step in campaign.steps[1:]:
                due = [r[0] for r in self.db.query(
                    """SELECT cr.customer_id FROM campaign_recipient cr JOIN outbox o ON o.id = cr.outbox_id
                       JOIN message m ON m.id = cr.message_id
                       WHERE cr.campaign_id = ? AND cr.position = ? AND o.state = 'sent' AND m.sent_at <= ?
                         AND NOT EXISTS (SELECT 1 FROM campaign_recipient nx WHERE nx.campaign_id = cr.campaign_id
                                         AND nx.position = ? AND nx.customer_id = cr.customer_id)
                       ORDER BY cr.customer_id""",
                    (campaign.id, step.position - 1, at - step.delay_seconds, step.position))]
                if not due:
                    continue
                members, excluded = self._audience(campaign, at)
                inside = set(members)
                with self.db.write() as conn:
                    if conn.execute("SELECT state FROM campaign WHERE id = ?", (campaign.id,)).fetchone()[0] != "running":
                        break
                    run_key = conn.execute("SELECT run_key FROM campaign WHERE id = ?", (campaign.id,)).fetchone()[0]
                    stay = [c for c in due if c in inside and c not in excluded]
                    plan = self.plan_step(conn, campaign, step, stay, at, senders, campaign.launched_by,
                                          started=campaign.launched_at, first=False)
                    names = dict(conn.execute(
                        f"SELECT id, name FROM customer WHERE id IN ({','.join('?' * len(due))})", due).fetchall()) \
                        if len(due) <= 900 else {}
                    for customer_id in due:
                        if customer_id not in stay:
                            reason = Reason.EXCLUDED if customer_id in excluded else Reason.LEFT_SEGMENT
                            plan.rows.append(Planned(customer_id, names.get(customer_id, ""), reason, at))
                    self._write_plan(conn, campaign.id, run_key, plan, campaign.launched_by)
                planned += len(plan.rows)
            if planned:
                said.append(f"{campaign.name}: {planned} recipient(s) of a later step planned")
            if self._finished(campaign, at):
                said.append(f"{campaign.name}: finished")
        return said

    def _finished(self, campaign: Campaign, at: float) -> bool:
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

    def test_send(self, ref: int | str, position: int, customer_id: int, senders: Senders, agent: str) -> list[str]:
        """Send step `position` as `customer_id` would get it, to the workspace's own test
        addresses only (`[outreach] test_addresses`); returns the addresses it went to."""
        from console.model import Address
        from console.store.ingest import resolve_identity

        campaign = self._need(ref)
        step = self._step(campaign, position)
        settings = self.outreach
        if not settings.test_addresses:
            raise CampaignError("no test address is configured: add [outreach] test_addresses to the config "
                                '(e.g. ["email:you@shop.example", "phone:+15551230000"])')
        with self.db.write() as conn:
            person = gather(conn, [customer_id], now(), settings)[customer_id]
            sent = []
            for kind, address in settings.test_addresses:
                for channel in step.channels:
                    account = senders.accounts.get(channel)
                    if catalog.channel(channel).identity_kind != kind or account is None:
                        continue
                    identity_id, _ = resolve_identity(conn, Address(kind, address, f"test: {agent}"), self.region, now())
                    token = self.unsubscribe_tokens([identity_id])[identity_id]
                    rendered = render(step.texts[channel], channel, person.name, person.attributes, agent, settings,
                                      token, senders.mailto(account, settings))
                    if rendered.problem:
                        raise CampaignError(f"step {position} on {channel}: {rendered.problem}")
                    subject = f"[test] {rendered.subject}" if rendered.subject else ""
                    self._enqueue(conn, identity_id, account, channel, rendered.body, subject=subject, author=agent,
                                  options=rendered.options, purpose="test", status="done", new_thread=True)
                    sent.append(f"{channel} to {address}")
            if not sent:
                raise CampaignError("no test address is on a channel this step has a text for")
            return sent
