"""`console rules test NAME --since 7d`: what a rule would have done, found in the history,
without doing it.

Message events are the customers' messages of the period; conversations opened or reopened are
the episodes that began in it; time events are found in the episodes' waits (console/store/
episodes.py keeps every interval a customer waited for a person's answer): `no_reply` and
`unassigned` where a wait lasted longer than `after_minutes`, `sla_breaching` where an answer
came later than `after_minutes` before its SLA target. Conditions use the customers' tags and
attributes as they are now (their history is not kept), and so does `unassigned` for assignment.
"""

from __future__ import annotations

from dataclasses import dataclass

from console.rules.duty import plan_for
from console.rules.model import Rule, Subject


@dataclass
class Match:
    at: float
    conversation_id: int
    customer: str
    channel: str
    actions: list[str]


def simulate(rule: Rule, workspace, store, since: float, now: float) -> list[Match]:
    moments = _moments(rule, workspace, store, since, now)
    subjects = store.subjects(sorted({cid for cid, _, _ in moments}))
    matches, replied = [], {}
    for conversation_id, at, text in moments:
        row = subjects.get(conversation_id)
        if row is None:
            continue
        if rule.on == "unassigned" and row["assignee"]:
            continue
        subject = Subject(row["id"], row["customer_id"], row["name"], row["channel"], row["account"], row["status"],
                          row["assignee"], frozenset(row["tags"]), row["attributes"], text, at, at)
        if not rule.matches(subject, workspace.business_hours):
            continue
        plan = plan_for(rule, subject, "", at, workspace)
        actions = rule.planned(row["channel"])
        if plan.reply:
            last = replied.get(row["customer_id"])
            if last is not None and at - last < rule.reply_every:
                actions = [a for a in actions if not a.startswith("reply")] + [
                    f"no reply: answered this customer less than {rule.reply_every / 3600:g} h before"]
            else:
                replied[row["customer_id"]] = at
        actions = [a for a in actions if not (plan.skipped and a.startswith("reply"))] + plan.skipped
        matches.append(Match(at, conversation_id, row["name"], row["channel"], actions))
    return sorted(matches, key=lambda m: m.at)


def _moments(rule: Rule, workspace, store, since: float, now: float) -> list[tuple[int, float, str]]:
    """(conversation, moment of the event, text) of every event of the rule's kind in the period."""
    if rule.on == "message_received":
        return [(m["conversation_id"], m["sent_at"], f"{m['subject']}\n{m['body']}".strip())
                for m in store.inbound_between(since, now)]
    out = []
    episodes = store.episodes_between(since, now)
    tags = {}
    if rule.on == "sla_breaching":
        tags = {cid: row["tags"] for cid, row in store.subjects(sorted({e["conversation_id"] for e in episodes})).items()}
    for ep in episodes:
        if rule.on in ("conversation_opened", "conversation_reopened"):
            kind = "new" if rule.on == "conversation_opened" else "reopened"
            if ep["kind"] == kind and since <= ep["started_at"] <= now:
                out.append((ep["conversation_id"], ep["started_at"], ep["text"]))
            continue
        waits = [tuple(w) for w in ep["owed"]]
        if ep["owed_since"] is not None and ep["resolved_at"] is None:
            waits.append((ep["owed_since"], now))
        for number, (start, end) in enumerate(waits):
            moment = None
            if rule.on in ("no_reply", "unassigned"):
                if end - start > rule.after:
                    moment = start + rule.after
            else:
                kind = "first_response" if number == 0 else "next_response"
                policy = next((p for p in workspace.policies if p.target(kind)
                               and p.matches(ep["channel"], ep["account"], tags.get(ep["conversation_id"], ()))), None)
                if policy is not None:
                    cal = workspace.business_hours if policy.business_hours else None
                    due = cal.add(start, policy.target(kind)) if cal else start + policy.target(kind)
                    if end > due - rule.after:
                        moment = due - rule.after
            if moment is not None and since <= moment <= now:
                out.append((ep["conversation_id"], moment, ep["text"]))
    return out
