"""The segment grammar: who a campaign is for, written the way one searches.

A segment is a saved, live search over customers (console/store/segments.py evaluates it, each
time a step is sent). Its text is the message search grammar (words, `from:`, `status:`,
`before:`, `after:`: customers with a matching message) plus filters on the customer:

    tag:wedding             has the tag (tag:wedding,regular: either)
    channel:sms             can be reached on the channel (wrote on it, or has consent there)
    city:Berlin             an attribute equals the value, ignoring case (city:Berlin,Hamburg)
    city!=Berlin            ... does not
    orders>3 orders<=10     an attribute compared as a number
    last_inbound<30d        wrote to us within 30 days (h, d and w; or a date: <2026-11-01)
    last_inbound>90d        last wrote more than 90 days ago (never written: not matched)
    replied:spring-menu     answered the campaign named so (within its reply window)
    not:tag:wholesale       any filter, or a quoted phrase, negated

Every term must hold (AND). Values with spaces are quoted: `city:"New York"`. A filter the
grammar cannot read raises SegmentSyntaxError with a sentence saying which and why; the editor
shows it in place of the count. Pure: no SQL here.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

MESSAGE_FILTERS = ("from", "status", "before", "after")
CUSTOMER_FILTERS = ("tag", "channel", "replied", "last_inbound")
_TOKEN = re.compile(r'((?:not:)?[\w.-]+(?:>=|<=|!=|>|<|=|:)"[^"]*"|(?:not:)?"[^"]*"|\S+)')
_TERM = re.compile(r"^([A-Za-z_][\w.-]*)(>=|<=|!=|>|<|=|:)(.*)$", re.S)
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([hdw])$")
UNITS = {"h": 3600, "d": 86400, "w": 7 * 86400}


class SegmentSyntaxError(ValueError):
    """A segment filter that cannot be understood; the message says which and why."""


@dataclass(frozen=True)
class Term:
    kind: str  # tag | channel | attribute | last_inbound | replied | search
    key: str = ""  # the attribute's name; for "search", the search text itself
    op: str = ":"
    values: tuple[str, ...] = ()
    number: float | None = None  # a compared number, or a moment (last_inbound)
    negate: bool = False


@dataclass(frozen=True)
class SegmentQuery:
    terms: tuple[Term, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.terms


def _value(text: str) -> str:
    text = text.strip()
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def _moment(value: str, now: float, key: str) -> float:
    duration = _DURATION.match(value.lower())
    if duration:
        return now - float(duration.group(1)) * UNITS[duration.group(2)]
    try:
        return dt.datetime.strptime(value, "%Y-%m-%d").timestamp()
    except ValueError:
        raise SegmentSyntaxError(f"{key}: expects a time like 30d, 12h, 2w or a date like 2026-11-01, "
                                 f"got '{value}'") from None


def parse_segment(text: str, now: float) -> SegmentQuery:
    """The query for a segment's text (durations are counted back from `now`)."""
    terms: list[Term] = []
    words: list[str] = []
    for token in _TOKEN.findall(text or ""):
        negate = token.startswith("not:")
        body = token[4:] if negate else token
        if not body:
            raise SegmentSyntaxError("not: needs a filter after it, e.g. not:tag:wholesale")
        match = _TERM.match(body)
        if match is None:
            if negate:
                terms.append(Term("search", _value(body), negate=True))
            else:
                words.append(body)
            continue
        key, op, raw = match.group(1).lower(), match.group(2), _value(match.group(3))
        if key in MESSAGE_FILTERS:
            if op != ":":
                raise SegmentSyntaxError(f"{key}: is written {key}:value")
            if negate:
                terms.append(Term("search", f'{key}:"{raw}"', negate=True))
            else:
                words.append(f'{key}:"{raw}"')
            continue
        if not raw:
            raise SegmentSyntaxError(f"{key}{op} needs a value, e.g. {key}{op}{'3' if op in '<>' else 'something'}")
        terms.append(_customer_term(key, op, raw, negate, now))
    if words:
        terms.insert(0, Term("search", " ".join(words)))
    return SegmentQuery(tuple(terms))


def _customer_term(key: str, op: str, raw: str, negate: bool, now: float) -> Term:
    listed = tuple(v.strip() for v in raw.split(",") if v.strip())
    if key in ("tag", "channel", "replied"):
        if op != ":":
            raise SegmentSyntaxError(f"{key}: is written {key}:value (a comma lists several)")
        values = tuple(v.lower().lstrip("#") for v in listed) if key != "replied" else listed
        if key == "channel":
            from console.channels import catalog

            known = {entry.id for entry in catalog.channels()}
            unknown = [v for v in values if v not in known]
            if unknown:
                raise SegmentSyntaxError(f"channel: expects one of {', '.join(sorted(known))}, got '{unknown[0]}'")
        return Term(key, op=op, values=values, negate=negate)
    if key == "last_inbound":
        if op not in ("<", ">", "<=", ">="):
            raise SegmentSyntaxError("last_inbound is compared: last_inbound<30d (within 30 days) or last_inbound>90d")
        # "<30d" (less time ago) means a moment after now - 30 days.
        return Term(key, op=op, number=_moment(raw, now, key), negate=negate)
    if op in ("<", ">", "<=", ">="):
        try:
            number = float(raw)
        except ValueError:
            raise SegmentSyntaxError(f"{key}{op} compares numbers, got '{raw}'") from None
        return Term("attribute", key, op, (raw,), number, negate)
    return Term("attribute", key, "!=" if op == "!=" else "=", listed, None, negate)


def attribute_holds(term: Term, attributes: dict) -> bool:
    """Whether a customer's attributes satisfy an attribute term (before `negate`)."""
    value = attributes.get(term.key)
    if value is None:
        # Keys are matched ignoring case, as people type them.
        value = next((v for k, v in attributes.items() if k.lower() == term.key), None)
    if term.number is not None:
        try:
            have = float(str(value).strip())
        except (TypeError, ValueError):
            return False
        return {"<": have < term.number, ">": have > term.number, "<=": have <= term.number,
                ">=": have >= term.number}[term.op]
    text = "" if value is None else str(value).strip().lower()
    hit = bool(text) and text in {v.lower() for v in term.values}
    return not hit if term.op == "!=" else hit


def moment_holds(term: Term, last: float | None) -> bool:
    """last_inbound<30d: `last` after the moment 30 days ago; >90d: before it."""
    if last is None:
        return False
    return {"<": last > term.number, "<=": last >= term.number, ">": last < term.number,
            ">=": last <= term.number}[term.op]
