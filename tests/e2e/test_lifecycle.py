"""Starting, quitting, hanging up and crashing, in the real program: nothing typed is lost, and a
reply in the outbox is delivered or its fate is said."""

from __future__ import annotations

import signal
import time

import pytest

from console.store import ListFilter
from e2e.harness import assert_healthy, eventually, right_pane, selected_name

pytestmark = pytest.mark.e2e



@pytest.mark.parametrize("how", ["sighup", "sigterm", "ctrl+q", "kill -9", "terminal gone"])
def test_what_was_typed_survives_leaving_however_it_happens(workspace, how):
    store = workspace.store()
    row = store.list_rows(ListFilter("open"), 0, 1)[0]
    term = workspace.start()
    term.press("r")
    assert term.wait_for("reply on", timeout=5)
    term.type("Dear Maria, about your order")
    if how == "kill -9":
        time.sleep(1.5)  # a pause in typing: the draft is saved as one types
        term.signal(signal.SIGKILL)
    elif how == "ctrl+q":
        term.press("ctrl+q")
    elif how == "terminal gone":
        term.hang_up()
    else:
        term.signal(signal.SIGHUP if how == "sighup" else signal.SIGTERM)
    assert term.wait_exit(10) is not None, "the app did not leave"
    assert eventually(lambda: store.draft(row.customer_id, "ana") == "Dear Maria, about your order"), \
        store.draft(row.customer_id, "ana")
    again = workspace.start()
    again.press("r")
    assert again.wait_for("draft kept from", timeout=5), again.text()
    assert "Dear Maria, about your order" in again.text()


def test_quitting_with_a_reply_in_its_send_delay_says_when_it_goes_and_it_goes(workspace):
    workspace.write_config(workspace="send_delay_seconds = 4")
    store = workspace.store()
    row = store.list_rows(ListFilter("open"), 0, 1)[0]
    term = workspace.start()
    term.press("r")
    assert term.wait_for("reply on", timeout=5)
    term.type("On its way after we quit.")
    term.press("ctrl+s")
    assert term.wait_for("U undoes it", timeout=5)
    term.press("q")
    assert term.wait_exit(10) == 0
    said = term.after_exit()
    assert "console: 1 reply is still in the outbox: the sync engine (pid " in said and "and then stops." in said, said
    # With no console open, the engine that app started delivers it, then stops.
    assert eventually(lambda: store.db.query_one(
        "SELECT status FROM message WHERE body = 'On its way after we quit.'")[0] in ("sent", "delivered"),
        timeout=20)
    assert eventually(lambda: not workspace.engine_running(), timeout=15), "the engine outlived its work"
    del row


def test_undo_send_works_after_a_restart(workspace):
    workspace.write_config(workspace="send_delay_seconds = 60")
    store = workspace.store()
    term = workspace.start()
    term.press("r")
    assert term.wait_for("reply on", timeout=5)
    term.type("Sent by mistake")
    term.press("ctrl+s")
    assert term.wait_for("U undoes it", timeout=5)
    term.press("q")
    assert term.wait_exit(10) == 0
    again = workspace.start()
    again.press("U")
    assert again.wait_for("undone", timeout=5), again.text()
    assert eventually(lambda: store.db.query_one(
        "SELECT status_detail FROM message WHERE body = 'Sent by mistake'")[0] == "cancelled")
    assert_healthy(again)


def test_space_after_answering_the_oldest_selects_the_next_one_still_waiting(workspace):
    store = workspace.store()
    first, second = store.list_rows(ListFilter("open"), 0, 2)
    term = workspace.start()
    term.press("r")
    assert term.wait_for("reply on", timeout=5)
    term.type("Answered.")
    term.press("ctrl+s")
    assert term.wait_for(lambda text: "reply on" not in text, timeout=5)
    # The answered customer stays selected, where they were, with the wait they had...
    assert term.wait_for(lambda text: selected_name(term).startswith(first.name[:12]), timeout=5)
    term.press("space")
    # ...and space goes to the customer who now waits longest.
    assert term.wait_for(lambda text: selected_name(term).startswith(second.name[:12]), timeout=5), term.text()


def test_the_composer_never_covers_the_message_being_answered(workspace):
    store = workspace.store()
    row = store.list_rows(ListFilter("open"), 0, 1)[0]
    last = [e for e in store.timeline(row.customer_id) if e.direction != "event"][-1]  # not a rule's line
    term = workspace.start()
    words = last.body.split("\n")[0][:20]
    assert term.wait_for(words, timeout=5), term.text()
    term.press("r")
    assert term.wait_for("reply on", timeout=5)
    term.settle(0.5)
    above = [right_pane(term, n) for n in range(2, 24)]
    composer_at = next(n for n, line in enumerate(above) if "reply on" in line)
    assert any(words[:12] in line for line in above[:composer_at]), term.text()


def test_without_colour_a_customer_past_the_target_is_marked(workspace):
    term = workspace.start(NO_COLOR="1")
    rows = workspace.store().list_rows(ListFilter("open"), 0, 3)
    late = [r for r in rows if time.time() - r.since > 3600]
    assert late, "the demo has customers waiting more than an hour"
    line = next(line for line in term.lines() if line.startswith(" " + late[0].name[:10]))
    assert "!" in line.split("▕")[0], term.text()


def test_the_help_box_has_nothing_outside_its_edges(workspace):
    term = workspace.start()
    term.press("question_mark")
    assert term.wait_for("remap them by id", timeout=5)
    for line in term.lines()[:-1]:
        if "│" in line:
            assert line.rstrip().endswith("│") or line.rstrip().endswith("╮") or line.rstrip().endswith("╯"), line


def test_an_instagram_customer_is_shown_by_handle_in_the_composer(workspace):
    store = workspace.store()
    customer = store.db.query_one(
        """SELECT c.customer_id, i.display_name FROM conversation c JOIN identity i ON i.id = c.identity_id
           WHERE c.channel = 'instagram' AND c.status = 'open' LIMIT 1""")
    if customer is None:
        customer = store.db.query_one(
            """SELECT c.customer_id, i.display_name FROM conversation c JOIN identity i ON i.id = c.identity_id
               WHERE c.channel = 'instagram' ORDER BY c.last_message_at DESC LIMIT 1""")
        store.set_status("open", customer_id=customer[0])
    from e2e.harness import select

    term = workspace.start()
    select(term, store, customer[0])
    term.press("r")
    assert term.wait_for("reply on", timeout=5)
    def pane() -> str:  # the right pane's lines as one text (a long handle wraps the composer's line)
        return " ".join(right_pane(term, n) for n in range(len(term.lines())))

    for _ in range(4):
        if "Instagram to" in pane():
            break
        term.press("ctrl+o")
        time.sleep(0.2)
    assert f"Instagram to {customer[1]}" in pane(), term.text()
