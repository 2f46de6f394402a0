"""Triage at keyboard speed, driven with Pilot on the demo workspace (80x24)."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap

from backends import location_text
from conftest import ready, until
from console.store import ListFilter, Store
from console.sync import Engine
from console.ui.app import ConsoleApp
from console.ui.screens import PickScreen

SIZE = (80, 24)


def replies_to(store: Store, customer_id: int) -> list[str]:
    return [r["body"] for r in store.db.query(
        """SELECT m.body FROM message m JOIN conversation c ON c.id = m.conversation_id
           WHERE c.customer_id = ? AND m.direction = 'out' AND m.author IS NOT NULL AND m.author != ''
           ORDER BY m.id""", (customer_id,))]


def statuses(store: Store, customer_id: int) -> set[str]:
    return {r[0] for r in store.db.query("SELECT status FROM conversation WHERE customer_id = ?", (customer_id,))}


async def test_a_triage_session_is_r_text_ctrl_s_e_per_customer(demo):
    """Open the oldest waiting (already selected), reply, close, and the next one is selected."""
    ws, store = demo
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        expected = [r.customer_id for r in store.list_rows(ListFilter("open"), 0, 3)]
        for number, customer in enumerate(expected):
            await until(pilot, lambda: app.current and app.current.customer_id == customer, f"customer {number}")
            # Three keystrokes and the text: the test fails if the flow needs any other key.
            await pilot.press("r", *f"Thanks, noted ({number})!", "ctrl+s", "e")
            await until(pilot, lambda: statuses(store, customer) == {"done"}, f"customer {number} done")
            assert replies_to(store, customer)[-1] == f"Thanks, noted ({number})!"
        # The next customer is the one who waited longest among those left.
        await until(pilot, lambda: app.current and app.current.customer_id ==
                    store.list_rows(ListFilter("open"), 0, 1)[0].customer_id, "the next oldest waiting")


async def test_reply_with_a_template_in_four_keys_plus_its_name(demo):
    ws, store = demo
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await until(pilot, lambda: "ready" in store.templates(), "the config's templates in the store")
        customer, name = app.current.customer_id, store.customer_name(app.current.customer_id)
        await pilot.press("T")
        await until(pilot, lambda: isinstance(app.screen, PickScreen), "the template picker")
        await pilot.press(*"rea", "enter")
        await until(pilot, lambda: "ready for pickup" in app.composer.editor.text, "the filled template")
        assert app.composer.editor.text.endswith(ws.agent)
        if name.startswith(("@", "+")) or "@" in name:  # a handle is never a first name: the placeholder stays
            assert app.composer.editor.text.startswith("Hi {first_name}, your order is ready")
            app.composer.editor.load_text(app.composer.editor.text.replace("{first_name}", "there"))
            first = "there"
        else:
            first = name.split()[0]
        assert app.composer.editor.text.startswith(f"Hi {first}, your order is ready")
        await pilot.press("ctrl+s", "e")
        await until(pilot, lambda: statuses(store, customer) == {"done"}, "closed")
        assert replies_to(store, customer)[-1].startswith(f"Hi {first}, your order is ready")


async def test_an_unfilled_placeholder_blocks_sending(demo):
    ws, store = demo
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        customer = app.current.customer_id
        before = replies_to(store, customer)
        await pilot.press("T")
        await until(pilot, lambda: isinstance(app.screen, PickScreen), "the template picker")
        await pilot.press(*"order", "enter")
        await until(pilot, lambda: "{order_number}" in app.composer.editor.text, "the template")
        await pilot.press("ctrl+s")
        await pilot.pause(0.3)
        assert app.composer.display and replies_to(store, customer) == before
        assert any("{order_number}" in str(n.message) for n in app._notifications)
        assert "fill in {order_number}, {pickup_day}" in str(app.composer.status.render())


async def test_tag_note_and_the_card(demo):
    ws, store = demo
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        customer = app.current.customer_id
        before = store.tags(customer)
        notes_before = [n.body for n in store.notes(customer)]
        await pilot.press("t", *"Greenhouse", "enter")
        await until(pilot, lambda: store.tags(customer) == sorted(before + ["greenhouse"]), "the tag")
        await pilot.press("w", *"Prefers rye [bold]x[/bold]", "enter")
        await until(pilot, lambda: [n.body for n in store.notes(customer)] == notes_before + ["Prefers rye [bold]x[/bold]"],
                    "the note")
        await pilot.press("i")
        card = app.inbox.card
        await until(pilot, lambda: "#greenhouse" in str(card.query_one("#card-body").render()), "the card")
        shown = str(card.query_one("#card-body").render())
        assert "Prefers rye [bold]x[/bold]" in shown and ws.agent in shown  # markup shown as typed
        # Tag filter: only this customer listed.
        await pilot.press("number_sign")
        await until(pilot, lambda: isinstance(app.screen, PickScreen), "the tag picker")
        await pilot.press(*"greenh", "enter")
        await until(pilot, lambda: app.conversations.filter.tag == "greenhouse" and app.conversations.total == 1,
                    "the tag filter")
        # Removing the tag with -name.
        await pilot.press("t", *"-greenhouse", "enter")
        await until(pilot, lambda: store.tags(customer) == before, "the tag removed")


async def test_search_opens_the_customer_and_steps_through_matches(demo):
    ws, store = demo
    hits = store.search("sourdough")
    assert hits
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.screen, PickScreen), "the search prompt")
        await pilot.press(*"sourdough")
        options = app.screen.query_one("OptionList")
        await until(pilot, lambda: options.option_count == min(50, len(hits)), "the results")
        await pilot.press("enter")
        await until(pilot, lambda: app.current and app.current.customer_id == hits[0].customer_id, "the first hit")
        await until(pilot, lambda: app.timeline.highlight == ["sourdough"] and app.timeline._match >= 0,
                    "the match highlighted")
        matches = app.timeline.matches()
        assert app.timeline._match == matches[-1]
        if len(matches) > 1:
            await pilot.press("N")
            assert app.timeline._match == matches[-2]
            await pilot.press("n")
            assert app.timeline._match == matches[-1]


async def test_a_bad_search_filter_is_explained_not_crashed(demo):
    ws, store = demo
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("slash", *"bread before:someday")
        options = app.screen.query_one("OptionList")
        await until(pilot, lambda: options.option_count == 1, "the explanation")
        assert "before: expects a date" in str(options.get_option_at_index(0).prompt)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, PickScreen), "back")


async def test_assign_to_me_and_the_mine_filter(demo):
    ws, store = demo
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        customer = app.current.customer_id
        await pilot.press("a")
        await until(pilot, lambda: store.count_rows(ListFilter("open", assignee=ws.agent)) == 1, "assigned")
        await pilot.press("M")
        await until(pilot, lambda: app.conversations.filter.assignee == ws.agent and app.conversations.total == 1
                    and app.current and app.current.customer_id == customer, "only mine")
        await pilot.press("a")  # again: unassign
        await until(pilot, lambda: store.count_rows(ListFilter("open", assignee=ws.agent)) == 0, "unassigned")


async def test_merge_and_undo_from_the_keyboard(demo):
    ws, store = demo
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        first, second = app.conversations.row_at(0), app.conversations.row_at(1)
        other_name = store.customer_name(second.customer_id)
        before = len(store.identities(first.customer_id))
        await pilot.press("m", *other_name.split()[0])
        options = app.screen.query_one("OptionList")
        await until(pilot, lambda: any(str(second.customer_id) == options.get_option_at_index(i).id
                                       for i in range(options.option_count)), "the other customer offered")
        while options.get_option_at_index(options.highlighted).id != str(second.customer_id):
            await pilot.press("down")
        await pilot.press("enter")
        from console.ui.screens import ConfirmScreen

        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the merge to confirm")
        assert len(store.identities(first.customer_id)) == before  # nothing merged before the answer
        await pilot.press("enter")
        await until(pilot, lambda: len(store.identities(first.customer_id)) > before, "merged")
        await pilot.press("ctrl+z")
        await until(pilot, lambda: len(store.identities(first.customer_id)) == before, "the merge undone")
        assert store.identities(second.customer_id)


async def test_drafts_survive_a_restart(demo):
    ws, store = demo
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        customer = app.current.customer_id
        await pilot.press("r", *"Half-written answer", "escape")
        await until(pilot, lambda: store.draft(customer, ws.agent) == "Half-written answer", "the draft stored")
    again = ConsoleApp(ws, store)
    async with again.run_test(size=SIZE) as pilot:
        await ready(pilot, again)
        assert again.current.customer_id == customer
        await pilot.press("r")
        assert again.composer.editor.text == "Half-written answer"


async def test_another_agent_replying_is_shown_within_a_second(demo):
    """A second, real process on the same store says it is replying to the selected customer."""
    ws, store = demo
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        customer = app.current.customer_id
        await pilot.press("r")
        other = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
            import sys, os, time
            from console.store import Store
            store = Store({location_text(ws)!r})
            store.set_presence("ben", os.getpid(), {customer}, "replying", {socket.gethostname()!r})
            print("ready", flush=True)
            time.sleep(30)
        """)], stdout=subprocess.PIPE, text=True)
        try:
            assert other.stdout.readline().strip() == "ready"
            await until(pilot, lambda: "ben is replying to this customer too" in str(app.composer.status.render()),
                        "the composer's warning")
            assert app.conversations.viewers.get(customer) == [("ben", "replying")]
        finally:
            other.kill()
            other.wait()
        # That console is gone (killed on this host): this console's next heartbeat forgets it.
        app.inbox._heartbeat()
        await until(pilot, lambda: "ben" not in str(app.composer.status.render()), "the warning gone")


