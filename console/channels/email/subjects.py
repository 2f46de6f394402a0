"""The subject rules of email, in one place: a reply's subject, and subjects as thread keys.

`reply_subject_for` is the subject of our reply ("Re: " in front unless the subject already
starts with a reply prefix): the adapter builds outgoing mail with it, and the UI shows the same
subject in the composer.

Subjects as thread keys of last resort: "Re: AW: Order #118" and "order #118" are one thread.
Mail clients that drop In-Reply-To and References (some phones, web forms, forwarding services)
still keep the subject with a reply prefix. The adapter hands the store `reply_subject` (the key
of a reply, "" for anything else) in `InboundMessage.reply_subject`; the store compares it with
the key it keeps for each conversation (its subject case- and space-folded, or the key of the
message that opened it), only among the same customer's recent conversations.
"""

from __future__ import annotations

import re

# Prefixes as mail clients write them in several languages, repeated or numbered ("Re[2]:",
# "Re^2:"), with an optional list tag in front ("[shop] Re:").
_REPLY_WORDS = r"re|aw|sv|vs|antw|antwort|r|rif|res|ynt|odp|vá|atb"
_FORWARD_WORDS = r"fwd?|wg|tr"
_TAG = r"^\s*(?:\[[^\]]{1,40}\]\s*)?"
_NUMBER = r"(?:\s*\[\d+\]|\^\d+)?\s*[:：]\s*"
_PREFIX = re.compile(rf"{_TAG}(?:{_REPLY_WORDS}|{_FORWARD_WORDS}){_NUMBER}", re.IGNORECASE)
_REPLY_PREFIX = re.compile(rf"{_TAG}(?:{_REPLY_WORDS}){_NUMBER}", re.IGNORECASE)


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


def reply_subject_for(subject: str) -> str:
    """The subject of our reply to a mail with `subject`: kept when it already starts with a reply
    prefix ("Re:", "AW:", "Re[2]:"), else "Re: " in front; "Re:" for an empty subject.
    A forward ("Fwd: invoice") is answered as "Re: Fwd: invoice", as mail clients do."""
    subject = subject.strip()
    if not subject:
        return "Re:"
    if _REPLY_PREFIX.match(subject):
        return subject
    return "Re: " + subject
