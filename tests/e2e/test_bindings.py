"""Every binding of the app, pressed in the real program on a real terminal (80x24).

The ids come from the app's own binding registry (console/ui/keys.py): a binding added later
without a scenario here fails `test_every_binding_has_a_scenario`. Each scenario presses the key
as a person would and checks what the screen shows and what the store now holds; every test also
checks that the process is alive, that no traceback is on screen, and (the fixture) that the
workspace's errors.log stayed empty.
"""

from __future__ import annotations

import json
import time

import pytest

from console.store import ListFilter
from console.ui.keys import registry
from console.ui.render import in_catalog_order
from e2e.harness import assert_healthy, eventually, footer, right_pane, select, selected_name, tabs

pytestmark = pytest.mark.e2e

SCENARIOS = {}


def scenario(*ids: str):
    def register(function):
        for binding_id in ids:
            SCENARIOS[binding_id] = function
        return function
    return register


def statuses(store, customer_id: int) -> set[str]:
    return {r[0] for r in store.db.query("SELECT status FROM conversation WHERE customer_id = ?", (customer_id,))}



def open_row(store, index: int = 0):
    return store.list_rows(ListFilter("open"), 0, index + 1)[index]


# ---- the app and moving around ---------------------------------------------------------------
@scenario("app.quit")
def quit_(ws, term, store):
    term.press("q")
    assert term.wait_exit(10) == 0
    return "exited"


@scenario("app.help", "help.close", "help.down", "help.up", "help.bottom", "help.top")
def help_(ws, term, store):
    from console.ui.render import channel_name

    term.press("question_mark")
    assert term.wait_for("remap them by id", timeout=5), term.text()
    assert "app.quit" in term.text()
    term.press("j")
    assert term.wait_for(lambda text: "remap them by id" not in text, timeout=5), term.text()
    term.press("k")
    assert term.wait_for("remap them by id", timeout=5), term.text()
    term.press("G")
    assert term.wait_for("app.command_palette", timeout=5), term.text()  # the help's last line
    term.press("g")
    assert term.wait_for("remap them by id", timeout=5), term.text()
    # The help names the channel each number key selects.
    for _ in range(30):
        if "list.channel_1" in term.text():
            break
        term.press("j", pause=0.03)
    first = channel_name(in_catalog_order(store.channels_in_use())[0])
    assert term.wait_for(f"Only ", timeout=5) and first in term.text(), term.text()
    term.press("escape")
    assert term.wait_for(lambda text: "remap them by id" not in text, timeout=5), term.text()


@scenario("app.switch_pane", "conversation.open", "timeline.back")
def panes(ws, term, store):
    assert "Show quoted text" not in footer(term)
    term.press("tab")
    assert term.wait_for(lambda text: "Show quoted text" in footer(term), timeout=5), term.text()
    term.press("escape")
    assert term.wait_for(lambda text: "Show quoted text" not in footer(term), timeout=5), term.text()
    term.press("enter")
    assert term.wait_for(lambda text: "Show quoted text" in footer(term), timeout=5), term.text()
    term.press("tab")
    assert term.wait_for(lambda text: "Show quoted text" not in footer(term), timeout=5), term.text()


@scenario("list.down", "list.up", "list.top", "list.bottom", "list.page_down", "list.page_up")
def list_moves(ws, term, store):
    rows = store.list_rows(ListFilter("open"), 0, 100)
    total = store.count_rows(ListFilter("open"))

    def at(index: int) -> bool:
        return term.wait_for(lambda text: selected_name(term).startswith(rows[index].name[:12]), timeout=5)

    term.press("j")
    assert at(1), term.text()
    term.press("k")
    assert at(0), term.text()
    term.press("G")
    assert at(total - 1), term.text()
    term.press("g")
    assert at(0), term.text()
    term.press("pagedown")
    assert term.wait_for(lambda text: selected_name(term) and not selected_name(term).startswith(rows[0].name[:12]),
                         timeout=5)
    term.press("pageup")
    assert at(0), term.text()


# ---- replying -----------------------------------------------------------------------------------
@scenario("conversation.reply", "composer.send")
def reply(ws, term, store):
    row = open_row(store)
    term.press("r")
    assert term.wait_for("reply on", timeout=5), term.text()
    term.type("We have it ready for you.")
    term.press("ctrl+s")
    assert term.wait_for("queued on", timeout=5), term.text()
    assert eventually(lambda: store.db.query_one(
        """SELECT m.status FROM message m JOIN conversation c ON c.id = m.conversation_id
           WHERE c.customer_id = ? AND m.body = 'We have it ready for you.'""", (row.customer_id,)) is not None)
    assert eventually(lambda: store.db.query_one(
        "SELECT status FROM message WHERE body = 'We have it ready for you.'")[0] == "delivered", timeout=15)
    assert term.wait_for("You: We have it ready" if False else "We have it ready for you.", timeout=5)


