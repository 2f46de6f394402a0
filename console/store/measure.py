"""What a campaign did, per step and channel: targeted, sent, delivered, read, replied, opted out,
failed, converted; and the lift against the holdout.

Definitions (one place: the report, the screen, the CSV and the segment filter `replied:` all
use them):

- *targeted*: a recipient the step was planned for (queued); excluded ones are counted by reason;
- *sent*: handed to the channel and not failed since; *delivered* / *read*: what the channel
  reported (read only where the channel says it: WhatsApp, Messenger, Instagram);
- *failed*: the channel failed it; *refused*: restraint stopped it at the moment of sending;
- *replied*: the customer wrote to us **on any channel** within `reply_days` after that step's
  message went (an email answered by an SMS counts);
- *opted out*: a consent of theirs withdrawn within `reply_days` after the message;
- *converted*: the campaign's `convert_on` (`tag:ordered` or `attribute:last_order`) set on the
  customer within `convert_days` after their first message; for the holdout, after the launch;
- *lift*: converted share of those messaged minus converted share of the holdout.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from console.store.db import Database, chunks

FUNNEL = ("targeted", "sent", "delivered", "read", "replied", "opted_out", "failed", "refused", "converted")


@dataclass
class Funnel:
    targeted: int = 0
    sent: int = 0
    delivered: int = 0
    read: int = 0
    replied: int = 0
    opted_out: int = 0
    failed: int = 0
    refused: int = 0
    converted: int = 0

    def add(self, other: "Funnel") -> None:
        for name in FUNNEL:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in FUNNEL}


@dataclass
class Report:
    campaign: str
    state: str
    launched_at: float | None
    reply_days: int
    convert_on: str
    convert_days: int
    steps: dict[int, dict[str, Funnel]] = field(default_factory=dict)  # position -> channel -> funnel
    excluded: dict[int, dict[str, int]] = field(default_factory=dict)  # position -> reason -> count
    holdout: int = 0
    holdout_converted: int = 0
    messaged: int = 0  # customers who got at least one message
    messaged_converted: int = 0

    def step_total(self, position: int) -> Funnel:
        total = Funnel()
        for funnel in self.steps.get(position, {}).values():
            total.add(funnel)
        return total

    @property
    def lift(self) -> float | None:
        """Converted share of the messaged minus that of the holdout (None without a holdout)."""
        if not self.holdout or not self.messaged or not self.convert_on:
            return None
        return self.messaged_converted / self.messaged - self.holdout_converted / self.holdout


def _within(times: list[float], start: float, days: float) -> bool:
    end = start + days * 86400
    return any(start < t <= end for t in times)


class MeasureMixin:
    db: Database

    def campaign_report(self, ref: int | str) -> Report:
        from console.store.campaigns import CampaignError

        campaign = self.campaign(ref)
        if campaign is None:
            raise CampaignError(f"no campaign named {ref!r}")
        report = Report(campaign.name, campaign.state, campaign.launched_at, campaign.reply_days,
                        campaign.convert_on, campaign.convert_days)
        rows = self.db.query(
            """SELECT cr.position, cr.customer_id, cr.channel, cr.state AS planned, cr.reason, o.state, o.refusal,
                      m.status, m.sent_at
               FROM campaign_recipient cr LEFT JOIN outbox o ON o.id = cr.outbox_id
               LEFT JOIN message m ON m.id = cr.message_id WHERE cr.campaign_id = ?
               ORDER BY cr.position, cr.customer_id""", (campaign.id,))
        customers = {r["customer_id"] for r in rows}
        since = campaign.launched_at or 0.0
        inbound = self.inbound_times(customers, since)
        withdrawn = self._times(
            """SELECT i.customer_id, l.at FROM consent_log l JOIN identity i ON i.id = l.identity_id
               WHERE l.state = 'withdrawn' AND l.at > ? AND i.customer_id IN ({marks})""", customers, since)
        converted = self._conversions(campaign.convert_on, customers, since)
        first_sent: dict[int, float] = {}
        for r in rows:
            position = r["position"]
            if r["planned"] == "holdout":
                report.holdout += 1
                if converted and _within(converted.get(r["customer_id"], []), since, campaign.convert_days):
                    report.holdout_converted += 1
                continue
            if r["planned"] == "excluded":
                reasons = report.excluded.setdefault(position, {})
                reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
                continue
            funnel = report.steps.setdefault(position, {}).setdefault(r["channel"], Funnel())
            funnel.targeted += 1
            went = r["state"] == "sent" or (r["state"] == "failed" and r["status"] == "unknown")
            if r["state"] == "cancelled" and r["refusal"]:
                funnel.refused += 1
            elif r["state"] == "failed" or r["status"] in ("failed", "undelivered"):
                funnel.failed += 1
            elif went:
                funnel.sent += 1
                funnel.delivered += r["status"] in ("delivered", "read")
                funnel.read += r["status"] == "read"
            if not went or r["status"] in ("failed", "undelivered") or r["sent_at"] is None:
                continue
            sent_at = r["sent_at"]
            first_sent[r["customer_id"]] = min(first_sent.get(r["customer_id"], sent_at), sent_at)
            funnel.replied += _within(inbound.get(r["customer_id"], []), sent_at, campaign.reply_days)
            funnel.opted_out += _within(withdrawn.get(r["customer_id"], []), sent_at, campaign.reply_days)
            funnel.converted += bool(converted) and _within(converted.get(r["customer_id"], []), sent_at,
                                                              campaign.convert_days)
        report.messaged = len(first_sent)
        report.messaged_converted = sum(1 for c, at in first_sent.items()
                                        if converted and _within(converted.get(c, []), at, campaign.convert_days))
        return report

    def replied_to(self, name: str) -> set[int]:
        """Customers who replied (on any channel, within its reply window) to the campaign named so."""
        campaign = self.campaign(name)
        if campaign is None:
            return set()
        rows = self.db.query(
            """SELECT cr.customer_id, m.sent_at FROM campaign_recipient cr JOIN outbox o ON o.id = cr.outbox_id
               JOIN message m ON m.id = cr.message_id WHERE cr.campaign_id = ? AND o.state = 'sent'
               AND (m.status IS NULL OR m.status NOT IN ('failed', 'undelivered'))""", (campaign.id,))
        sent: dict[int, list[float]] = defaultdict(list)
        for r in rows:
            sent[r["customer_id"]].append(r["sent_at"])
        inbound = self.inbound_times(set(sent), campaign.launched_at or 0.0)
        return {c for c, times in sent.items()
                if any(_within(inbound.get(c, []), t, campaign.reply_days) for t in times)}

    def inbound_times(self, customers: set[int], since: float) -> dict[int, list[float]]:
        """When each of these customers wrote to us (any channel) after `since`."""
        return self._times(
            """SELECT c.customer_id, m.sent_at AS at FROM message m JOIN conversation c ON c.id = m.conversation_id
               WHERE m.direction = 'in' AND m.sent_at > ? AND c.customer_id IN ({marks})""", customers, since)

    def _times(self, sql: str, customers: set[int], since: float, extra: tuple = ()) -> dict[int, list[float]]:
        """{customer: [times]} of a query taking (since, *extra, *customer ids) by `{marks}`."""
        out: dict[int, list[float]] = defaultdict(list)
        for chunk in chunks(sorted(customers)):
            for row in self.db.query(sql.format(marks=",".join("?" * len(chunk))), (since, *extra, *chunk)):
                out[row[0]].append(row[1])
        return out

    def _conversions(self, convert_on: str, customers: set[int], since: float) -> dict[int, list[float]]:
        kind, _, name = convert_on.partition(":")
        if not name.strip():
            return {}
        if kind == "tag":
            return self._times("""SELECT customer_id, created_at FROM tag WHERE created_at > ? AND name = ?
                                  AND customer_id IN ({marks})""", customers, since, (name.strip().lower(),))
        if kind == "attribute":
            return self._times("""SELECT customer_id, at FROM attribute_change WHERE at > ? AND name = ?
                                  AND customer_id IN ({marks})""", customers, since, (name.strip(),))
        return {}


__all__ = ["MeasureMixin", "Report", "Funnel", "FUNNEL"]
