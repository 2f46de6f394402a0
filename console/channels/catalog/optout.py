"""Opt-out and opt-in keywords: what a customer writes, as a whole message, to stop or restart us.

Every channel understands STOP, STOPALL, UNSUBSCRIBE, CANCEL, END and QUIT (and START / UNSTOP to
come back); SMS adds what Twilio's own opt-out handling understands (OPTOUT, REVOKE, and YES to
come back), because the carrier enforces those whatever console thinks. A workspace adds words
in other languages (`[outreach] opt_out_words`). A keyword counts only as the whole message:
"STOP." and " stop " are an opt-out, "Please don't stop baking" is not. In an email, the whole
message is what the customer wrote above the quoted history and the signature.

What a stop ends depends on the channel (`withdraws`): after STOP, SMS carriers block every
message to the number, replies included, until START; elsewhere a stop ends marketing, and a
question the customer asks later is still answered. SMS expects the opt-out to be confirmed with
one message (`acknowledge`); the account kind says which words its service confirms itself
(catalog.AccountKind.confirms_opt_out), so the customer never gets two confirmations.

Pure data and pure functions: the store applies the verdicts (console/store/consent.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "UNSTOP"})
# What Twilio itself handles on long codes and toll-free numbers (its "default opt-out keywords").
TWILIO_STOP_WORDS = STOP_WORDS | {"OPTOUT", "REVOKE"}
TWILIO_START_WORDS = START_WORDS | {"YES"}

_EDGE = " \t\r\n.!?¡¿,;:\"'()*_~-"
_QUOTE_START = re.compile(r"^(>|-- ?$|On .*wrote:$|Am .*schrieb.*:$|Le .*a écrit ?:$|El .*escribió:$)")


@dataclass(frozen=True)
class OptOut:
    """How a channel's customers stop and restart messages."""

    stop_words: frozenset[str]
    start_words: frozenset[str]
    # The purposes a stop withdraws ("service": replies too; "marketing": what they did not ask for).
    withdraws: tuple[str, ...] = ("marketing",)
    # The channel expects one confirmation of an opt-out (SMS: carriers and the CTIA require it).
    acknowledge: bool = False


def own_words(body: str) -> str:
    """What the customer wrote themselves: the text above quoted history and a signature."""
    kept = []
    for line in body.splitlines():
        if _QUOTE_START.match(line.strip()) or line.rstrip() == "--":
            break
        kept.append(line)
    return "\n".join(kept)


def normal_word(text: str) -> str:
    """'  Stop! ' -> 'STOP': a whole message as a keyword would be written."""
    return " ".join(own_words(text).split()).strip(_EDGE).upper()


def keyword(opt_out: OptOut, text: str, extra_stop: frozenset[str] = frozenset(),
            extra_start: frozenset[str] = frozenset()) -> str | None:
    """'stop', 'start' or None for a whole message on a channel with these rules (plus a
    workspace's own words, upper-case)."""
    word = normal_word(text)
    if not word:
        return None
    if word in opt_out.stop_words or word in extra_stop:
        return "stop"
    if word in opt_out.start_words or word in extra_start:
        return "start"
    return None