@scenario("conversation.new")
def new_message(ws, term, store):
    email = store.db.query_one(
        """SELECT c.customer_id FROM conversation c WHERE c.status = 'open' AND c.channel = 'email'
           ORDER BY c.waiting_since LIMIT 1""")[0]
    select(term, store, email)
    term.press("c")
    assert term.wait_for("new message on", timeout=5), term.text()
    # Cycle to the email channel if the customer has several.
    for _ in range(4):
        if "✉ email" in term.flowing():
            break
        term.press("ctrl+o")
        time.sleep(0.2)
    assert term.wait_for("Subject", timeout=3), term.text()
    term.type("We bake on Sundays now.")
    term.press("ctrl+s")  # no subject yet: refused, with a sentence, and the subject line takes the keys
    assert term.wait_for("needs a subject", timeout=5), term.text()
    term.type("Sunday baking")
    term.press("ctrl+s")
    assert eventually(lambda: store.db.query_one(
        """SELECT c.subject FROM message m JOIN conversation c ON c.id = m.conversation_id
           WHERE m.body = 'We bake on Sundays now.'""") is not None)
    conversation = store.db.query_one(
        """SELECT c.subject, c.customer_id, m.subject FROM message m JOIN conversation c ON c.id = m.conversation_id
           WHERE m.body = 'We bake on Sundays now.'""")
    assert tuple(conversation) == ("Sunday baking", email, "Sunday baking")  # a thread of its own


@scenario("conversation.reply_template")
def reply_template(ws, term, store):
    row = open_row(store)
    term.press("T")
    assert term.wait_for("Insert a template", timeout=5), term.text()
    term.type("rea")
    term.settle(0.3)
    term.press("enter")
    first = store.customer_name(row.customer_id).split()[0]
    assert term.wait_for("your order is ready", timeout=5), term.text()
    assert first.lstrip("@") in term.flowing() or "ready" in term.flowing()


@scenario("composer.close")
def composer_close(ws, term, store):
    row = open_row(store)
    term.press("r")
    assert term.wait_for("reply on", timeout=5)
    term.type("Half-written answer")
    term.press("escape")
    assert term.wait_for(lambda text: "reply on" not in text, timeout=5), term.text()
    assert eventually(lambda: store.draft(row.customer_id, "ana") == "Half-written answer")
    assert term.wait_for("✎", timeout=5), term.text()  # the row is marked as holding a draft
    term.press("r")
    assert term.wait_for("draft kept from", timeout=5), term.text()


@scenario("composer.clear")
def composer_clear(ws, term, store):
    row = open_row(store)
    term.press("r")
    assert term.wait_for("reply on", timeout=5)
    term.type("not this")
    assert eventually(lambda: store.draft(row.customer_id, "ana") == "not this")
    term.press("ctrl+l")
    assert eventually(lambda: store.draft(row.customer_id, "ana") == "")
    assert "not this" not in term.text()


@scenario("composer.channel")
def composer_channel(ws, term, store):
    several = store.db.query_one(
        """SELECT customer_id FROM conversation GROUP BY customer_id HAVING COUNT(DISTINCT channel) > 1
           ORDER BY MIN(id) LIMIT 1""")[0]
    select(term, store, several)
    term.press("r")
    assert term.wait_for("(1/", timeout=5), term.text()
    term.press("ctrl+o")
    assert term.wait_for("(2/", timeout=5), term.text()


@scenario("composer.template")
def composer_template(ws, term, store):
    term.press("r")
    assert term.wait_for("reply on", timeout=5)
    term.press("ctrl+t")
    assert term.wait_for("Insert a template", timeout=5), term.text()
    term.type("than")
    term.settle(0.3)
    term.press("enter")
    assert term.wait_for("Thank you so much", timeout=5), term.text()


@scenario("composer.editor")
def composer_editor(ws, term, store):
    term.close()
    script = ws.root / "editor.sh"
    script.write_text('#!/bin/sh\nprintf "\\nAppended." >> "$1"\n')
    script.chmod(0o755)
    term = ws.start(EDITOR=str(script), VISUAL="")
    row = open_row(store)
    term.press("r")
    assert term.wait_for("reply on", timeout=5)
    term.type("one")
    term.press("ctrl+e")
    assert term.wait_for("Appended.", timeout=10), term.text()
    term.type("Thanks!")
    assert eventually(lambda: store.draft(row.customer_id, "ana") == "one\nAppended.Thanks!"
                      or store.draft(row.customer_id, "ana") == "one\nAppended.\nThanks!")
    # The editor's line breaks are kept: "Appended." stays on its own line.
    assert "one\nAppended." in store.draft(row.customer_id, "ana")
    return term


