"""Every figure of the reports against answers computed by hand on a fixed week (tests/week_of_work.py),
business hours across a weekend and a holiday included."""

from __future__ import annotations

import datetime as dt

import pytest

from console import reports
from clock import at
from week_of_work import NOW, build, workspace

MON, SUN = dt.date(2026, 12, 21), dt.date(2026, 12, 28)


@pytest.fixture
def week(store, monkeypatch):
    return build(store, monkeypatch)


@pytest.fixture
def report(store, week):
    ws = workspace()
    start, end, _ = reports.period(ws.business_hours, MON, SUN)
    return reports.build(store.report_data(start, end), ws.business_hours, ws.policies, MON, SUN, NOW)


def test_new_conversations_per_day_count_each_need_once(report):
    # A and E on Monday, D on Tuesday, B on Thursday, C on Saturday and C's new need on Sunday;
    # A's rating is not a conversation.
    assert report.per_day == [2, 1, 0, 1, 0, 1, 1, 0]
    assert report.overall.conversations == 6
    assert report.overall.reopened == 1
    assert report.overall.unanswered == 1  # D


def test_first_response_median_and_p90_in_business_and_calendar_hours(report):
    first = report.overall.first_response
    # Business: A 30m, B 2h (Thu 16-17 and Mon 9-10: Christmas and the weekend are closed), C 0 (a
    # Saturday), C again 30m, E 45m (Mon 16:30-17:00, Tue 09:00-09:15): 0, 1800, 1800, 2700, 7200.
    assert first.count == 5
    assert first.median == 1800
    assert first.p90 == pytest.approx(5400)  # 2700 + 0.6 x 4500
    # Calendar: 1800, 3600, 60300, 70200, 324000 (B waited 3 days 18 hours).
    assert first.median_calendar == 60300
    assert first.p90_calendar == pytest.approx(222480)  # 70200 + 0.6 x 253800


def test_resolution_time_counts_to_the_answer_that_closed_it(report):
    resolution = report.overall.resolution
    # A (resolved at the reply, 30m), C's first need (quiet after our reply: 1h, none of it open
    # hours), E (closed after the reply at 09:15 Tuesday).
    assert resolution.count == 3
    assert (resolution.median, resolution.p90) == (1800, pytest.approx(2520))
    assert (resolution.median_calendar, resolution.p90_calendar) == (3600, pytest.approx(48960))


def test_share_of_first_responses_within_their_sla_target(report):
    # The wholesale policy gives B two business hours, which it took; everything else has the
    # default 60 minutes.
    assert report.overall.within_target == 1.0
    assert report.by_channel["email"].within_target == 1.0


def test_waiting_now_and_the_oldest_wait(report):
    assert report.overall.waiting == 1  # D
    assert report.overall.oldest_wait == NOW - at("2026-12-22 09:00")
    assert report.by_channel["email"].waiting == 1


def test_replies_per_agent(report):
    assert report.replies_by_agent == {"ana": 4, "ben": 1}
    assert report.overall.replies == 5
    assert report.by_agent["ana"].replies == 4


def test_per_agent_per_channel_and_per_tag(report):
    ana = report.by_agent["ana"].first_response
    assert (ana.count, ana.median, ana.p90) == (4, 1800, pytest.approx(2430))
    assert report.by_agent["ben"].first_response.median == 7200
    assert report.by_channel["sms"].conversations == 4
    assert report.by_channel["email"].conversations == 2
    assert report.by_channel["email"].unanswered == 1
    assert list(report.by_tag) == ["wholesale"]
    assert report.by_tag["wholesale"].conversations == 1
    assert report.by_tag["wholesale"].first_response.median_calendar == 324000


def test_arrivals_by_weekday_and_hour(report):
    cells = {(w, h): n for w, row in enumerate(report.grid) for h, n in enumerate(row) if n}
    assert cells == {(0, 10): 1, (0, 16): 1, (1, 9): 1, (3, 16): 1, (5, 12): 1, (6, 14): 1}


def test_backlog_at_the_end_of_each_day(report):
    assert report.backlog == [1, 1, 1, 2, 2, 2, 3, 3]


def test_satisfaction_from_a_bare_rating(report, store, week):
    assert report.overall.satisfaction.ratings == [0, 0, 0, 0, 1]
    assert report.overall.satisfaction.average == 5
    assert store.conversation(week.conversation("A"))["status"] == "done"  # the rating did not reopen it


def test_a_period_before_the_work_is_empty_but_carries_the_backlog(store, week):
    ws = workspace()
    first = dt.date(2026, 12, 29)
    start, end, _ = reports.period(ws.business_hours, first, first)
    report = reports.build(store.report_data(start, end), ws.business_hours, ws.policies, first, first, NOW)
    assert report.overall.conversations == 0
    assert report.backlog == [3]
    assert report.overall.first_response.median is None


def test_json_and_csv_carry_the_same_figures(report):
    data = report.to_dict()
    assert data["overall"]["first_response"]["median_business_seconds"] == 1800
    assert data["per_day"][0] == {"date": "2026-12-21", "new_conversations": 2, "backlog": 1}
    rows = report.csv_rows()
    overall = dict(zip(rows[0], rows[1]))
    assert overall["breakdown"] == "overall" and overall["first_response_p90_calendar_s"] == 222480
    assert "first response" in report.text()
@pytest.mark.one_backend
def test_percentiles_interpolate_between_ranks():
    assert reports.percentile([2, 4, 6, 8], 0.5) == 5
    assert reports.percentile([10], 0.9) == 10
    assert reports.percentile([], 0.5) is None
    assert reports.percentile([0, 10], 0.9) == 9