async def show_customer(pilot, app, store: Store, customer: int, attachments: bool = False) -> None:
    """Once the app is ready, show `customer` (as a search hit does) and wait for the timeline."""
    await ready(pilot, app)
    app.inbox.show_row(store.row_for(customer))
    await until(pilot, lambda: app.current.customer_id == customer and app.timeline.entries
                and (not attachments or any(e.attachments for e in app.timeline.entries)), "the customer")


async def save_attachments_of(pilot, app, store: Store, customer: int) -> None:
    """Show the customer with a message that has attachments, and press `d` in the timeline."""
    await show_customer(pilot, app, store, customer, attachments=True)
    app.timeline.focus()
    await pilot.pause(0.05)
    await pilot.press("d")


def _customer_on(store: Store, channel: str, older_than_hours: float, newer_than_hours: float = 1e9) -> int:
    now = __import__("time").time()
    row = store.db.query_one(
        """SELECT c.customer_id FROM conversation c JOIN customer cu ON cu.id = c.customer_id
           WHERE c.channel = ? AND c.last_inbound_at < ? AND cu.name NOT LIKE '@%'
           AND c.last_inbound_at > ? AND NOT EXISTS (SELECT 1 FROM conversation o WHERE o.customer_id = c.customer_id
           AND o.last_inbound_at > c.last_inbound_at) ORDER BY c.last_inbound_at DESC LIMIT 1""",
        (channel, now - older_than_hours * 3600, now - newer_than_hours * 3600))
    return row[0] if row else None


