"""The recipient's local time, and when quiet hours let a marketing message go.

Whose clock: the customer's `timezone` attribute (an IANA name such as Europe/Berlin) when it
is set and valid; else the time zones of their phone number's region and area code (one for
most numbers; several for a country that spans zones, where the message must be allowed in
every one of them, because we cannot tell which the person is in); else the workspace's zone
(`[outreach] timezone`, or this machine's).

When: outside quiet hours (`[outreach] quiet_hours`, default 20:00-09:00). For US phone numbers,
never before 08:00 or from 21:00 local whatever is configured (the TCPA's calling hours), in the
number's own zones as well as in the timezone attribute's, since the law is about where the
phone is. A message that may not go now is *held* until the first moment it may; never skipped.
`next_open` returns None only when no moment of the next days is allowed in all the zones at
once (zones half a world apart with a short window).

Phone-number look-ups read the `phonenumbers` package's time-zone table by prefix, as its own
`time_zones_for_geographical_number` does, cached by the number's first TIMEZONE_LONGEST_PREFIX
digits (the table's longest key): parsing every number costs 0.07 ms, 0.7 s for 10,000.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

US_EARLIEST = 8 * 60  # minutes after local midnight
US_LATEST = 21 * 60
SEARCH_DAYS = 3


@functools.lru_cache(maxsize=512)
def zone_named(name: str) -> ZoneInfo | None:
    if not isinstance(name, str) or not name.strip() or name.startswith(("/", ".")) or ".." in name:
        return None
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


@functools.lru_cache(maxsize=8)
def workspace_zone(setting: str = "") -> ZoneInfo:
    """The configured zone, else this machine's (TZ, then /etc/localtime), else UTC."""
    for name in (setting, os.environ.get("TZ", "").lstrip(":"), _localtime_name()):
        zone = zone_named(name) if name else None
        if zone is not None:
            return zone
    return ZoneInfo("UTC")


def _localtime_name() -> str:
    try:
        target = str(Path("/etc/localtime").resolve())
    except OSError:
        return ""
    marker = "zoneinfo/"
    return target.split(marker, 1)[1] if marker in target else ""


@functools.lru_cache(maxsize=65536)
def _phone_facts(prefix: str) -> tuple[tuple[str, ...], str]:
    from phonenumbers import COUNTRY_CODE_TO_REGION_CODE
    from phonenumbers.tzdata import TIMEZONE_DATA

    digits = prefix[1:]
    country = next((int(digits[:n]) for n in (1, 2, 3) if int(digits[:n] or 0) in COUNTRY_CODE_TO_REGION_CODE), None)
    if country is None:
        return (), ""
    region = COUNTRY_CODE_TO_REGION_CODE[country][0]
    for length in range(len(digits), 0, -1):
        zones = TIMEZONE_DATA.get(digits[:length])
        if zones is None:
            continue
        # The country's whole list (+1 spans Guam to Newfoundland) says nothing about this
        # number: then the workspace's zone is the better guess.
        if length <= len(str(country)) and len(zones) > 1:
            return (), region
        return tuple(z for z in zones if zone_named(z) is not None), region
    return (), region


def phone_facts(number: str) -> tuple[tuple[str, ...], str]:
    """(time zones, region code) of an E.164 number, read from its prefix the way
    `phonenumbers.timezone` does (without parsing the number, so it is cheap and cached by
    prefix); ((), "") when it cannot be read. A +1 number counts as the US (the region listed
    first for the code): for Canada and the Caribbean that only makes the hours stricter."""
    if not number.startswith("+") or not number[1:].isdigit():
        return (), ""
    from phonenumbers.tzdata import TIMEZONE_LONGEST_PREFIX

    return _phone_facts(number[: 1 + TIMEZONE_LONGEST_PREFIX])


def is_us(number: str) -> bool:
    return phone_facts(number)[1] == "US"


def recipient_zones(attributes: dict, phones: list[str], fallback: ZoneInfo) -> list[ZoneInfo]:
    """The zones a message to this customer must respect (see the module docstring)."""
    named = zone_named(str(attributes.get("timezone", ""))) if attributes.get("timezone") else None
    if named is not None:
        return [named]
    for number in phones:
        zones = [zone_named(z) for z in phone_facts(number)[0]]
        if zones:
            return [z for z in zones if z is not None]
    return [fallback]


def _allowed_minute(minute: int, quiet_start: int, quiet_end: int, us: bool) -> bool:
    if us and not (US_EARLIEST <= minute < US_LATEST):
        return False
    if quiet_start == quiet_end:
        return True
    if quiet_start < quiet_end:
        return not (quiet_start <= minute < quiet_end)
    return quiet_end <= minute < quiet_start


def allowed_at(at: float, zone: ZoneInfo, quiet_start: int, quiet_end: int, us: bool = False) -> bool:
    local = dt.datetime.fromtimestamp(at, zone)
    return _allowed_minute(local.hour * 60 + local.minute, quiet_start, quiet_end, us)


def _next_in_zone(at: float, zone: ZoneInfo, quiet_start: int, quiet_end: int, us: bool) -> float | None:
    if allowed_at(at, zone, quiet_start, quiet_end, us):
        return at
    local = dt.datetime.fromtimestamp(at, zone)
    starts = {quiet_end} | ({US_EARLIEST} if us else set())
    best = None
    for days in range(SEARCH_DAYS + 1):
        day = (local + dt.timedelta(days=days)).date()
        for minute in starts:
            moment = dt.datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=zone).timestamp()
            if moment > at and allowed_at(moment, zone, quiet_start, quiet_end, us) and (best is None or moment < best):
                best = moment
        if best is not None:
            return best
    return None


def next_open(at: float, zones: list[ZoneInfo], quiet_start: int, quiet_end: int, us: bool = False) -> float | None:
    """The first moment at or after `at` when a marketing message is allowed in every zone."""
    moment = at
    for _ in range(16):
        moved = False
        for zone in zones:
            found = _next_in_zone(moment, zone, quiet_start, quiet_end, us)
            if found is None:
                return None
            if found > moment:
                moment, moved = found, True
        if not moved:
            return moment
    return None


def describe(at: float, zone: ZoneInfo) -> str:
    """'Tue 09:00 Europe/Berlin': a held message's release, as the recipient's clock shows it."""
    return dt.datetime.fromtimestamp(at, zone).strftime("%a %d %b %H:%M ") + str(zone.key)