@scenario("composer.human_agent")
def human_agent(ws, term, store):
    customer = store.db.query_one(
        "SELECT customer_id FROM conversation WHERE channel = 'messenger' ORDER BY last_inbound_at DESC LIMIT 1")[0]
    with store.db.write() as conn:  # the customer last wrote two days ago
        conn.execute("UPDATE conversation SET last_inbound_at = ? WHERE customer_id = ?",
                     (time.time() - 48 * 3600, customer))
    select(term, store, customer)
    term.press("r")
    # The composer opens on the channel the customer last wrote on, which may be another of
    # theirs (Instagram): ctrl+o goes round to Messenger.
    assert term.wait_for("reply on", timeout=5), term.text()
    for _ in range(4):
        if "Messenger to" in term.flowing():
            break
        term.press("ctrl+o")
        time.sleep(0.2)
    assert "Messenger to" in term.flowing(), term.text()
    term.press("ctrl+g")
    assert term.wait_for("[on]", timeout=5), term.text()


@scenario("conversation.undo_send", "conversation.send_again")
def undo_and_again(ws, term, store):
    term.close()
    ws.write_config(workspace="send_delay_seconds = 30")
    term = ws.start()
    row = open_row(store)
    term.press("r")
    assert term.wait_for("reply on", timeout=5)
    term.type("wrong customer!")
    term.press("ctrl+s")
    assert term.wait_for("U undoes it", timeout=5), term.text()
    term.press("U")
    assert term.wait_for("undone", timeout=5), term.text()
    assert eventually(lambda: store.db.query_one(
        "SELECT status_detail FROM message WHERE body = 'wrong customer!'")[0] == "cancelled")
    assert store.draft(row.customer_id, "ana") == "wrong customer!"  # the text came back as a draft
    term.press("R")
    assert term.wait_for("Queued again", timeout=5), term.text()
    assert eventually(lambda: store.db.query_one(
        "SELECT COUNT(*) FROM message WHERE body = 'wrong customer!'")[0] == 2)
    return term


# ---- closing, reopening, snoozing ------------------------------------------------------------
@scenario("conversation.done")
def done(ws, term, store):
    first, second = open_row(store, 0), open_row(store, 1)
    term.press("e")
    assert eventually(lambda: statuses(store, first.customer_id) == {"done"})
    assert term.wait_for(lambda text: selected_name(term).startswith(second.name[:12]), timeout=5), term.text()


@scenario("conversation.reopen", "list.done")
def reopen(ws, term, store):
    done_row = store.list_rows(ListFilter("done"), 0, 1)[0]
    term.press("D")
    assert term.wait_for(lambda text: "Done" in tabs(term) and selected_name(term).startswith(done_row.name[:12]),
                         timeout=5), term.text()
    term.press("u")
    assert eventually(lambda: "open" in statuses(store, done_row.customer_id))


@scenario("conversation.snooze", "snooze.cancel")
def snooze(ws, term, store):
    row = open_row(store)
    term.press("s")
    assert term.wait_for("Snooze until", timeout=5), term.text()
    term.press("escape")
    assert term.wait_for(lambda text: "Snooze until" not in text, timeout=5)
    assert statuses(store, row.customer_id) != {"snoozed"}
    term.press("s")
    assert term.wait_for("Snooze until", timeout=5)
    term.press("enter")
    assert eventually(lambda: "snoozed" in statuses(store, row.customer_id))


@scenario("conversation.next_waiting", "list.waiting")
def next_waiting(ws, term, store):
    oldest = open_row(store)
    term.press("W")
    assert term.wait_for(lambda text: "Waiting" in tabs(term) and selected_name(term)
                         and not selected_name(term).startswith(oldest.name[:12]), timeout=5), term.text()
    term.press("space")
    assert term.wait_for(lambda text: "Open" in tabs(term) and selected_name(term).startswith(oldest.name[:12]),
                         timeout=5), term.text()


# ---- the customer -------------------------------------------------------------------------------
@scenario("customer.card")
def card(ws, term, store):
    row = open_row(store)
    term.press("i")
    assert term.wait_for("First seen", timeout=5), term.text()
    first = store.db.query_one(
        """SELECT MIN(m.sent_at) FROM message m JOIN conversation c ON c.id = m.conversation_id
           WHERE c.customer_id = ?""", (row.customer_id,))[0]
    assert time.strftime("%d %b %Y", time.localtime(first)) in term.flowing(), term.text()


@scenario("customer.tag")
def tag(ws, term, store):
    row = open_row(store)
    term.press("t")
    assert term.wait_for("Tag ", timeout=5)
    term.type("vip")
    term.settle(0.3)
    term.press("enter")
    assert term.wait_for("tagged #vip", timeout=5), term.text()
    assert "vip" in store.tags(row.customer_id)


@scenario("customer.note")
def note(ws, term, store):
    row = open_row(store)
    term.press("i")
    assert term.wait_for("First seen", timeout=5)
    term.press("w")
    assert term.wait_for("only agents see it", timeout=5)
    term.type("prefers pickup after 5pm")
    term.press("enter")
    assert eventually(lambda: any(n.body == "prefers pickup after 5pm" for n in store.notes(row.customer_id)))
    assert term.wait_for("prefers pickup", timeout=3), term.text()  # on the open card at once


