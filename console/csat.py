"""Customer satisfaction: the `[csat]` settings, and reading a customer's answer as a rating.

After a conversation is done the engine asks one short question on the customer's channel
("How did we do? Reply 1-5"), once per conversation, never in the customer's quiet hours
(console/recipient_time.py). The answer comes back as an ordinary message: `parse_reply` tells
a bare rating ("5", "4/5", "★★★★", "five") from a rating with words after it ("2, the cake was
burnt") and from anything else. A bare rating is recorded and leaves the conversation closed;
anything more reopens it, with the rating (if it starts with one) recorded too.

Pure: no store, no UI.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

DEFAULT_QUESTION = "How did we do? Reply 1-5 (5 = great)."
WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
STARS = "★⭐✩☆✭✮✯🌟"
# A rating, then only what people add to one: "/5", "out of 5", "stars", punctuation, emoji.
_BARE = re.compile(r"^\s*([1-5])\s*(?:/\s*5|out\s+of\s+5|of\s+5)?\s*(?:stars?|points?)?\s*[!.)\s]*$", re.IGNORECASE)
_LEADING = re.compile(r"^\s*([1-5])\s*(?:/\s*5|out\s+of\s+5)?\s*(?:stars?)?\s*[-–—:,.!)]?\s+(\S.*)$",
                      re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Answer:
    rating: int | None  # 1-5, or None when the message is no rating
    bare: bool  # the message is only the rating: record it, keep the conversation closed
    comment: str = ""


def _plain(text: str) -> str:
    """Fullwidth digits and stray emoji presentation selectors folded away."""
    text = unicodedata.normalize("NFKC", text).replace("\ufe0f", "").replace("\u20e3", "")
    return text.strip()


def parse_reply(text: str | None) -> Answer:
    """What a reply to the satisfaction question says."""
    body = _plain(text or "")
    if not body:
        return Answer(None, False)
    stars = [c for c in body if c in STARS]
    if stars and not body.strip(STARS + " !.").strip():
        return Answer(min(len(stars), 5), True)
    if body.strip(" !.").lower() in WORDS:
        return Answer(WORDS[body.strip(" !.").lower()], True)
    match = _BARE.match(body)
    if match:
        return Answer(int(match.group(1)), True)
    match = _LEADING.match(body)
    if match:
        return Answer(int(match.group(1)), False, match.group(2).strip())
    return Answer(None, False)


@dataclass(frozen=True)
class CsatSettings:
    question: str = DEFAULT_QUESTION
    questions: dict[str, str] = field(default_factory=dict)  # per channel
    after_minutes: float = 10.0  # a conversation reopened within this is not asked
    channels: frozenset[str] = frozenset()  # empty: every channel
    quiet_hours: tuple[int, int] = (21 * 60, 8 * 60)  # recipient's local minutes: from, until
    answer_within_days: float = 7.0  # a rating later than this is an ordinary message

    def question_for(self, channel: str) -> str:
        return self.questions.get(channel, self.question)


def parse_settings(table, err, channels: set[str]) -> CsatSettings | None:
    """`[csat]`; None when absent or `enabled = false`. `err(key, message)` returns the error."""
    if table is None:
        return None
    if not isinstance(table, dict):
        raise err("", "expected a [csat] table")
    known = {"enabled", "question", "questions", "after_minutes", "channels", "quiet_hours", "answer_within_days"}
    for key in table:
        if key not in known:
            raise err(key, f"unknown key; expected one of {', '.join(sorted(known))}")
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise err("enabled", f"expected true or false, got {enabled!r}")
    if not enabled:
        return None
    question = table.get("question", DEFAULT_QUESTION)
    if not isinstance(question, str) or not question.strip():
        raise err("question", "expected the question's text")
    questions = table.get("questions", {})
    if not isinstance(questions, dict) or not all(isinstance(v, str) and v.strip() for v in questions.values()):
        raise err("questions", 'expected a table of channel = "question", e.g. questions = { sms = "Rate us 1-5" }')
    for channel in questions:
        if channel not in channels:
            raise err("questions", f"unknown channel {channel!r}")
    after = table.get("after_minutes", 10)
    if isinstance(after, bool) or not isinstance(after, (int, float)) or after < 0:
        raise err("after_minutes", f"expected a number of minutes, got {after!r}")
    listed = table.get("channels", [])
    if not isinstance(listed, list) or not all(isinstance(c, str) and c in channels for c in listed):
        raise err("channels", f"expected a list of channels among {', '.join(sorted(channels))}")
    quiet = table.get("quiet_hours", "21:00-08:00")
    parsed = parse_quiet_hours(quiet)
    if parsed is None:
        raise err("quiet_hours", f'expected the recipient\'s quiet hours like "21:00-08:00", got {quiet!r}')
    within = table.get("answer_within_days", 7)
    if isinstance(within, bool) or not isinstance(within, (int, float)) or within <= 0:
        raise err("answer_within_days", f"expected a positive number of days, got {within!r}")
    return CsatSettings(question.strip(), {k: v.strip() for k, v in questions.items()}, float(after),
                        frozenset(listed), parsed, float(within))


def parse_quiet_hours(text) -> tuple[int, int] | None:
    """'21:00-08:00' -> (1260, 480) minutes; None when it is not such a range."""
    if not isinstance(text, str):
        return None
    match = re.match(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$", text)
    if not match:
        return None
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        return None
    return h1 * 60 + m1, h2 * 60 + m2
