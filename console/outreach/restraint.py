"""The restraint verdict: may this message go to this customer now, later, or not at all?

This is the one place the rules are written. The campaign dry run and launch ask it for every
recipient (console/store/campaigns.py), and the outbox asks it again for every marketing, test
and acknowledgement row at the moment it is claimed for sending (console/store/outbox.py
`claim_due`), so a row planned hours ago, held for quiet hours, or written into the outbox by
hand meets today's consent, cap and window. The store gathers the facts in bulk
(console/store/restraint.py); this module only decides, so it is tested with plain values.

The store holds a `Policy` (these rules with the workspace's settings) and asks it; the store
itself knows no channel's rules (tests/core/test_import_hygiene.py).

The rules, in the order they are checked (the first that fails is the reason given):

1. consent, per identity x channel x purpose: marketing only with marketing consent granted on
   that channel; nothing but the one confirmation after a withdrawal of `service` (SMS STOP);
   a test send only to an address of `[outreach] test_addresses`;
2. the channel's window (catalog): WhatsApp after 24 hours only with an approved template;
   Messenger and Instagram never outside their window (HUMAN_AGENT is for a person's answer,
   not for promotions);
3. campaign stop conditions: the customer wrote on any channel since the campaign started, an
   agent answered them since, or a conversation of theirs is open;
4. the frequency cap across all channels (`cap_messages` per `cap_days`);
5. quiet hours in the recipient's time (console/outreach/zones.py): not a refusal, a *hold*
   until the window opens; and the business-hours hook, when one is set.
"""

from __future__ import annotations

from console.channels import catalog
from console.outreach import zones
from console.outreach.facts import Identity, Recipient, Route, Send, Verdict  # noqa: F401 (the facts it decides on)
from console.outreach.reasons import Reason
from console.outreach.settings import OutreachSettings

def consent_refusal(recipient: Recipient, send: Send, settings: OutreachSettings) -> Reason | None:
    """Rule 1: consent for this purpose on this channel."""
    if send.purpose == "ack":
        return None  # the one confirmation of an opt-out (the store sends it once)
    if send.purpose == "test":
        ident = recipient.identity(send.identity_id)
        ok = ident is not None and (ident.kind, ident.address) in settings.test_addresses
        return None if ok else Reason.NOT_A_TEST_ADDRESS
    if recipient.consent_state(send.identity_id, send.channel, "service") == "withdrawn":
        return Reason.OPTED_OUT
    if send.purpose == "marketing":
        state = recipient.consent_state(send.identity_id, send.channel, "marketing")
        if state == "withdrawn":
            return Reason.OPTED_OUT
        if state != "granted":
            return Reason.NO_CONSENT
    return None


def window_refusal(recipient: Recipient, send: Send, now: float) -> Reason | None:
    """Rule 2: what the channel's messaging window allows a message nobody asked for."""
    if send.purpose not in ("marketing", "test"):
        return None  # replies follow the composer's rules (and the adapter refuses the rest)
    entry = catalog.channel(send.channel)
    if send.tag and send.purpose == "marketing":
        return Reason.WINDOW_CLOSED  # a message tag (HUMAN_AGENT) is never for promotions
    window = catalog.window_state(send.channel, recipient.last_inbound.get(send.channel), now)
    if window.free_text:
        return None
    if entry.templates and send.template:
        return None
    return Reason.WINDOW_CLOSED


def stop_refusal(recipient: Recipient, started: float | None) -> Reason | None:
    """Rule 3: a campaign leaves alone whoever is in a conversation with us."""
    if started is None:
        return None
    last_in = recipient.last_inbound_at
    if last_in is not None and last_in >= started:
        return Reason.REPLIED
    if recipient.last_service_reply_at is not None and recipient.last_service_reply_at >= started:
        return Reason.AGENT_REPLIED
    if recipient.open_conversation:
        return Reason.OPEN_CONVERSATION
    return None


def capped(recipient: Recipient, at: float, settings: OutreachSettings) -> bool:
    """Rule 4: another marketing message within `cap_days` before or after `at` (either side:
    a message queued for tomorrow counts against one today)."""
    if settings.cap_messages <= 0:
        return True
    window = settings.cap_seconds
    near = sum(1 for t in recipient.marketing_times if abs(t - at) < window)
    return near >= settings.cap_messages


