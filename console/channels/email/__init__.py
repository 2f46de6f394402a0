"""The email channel: IMAP in (UID sync per folder, IDLE), SMTP out, the Sent folder as a journal.

One module per collaborator:

- settings.py    the account's TOML keys, checked and typed (`EmailSettings`)
- connection.py  IMAP and SMTP connections, TLS, and every failure as one sentence
- pull.py        UID sync per folder, the prefetch of the next batch, waiting in IDLE
- imapfetch.py   the lean reader of `UID FETCH` answers used by the pull
- parsepool.py   parsing in worker processes during a first sync
- inbound.py     a parsed mail as the console's message (identity, peer, direction, thread)
- outgoing.py    the bytes of a reply and the SMTP exchange
- journal.py     the Sent folder as a journal, so that a reply is never sent twice
- mailparse.py, headers.py   reading RFC 5322 / MIME without ever raising
- subjects.py    the "Re:" rule and subjects as thread keys of last resort
- channel.py     `EmailChannel`, the adapter the engine calls

`console.channels` imports this package for `kind = "email"` and calls `configure`. Other layers
may use `reply_subject_for` (the subject of a reply, e.g. shown in the composer).
"""

from __future__ import annotations

from console.channels.email.channel import EmailChannel
from console.channels.email.settings import EmailSettings, read_settings
from console.channels.email.subjects import reply_subject_for
from console.config import AccountConfig, WorkspaceConfig

__all__ = ["EmailChannel", "EmailSettings", "configure", "reply_subject_for"]


def configure(account: AccountConfig, workspace: WorkspaceConfig) -> EmailChannel:
    return EmailChannel(account.name, read_settings(account))