@scenario("conversation.assign_me", "list.mine")
def assign_me(ws, term, store):
    row = open_row(store)
    term.press("M")
    assert term.wait_for("No conversations assigned to you in Open", timeout=5), term.text()
    term.press("M")
    assert term.wait_for(lambda text: selected_name(term).startswith(row.name[:12]), timeout=5)
    term.press("a")
    assert term.wait_for("assigned to you", timeout=5), term.text()
    assert store.assigned_to(row.customer_id, "ana")
    term.press("M")
    assert term.wait_for(lambda text: "mine" in tabs(term) and selected_name(term).startswith(row.name[:12]),
                         timeout=5), term.text()


@scenario("conversation.assign")
def assign(ws, term, store):
    row = open_row(store)
    term.press("A")
    assert term.wait_for("Assign ", timeout=5)
    term.type("carla")
    term.settle(0.3)
    term.press("enter")
    assert eventually(lambda: store.assigned_to(row.customer_id, "carla"))


def _duplicate_pair(store) -> tuple[int, int]:
    for (customer,) in store.db.query("SELECT id FROM customer ORDER BY id"):
        for suggestion in store.merge_suggestions(customer):
            if suggestion.reason == "same name":
                return customer, suggestion.customer_id
    raise AssertionError("the demo has a suggested merge")


@scenario("customer.merge", "confirm.yes", "confirm.no", "customer.undo_merge")
def merge(ws, term, store):
    kept, other = _duplicate_pair(store)
    select(term, store, kept)
    before = len(store.identities(kept))
    term.press("m")
    assert term.wait_for("Merge another customer", timeout=5)
    term.settle(0.4)  # the suggestions are offered before anything is typed
    term.press("enter")
    assert term.wait_for("Merge these customers?", timeout=5), term.text()
    term.press("n")
    assert term.wait_for(lambda text: "Merge these customers?" not in text, timeout=5)
    assert len(store.identities(kept)) == before
    term.press("m")
    assert term.wait_for("Merge another customer", timeout=5)
    term.settle(0.4)
    term.press("enter")
    assert term.wait_for("Merge these customers?", timeout=5)
    term.press("y")
    assert eventually(lambda: len(store.identities(kept)) > before)
    term.press("ctrl+z")
    assert eventually(lambda: len(store.identities(kept)) == before)
    assert term.wait_for("undone", timeout=5)


@scenario("customer.split", "pick.cancel")
def split(ws, term, store):
    customer = store.db.query_one(
        "SELECT customer_id FROM identity GROUP BY customer_id HAVING COUNT(*) > 1 ORDER BY customer_id LIMIT 1")[0]
    select(term, store, customer)
    term.press("x")
    assert term.wait_for("Split one identity out", timeout=5), term.text()
    term.press("escape")
    assert term.wait_for(lambda text: "Split one identity out" not in text, timeout=5)
    before = len(store.identities(customer))
    term.press("x")
    assert term.wait_for("Split one identity out", timeout=5)
    term.settle(0.3)
    term.press("enter")
    assert eventually(lambda: len(store.identities(customer)) == before - 1)


@scenario("pick.down", "pick.up")
def pick_moves(ws, term, store):
    row = open_row(store)
    term.press("t")
    assert term.wait_for("Tag ", timeout=5)
    term.settle(0.4)  # the workspace's tags are offered, most used first
    second = store.all_tags()[1]
    had = second in store.tags(row.customer_id)
    term.press("down", "down", "up", "down")  # the first, the second, the first, the second
    term.press("enter")
    assert eventually(lambda: (second in store.tags(row.customer_id)) != had), (second, store.tags(row.customer_id))


# ---- search -------------------------------------------------------------------------------------
@scenario("app.search", "timeline.next_match", "timeline.previous_match")
def search(ws, term, store):
    term.press("slash")
    assert term.wait_for("Search every message", timeout=5)
    term.type("qwertyzzz")
    assert term.wait_for("No message matches", timeout=5), term.text()
    for _ in range(len("qwertyzzz")):
        term.press("backspace", pause=0.02)
    term.type("sourdough")
    assert term.wait_for(lambda text: text.count("sourdough") + text.count("Sourdough") >= 2, timeout=8), term.text()
    term.settle(0.4)
    term.press("enter")
    assert term.wait_for("Showing", timeout=5), term.text()
    assert "▶" in term.text()
    term.press("n")
    term.press("N")
    assert "▶" in term.text()
    assert_healthy(term)


# ---- tabs and filters ---------------------------------------------------------------------------
@scenario("list.open", "list.snoozed", "list.next_tab", "list.previous_tab")
def tabs_(ws, term, store):
    term.press("Z")
    assert term.wait_for(lambda text: "Snoozed" in tabs(term), timeout=5), term.text()
    term.press("right_square_bracket")
    assert term.wait_for(lambda text: "Done" in tabs(term), timeout=5), term.text()
    term.press("left_square_bracket")
    assert term.wait_for(lambda text: "Snoozed" in tabs(term), timeout=5), term.text()
    term.press("O")
    assert term.wait_for(lambda text: "Open" in tabs(term) and "Snoozed" not in tabs(term), timeout=5), term.text()


