"""Answering: the composer, drafts, templates, undo send and send again."""

from __future__ import annotations

import time

from rich.text import Text
from textual.binding import Binding

from console.store import OptedOut
from console.templates import fill, values_for
from console.ui.composer import Composer, Draft, Target
from console.ui.render import channel_name, safe_line


class ReplyActions:
    KEYS = [
        Binding("r", "reply", "Reply", id="conversation.reply"),
        Binding("c", "compose_new", "New message", id="conversation.new", show=False),
        Binding("T", "reply_template", "Reply with a template", id="conversation.reply_template", show=False),
        Binding("U", "undo_send", "Undo the last send", id="conversation.undo_send", show=False),
        Binding("R", "send_again", "Send a failed reply again", id="conversation.send_again", show=False),
    ]
    # Commands without a key of their own, offered in the palette (ctrl+p).
    PALETTE_ONLY = [("Save the composer text as a template", "save_template"),
                    ("Insert a template into the composer", "insert_template")]

    # ---- the composer ---------------------------------------------------------------------------
    def action_reply(self) -> None:
        self.open_composer(new_message=False)

    def action_compose_new(self) -> None:
        self.open_composer(new_message=True)

    def action_reply_template(self) -> None:
        """`r` then `ctrl+t`: the fastest courteous answer (T, a few letters, enter, ctrl+s, e)."""
        self.open_composer(new_message=False, then=self.action_insert_template)

    def open_composer(self, new_message: bool, then=None) -> None:
        row = self.need_customer()
        if row is None:
            return
        composer = self.composer
        if composer.display and composer.customer_id == row.customer_id and composer.new_message == new_message:
            composer.editor.focus()
            if then:
                then()
            return
        by_thread = not self.conversations.filter.by_customer
        agent = self.agent

        def job(store):
            return (store.reply_targets(row.customer_id, prefer=row.conversation_id, prefer_first=by_thread),
                    store.draft_info(row.customer_id, agent))

        def opened(result) -> None:
            found, kept = result
            if self.current is None or self.current.customer_id != row.customer_id:
                return
            accounts = {a.name: a.raw for a in self.workspace.accounts}
            targets = [Target(t["account"], t["channel"], t["identity_id"], t["address"], bool(t["opted_out"]),
                              t["conversation_id"], t["last_in"], t["kind"], t["display_name"],
                              accounts.get(t["account"])) for t in found]
            # The customer's last-used channel comes first; skip opted-out ones.
            index = next((n for n, t in enumerate(targets) if not t.opted_out), 0)
            if new_message and len(targets) > 1:
                index = (index + 1) % len(targets)
            draft = self.drafts.get(row.customer_id)
            if draft is None and kept is not None:
                draft = Draft(*kept)
            composer.open(row.customer_id, targets, draft, index, new_message=new_message)
            composer.others_note = self._others_here(row.customer_id, replying_only=True)
            composer.update_status()
            self._presence("replying")
            if then:
                then()

        self.run(job, opened, what="open the composer")

    def close_composer(self) -> None:
        if self.composer.display:
            self.composer.close()
        self.conversations.focus()
        self._presence("viewing")

    def keep_draft_now(self) -> None:
        """Quitting or hanging up: the composer's text goes to the store at once."""
        if self.composer.display:
            self.composer.flush_draft()
            customer, text = self.composer.customer_id, self.composer.text
            if customer is not None:
                self._write_draft(customer, text)

    def on_composer_closed(self, message: Composer.Closed) -> None:
        self.close_composer()

    def on_composer_draft_changed(self, message: Composer.DraftChanged) -> None:
        self._write_draft(message.customer_id, message.text)

    def _write_draft(self, customer_id: int, text: str) -> None:
        """Drafts live in the store, per agent: they survive a restart, a crash, a dropped SSH session."""
        self.drafts[customer_id] = Draft(text, time.time())
        marked = self.conversations.drafts
        if text.strip() and customer_id not in marked:
            self.conversations.drafts = marked | {customer_id}
            self.conversations.refresh()
        elif not text.strip() and customer_id in marked:
            self.conversations.drafts = marked - {customer_id}
            self.conversations.refresh()
        agent = self.agent
        self.run(lambda store: store.save_draft(customer_id, agent, text), what="save the draft", lane="write")

    def on_composer_template_wanted(self, message: Composer.TemplateWanted) -> None:
        self.action_insert_template()

    # ---- sending --------------------------------------------------------------------------------
    def on_composer_send(self, message: Composer.Send) -> None:
        row = self.current
        if row is None or self.composer.customer_id != row.customer_id:
            return
        target, body, options = message.target, message.body, message.options or None
        ws = self.workspace
        agent = ws.agent
        # The composer goes at once, so `e` right after ctrl+s closes the customer instead of
        # landing in the text; should the store refuse the reply, it comes back with its text.
        composer = self.composer
        composer.hide_while_sending()
        self.conversations.focus()

        def job(store):
            message_id = store.enqueue_reply(
                target.identity_id, target.account, target.channel, body, subject=message.subject,
                author=agent, conversation_id=None if message.new_thread else target.conversation_id,
                delay=ws.send_delay_seconds, options=options, new_thread=message.new_thread)
            store.save_draft(row.customer_id, agent, "")
            return message_id

        def queued(message_id: int) -> None:
            self.drafts.pop(row.customer_id, None)
            self.conversations.drafts = self.conversations.drafts - {row.customer_id}
            if composer.customer_id == row.customer_id and not composer.display:
                composer.sent()
                self._presence("viewing")
            delay = ws.send_delay_seconds
            note = f"Reply to {safe_line(row.name, 40).plain} queued on {channel_name(target.channel)}"
            if delay:
                note += f"; it leaves in {delay:g} s (U undoes it)"
            self.app.notify(note, timeout=max(3.0, min(delay, 10.0)))
            self.conversations.reload()
            if self.current is not None and self.current.customer_id == row.customer_id:
                self.timeline.action_newest()
                self.load_timeline(self.current)

        def refused(error: Exception) -> None:
            if composer.customer_id == row.customer_id and self.current is not None \
                    and self.current.customer_id == row.customer_id:
                composer.show_again()
            self.app.notify(str(error), severity="error")

        self.run(lambda store: _catch(job, store, OptedOut), lambda r: refused(r) if isinstance(r, Exception)
                 else queued(r), what="queue the reply", lane="write")

    def action_undo_send(self) -> None:
        """Take back the newest reply of mine still waiting in the outbox; its text comes back
        as the customer's draft."""
        agent = self.agent

        def job(store):
            pending = store.last_pending_send(agent)
            if pending is None:
                return None
            undone = store.cancel_send(pending["message_id"])
            if undone:
                store.save_draft(pending["customer_id"], agent, pending["body"])
            return pending, undone

        def done(result) -> None:
            if result is None:
                self.app.notify("Nothing to undo: no reply of yours is waiting in the outbox.")
                return
            pending, undone = result
            name = safe_line(pending["name"], 40).plain
            if undone:
                self.drafts[pending["customer_id"]] = Draft(pending["body"], time.time())
                self.app.notify(f"Send to {name} undone: the text is back as a draft (r opens it).", timeout=4)
            else:
                self.app.notify(f"Too late to undo: the reply to {name} has already left.", severity="warning")
            self.refresh_all()

        self.run(job, done, what="undo the send", lane="write")

    def action_send_again(self) -> None:
        """Queue again the newest reply of this customer that failed, was cancelled, or whose
        delivery is unknown (the user checked it did not arrive): a new send, with a new key."""
        if self.need_customer() is None:
            return
        entry = next((e for e in reversed(self.timeline.entries) if e.direction == "out"
                      and e.status in ("failed", "undelivered", "unknown")), None)
        if entry is None:
            self.app.notify("No failed, cancelled or unknown reply to send again for this customer.")
            return

        def done(result) -> None:
            if isinstance(result, Exception):
                self.app.notify(str(result), severity="warning")
                return
            self.app.notify("Queued again as a new send (without the send delay: you asked for it).", timeout=3)
            self.refresh_all()

        self.run(lambda store: _catch(lambda s: s.send_again(entry.id), store, ValueError, OptedOut), done,
                 what="send the reply again", lane="write")

    # ---- templates ------------------------------------------------------------------------------
    def action_insert_template(self) -> None:
        from console.ui.screens import PickScreen

        row = self.current
        if row is None or not self.composer.display:
            self.app.bell()
            self.app.notify("Open the composer first (r), then insert a template.", timeout=3)
            return
        target = self.composer.target
        if target is not None and target.channel == "whatsapp" and target.window_closed:
            self._pick_whatsapp_template(row, target)
            return
        ws = self.workspace

        def lookup(store, text: str):
            templates = store.templates()
            card = store.card(row.customer_id)
            values = values_for(card.name if card else row.name, ws.agent, ws.name, card.attributes if card else {})
            return [(name, Text.assemble((name, "bold"), "  ", safe_line(fill(body, values), 70, style="dim")))
                    for name, body in templates.items() if text.strip().lower() in name.lower()]

        def chosen(answer) -> None:
            if not answer or not answer[1]:
                return
            name = answer[1]

            def job(store):
                card = store.card(row.customer_id)
                values = values_for(card.name if card else row.name, ws.agent, ws.name, card.attributes if card else {})
                return fill(store.templates().get(name, ""), values)

            self.run(job, lambda text: self.composer.insert(text) if self.composer.display else None,
                     what="fill in the template")

        self.app.push_screen(PickScreen("Insert a template", lookup, allow_free_text=False,
                                        empty="No template named like '{text}' (save one from the palette)"),
                             chosen)

    def _pick_whatsapp_template(self, row, target: Target) -> None:
        """Outside WhatsApp's 24-hour window only an approved template may be sent: the account's
        `[accounts.templates]` (name = ContentSid); the composer's lines become its variables."""
        from console.ui.screens import PickScreen

        account = next((a for a in self.workspace.accounts if a.name == target.account), None)
        approved = account.raw.get("templates", {}) if account is not None else {}
        if not isinstance(approved, dict) or not approved:
            self.app.notify(f"No approved WhatsApp templates for account '{target.account}': add them under "
                            "[accounts.templates] (name = ContentSid) in the config.", severity="warning")
            return
        first = values_for(row.name, self.agent, self.workspace.name, {}).get("first_name", "")

        def lookup(store, text: str):
            return [(name, Text.assemble((name, "bold"), "  approved WhatsApp template"))
                    for name in sorted(approved) if text.strip().lower() in name.lower()]

        def chosen(answer) -> None:
            if answer and answer[1] in approved:
                composer = self.composer
                composer.wa_template = answer[1]
                composer.editor.load_text(first)
                composer.editor.move_cursor(composer.editor.document.end)
                composer.update_status()

        self.app.push_screen(PickScreen("Approved WhatsApp template (the window is closed)", lookup,
                                        allow_free_text=False), chosen)

    def action_save_template(self) -> None:
        from console.ui.screens import PickScreen

        body = self.composer.text if self.composer.display else ""
        if not body.strip():
            self.app.notify("Write the template's text in the composer first (r), then save it.", severity="warning")
            return

        def chosen(answer) -> None:
            if not answer or not answer[0].strip():
                return
            name = answer[0].strip()

            def saved(result) -> None:
                if isinstance(result, Exception):
                    self.app.notify(str(result), severity="warning")
                else:
                    self.app.notify(f"Template '{name}' saved; ctrl+t in the composer inserts it.")

            self.run(lambda store: _catch(lambda s: s.save_template(name, body), store, ValueError), saved,
                     what="save the template", lane="write")

        self.app.push_screen(PickScreen("Save the composer text as a template named", lambda store, text: [],
                                        placeholder="e.g. order-ready"), chosen)


def _catch(job, store, *errors):
    """Run a job, returning the expected errors instead of raising them (they are answers, not bugs)."""
    try:
        return job(store)
    except errors as error:
        return error
