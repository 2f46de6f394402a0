"""The business-hours calendar: weekends, holidays, split days, daylight saving, and the small
interface the reports, the SLA clocks, the rules and the campaigns share."""

from __future__ import annotations

import math

import pytest

from console.hours import BusinessHours, HoursError, parse_ranges, parse_settings
from clock import at

WEEKDAY = "09:00-17:00"


def london(**extra) -> BusinessHours:
    table = {"timezone": "Europe/London", "monday": WEEKDAY, "tuesday": WEEKDAY, "wednesday": WEEKDAY,
             "thursday": WEEKDAY, "friday": WEEKDAY, "saturday": "10:00-14:00", "holidays": ["2026-12-25"], **extra}
    return parse_settings(table, lambda key, message: ValueError(f"{key}: {message}"))


def test_business_seconds_across_a_holiday_and_a_weekend():
    hours = london()
    # Thu 16:00 -> Mon 10:00: Thursday 1 h, Christmas closed, Saturday 10-14 (4 h), Sunday closed, Monday 1 h.
    assert hours.business_seconds(at("2026-12-24 16:00"), at("2026-12-28 10:00")) == 6 * 3600
    assert hours.business_seconds(at("2026-12-28 10:00"), at("2026-12-24 16:00")) == 0


def test_is_open_and_next_open():
    hours = london()
    assert hours.is_open(at("2026-12-24 16:59"))
    assert not hours.is_open(at("2026-12-24 17:00"))
    assert not hours.is_open(at("2026-12-25 12:00"))  # the holiday
    assert hours.next_open(at("2026-12-24 17:00")) == at("2026-12-26 10:00")
    assert hours.next_open(at("2026-12-23 12:00")) == at("2026-12-23 12:00")
    assert hours.next_close(at("2026-12-23 12:00")) == at("2026-12-23 17:00")


def test_adding_business_time_skips_closed_days():
    hours = london()
    # Two open hours from Thursday 16:00: one on Thursday, the next on Saturday from 10:00.
    assert hours.add(at("2026-12-24 16:00"), 2 * 3600) == at("2026-12-26 11:00")
    assert hours.add(at("2026-12-24 18:00"), 0) == at("2026-12-26 10:00")


def test_a_ledger_answers_like_business_seconds():
    hours = london()
    ledger = hours.ledger(at("2026-12-20 00:00"), at("2027-01-05 00:00"))
    for a, b in [("2026-12-24 16:00", "2026-12-28 10:00"), ("2026-12-21 08:00", "2026-12-21 09:30"),
                 ("2026-12-26 13:00", "2027-01-04 09:05"), ("2026-12-27 10:00", "2026-12-27 11:00")]:
        assert ledger.between(at(a), at(b)) == hours.business_seconds(at(a), at(b))


def test_opening_hours_keep_their_wall_clock_across_daylight_saving():
    table = {"timezone": "America/New_York", **{day: "09:00-17:00" for day in
                                                 ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                                                  "sunday")}}
    hours = parse_settings(table, lambda key, message: ValueError(message))
    # The night of 7-8 March 2026 loses an hour: Sunday still opens at 09:00 local.
    assert hours.next_open(at("2026-03-08 03:30", "America/New_York")) == at("2026-03-08 09:00", "America/New_York")
    assert hours.business_seconds(at("2026-03-07 00:00", "America/New_York"),
                                  at("2026-03-09 00:00", "America/New_York")) == 16 * 3600


def test_split_days_and_bad_ranges():
    assert parse_ranges("08:00-12:00, 13:00-17:30") == ((480, 720), (780, 1050))
    assert parse_ranges("closed") == ()
    assert parse_ranges("00:00-24:00") == ((0, 1440),)
    for bad in ("9-5", "17:00-09:00", "08:00-12:00, 11:00-13:00", "25:00-26:00"):
        with pytest.raises(HoursError):
            parse_ranges(bad)


def test_without_business_hours_every_moment_counts():
    hours = parse_settings(None, lambda key, message: ValueError(message))
    assert not hours.configured
    assert hours.business_seconds(100.0, 400.0) == 300
    assert hours.is_open(at("2026-12-25 03:00"))
    assert hours.add(100.0, 50.0) == 150


def test_a_calendar_that_never_opens_is_refused():
    with pytest.raises(ValueError, match="never open"):
        parse_settings({"timezone": "UTC"}, lambda key, message: ValueError(message))
    hours = BusinessHours("UTC", ((),) * 7)
    assert hours.next_open(0.0) == math.inf


def test_unknown_zone_names_the_key():
    with pytest.raises(ValueError, match="timezone: unknown time zone"):
        parse_settings({"timezone": "Mars/Olympus", "monday": WEEKDAY},
                       lambda key, message: ValueError(f"{key}: {message}"))