@scenario("list.grouping")
def grouping(ws, term, store):
    term.press("v")
    assert term.wait_for(lambda text: "threads" in tabs(term), timeout=5), term.text()
    term.press("v")
    assert term.wait_for(lambda text: "threads" not in tabs(term), timeout=5), term.text()


@scenario("list.tag")
def tag_filter(ws, term, store):
    tag = store.all_tags()[0]
    term.press("number_sign")
    assert term.wait_for("Only customers tagged", timeout=5)
    term.type(tag)
    term.settle(0.4)
    term.press("enter")
    assert term.wait_for(lambda text: f"#{tag}" in tabs(term), timeout=5), term.text()


def _channel_scenario(number: int):
    def check(ws, term, store):
        channels = in_catalog_order(store.channels_in_use())
        from console.ui.render import channel_name

        term.press(str(number))
        if number <= len(channels):
            name = channel_name(channels[number - 1])
            assert term.wait_for(lambda text: name in tabs(term), timeout=5), term.text()
            term.press("0")
            assert term.wait_for(lambda text: name not in tabs(term), timeout=5), term.text()
        else:
            assert term.wait_for(f"There is no channel {number}", timeout=5), term.text()
    return check


for _n in range(1, 10):
    scenario(f"list.channel_{_n}")(_channel_scenario(_n))
scenario("list.all_channels")(_channel_scenario(1))


# ---- the timeline -------------------------------------------------------------------------------
@scenario("timeline.down", "timeline.up", "timeline.top", "timeline.bottom")
def timeline_scroll(ws, term, store):
    longest = store.db.query_one(
        """SELECT c.customer_id FROM conversation c GROUP BY c.customer_id ORDER BY SUM(c.message_count) DESC
           LIMIT 1""")[0]
    select(term, store, longest)
    term.press("enter")
    assert term.wait_for(lambda text: "Show quoted text" in footer(term), timeout=5)
    bottom = right_pane(term, 3)
    first = store.timeline(longest)[0]
    term.press("g")
    assert term.wait_for(lambda text: right_pane(term, 2) != bottom or right_pane(term, 3) != bottom, timeout=5)
    from console.ui.render import when

    assert term.wait_for(when(first.sent_at), timeout=5), term.text()

    def view() -> list[str]:
        return [right_pane(term, n) for n in range(3, 20)]

    top = view()
    term.press("j")
    assert term.wait_for(lambda text: view() != top, timeout=5)
    term.press("k")
    assert term.wait_for(lambda text: view() == top, timeout=5), term.text()
    term.press("G")
    assert term.wait_for(lambda text: when(first.sent_at) not in text, timeout=5), term.text()


@scenario("timeline.quotes")
def quotes(ws, term, store):
    customer = store.db.query_one(
        """SELECT c.customer_id FROM message m JOIN conversation c ON c.id = m.conversation_id
           WHERE m.channel = 'email' AND m.body LIKE '%wrote:%' ORDER BY m.sent_at DESC LIMIT 1""")[0]
    select(term, store, customer)
    term.press("enter")
    assert term.wait_for("quoted line", timeout=5), term.text()
    term.press("z")
    assert term.wait_for(lambda text: "Hide quoted text" in footer(term), timeout=5), term.text()
    assert term.wait_for("wrote:", timeout=5), term.text()
    term.press("z")
    assert term.wait_for(lambda text: "Show quoted text" in footer(term), timeout=5), term.text()


@scenario("timeline.save_attachments")
def attachments(ws, term, store):
    customer = store.db.query_one(
        """SELECT c.customer_id FROM message m JOIN conversation c ON c.id = m.conversation_id
           WHERE m.attachments LIKE '%demo:%' ORDER BY m.sent_at DESC LIMIT 1""")[0]
    select(term, store, customer)
    term.press("enter")
    assert term.wait_for("📎", timeout=5), term.text()
    term.press("d")
    assert term.wait_for("Saving 1 attachment", timeout=5), term.text()
    assert eventually(lambda: ws.download_dir.exists() and any(ws.download_dir.iterdir()), timeout=15)
    [saved] = list(ws.download_dir.iterdir())
    listed = json.loads(store.db.query_one(
        """SELECT m.attachments FROM message m JOIN conversation c ON c.id = m.conversation_id
           WHERE c.customer_id = ? AND m.attachments LIKE '%demo:%' ORDER BY m.sent_at DESC LIMIT 1""",
        (customer,))[0])[0]
    assert saved.stat().st_size == listed["size"]  # the size the timeline shows is the size saved
    assert term.wait_for("Saved", timeout=10), term.text()