def release(recipient: Recipient, send: Send, at: float, settings: OutreachSettings) -> float | None:
    """Rule 5: the first moment at or after `at` outside quiet hours (and inside business
    hours, when the hook is set); None when there is none."""
    ident = recipient.identity(send.identity_id)
    us = ident is not None and ident.kind == "phone" and zones.is_us(ident.address)
    fallback = zones.workspace_zone(settings.timezone)
    zone_list = recipient_zones(recipient, fallback)
    if us:  # the TCPA's hours are where the phone is, whatever the timezone attribute says
        zone_list = zone_list + [z for z in zones.recipient_zones({}, [ident.address], fallback) if z not in zone_list]
    moment = at
    for _ in range(8):
        found = zones.next_open(moment, zone_list, settings.quiet_start, settings.quiet_end, us)
        if found is None:
            return None
        if settings.business_open is None:
            return found
        opened = settings.business_open(found)
        if opened <= found:
            return found
        moment = opened
    return None


def recipient_zones(recipient: Recipient, fallback):
    return zones.recipient_zones(recipient.attributes, recipient.phones(), fallback)


def judge(recipient: Recipient, send: Send, now: float, settings: OutreachSettings) -> Verdict:
    """The verdict on one message to one customer at `now` (see the module docstring)."""
    reason = consent_refusal(recipient, send, settings) or window_refusal(recipient, send, now)
    if reason is not None:
        return Verdict(reason, now, reason.sentence)
    if send.purpose != "marketing":
        return Verdict(None, now)
    reason = stop_refusal(recipient, send.campaign_started)
    if reason is not None:
        return Verdict(reason, now, reason.sentence)
    at = release(recipient, send, now, settings)
    if at is None:
        return Verdict(Reason.NO_QUIET_WINDOW, now, Reason.NO_QUIET_WINDOW.sentence)
    if capped(recipient, at, settings):
        return Verdict(Reason.CAPPED, now, Reason.CAPPED.sentence)
    if at > now:
        return Verdict(Reason.HELD, at, Reason.HELD.sentence)
    return Verdict(None, now)


def choose(recipient: Recipient, channels: list[str], now: float, settings: OutreachSettings,
           templates: set[str] = frozenset(), started: float | None = None) -> tuple[Route | None, Verdict]:
    """The route a campaign step takes to this customer, trying `channels` in order (the step's
    channel rule has ordered them), and the verdict on it. A channel is skipped when the customer
    has no route on it, or its consent or window refuses; when every channel is refused, the
    verdict gives the first one's reason (the channel the rule preferred)."""
    first: Verdict | None = None
    for channel in channels:
        routes = [r for r in recipient.routes if r.channel == channel]
        for route in routes:
            send = Send("marketing", channel, route.identity_id, template=channel in templates, campaign_started=started)
            reason = consent_refusal(recipient, send, settings) or window_refusal(recipient, send, now)
            if reason is None:
                return route, judge(recipient, send, now, settings)
            if first is None:
                first = Verdict(reason, now, reason.sentence)
    if first is None:
        return None, Verdict(Reason.NO_CHANNEL, now, Reason.NO_CHANNEL.sentence)
    return None, first


class Policy:
    """Restraint with a workspace's `[outreach]` settings: what the store asks at claim time, and
    what the campaign planner (console/outreach/planner.py) asks when it plans a step."""

    def __init__(self, settings: OutreachSettings | None = None):
        self.settings = settings or OutreachSettings()
        # channel -> the identity kind its addresses are (SMS and WhatsApp: phone)
        self.channel_kinds = {entry.id: entry.identity_kind for entry in catalog.channels()}

    def judge(self, recipient: Recipient, send: Send, at: float) -> Verdict:
        verdict = judge(recipient, send, at, self.settings)
        if verdict.held:
            zone = zones.workspace_zone(self.settings.timezone)
            return Verdict(verdict.reason, verdict.at, f"held for quiet hours until {zones.describe(verdict.at, zone)}")
        return verdict
