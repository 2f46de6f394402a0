"""The demo workspace's outreach: consent, two segments, a draft campaign and a finished one.

So that everything can be tried with no accounts: the card shows consent per channel (some
customers agreed to news, some said no, some were never asked, and the one who texted STOP on
SMS still gets WhatsApp news); the Campaigns screen has a draft to edit, dry-run, test and
launch (the demo accounts deliver it, and now and then a made-up customer answers), and a
campaign sent nine days ago whose report is filled in: delivered and read messages, replies on
the same and on other channels, an opt-out, orders, and a holdout to measure the lift against.

Everything goes through the store's and the planner's own paths (consent records with their
sources, the dry run's plan written by the launch, the outbox claimed with restraint, replies
pulled as a demo account would): the demo's numbers are what the real code makes of them.
"""

from __future__ import annotations

import datetime as dt
import random

from console.model import InboundMessage, PullResult, SendResult
from console.outreach import keywords, planner
from console.outreach.campaign import Campaign, ChannelText, Step
from console.outreach.zones import workspace_zone

DAY = 86400.0
SOURCES = ("signed the newsletter list at the counter", "ticked 'news from the bakery' on the order form",
           "replied YES to 'want our weekly specials?'", "asked in shop while picking up")
DECLINED = "said no to news at the counter"
CITIES = ("Springfield", "Riverton", "Springfield", "Oak Hill")
ANSWERS = ("Yes please! Save me two loaves for Saturday.", "Ooh, is the pumpkin loaf vegan?",
           "Could I order one for Sunday morning?", "Lovely, see you Friday", "Two of the pumpkin ones please")


def furnish(store, agent: str, senders, now: float) -> dict[str, int]:
    """Add the demo's outreach; returns how much of each was added."""
    rng = random.Random(11)
    added = {"consents": 0, "segments": 0, "campaigns": 0}
    customers = store.customer_ids()
    for customer_id in customers:
        if customer_id % 7 == 0:
            store.set_attribute(customer_id, "orders", str(rng.randint(4, 15)))
        store.set_attribute(customer_id, "city", CITIES[customer_id % len(CITIES)])
        added["consents"] += _consent(store, customer_id, agent, now)
    store.save_segment("Newsletter", "channel:email,sms,whatsapp not:tag:wholesale")
    launched = dt.datetime.fromtimestamp(now - 12 * DAY, workspace_zone(store.outreach.timezone)).replace(
        hour=10, minute=0, second=0, microsecond=0).timestamp()
    fans = _pumpkin_fans(store, customers, launched, rng)
    added["segments"] = 2
    _draft(store)
    _finished(store, fans, agent, senders, launched, now)
    added["campaigns"] = 2
    return added


def _consent(store, customer_id: int, agent: str, now: float) -> int:
    """Most customers agreed to news on the channels they use, one in five said no, some were
    never asked; every record has where it came from."""
    kind = customer_id % 5
    if kind == 4:
        return 0
    made = 0
    used = sorted({(t["identity_id"], t["channel"]) for t in store.reply_targets(customer_id)})
    for identity_id, channel in used:
        if channel in ("instagram", "messenger"):
            continue  # Meta's window rules: no news there
        at = now - (35 + customer_id % 10) * DAY  # before the demo's six weeks of messages
        if kind == 3:
            store.set_consent(identity_id, channel, "marketing", "withdrawn", DECLINED, at=at, reason=DECLINED,
                              agent="ben")
        else:
            source = SOURCES[(customer_id + len(channel)) % len(SOURCES)]
            store.set_consent(identity_id, channel, "marketing", "granted", source,
                              "weekly specials and new bakes from Crumb & Co.", at=at)
        made += 1
    return made


