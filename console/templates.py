"""Canned replies and campaign texts: placeholders like {first_name} filled from the customer and the agent.

No UI and no store here: `fill` takes plain values, so it is tested directly and used by the
composer and by campaigns (console/outreach/messages.py). A placeholder may carry a fallback
for customers who lack the value: `{first_name|there}` is "Maria" for Maria and "there" for a
customer known only by their number. A placeholder that cannot be filled stays in the text as
`{name}`, and `unfilled` finds it: the composer refuses to send until the agent has replaced it,
and a campaign leaves that recipient out with the reason.
"""

from __future__ import annotations

import re

PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)(?:\|([^{}]*))?\}")


def values_for(customer_name: str, agent: str, business: str, attributes: dict[str, str]) -> dict[str, str]:
    """What a template can use: {name}, {first_name}, {agent}, {business}, and custom attributes."""
    name = customer_name.strip()
    first = name.split()[0] if name and not name.startswith(("@", "+")) and "@" not in name else ""
    values = {"name": name if first else "", "first_name": first, "agent": agent, "business": business}
    values.update({key: str(value) for key, value in attributes.items() if str(value).strip()})
    return {key: value for key, value in values.items() if value}


def fill(template: str, values: dict[str, str]) -> str:
    """The template with every placeholder that has a value (or a fallback) replaced; the others
    stay as they are."""
    def one(match: re.Match) -> str:
        value = values.get(match.group(1))
        if value is not None:
            return value
        return match.group(2) if match.group(2) is not None else match.group(0)

    return PLACEHOLDER.sub(one, template)


def unfilled(text: str) -> list[str]:
    """Placeholders still in `text`, in order, without repeats."""
    return list(dict.fromkeys(m.group(1) for m in PLACEHOLDER.finditer(text)))
