"""The exact message one recipient gets from one campaign step on one channel.

Placeholders are filled as in replies (console/templates.py: {first_name}, {name}, {agent},
{business}, the customer's attributes, `{first_name|there}` with a fallback). What the channel
adds for marketing is added here, so the preview shows it and the outbox sends it:

- email: a plain unsubscribe line at the end of the body, and the headers `List-Unsubscribe`
  (a mailto the sync engine reads and honours, plus the HTTPS endpoint when one is configured)
  and `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058) with that endpoint; the
  adapter sets them from the outbox row's options;
- SMS: "Reply STOP to opt out." when the text does not already say how (carriers expect it),
  with its segment count and cost estimate;
- WhatsApp: an approved template with its variables (options "template" and "variables", as
  the composer sends them), shown as the composer shows it.

A text that is too long for the channel, or that keeps a placeholder this customer has no value
for, makes a `problem`: that recipient is left out with the reason, never sent a broken text.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass, field

from console.channels import catalog
from console.outreach.campaign import ChannelText
from console.outreach.settings import OutreachSettings
from console.templates import fill, unfilled, values_for

SMS_STOP_LINE = "Reply STOP to opt out."


@dataclass(frozen=True)
class Rendered:
    channel: str
    subject: str
    body: str
    options: dict[str, str] = field(default_factory=dict)
    segments: int = 0  # SMS
    cost: float = 0.0  # SMS: segments x [outreach] sms_segment_price
    problem: str = ""  # why it cannot be sent as it is ("" when it can)


def unsubscribe_headers(token: str, mailto: str, settings: OutreachSettings) -> dict[str, str]:
    """The options an email adapter turns into List-Unsubscribe headers."""
    subject = urllib.parse.quote(f"unsubscribe {token}")
    links = [f"<mailto:{mailto}?subject={subject}>"] if mailto else []
    options = {}
    if settings.unsubscribe_url:
        links.insert(0, f"<{settings.unsubscribe_url}/{token}>")
        options["list_unsubscribe_post"] = "List-Unsubscribe=One-Click"
    if links:
        options["list_unsubscribe"] = ", ".join(links)
    return options


def unsubscribe_line(token: str, mailto: str, settings: OutreachSettings) -> str:
    ways = ["reply UNSUBSCRIBE"]
    if mailto:
        ways.append(f"write to {mailto} (subject: unsubscribe {token})")
    if settings.unsubscribe_url:
        ways.append(f"open {settings.unsubscribe_url}/{token}")
    how = ", or ".join(ways)
    return fill(settings.unsubscribe_text, {"business": settings.business, "how": how})


def render(text: ChannelText, channel: str, customer_name: str, attributes: dict[str, str], agent: str,
           settings: OutreachSettings, token: str = "", mailto: str = "") -> Rendered:
    """The message for one recipient (see the module docstring)."""
    values = values_for(customer_name, agent, settings.business, attributes)
    if channel == "whatsapp" and text.template:
        variables = [fill(v, values) for v in text.variables]
        missing = [m for v in variables for m in unfilled(v)]
        shown = f"[template {text.template}] " + " · ".join(variables)
        options = {"template": text.template,
                   "variables": json.dumps({str(n): v for n, v in enumerate(variables, 1)})}
        return Rendered(channel, "", shown, options, problem=_missing(missing))
    subject = fill(text.subject, values) if channel == "email" else ""
    body = fill(text.body, values).rstrip()
    missing = unfilled(subject) + unfilled(body)
    options: dict[str, str] = {}
    if channel == "email":
        body = f"{body}\n\n{unsubscribe_line(token, mailto, settings)}"
        options = unsubscribe_headers(token, mailto, settings)
        if not subject.strip():
            return Rendered(channel, subject, body, options, problem="the email step has no subject")
    elif channel == "sms" and "STOP" not in body.upper():
        body = f"{body} {SMS_STOP_LINE}" if body else SMS_STOP_LINE
    verdict = catalog.measure(channel, body)
    segments = verdict.used if channel == "sms" else 0
    problem = _missing(missing) or ("" if verdict.ok else verdict.refusal or "the text is empty")
    return Rendered(channel, subject, body, options, segments, round(segments * settings.sms_segment_price, 4),
                    problem)


def _missing(names: list[str]) -> str:
    names = list(dict.fromkeys(names))
    if not names:
        return ""
    return f"the text needs {', '.join('{' + n + '}' for n in names)}, which this customer has no value for"
