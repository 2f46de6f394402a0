"""The engine's rules duty: finds each rule's events in the store and applies its actions.

Message events (`message_received`, `conversation_opened`, `conversation_reopened`) come from the
store's event log, read past a high-water mark kept in the store (`rules.seen`): they fire for
messages any process stored, this engine's or another's. Time events are found by what the
store holds now: `no_reply` and `unassigned` by how long a customer has waited for a person's
answer, `sla_breaching` by the SLA clocks (console/sla_duty.py). An event older than
`LAPSE` when the engine first sees it (the engine was down; a first sync brought history) fires
nothing.

A rule never loops:
- each firing is recorded by (rule, event) and a rule fires at most once per event: a time
  event's key is the customer message that started the wait, so a snooze that wakes, a second
  pass or a second engine cannot fire it again;
- actions do not trigger time-based rules: the waits and clocks those rules watch are started
  only by customers' messages; a rule's reply is automatic (it does not end the wait, nor start
  one), a rule cannot reopen a conversation, and nothing a rule does writes a message event.

`now` is injectable for tests; `step()` returns the firings it made (rule, conversation, lines).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from console.channels import catalog
from console.rules.model import Rule, Subject
from console.store import Plan
from console.templates import fill, unfilled, values_for

log = logging.getLogger("console.rules")

LAPSE = 6 * 3600.0  # an event seen later than this after it happened is let go
SEEN = "rules.seen"


def subject_of(row: dict, text: str, at: float) -> Subject:
    return Subject(row["id"], row["customer_id"], row["name"], row["channel"], row["account"], row["status"],
                   row["assignee"], frozenset(row["tags"]), row["attributes"], text, at, row["last_inbound_at"])


class RulesDuty:
    name = "rules"
    every = 10.0

    def __init__(self, workspace, store, now: Callable[[], float] = time.time):
        self.workspace = workspace
        self.store = store
        self.rules: list[Rule] = list(workspace.rules)
        self.hours = workspace.business_hours
        self.now = now

    async def run(self, engine) -> None:
        await asyncio.to_thread(self.step)

    def step(self) -> list[tuple[str, int, list[str]]]:
        fired: list[tuple[str, int, list[str]]] = []
        now = self.now()
        fired += self._message_events(now)
        for rule in self.rules:
            if rule.time_based:
                fired += self._time_events(rule, now)
        return fired

    # ---- events ---------------------------------------------------------------------------------
    def _message_events(self, now: float) -> list:
        fired = []
        wanted = {rule.on for rule in self.rules}
        seen = int(self.store.setting(SEEN, "0") or 0)
        while True:
            events = self.store.events_after(seen, 500)
            if not events:
                return fired
            fresh = [e for e in events if e["kind"] in wanted and e["at"] >= now - LAPSE]
            subjects = self.store.subjects(sorted({e["conversation_id"] for e in fresh}))
            for event in fresh:
                row = subjects.get(event["conversation_id"])
                if row is None:
                    continue
                text = self.store.message_text(event["message_id"]) if event["message_id"] else row["text"]
                subject = subject_of(row, text, event["at"])
                for rule in self.rules:
                    if rule.on == event["kind"]:
                        fired += self._consider(rule, subject, f"{event['kind']}:{event['message_id']}", now)
            seen = events[-1]["seq"]
            self.store.set_setting(SEEN, str(seen))

    def _time_events(self, rule: Rule, now: float) -> list:
        """Events whose moment fell in the last LAPSE: (key, conversation, moment)."""
        found: list[tuple[str, int, float]] = []
        if rule.on in ("no_reply", "unassigned"):
            for row in self.store.waiting_between(now - rule.after - LAPSE, now - rule.after,
                                                  unassigned=rule.on == "unassigned"):
                found.append((f"{rule.on}:{row['id']}:{row['waiting_since']!r}", row["id"],
                              row["waiting_since"] + rule.after))
        else:
            for clock in self.store.clocks_due_between(now + rule.after - LAPSE, now + rule.after):
                found.append((f"sla:{clock.conversation_id}:{clock.kind}:{clock.started_at!r}", clock.conversation_id,
                              clock.due_at - rule.after))
        if not found:
            return []
        done = self.store.fired_keys(rule.name, now - LAPSE - rule.after - 86400)
        todo = [f for f in found if f[0] not in done]
        subjects = self.store.subjects(sorted({f[1] for f in todo}))
        fired = []
        for key, conversation_id, moment in todo:
            row = subjects.get(conversation_id)
            if row is not None:
                fired += self._consider(rule, subject_of(row, row["text"], moment), key, now)
        return fired

    # ---- firing ---------------------------------------------------------------------------------
    def _consider(self, rule: Rule, subject: Subject, key: str, now: float) -> list:
        if not rule.matches(subject, self.hours):
            return []
        plan = plan_for(rule, subject, key, now, self.workspace)
        try:
            lines = self.store.apply_firing(plan)
        except Exception:  # noqa: BLE001 - one rule's failure must not stop the others
            log.exception("rule %r failed on conversation %s", rule.name, subject.conversation_id)
            return []
        if lines is None:
            return []
        log.info("rule %r on conversation %s: %s", rule.name, subject.conversation_id, "; ".join(lines))
        return [(rule.name, subject.conversation_id, lines)]


def reply_text(rule: Rule, subject: Subject, workspace) -> tuple[str | None, str, str | None]:
    """(text, template name, why not) of the rule's automatic reply on the subject's channel."""
    template = rule.template_for(subject.channel)
    if template is None:
        return None, "", f"has no reply template for {catalog.channel(subject.channel).name}" if rule.reply else None
    body = workspace.templates.get(template)
    if body is None:
        return None, template, f"did not reply: no template '{template}' in [templates]"
    text = fill(body, values_for(subject.customer_name, workspace.name, workspace.name, subject.attributes))
    missing = unfilled(text)
    if missing:
        return None, template, f"did not reply with '{template}': nothing to fill {{{missing[0]}}} with"
    return text, template, None


def plan_for(rule: Rule, subject: Subject, key: str, now: float, workspace) -> Plan:
    """What the rule would do to this conversation now."""
    plan = Plan(rule.name, key, subject.conversation_id, now, add_tags=rule.add_tags, note=rule.add_note,
                status=rule.set_status, reply_every=rule.reply_every, notify_to=rule.notify_to)
    if len(rule.assign) == 1:
        plan.assign = rule.assign[0]
    elif rule.assign:
        plan.assign_turns = rule.assign
    if rule.snooze:
        plan.snooze_until = now + rule.snooze
    if rule.reply:
        text, template, why_not = reply_text(rule, subject, workspace)
        window = catalog.window_state(subject.channel, subject.last_inbound_at, now)
        if why_not:
            plan.skipped.append(why_not)
        elif not window.free_text:
            plan.skipped.append(f"did not reply with '{template}': the {catalog.channel(subject.channel).name} "
                                f"reply window is closed")
        else:
            plan.reply, plan.reply_template = text, template
    if rule.notify:
        values = {"name": subject.customer_name, "channel": catalog.channel(subject.channel).name, "rule": rule.name}
        plan.notify = fill(rule.notify, values)
    return plan


def factory(workspace, store) -> RulesDuty | None:
    return RulesDuty(workspace, store) if workspace.rules else None
