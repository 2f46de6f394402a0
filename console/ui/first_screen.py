"""What the first screen shows, read from the store while Textual is still starting.

Cold start is mostly Python importing Textual and the app; the store's part (the first page of
the list, the counts, the first customer's newest messages) runs in a thread meanwhile (SQLite
lets go of the GIL while it works), so the first full screen does not wait for three rounds of
jobs after the app has mounted. This module imports nothing from Textual, so the CLI can start
it before importing the UI.
"""

from __future__ import annotations

import concurrent.futures
import os
from dataclasses import dataclass, field

from console.store import ListFilter

FIRST_MESSAGES = 40  # enough to fill a tall terminal; the rest of the page follows the first paint


@dataclass
class FirstScreen:
    counts: dict[str, int]
    rows: list
    states: list
    channels: list[str]
    drafts: set[int]
    customer: tuple | None = None  # (customer id, name, identities, entries, more)
    needs: int | None = None  # open conversations assigned to the agent or to nobody
    presence: list = field(default_factory=list)


def read(store, agent: str) -> FirstScreen:
    from console.startup_trace import mark

    mark("first screen: reading")
    flt = ListFilter()
    rows = store.attach_clocks(store.list_rows(flt, 0, 100), flt)
    first = FirstScreen(store.status_counts(flt), rows, store.account_states(), store.channels_in_use(),
                        store.draft_customers(agent), presence=store.presence(exclude_pid=os.getpid(), agent=agent),
                        needs=store.needs_me(agent))
    if rows:
        customer = rows[0].customer_id
        entries, more = store.timeline_page(customer, FIRST_MESSAGES)
        first.customer = (customer, store.customer_name(customer), store.identities(customer), entries, more)
    mark("first screen: read")
    return first


def start(store, agent: str) -> concurrent.futures.Future:
    """Begin reading the first screen in a thread of its own; the inbox takes the result."""
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="first-screen")
    future = pool.submit(read, store, agent)
    pool.shutdown(wait=False)
    return future
