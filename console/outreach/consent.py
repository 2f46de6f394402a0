"""Consent as the card shows it: every identity on every channel it can be reached on.

The store keeps the records (console/store/consent.py) and knows no channel; the catalog says
which channels an identity kind has (a phone number is SMS and WhatsApp, each with a consent of
its own).
"""

from __future__ import annotations

from console.channels import catalog


def channels_of(kind: str) -> list[str]:
    return [entry.id for entry in catalog.channels() if entry.identity_kind == kind]


def consent_rows(store, customer_id: int):
    """The customer's consent per identity x channel x purpose, recorded or not (ConsentRow)."""
    return store.consent_rows(customer_id, channels_of)
