"""The recipient's local time, and whether it falls in their quiet hours.

One small function decides a customer's time zone: the `timezone` customer attribute, else the
zones of their phone number (phonenumbers' time-zone data, by country and area code; a number it
cannot place gets every zone of its country), else the workspace's. A number whose region spans several zones (a US area code near a border)
is quiet when it is quiet in any of them: a message never goes out in anybody's night.

The satisfaction question (console/csat.py) uses it now; the campaigns' quiet hours (built at the
same time in the outreach work) need the same rule, and the two are meant to become this one
module. Pure: no store, no UI.
"""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@functools.lru_cache(maxsize=4096)
def _phone_zones(phone: str) -> tuple[str, ...]:
    try:
        import phonenumbers
        from phonenumbers import timezone as phone_timezone
    except ImportError:  # pragma: no cover - phonenumbers is a dependency
        return ()
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return ()
    zones = tuple(z for z in phone_timezone.time_zones_for_number(number) if z != "Etc/Unknown")
    if zones:
        return zones
    # A number the data cannot place (a new or fictional range): every zone of its country.
    return _country_zones(phonenumbers.region_code_for_country_code(number.country_code) or "")


@functools.lru_cache(maxsize=256)
def _country_zones(region: str) -> tuple[str, ...]:
    """The zones of a country (ISO 3166 code) from the system's time-zone table."""
    import zoneinfo
    from pathlib import Path

    for folder in zoneinfo.TZPATH:
        table = Path(folder) / "zone.tab"
        try:
            lines = table.read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        return tuple(fields[2] for fields in (line.split("\t") for line in lines)
                     if len(fields) >= 3 and fields[0] == region)
    return ()


def recipient_zones(attributes: dict, phone: str | None, workspace_zone: str) -> tuple[ZoneInfo, ...]:
    """The zones the customer may be in: their `timezone` attribute, else their phone number's,
    else the workspace's."""
    names: tuple[str, ...] = ()
    stated = str(attributes.get("timezone", "")).strip()
    if stated:
        names = (stated,)
    elif phone:
        names = _phone_zones(phone)
    zones = []
    for name in names or (workspace_zone,):
        try:
            zones.append(ZoneInfo(name))
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return tuple(zones) or (ZoneInfo(workspace_zone),)


def _quiet_in(t: float, zone: ZoneInfo, quiet: tuple[int, int]) -> float | None:
    """When the quiet hours around `t` end in `zone`, or None when `t` is not in them."""
    start, end = quiet
    local = dt.datetime.fromtimestamp(t, zone)
    minute = local.hour * 60 + local.minute
    inside = (start <= minute or minute < end) if start > end else (start <= minute < end)
    if not inside or start == end:
        return None
    until = local.replace(hour=end // 60, minute=end % 60, second=0, microsecond=0)
    if until <= local:
        until += dt.timedelta(days=1)
    return dt.datetime(until.year, until.month, until.day, until.hour, until.minute, tzinfo=zone).timestamp()


def quiet_until(t: float, zones: tuple[ZoneInfo, ...], quiet: tuple[int, int]) -> float | None:
    """None when `t` is outside the quiet hours (`quiet` = local minutes from, until) in every
    zone; otherwise when it is morning in all of them."""
    ends = [end for end in (_quiet_in(t, zone, quiet) for zone in zones) if end is not None]
    return max(ends) if ends else None