async def test_whatsapp_free_text_is_refused_outside_the_24_hour_window(demo):
    ws, store = demo
    customer = _customer_on(store, "whatsapp", older_than_hours=25)
    assert customer is not None, "the demo has WhatsApp customers who wrote more than a day ago"
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await show_customer(pilot, app, store, customer)
        before = replies_to(store, customer)
        await pilot.press("r", *"Are you still there?", "ctrl+s")
        await pilot.pause(0.3)
        assert "24-hour window closed" in str(app.composer.status.render())
        assert app.composer.display and replies_to(store, customer) == before


async def test_messenger_after_24_hours_sends_as_human_agent_with_ctrl_g(demo):
    ws, store = demo
    customer = _customer_on(store, "messenger", older_than_hours=25, newer_than_hours=24 * 6)
    if customer is None:  # make one: the demo's dates move with the clock
        customer = _customer_on(store, "messenger", older_than_hours=0)
        store.db.conn.execute("UPDATE conversation SET last_inbound_at = ? WHERE customer_id = ? AND channel = 'messenger'",
                              (__import__("time").time() - 48 * 3600, customer))
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await show_customer(pilot, app, store, customer)
        await pilot.press("r")
        await until(pilot, lambda: app.composer.target and app.composer.target.channel == "messenger", "messenger")
        await pilot.press(*"Sorry for the wait!", "ctrl+s")
        await pilot.pause(0.2)
        assert app.composer.display  # refused without the tag
        await pilot.press("ctrl+g")
        assert "[on]" in str(app.composer.status.render())
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "Sorry for the wait!" in replies_to(store, customer), "the tagged reply queued")
        options = store.db.query_one(
            "SELECT o.options FROM outbox o JOIN message m ON m.id = o.message_id WHERE m.body = 'Sorry for the wait!'")[0]
        assert '"HUMAN_AGENT"' in options


async def test_outside_the_whatsapp_window_an_approved_template_can_be_sent(demo):
    ws, store = demo
    customer = _customer_on(store, "whatsapp", older_than_hours=25)
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await show_customer(pilot, app, store, customer)
        await pilot.press("r")
        await until(pilot, lambda: app.composer.target and app.composer.target.channel == "whatsapp", "WhatsApp")
        await pilot.press("ctrl+t")
        await until(pilot, lambda: isinstance(app.screen, PickScreen), "the approved templates")
        await pilot.press(*"order", "enter")
        await until(pilot, lambda: app.composer.wa_template == "order_ready", "the template chosen")
        assert "approved template 'order_ready'" in str(app.composer.status.render())
        await pilot.press("enter", *"Thursday", "ctrl+s")
        await until(pilot, lambda: any(r.startswith("[template order_ready]") for r in replies_to(store, customer)),
                    "the template queued")
        name = store.customer_name(customer)
        row = store.db.query_one(
            """SELECT m.body, o.options FROM outbox o JOIN message m ON m.id = o.message_id
               WHERE m.body LIKE '[template order_ready]%'""")
        # a handle or an address is never used as a first name: then Thursday is the first variable
        handle = name.startswith(("@", "+")) or "@" in name
        variables = ["Thursday"] if handle else [name.split()[0], "Thursday"]
        assert row["body"] == "[template order_ready] " + " · ".join(variables)
        assert '"template": "order_ready"' in row["options"] and '\\"1\\": \\"' + variables[0] in row["options"]