# ---- measuring and automation -------------------------------------------------------------------
def scrolls(term, bottom: str, top: str) -> None:
    """j and k move a long page by a line, G shows its end and g its start again."""
    first = term.lines()[1]
    term.press("j")
    assert term.wait_for(lambda text: term.lines()[1] != first, timeout=5), term.text()
    term.press("k")
    assert term.wait_for(lambda text: term.lines()[1] == first, timeout=5), term.text()
    term.press("G")
    assert term.wait_for(bottom, timeout=5), term.text()
    term.press("g")
    assert term.wait_for(top, timeout=5), term.text()


@scenario("list.breaching")
def breaching(ws, term, store):
    # The engine the app started keeps SLA clocks (the default policy: 60 minutes); the demo's
    # oldest customers are late.
    assert eventually(lambda: store.db.query_one("SELECT COUNT(*) FROM sla_clock")[0] > 0, timeout=20)
    assert term.wait_for(lambda text: "late " in text, timeout=10), term.text()
    everyone = tabs(term)
    term.press("B")
    assert term.wait_for(lambda text: "breaching" in tabs(term), timeout=5), term.text()
    late = store.db.query_one(
        """SELECT COUNT(DISTINCT c.customer_id) FROM sla_clock s JOIN conversation c ON c.id = s.conversation_id
           WHERE c.status = 'open' AND s.due_at <= ?""", (time.time() + 3600,))[0]
    assert term.wait_for(f"Open {late}", timeout=5), term.text()
    term.press("B")
    assert term.wait_for(lambda text: "breaching" not in tabs(term), timeout=5), term.text()
    assert tabs(term).split()[:2] == everyone.split()[:2]


@scenario("app.reports", "reports.close", "reports.period", "reports.earlier", "reports.later", "reports.breakdown",
          "reports.down", "reports.up", "reports.top", "reports.bottom")
def reports_screen(ws, term, store):
    term.press("ctrl+r")
    assert term.wait_for("First response", timeout=10), term.text()
    assert "(7 days)" in term.lines()[0] and "by channel" in term.lines()[0]
    scrolls(term, bottom="By channel", top="Conversations")
    term.press("v")
    assert term.wait_for(lambda text: "by agent" in term.lines()[0], timeout=5), term.text()
    term.press("p")
    assert term.wait_for(lambda text: "(30 days)" in term.lines()[0] and "computing" not in term.lines()[0],
                         timeout=10), term.text()
    latest = term.lines()[0]
    term.press("left_square_bracket")
    assert term.wait_for(lambda text: term.lines()[0] != latest and "computing" not in term.lines()[0],
                         timeout=10), term.text()
    term.press("right_square_bracket")
    assert term.wait_for(lambda text: term.lines()[0] == latest, timeout=10), term.text()
    term.press("right_square_bracket")  # nothing later than today
    assert term.wait_for("latest period", timeout=5), term.text()
    term.press("escape")
    assert term.wait_for(lambda text: "Open" in tabs(term), timeout=5), term.text()
    term.press("ctrl+r")
    assert term.wait_for("First response", timeout=10), term.text()
    term.press("q")  # q leaves the reports, not the app
    assert term.wait_for(lambda text: "Open" in tabs(term), timeout=5), term.text()
    assert term.alive()


AUTOMATION = """
[business_hours]
timezone = "Europe/London"
monday = "09:00-17:00"
tuesday = "09:00-17:00"
wednesday = "09:00-17:00"
thursday = "09:00-17:00"
friday = "09:00-17:00"
holidays = ["2030-12-25"]

[[sla]]
name = "wholesale"
first_response_minutes = 30
tags = ["wholesale"]

[[sla]]
name = "chat"
first_response_minutes = 15
channels = ["whatsapp", "telegram"]

[[rules]]
name = "wholesale"
on = "message_received"
text_contains = ["wholesale"]
add_tag = ["wholesale"]

[[rules]]
name = "nudge"
on = "no_reply"
after_minutes = 600
notify = "{name} has waited ten hours"

[[rules]]
name = "late"
on = "sla_breaching"
add_tag = ["late"]
"""


@scenario("app.status", "status.close", "status.down", "status.up", "status.top", "status.bottom")
def status_panel(ws, term, store):
    from e2e.harness import ACCOUNTS

    term.close()
    ws.write_config(accounts=ACCOUNTS + AUTOMATION)  # hours, policies and rules: more than a screen
    term = ws.start()
    term.press("H")
    assert term.wait_for("last synced", timeout=10), term.text()
    assert "● mail (demo): ok" in term.text() and "Business hours" in term.text()
    scrolls(term, bottom="Satisfaction question", top="Accounts")
    assert term.wait_for("last fired", timeout=5)
    term.press("escape")
    assert term.wait_for(lambda text: "Open" in tabs(term), timeout=5), term.text()
    return term


# ---- outreach: campaigns, steps, texts, the dry run, segments, consent -------------------------
def campaign_row(store, name: str):
    return store.campaign(name)


def campaigns(term):
    term.press("C")
    assert term.wait_for(lambda text: "Campaigns ─" in text and "Pumpkin week" in text, timeout=10), term.text()


