"""Subjects as thread keys of last resort: "Re: AW: Order #118" and "order #118" are one thread.

Mail clients that drop In-Reply-To and References (some phones, web forms, forwarding services)
still keep the subject with a reply prefix. The store uses `reply_subject` only for a reply whose
thread headers match nothing it has, and only among the same customer's recent conversations.
"""

from __future__ import annotations

import re

# Reply and forward prefixes as mail clients write them in several languages, repeated or
# numbered ("Re[2]:", "Re^2:"), with an optional list tag in front ("[shop] Re:").
_PREFIX = re.compile(
    r"^\s*(?:\[[^\]]{1,40}\]\s*)?(?:re|fwd?|aw|wg|sv|vs|antw|antwort|r|rif|res|tr|ynt|odp|vá|atb)"
    r"(?:\s*\[\d+\]|\^\d+)?\s*[:：]\s*", re.IGNORECASE)


def strip_reply_prefixes(subject: str) -> tuple[str, bool]:
    """(subject without reply/forward prefixes, whether there was at least one)."""
    found = False
    while True:
        match = _PREFIX.match(subject)
        if match is None:
            return subject.strip(), found
        if match.end() == len(subject):
            return "", True  # nothing but prefixes
        subject, found = subject[match.end():], True


def subject_key(subject: str) -> str:
    """What two subjects of one thread have in common: no prefixes, case or runs of spaces."""
    return " ".join(strip_reply_prefixes(subject)[0].casefold().split())


def reply_subject(subject: str) -> str:
    """The thread key of a reply ("" for a subject without a reply prefix, or an empty one)."""
    rest, is_reply = strip_reply_prefixes(subject)
    return " ".join(rest.casefold().split()) if is_reply else ""