async def test_attachments_are_saved_under_safe_names(demo, tmp_path):
    from email.message import EmailMessage

    from console.model import Address, InboundMessage, PullResult

    ws, store = demo
    ws.download_dir = tmp_path / "downloads"
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "eve@example.com", "shop@example.com", "invoice"
    mail["Message-ID"] = "<evil-1@example.com>"
    mail.set_content("See attached.")
    mail.add_attachment(b"%PDF-1.4 not really", maintype="application", subtype="pdf",
                        filename="../../.bashrc\u202efdp.exe")
    from console.channels.email.mailparse import parse

    parsed = parse(mail.as_bytes())
    assert parsed.attachments, "the parser lists the attachment"
    store.apply_pull("mail", PullResult(messages=[InboundMessage(
        external_id="<evil-1@example.com>", thread_key="<evil-1@example.com>", channel="email", direction="in",
        peer=Address("email", "eve@example.com", "Eve"), sent_at=__import__("time").time(), body=parsed.body,
        subject="invoice", raw=mail.as_bytes(), attachments=parsed.attachments)]))
    customer = store.db.query_one("SELECT customer_id FROM identity WHERE address = 'eve@example.com'")[0]
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await save_attachments_of(pilot, app, store, customer)
        await until(pilot, lambda: app.inbox.downloads, "the download requested")
        engine_store = Store(ws.store_location)  # the engine reads the part from the kept mail
        await Engine(ws, engine_store).run(once=True)
        engine_store.close()
        await until(pilot, lambda: (ws.download_dir).exists() and any(ws.download_dir.iterdir()), "the saved file")
        [saved] = list(ws.download_dir.iterdir())
        assert saved.parent == ws.download_dir and "\u202e" not in saved.name and "/" not in saved.name
        assert not saved.name.startswith(".")
        assert saved.read_bytes() == b"%PDF-1.4 not really"
        await pilot.press("d")  # again: a second file, never overwriting the first
        await until(pilot, lambda: app.inbox.downloads, "the second download requested")
        engine_store = Store(ws.store_location)
        await Engine(ws, engine_store).run(once=True)
        engine_store.close()
        await until(pilot, lambda: len(list(ws.download_dir.iterdir())) == 2, "a second copy")


async def test_a_cancelled_reply_can_be_sent_again_as_a_new_send(demo):
    ws, store = demo
    ws.send_delay_seconds = 30
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        customer = app.current.customer_id
        await pilot.press("r", *"Back in stock!", "ctrl+s")
        await until(pilot, lambda: any(e.body == "Back in stock!" for e in app.timeline.entries), "queued")
        await pilot.press("U")
        await until(pilot, lambda: any(e.body == "Back in stock!" and e.status_detail == "cancelled"
                                       for e in app.timeline.entries), "cancelled")
        await pilot.press("R")
        await until(pilot, lambda: [e.status for e in app.timeline.entries if e.body == "Back in stock!"]
                    == ["failed", "queued"], "a new send queued")
        keys = [r[0] for r in store.db.query(
            "SELECT o.idempotency_key FROM outbox o JOIN message m ON m.id = o.message_id WHERE m.body = 'Back in stock!'")]
        assert len(set(keys)) == 2
        assert customer == app.current.customer_id


async def test_attachments_kept_by_the_service_are_fetched_by_the_engine(demo, tmp_path):
    from console.sync import Engine

    ws, store = demo
    ws.download_dir = tmp_path / "downloads"
    row = store.db.query_one(
        """SELECT c.customer_id FROM message m JOIN conversation c ON c.id = m.conversation_id
           WHERE m.attachments LIKE '%demo:%' ORDER BY m.sent_at DESC LIMIT 1""")
    customer = row[0]
    app = ConsoleApp(ws, store)
    async with app.run_test(size=SIZE) as pilot:
        await save_attachments_of(pilot, app, store, customer)
        await until(pilot, lambda: app.inbox.downloads, "the download requested")
        engine_store = Store(ws.store_location)  # the engine, as its own process would
        await Engine(ws, engine_store).run(once=True)
        engine_store.close()
        await until(pilot, lambda: not app.inbox.downloads, "the download reported")
        [saved] = list(ws.download_dir.iterdir())
        assert saved.suffix == ".pdf" and saved.read_bytes().startswith(b"%PDF-1.4")
        assert any(f"Saved {saved}" in str(n.message) for n in app._notifications), \
            [str(n.message) for n in app._notifications]
