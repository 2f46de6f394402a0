"""Reading customers with their consent from a CSV file: each row checked, every refusal said.

Columns, by header (any case, any order): `name`, `email`, `phone`, `tags` (separated by
commas or spaces), the consent columns `consent_<channel>` (`consent_email`, `consent_sms`,
`consent_whatsapp`...: yes / no, or empty for "not asked"), `consent_source` (where they agreed:
"signed up in shop"; default: the file and row), `consent_text` (what they agreed to) and
`consent_date` (when: 2026-11-02 or 2026-11-02 14:30; default: now). Every other column is a
customer attribute (`city`, `orders`, `timezone`...).

A row is refused, with the reason, when it has neither email nor phone, when the email or phone
cannot be read, when it repeats an email or phone of an earlier row, when a consent value is
neither yes nor no, when it gives consent for a channel it has no address for, or when the date
cannot be read or lies in the future. What the store then refuses (an older consent than a
withdrawal it knows, an email and a phone of two different customers) is in
console/store/consent.py `import_contacts`. Pure: no SQL.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from console.channels import catalog
from console.identity import normalize
from console.outreach.facts import ImportReport, ImportRow, Refusal  # noqa: F401 (what it makes)

YES = {"yes", "y", "true", "1", "granted", "opted in", "opt-in", "x"}
NO = {"no", "n", "false", "0", "withdrawn", "opted out", "opt-out"}
KNOWN = {"name", "email", "phone", "tags", "consent_source", "consent_text", "consent_date"}
_EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")


def parse(text: str, source_name: str, region: str, at: float) -> tuple[list[ImportRow], list[Refusal]]:
    """The rows that can be imported, and those refused, with their line numbers."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if not reader.fieldnames:
        return [], [Refusal(1, "the file has no header line (name, email, phone, consent_email...)")]
    headers = {h: (h or "").strip().lower() for h in reader.fieldnames}
    channels = {entry.id for entry in catalog.channels()}
    bad = [h for h in headers.values() if h.startswith("consent_") and h not in KNOWN and h[8:] not in channels]
    if bad:
        return [], [Refusal(1, f"unknown consent column {bad[0]!r}; the channels are {', '.join(sorted(channels))}")]
    rows, refused = [], []
    seen: dict[str, int] = {}
    for number, raw in enumerate(reader, 2):
        values = {headers[k]: (v or "").strip() for k, v in raw.items() if k is not None}
        row, problem = _row(number, values, source_name, region, at)
        if problem is None:
            for key in (f"email:{row.email}" if row.email else "", f"phone:{row.phone}" if row.phone else ""):
                if key and key in seen:
                    problem = f"the same {key.split(':')[0]} as line {seen[key]}"
                    break
        if problem is not None:
            refused.append(Refusal(number, problem))
            continue
        for key in (f"email:{row.email}" if row.email else "", f"phone:{row.phone}" if row.phone else ""):
            if key:
                seen[key] = number
        rows.append(row)
    return rows, refused


def _row(number: int, values: dict[str, str], source_name: str, region: str, at: float):
    row = ImportRow(number, name=values.get("name", ""))
    email, phone = values.get("email", ""), values.get("phone", "")
    if not email and not phone:
        return None, "no email and no phone: a customer needs one to be reached"
    if email:
        if not _EMAIL.match(email):
            return None, f"{email!r} is not an email address"
        row.email = normalize("email", email)
    if phone:
        row.phone = normalize("phone", phone, region)
        if not re.match(r"^\+[1-9]\d{6,14}$", row.phone):
            return None, f"{phone!r} is not a phone number that can be read (write it as +country number)"
    row.tags = [t for t in re.split(r"[,\s]+", values.get("tags", "")) if t]
    row.source = values.get("consent_source") or f"import of {source_name}, line {number}"
    row.text = values.get("consent_text", "")
    when = values.get("consent_date", "")
    if when:
        moment = None
        for form in ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
            try:
                moment = dt.datetime.strptime(when, form).timestamp()
                break
            except ValueError:
                continue
        if moment is None:
            return None, f"consent_date {when!r} is not a date like 2026-11-02 or 2026-11-02 14:30"
        if moment > at + 86400:
            return None, f"consent_date {when!r} is in the future"
        row.at = moment
    else:
        row.at = at
    for key, value in values.items():
        if key.startswith("consent_") and key not in KNOWN:
            channel = key[8:]
            if not value:
                continue
            state = "granted" if value.lower() in YES else "withdrawn" if value.lower() in NO else None
            if state is None:
                return None, f"{key} is {value!r}; write yes or no (or leave it empty)"
            kind = catalog.channel(channel).identity_kind
            if (kind == "email" and not row.email) or (kind == "phone" and not row.phone) or kind not in ("email", "phone"):
                return None, f"{key} needs the customer's {kind} address in the row"
            row.consents.append((channel, kind, state))
        elif key not in KNOWN and value:
            row.attributes[key] = value
    return row, None
