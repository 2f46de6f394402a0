"""Normalising addresses, so that the same person is found again whatever channel they use.

Emails are lower-cased; phone numbers become E.164 with `phonenumbers` (using the workspace's
default region for numbers written without a country code). SMS and WhatsApp share the "phone"
identity kind, so the same number on both is one customer.
"""

from __future__ import annotations

import re
from email.utils import parseaddr

_WHATSAPP = re.compile(r"^whatsapp:", re.IGNORECASE)


def normalize_email(address: str) -> str:
    _, addr = parseaddr(address.strip())
    return (addr or address).strip().lower()


def normalize_phone(number: str, default_region: str = "US") -> str:
    """E.164 for anything phonenumbers can parse; otherwise the digits as written.

    'whatsapp:+1 555 010 0001' -> '+15550100001'. Short codes and alphanumeric sender ids are
    kept as written (stripped), since they cannot be normalised.
    """
    import phonenumbers  # here: only the sync engine normalises numbers, and the import is slow

    raw = _WHATSAPP.sub("", number.strip())
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        return raw
    if not phonenumbers.is_possible_number(parsed):
        return raw
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize(kind: str, address: str, default_region: str = "US") -> str:
    if kind == "email":
        return normalize_email(address)
    if kind == "phone":
        return normalize_phone(address, default_region)
    if kind == "mastodon":
        return address.strip().lstrip("@").lower()
    return address.strip()
