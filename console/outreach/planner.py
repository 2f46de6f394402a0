"""Planning a campaign step: the dry run, the launch, the steps that follow, the test send.

`plan_step` is the dry run and the first half of every send decision: for each customer of the
segment it takes the step's channel rule, asks restraint (the store's `Policy`) which route may
carry the message and when, and renders the exact text (console/outreach/messages.py).
`preview` shows that plan; `launch` writes the very same plan in one transaction
(console/store/campaigns.py `write_step`): a recipient row per customer (queued, excluded with
its reason code, or holdout) and, for each queued one, a message and its outbox row, purpose
marketing, with an idempotency key derived from the launch's own key, the step and the
customer, so planning a step twice after a crash can never make a second row and a send in
doubt is reconciled by that key. The campaign duty (console/outreach/duty.py) calls `advance`:
a later step is planned per recipient once their previous message went and its delay passed,
on the segment as it is then. The outbox asks restraint again for every row it claims.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field

from console.model import Address
from console.outreach.campaign import Campaign, Step
from console.outreach.messages import Rendered, render
from console.outreach.reasons import Reason
from console.outreach.restraint import choose
from console.outreach.facts import Recipient
from console.outreach.settings import Senders


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

    @property
    def holdout(self) -> bool:
        return self.reason is Reason.HOLDOUT


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


def in_holdout(campaign_id: int, customer_id: int, share: float) -> bool:
    """The random holdout, fixed per campaign and customer (the dry run shows who it will be)."""
    return share > 0 and random.Random(f"holdout:{campaign_id}:{customer_id}").random() < share


def _error(message: str) -> Exception:
    from console.store.campaigns import CampaignError

    return CampaignError(message)


def need(store, ref: int | str) -> Campaign:
    campaign = store.campaign(ref)
    if campaign is None:
        raise _error(f"no campaign named {ref!r} (console campaign list shows them)")
    if not campaign.steps:
        raise _error(f"the campaign {campaign.name!r} has no step yet")
    return campaign


def step_of(campaign: Campaign, position: int) -> Step:
    step = next((s for s in campaign.steps if s.position == position), None)
    if step is None:
        raise _error(f"the campaign {campaign.name!r} has no step {position}")
    if not step.channels:
        raise _error(f"step {position} of {campaign.name!r} has no text on any channel")
    return step


def audience(store, campaign: Campaign, at: float) -> tuple[list[int], set[int]]:
    """The segment's customers now, and the excluded ones among them (the dry run names them)."""
    segment = store.segment(campaign.segment_id) if campaign.segment_id is not None else None
    if segment is None:
        raise _error(f"the campaign {campaign.name!r} has no segment: pick who it is for first")
    members = store.segment_members(segment.query, (), at)
    return members, set(segment.exclude) & set(members)


def _routes(store, senders: Senders) -> dict[str, tuple[str, str]]:
    kinds = store.policy.channel_kinds
    return {channel: (account, kinds.get(channel, channel)) for channel, account in senders.accounts.items()}


def plan_step(store, conn, campaign: Campaign, step: Step, customer_ids: list[int], at: float, senders: Senders,
              agent: str, excluded: set[int] = frozenset(), started: float | None = None, first: bool = True) -> Plan:
    """What this step would do for each customer at `at` (nothing is written)."""
    plan = Plan(campaign, step.position, at=at)
    settings = store.policy.settings
    # A plan for a moment past (the demo's history) reads who wrote when as it was then.
    facts = store.recipients(conn, customer_ids, at, settings.cap_seconds, _routes(store, senders), started,
                             as_of=at < time.time() - 60)
    emails = [i.id for r in facts.values() for i in r.identities if i.kind == "email"]
    tokens = store.unsubscribe_tokens(emails) if emails else {}
    for customer_id in customer_ids:
        person = facts.get(customer_id)
        if person is None:
            continue
        if customer_id in excluded:
            plan.rows.append(Planned(customer_id, person.name, Reason.EXCLUDED, at))
        elif first and in_holdout(campaign.id or 0, customer_id, campaign.holdout):
            plan.rows.append(Planned(customer_id, person.name, Reason.HOLDOUT, at))
        else:
            plan.rows.append(_plan_one(store, person, step, at, senders, agent, tokens, started))
    return plan


def _plan_one(store, person: Recipient, step: Step, at: float, senders: Senders, agent: str,
              tokens: dict[int, str], started: float | None) -> Planned:
    settings = store.policy.settings
    last_used = person.routes[0].channel if person.routes and person.routes[0].last_used else None
    templates = {c for c, t in step.texts.items() if t.template}
    route, verdict = choose(person, step.candidates(last_used), at, settings, templates, started)
    if route is None or not (verdict.ok or verdict.held):
        return Planned(person.customer_id, person.name, verdict.reason, at, detail=verdict.detail,
                       channel=route.channel if route else "")
    if verdict.held:
        verdict = store.policy.judge(person, _send(route, templates, started), at)  # with its words
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