def spring_editor(term):
    campaigns(term)
    term.press("enter")
    assert term.wait_for("Spring menu · draft", timeout=10), term.text()


def spring_step(term, position: int = 1):
    spring_editor(term)
    if position == 2:
        term.press("j")
    term.press("enter")
    assert term.wait_for(f"step {position} of", timeout=10), term.text()


def clear_input(term, count: int = 40):
    term.settle(0.3)
    term.press(*(["backspace"] * count), pause=0.02)
    term.settle(0.2)


@scenario("outreach.campaigns", "outreach.down", "outreach.up", "outreach.back")
def campaigns_list(ws, term, store):
    campaigns(term)
    assert term.wait_for("Spring menu is a draft", timeout=5), term.text()
    term.press("j")
    assert term.wait_for("Pumpkin week is finished", timeout=5), term.text()
    term.press("k")
    assert term.wait_for("Spring menu is a draft", timeout=5), term.text()
    term.press("escape")
    assert term.wait_for(lambda text: "Campaigns ─" not in text and "Open" in tabs(term), timeout=5), term.text()


@scenario("campaigns.preview", "preview.test")
def dry_run(ws, term, store):
    term.close()
    ws.write_config(workspace='[outreach]\ntest_addresses = ["email:ana@crumb.example"]')
    term = ws.start()
    campaigns(term)
    term.press("p")
    assert term.wait_for(lambda text: "Dry run" in text and "selected" in text, timeout=15), term.text()
    term.press("t")
    assert term.wait_for("Test queued", timeout=10), term.text()
    assert eventually(lambda: store.db.query_one("SELECT COUNT(*) FROM outbox WHERE purpose = 'test'")[0] == 1)
    assert campaign_row(store, "Spring menu").state == "draft"  # a test send launches nothing
    return term


@scenario("campaigns.report")
def campaign_report(ws, term, store):
    campaigns(term)
    term.press("j")
    assert term.wait_for("Pumpkin week is finished", timeout=5), term.text()
    term.press("R")
    assert term.wait_for(lambda text: "Report Pumpkin week" in text and "replied" in text, timeout=10), term.text()
    term.press("escape")
    assert term.wait_for("Pumpkin week is finished", timeout=5), term.text()


@scenario("outreach.edit", "outreach.new", "outreach.delete", "campaign.rename")
def campaign_steps(ws, term, store):
    spring_editor(term)
    term.press("n")
    assert eventually(lambda: len(campaign_row(store, "Spring menu").steps) == 3), term.text()
    assert term.wait_for("Step added", timeout=5), term.text()
    term.press("j", "j")
    term.press("delete")
    assert eventually(lambda: len(campaign_row(store, "Spring menu").steps) == 2), term.text()
    term.press("N")
    assert term.wait_for("New name", timeout=5), term.text()
    clear_input(term)
    term.type("Spring specials")
    term.press("enter")
    assert eventually(lambda: campaign_row(store, "Spring specials") is not None), term.text()
    assert term.wait_for("Spring specials · draft", timeout=5), term.text()


@scenario("campaign.segment", "campaign.settings")
def campaign_settings(ws, term, store):
    spring_editor(term)
    term.press("s")
    assert term.wait_for("Who is it for?", timeout=5), term.text()
    term.type("Pumpkin")
    assert term.wait_for(lambda text: "Pumpkin fans" in text and "No segment" not in text, timeout=5), term.text()
    term.press("enter")
    pumpkin = store.segment("Pumpkin fans").id
    assert eventually(lambda: campaign_row(store, "Spring menu").segment_id == pumpkin), term.text()
    assert term.wait_for("segment Pumpkin fans", timeout=5), term.text()
    term.press("o")
    assert term.wait_for("Replies count within", timeout=5), term.text()
    term.press("enter")
    assert term.wait_for("reply days", timeout=5), term.text()
    clear_input(term, 5)
    term.type("5")
    term.press("enter")
    assert eventually(lambda: campaign_row(store, "Spring menu").reply_days == 5), term.text()


@scenario("step.delay", "step.rule", "step.template", "step.earlier", "step.later", "step.clear")
def step_keys(ws, term, store):
    def step2():
        return campaign_row(store, "Spring menu").steps[1]

    spring_step(term, 2)
    term.press("d")
    assert term.wait_for("Delay after step 1", timeout=5), term.text()
    clear_input(term, 10)
    term.type("2d")
    term.press("enter")
    assert eventually(lambda: step2().delay_seconds == 2 * 86400), term.text()
    rule = step2().rule
    term.press("r")
    assert eventually(lambda: step2().rule != rule), term.text()
    term.press("t")
    assert term.wait_for("Approved WhatsApp template", timeout=5), term.text()
    term.type("order")
    term.press("enter")
    assert eventually(lambda: step2().texts["whatsapp"].template == "order_ready"), term.text()
    first = term.lines()[1][2:14]  # the first channel's row, without the cursor's mark
    term.press("j")
    term.press("K")
    assert term.wait_for(lambda text: term.lines()[1][2:14] != first, timeout=5), term.text()
    order = step2().order
    term.press("J")
    assert eventually(lambda: step2().order != order), term.text()
    assert term.wait_for(lambda text: term.lines()[1][2:14] == first, timeout=5), term.text()
    channels = set(step2().texts)
    term.press("x")
    assert eventually(lambda: len(step2().texts) == len(channels) - 1), term.text()
    assert term.wait_for("no text", timeout=5), term.text()


