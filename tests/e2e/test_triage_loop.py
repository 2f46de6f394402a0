"""The README's triage loop in the real program: r, text, ctrl+s, e — ten customers in a row."""

from __future__ import annotations

import time

import pytest

from e2e.harness import assert_healthy

pytestmark = pytest.mark.e2e


def replies(store, customer_id: int, body: str) -> list[tuple[str, str]]:
    return [(r["status"], r["body"]) for r in store.db.query(
        """SELECT m.status, m.body FROM message m JOIN conversation c ON c.id = m.conversation_id
           WHERE c.customer_id = ? AND m.direction = 'out' AND m.body = ?""", (customer_id, body))]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_ten_customers_answered_and_closed_in_a_row(workspace, size):
    rows = workspace.open_rows(10)
    assert len(rows) == 10, "the demo has at least ten customers waiting"
    term = workspace.start(*size)
    store = workspace.store()
    for number, row in enumerate(rows):
        name = row.name[:12]
        assert term.wait_for(lambda text: _selected(text, size[0]).startswith(name), timeout=10), \
            f"customer {number} ({row.name}) is not the one selected:\n{term.text()}"
        body = f"Thanks, it is noted ({number})."
        term.press("r")
        assert term.wait_for("reply on", timeout=5), term.text()
        term.type(body)
        term.press("ctrl+s")
        assert term.wait_for(lambda text: "reply on" not in text, timeout=5), term.text()
        term.press("e")
        assert term.wait_for(lambda text: {r[0] for r in store.db.query(
            "SELECT status FROM conversation WHERE customer_id = ?", (row.customer_id,))} == {"done"}, timeout=5), \
            f"customer {number} is not done"
        assert_healthy(term)
    # Every reply delivered by the demo channel, exactly once.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        states = [replies(store, row.customer_id, f"Thanks, it is noted ({n}).") for n, row in enumerate(rows)]
        if all(s == [("delivered", s[0][1])] for s in states if s) and all(len(s) == 1 for s in states):
            break
        time.sleep(0.3)
    anywhere = [dict(r) for r in store.db.query("SELECT m.body, c.customer_id, m.status FROM message m JOIN conversation c ON c.id = m.conversation_id WHERE m.body LIKE 'Thanks, it is noted%'")]
    assert all(len(s) == 1 and s[0][0] == "delivered" for s in states), (states, anywhere, [r.customer_id for r in rows])
    outbox = store.db.query_one("SELECT COUNT(*) FROM outbox WHERE state != 'sent'")[0]
    assert outbox == 0
    assert_healthy(term)
    term.press("q")
    assert term.wait_exit(10) == 0


def _selected(screen: str, cols: int) -> str:
    """The selected customer's name: the right pane's first line (the customer header)."""
    line = screen.splitlines()[1]
    return line.split("▕", 1)[1].strip() if "▕" in line else ""