def _send(route, templates, started):
    from console.outreach.facts import Send

    return Send("marketing", route.channel, route.identity_id, template=route.channel in templates,
                campaign_started=started)


def preview(store, ref: int | str, senders: Senders, agent: str, at: float | None = None, position: int = 1) -> Plan:
    """The dry run of a step (the first by default) as if launched at `at` (now): the stop
    conditions count from then."""
    at = time.time() if at is None else at
    campaign = need(store, ref)
    step = step_of(campaign, position)
    members, excluded = audience(store, campaign, at)
    store.unsubscribe_tokens([])  # the key exists before the read snapshot (made once per workspace)
    with store.db.read() as conn:
        return plan_step(store, conn, campaign, step, members, at, senders, agent, excluded, started=at)


def launch(store, ref: int | str, senders: Senders, agent: str, at: float | None = None) -> Plan:
    """Plan the first step and write it, all in one transaction; the campaign runs."""
    at = time.time() if at is None else at
    campaign = need(store, ref)
    step = step_of(campaign, 1)
    members, excluded = audience(store, campaign, at)
    store.unsubscribe_tokens([])
    with store.db.write() as conn:
        run_key = store.begin_launch(conn, campaign, agent, at)
        plan = plan_step(store, conn, campaign, step, members, at, senders, agent, excluded, started=at)
        store.write_step(conn, campaign.id, run_key, plan, agent)
    campaign.state, campaign.launched_at = "running", at
    return plan


def advance(store, senders: Senders, at: float | None = None) -> list[str]:
    """The duty's work: plan each running campaign's later steps for the recipients whose
    previous message went long enough ago; finish campaigns with nothing left. Returns a line
    per campaign that moved."""
    at = time.time() if at is None else at
    said = []
    for campaign in [c for c in store.campaigns() if c.state == "running"]:
        planned = 0
        for step in campaign.steps[1:]:
            due = store.due_for_step(campaign.id, step.position, at - step.delay_seconds)
            if not due:
                continue
            members, excluded = audience(store, campaign, at)
            inside = set(members)
            with store.db.write() as conn:
                run_key = store.running_key(conn, campaign.id)
                if run_key is None:
                    break  # paused or cancelled meanwhile
                stay = [c for c in due if c in inside and c not in excluded]
                plan = plan_step(store, conn, campaign, step, stay, at, senders, campaign.launched_by,
                                 started=campaign.launched_at, first=False)
                names = store.names_of(conn, [c for c in due if c not in stay])
                for customer_id in due:
                    if customer_id not in stay:
                        reason = Reason.EXCLUDED if customer_id in excluded else Reason.LEFT_SEGMENT
                        plan.rows.append(Planned(customer_id, names.get(customer_id, ""), reason, at))
                store.write_step(conn, campaign.id, run_key, plan, campaign.launched_by)
            planned += len(plan.rows)
        if planned:
            said.append(f"{campaign.name}: {planned} recipient(s) of a later step planned")
        if store.finish_if_done(campaign, at):
            said.append(f"{campaign.name}: finished")
    return said


def test_send(store, ref: int | str, position: int, customer_id: int, senders: Senders, agent: str) -> list[str]:
    """Send step `position` as `customer_id` would get it, to the workspace's own test addresses
    only (`[outreach] test_addresses`); returns where it went. The outbox checks again that
    each address is a test address."""
    campaign = need(store, ref)
    step = step_of(campaign, position)
    settings = store.policy.settings
    if not settings.test_addresses:
        raise _error("no test address is configured: add [outreach] test_addresses to the config "
                     '(e.g. ["email:you@shop.example", "phone:+15551230000"])')
    with store.db.read() as conn:
        person = store.recipients(conn, [customer_id], time.time(), settings.cap_seconds)[customer_id]
    sent = []
    for kind, address in settings.test_addresses:
        for channel in step.channels:
            account = senders.accounts.get(channel)
            if store.policy.channel_kinds.get(channel) != kind or account is None:
                continue
            identity_id = store.identity_for(Address(kind, address, f"test: {agent}"))
            token = store.unsubscribe_tokens([identity_id])[identity_id]
            rendered = render(step.texts[channel], channel, person.name, person.attributes, agent, settings, token,
                              senders.mailto(account, settings))
            if rendered.problem:
                raise _error(f"step {position} on {channel}: {rendered.problem}")
            subject = f"[test] {rendered.subject}" if rendered.subject else ""
            store.enqueue_reply(identity_id, account, channel, rendered.body, subject=subject, author=agent,
                                options=rendered.options, purpose="test", new_thread=True)
            sent.append(f"{channel} to {address}")
    if not sent:
        raise _error("no test address is on a channel this step has a text for")
    return sent