@scenario("text.save", "text.editor")
def step_text(ws, term, store):
    term.close()
    script = ws.root / "editor.sh"
    script.write_text('#!/bin/sh\nprintf "\\nAppended." >> "$1"\n')
    script.chmod(0o755)
    term = ws.start(EDITOR=str(script), VISUAL="")
    spring_step(term, 1)
    term.press("enter")
    assert term.wait_for("email text", timeout=5), term.text()
    term.press("ctrl+e")
    assert term.wait_for("Appended.", timeout=10), term.text()
    term.press("ctrl+s")
    assert eventually(lambda: "Appended." in campaign_row(store, "Spring menu").steps[0].texts["email"].body)
    assert term.wait_for(lambda text: "email text" not in text, timeout=5), term.text()
    term.press("escape")  # the app still answers keys after the form closed
    assert term.wait_for("Spring menu · draft", timeout=5), term.text()
    return term


@scenario("campaigns.launch", "campaigns.pause", "campaigns.cancel")
def launch_pause_cancel(ws, term, store):
    campaigns(term)
    term.press("L")
    assert term.wait_for("Launch Spring menu to", timeout=15), term.text()
    term.press("enter")
    assert term.wait_for("Launched:", timeout=15), term.text()
    assert eventually(lambda: campaign_row(store, "Spring menu").state in ("running", "finished")), term.text()
    if campaign_row(store, "Spring menu").state == "running":
        term.press("space")
        assert eventually(lambda: campaign_row(store, "Spring menu").state in ("paused", "finished")), term.text()
        if campaign_row(store, "Spring menu").state == "paused":
            term.press("X")
            assert term.wait_for("Cancel Spring menu?", timeout=5), term.text()
            term.press("enter")
            assert eventually(lambda: campaign_row(store, "Spring menu").state == "cancelled"), term.text()
            assert term.wait_for("cancelled", timeout=5), term.text()


@scenario("campaigns.segments", "segment.save")
def segments(ws, term, store):
    campaigns(term)
    term.press("S")
    assert term.wait_for(lambda text: "Newsletter" in text and "Pumpkin fans" in text, timeout=10), term.text()
    term.press("n")
    assert term.wait_for("Name, e.g. Regulars", timeout=5), term.text()
    term.settle(0.3)
    term.type("Springfield regulars, kids and jam")  # n, j, k and delete are typed, not the list's keys
    term.press("backspace", "left", "delete")
    term.press("tab")
    term.type("city:Springfield")
    assert term.wait_for(lambda text: "customer" in text.lower(), timeout=10), term.text()
    term.press("ctrl+s")
    assert eventually(lambda: store.segment("Springfield regulars, kids and j") is not None), term.text()
    assert store.segment("Springfield regulars, kids and j").query == "city:Springfield"


@scenario("customer.consent", "consent.grant", "consent.withdraw")
def consent(ws, term, store):
    row = open_row(store)
    term.press("o")
    assert term.wait_for("Consent of", timeout=10), term.text()
    assert term.wait_for(lambda text: "marketing" in text, timeout=10), term.text()
    history = len(store.consent_history(row.customer_id))
    for added, (key, prompt, said, notice) in enumerate((
            ("g", "What did they agree to", "weekly news, asked in the shop", "consent recorded"),
            ("w", "Why?", "asked on the phone to stop", "withdrawal recorded")), 1):
        term.press(key)
        assert term.wait_for(prompt, timeout=5), term.text()
        term.type(said)
        term.press("enter")
        assert term.wait_for(notice, timeout=10), term.text()
        assert eventually(lambda: len(store.consent_history(row.customer_id)) == history + added)
    term.press("escape")
    assert term.wait_for(lambda text: "Consent of" not in text, timeout=5), term.text()


# ---- the suite itself ---------------------------------------------------------------------------
def test_every_binding_has_a_scenario():
    missing = sorted(info.id for info in registry() if info.id not in SCENARIOS)
    assert not missing, f"bindings without a real-terminal scenario in {__file__}: {missing}"


@pytest.mark.parametrize("binding_id", sorted(info.id for info in registry()))
def test_binding_works_in_the_real_program(workspace, binding_id):
    if binding_id not in SCENARIOS:
        pytest.fail(f"no scenario for {binding_id}")
    term = workspace.start()
    store = workspace.store()
    result = SCENARIOS[binding_id](workspace, term, store)
    if result == "exited":
        return
    if result is not None:
        term = result
    assert_healthy(term)
