"""How long a message is, the way each service counts it, and whether it fits.

One verdict serves both ends: the composer shows `note` while the agent types, and the adapter
refuses a send with `refusal` before any network call when `ok` is false, so what the composer
allows is exactly what the adapter sends. The ways of counting:

- "characters": code points, as a person counts them (Messenger's 2,000).
- "utf16": UTF-16 code units; an emoji or another character outside the BMP counts 2 (Telegram's
  4,096 "characters after entities parsing"; Twilio's 1,600-character Body, which it says counts
  emoji as more than one).
- "utf8": UTF-8 bytes; accents take 2, emoji 4 (Instagram's 1,000 bytes).
- "mastodon": code points, every URL 23 whatever its length, a remote mention only its user
  part, with the "@acct " the reply is addressed with counted in (the instance's limit).
- "segments": SMS segments, GSM-7 or UCS-2 (`sms.segment_info`).
- "none": no limit worth counting (email).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from console.channels.catalog.sms import segment_info

URL_LENGTH = 23  # Mastodon counts every URL as 23 characters
_URL = re.compile(r"https?://\S+")
_REMOTE_MENTION = re.compile(r"@([A-Za-z0-9_]+)@[A-Za-z0-9.-]+")


@dataclass(frozen=True)
class LengthRule:
    """How one channel counts a message, and its limit (None: no limit)."""

    counting: str  # "characters", "utf16", "utf8", "mastodon", "segments" or "none"
    limit: int | None = None
    service: str = ""  # who sets the limit, for the sentence: "Twilio", "this Mastodon server"


@dataclass(frozen=True)
class LengthSettings:
    """What one account or recipient changes about counting."""

    # The account's own limit where the service lets it vary: a Mastodon instance's
    # `max_characters` (the account's config key of that name).
    max_characters: int | None = None
    # The name a reply is addressed with, which counts: Mastodon's "@acct " put first.
    mention: str = ""


@dataclass(frozen=True)
class LengthVerdict:
    ok: bool  # the text is not blank and fits
    note: str  # for the composer, e.g. "42/2000 characters" or "2 SMS segments · GSM-7 · 146 left"
    used: int  # in `unit`s
    limit: int | None
    unit: str = "characters"
    refusal: str = ""  # when it does not fit: one sentence saying so and what to do


def length_settings(account: dict | None = None, mention: str = "") -> LengthSettings:
    """Settings from an account's `[[accounts]]` table (its raw values) and the recipient's name."""
    limit = (account or {}).get("max_characters")
    return LengthSettings(limit if isinstance(limit, int) and not isinstance(limit, bool) else None, mention)


def mastodon_length(text: str) -> int:
    """Characters as Mastodon counts them: a URL is 23, a remote mention counts its user part only."""
    return len(_REMOTE_MENTION.sub(r"@\1", _URL.sub("x" * URL_LENGTH, text)))


def _count(rule: LengthRule, text: str, settings: LengthSettings) -> tuple[int, str]:
    if rule.counting == "utf16":
        return len(text.encode("utf-16-le")) // 2, "characters"
    if rule.counting == "utf8":
        return len(text.encode("utf-8")), "bytes"
    if rule.counting == "mastodon":
        mention = settings.mention.strip().lstrip("@")
        return mastodon_length(f"@{mention} {text}" if mention else text), "characters"
    return len(text), "characters"


def _hint(rule: LengthRule, text: str, used: int) -> str:
    """Why the count differs from what a person sees, when it does."""
    if rule.counting == "utf16" and used != len(text):
        return " (an emoji counts as 2)"
    if rule.counting == "utf8" and used != len(text):
        return " (accents and emoji take several)"
    return ""


def judge(rule: LengthRule, name: str, text: str, settings: LengthSettings | None = None) -> LengthVerdict:
    """The verdict on `text` under `rule`, for a channel shown as `name`."""
    settings = settings or LengthSettings()
    if rule.counting == "segments":
        info = segment_info(text)
        refusal = f"The message is {info.reason}; shorten it or split it." if info.reason else ""
        return LengthVerdict(info.sendable and bool(text.strip()), info.describe(), info.segments,
                             rule.limit, "segments", refusal)
    limit = rule.limit
    if rule.counting == "mastodon" and settings.max_characters:
        limit = settings.max_characters
    used, unit = _count(rule, text, settings)
    if not text.strip():
        return LengthVerdict(False, "", used, limit, unit)
    if limit is None:
        return LengthVerdict(True, f"{used} {unit}", used, None, unit)
    hint = _hint(rule, text, used)
    mention = settings.mention.strip().lstrip("@") if rule.counting == "mastodon" else ""
    with_mention = f" with the @{mention} mention" if mention else ""
    if used > limit:
        allows = rule.service or name
        return LengthVerdict(False, f"{used}/{limit} {unit}{hint}: too long for {name}", used, limit, unit,
                             f"The message is {used} {unit} long{with_mention}{hint}; {allows} allows at most "
                             f"{limit}. Shorten it or split it into several messages.")
    return LengthVerdict(True, f"{used}/{limit} {unit}{hint}", used, limit, unit)