def _draft(store) -> None:
    """The campaign to try: email, SMS or WhatsApp as each customer last wrote, then a reminder."""
    segment = store.segment("Newsletter")
    first = Step(1, 0, "last_used", ("email", "sms", "whatsapp"), {
        "email": ChannelText("Spring menu at Crumb & Co.",
                             "Hi {first_name|there},\n\nThe spring menu is in the case from Tuesday: rhubarb "
                             "tarts, wild garlic focaccia and a lemon loaf. Order ahead and we keep one for you.\n\n"
                             "{agent} at {business}"),
        "sms": ChannelText(body="Hi {first_name|there}! Spring menu from Tue: rhubarb tarts & lemon loaf. "
                                "Reply to order ahead. {business}"),
        "whatsapp": ChannelText(template="follow_up", variables=("{first_name|there}", "spring menu")),
    })
    second = Step(2, 4 * DAY, "order", ("whatsapp", "sms"), {
        "whatsapp": ChannelText(template="follow_up", variables=("{first_name|there}", "last rhubarb tarts")),
        "sms": ChannelText(body="Last rhubarb tarts this weekend, {first_name|there}. Reply to keep one!"),
    })
    store.save_campaign(Campaign(None, "Spring menu", segment.id, steps=[first, second], reply_days=7,
                                 convert_on="tag:ordered", convert_days=7, holdout=0.1))


def _pumpkin_fans(store, customers: list[int], launched: float, rng: random.Random) -> int:
    """The customers who bought pumpkin loaf last autumn (tagged so), and their segment. Mostly
    people who then did not write for a week, so that what the report calls a reply is one."""
    wrote = store.inbound_times(set(customers), launched)
    quiet = [c for c in customers if not any(t <= launched + 7 * DAY for t in wrote.get(c, []))]
    busy = [c for c in customers if c not in quiet]
    for customer_id in quiet + rng.sample(busy, min(len(busy), 24)):
        store.add_tag(customer_id, "pumpkin-fan", at=launched - 300 * DAY)
    return store.save_segment("Pumpkin fans", "tag:pumpkin-fan")


def _finished(store, segment_id: int, agent: str, senders, launched: float, now: float) -> None:
    """Twelve days ago, at 10:00 in the workspace's zone: sent, delivered (and read where the
    channel says), answered by some, one STOP, orders tagged, a holdout kept out."""
    store.save_campaign(Campaign(None, "Pumpkin week", segment_id, steps=[Step(1, 0, "last_used", ("email", "sms"), {
        "email": ChannelText("Pumpkin week at Crumb & Co.", "Hi {first_name|there},\n\nPumpkin loaves and spiced "
                                                            "buns all week. Order ahead and we keep one for you.\n\n"
                                                            "{agent}"),
        "sms": ChannelText(body="Pumpkin week at {business}: spiced loaves & buns. Reply to order ahead!"),
        "whatsapp": ChannelText(template="follow_up", variables=("{first_name|there}", "pumpkin loaf")),
        "telegram": ChannelText(body="Pumpkin week at {business}: spiced loaves and buns all week. "
                                     "Write back to keep one!"),
    })], reply_days=7, convert_on="tag:ordered", convert_days=7, holdout=0.15))
    plan = planner.launch(store, "Pumpkin week", senders, agent, at=launched)
    rng = random.Random(5)
    sent = store.claim_due(list(set(senders.accounts.values())), 1000, at=launched)
    for n, out in enumerate(sent):
        status = "read" if out.channel == "whatsapp" and n % 2 else "delivered"
        store.record_sent(out, SendResult(f"demo-pumpkin-{out.idempotency_key}", status, sent_at=launched + n * 2))
    stopper = next((o for o in sent if o.channel == "sms"), None)
    answering = [o for n, o in enumerate(sent) if n % 3 != 1 and o is not stopper] + ([stopper] if stopper else [])
    for n, out in enumerate(answering):
        customer = store.customer_of_message(out.message_id)
        at = launched + (3 + n * 5) * 3600
        body = "STOP" if out is stopper else ANSWERS[n % len(ANSWERS)]
        thread = out.thread_key or f"{out.channel}:{out.to.address}"
        reply = InboundMessage(f"demo-pumpkin-reply-{n}", thread, out.channel, "in", out.to, at, body,
                               subject="Re: Pumpkin week at Crumb & Co." if out.channel == "email" else "",
                               related_keys=(thread,))
        result = PullResult([reply])
        result.opt_outs.extend(keywords.read(result, "demo", store.outreach, at))
        store.apply_pull(out.account, result)
        if out is not stopper and n % 2 == 0:
            store.add_tag(customer, "ordered", at=at + 3600)
        store.set_status("done", customer_id=customer)  # answered by the shop that day
    for p in plan.rows:  # the holdout orders too, now and then: what the lift is measured against
        if p.holdout and rng.random() < 0.1:
            store.add_tag(p.customer_id, "ordered", at=launched + 2 * DAY)
    planner.advance(store, senders, at=now)  # nothing left to send: finished
