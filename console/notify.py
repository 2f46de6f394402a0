"""Telling an agent that something needs them: the `[notifications]` settings, who is told about
which new message, and the words of a desktop notification.

Levels: `all` (every new customer message), `mine` (conversations assigned to me or to nobody),
`none`. The level of a message is the account's entry in `[notifications.accounts]` if any, else
the agent's in `[notifications.agents]`, else `level`. The console that runs for the agent rings
the terminal bell and, where a desktop notifier exists (`notify-send`), shows one — with the
customer's name cleaned of control sequences and markup (notification servers read a little
HTML) and never the message text itself: a notification is seen over a shoulder.

No UI toolkit here; the subprocess is started by the caller, off the UI thread.
"""

from __future__ import annotations

import html
import shutil
from dataclasses import dataclass, field

from console.sanitize import one_line

LEVELS = ("all", "mine", "none")


@dataclass(frozen=True)
class NotificationSettings:
    level: str = "mine"
    bell: bool = True
    desktop: bool = True
    accounts: dict[str, str] = field(default_factory=dict)
    agents: dict[str, str] = field(default_factory=dict)

    def level_for(self, agent: str, account: str) -> str:
        return self.accounts.get(account) or self.agents.get(agent) or self.level

    def wants(self, agent: str, account: str, assignee: str | None) -> bool:
        """Whether `agent` is told about a new customer message on `account`."""
        level = self.level_for(agent, account)
        if level == "all":
            return True
        if level == "mine":
            return assignee is None or assignee == agent
        return False


def parse_settings(table, err, accounts: set[str]) -> NotificationSettings:
    """`[notifications]`; `err(key, message)` returns the ConfigError to raise."""
    if table is None:
        return NotificationSettings()
    if not isinstance(table, dict):
        raise err("", "expected a [notifications] table")
    known = {"level", "bell", "desktop", "accounts", "agents"}
    for key in table:
        if key not in known:
            raise err(key, f"unknown key; expected one of {', '.join(sorted(known))}")
    level = table.get("level", "mine")
    if level not in LEVELS:
        raise err("level", f"expected one of {', '.join(LEVELS)}, got {level!r}")
    flags = {}
    for key in ("bell", "desktop"):
        flags[key] = table.get(key, True)
        if not isinstance(flags[key], bool):
            raise err(key, f"expected true or false, got {flags[key]!r}")
    tables = {}
    for key in ("accounts", "agents"):
        sub = table.get(key, {})
        if not isinstance(sub, dict):
            raise err(key, f'expected a table of name = level, e.g. [notifications.{key}]')
        for name, value in sub.items():
            if value not in LEVELS:
                raise err(f"{key}.{name}", f"expected one of {', '.join(LEVELS)}, got {value!r}")
            if key == "accounts" and name not in accounts:
                raise err(f"{key}.{name}", f"no account is named {name!r}")
        tables[key] = dict(sub)
    return NotificationSettings(level, flags["bell"], flags["desktop"], tables["accounts"], tables["agents"])


def desktop_notifier() -> str | None:
    """The desktop notification command of this machine, if any (none over a plain SSH session)."""
    return shutil.which("notify-send")


def notice_words(names: list[str], channels: list[str], business: str) -> tuple[str, str]:
    """(summary, body) of a desktop notification about new messages: names cleaned of control
    sequences and of the markup notification servers interpret, no message text."""
    clean = [html.escape(one_line(n, 40), quote=False) for n in names]
    if len(clean) == 1:
        summary = f"{clean[0]} wrote"
    else:
        summary = f"{len(clean)} new messages"
    shown = ", ".join(clean[:3]) + (f" and {len(clean) - 3} more" if len(clean) > 3 else "")
    where = ", ".join(dict.fromkeys(channels))
    body = f"{shown} on {where}" if len(clean) > 1 else f"on {where}"
    return html.escape(one_line(business, 60), quote=False) + ": " + summary, body
