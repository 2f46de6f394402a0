"""The customer: card, tags, notes, assignment, merging and splitting (both undoable)."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding

from console.ui.render import identity_label, safe_line


class CustomerActions:
    KEYS = [
        Binding("i", "toggle_card", "Customer card", id="customer.card", show=False),
        Binding("t", "tag", "Tag (-name removes)", id="customer.tag", show=False),
        Binding("w", "note", "Write a note", id="customer.note", show=False),
        Binding("a", "assign_me", "Assign to me / unassign", id="conversation.assign_me", show=False),
        Binding("A", "assign", "Assign to an agent", id="conversation.assign", show=False),
        Binding("m", "merge", "Merge with another customer", id="customer.merge", show=False),
        Binding("x", "split", "Split an identity out", id="customer.split", show=False),
        Binding("ctrl+z", "undo_merge", "Undo the last merge or split", id="customer.undo_merge", show=False),
    ]

    def _who(self, row) -> str:
        return safe_line(row.name, 40).plain

    def _changed(self, note: str):
        """After a write about the customer: say so, and show it now (the card too)."""
        def done(_result=None) -> None:
            self.app.notify(note, timeout=2)
            self.refresh_all()
        return done

    # ---- the card -------------------------------------------------------------------------------
    def action_toggle_card(self) -> None:
        card = self.card
        card.toggle_class("shown")
        self.query_one("#body").set_class(card.has_class("shown"), "with-card")
        if card.has_class("shown") and self.current is not None:
            self.load_timeline(self.current)

    # ---- tags and notes -------------------------------------------------------------------------
    def action_tag(self) -> None:
        from console.ui.screens import PickScreen

        row = self.need_customer()
        if row is None:
            return

        def lookup(store, text: str):
            have = set(store.tags(row.customer_id))
            text = text.strip().lstrip("#-").lower()
            known = [t for t in store.all_tags() if text in t]
            return [(f"-{t}" if t in have else t, f"{'remove' if t in have else 'add'} #{t}") for t in known[:12]]

        def chosen(answer) -> None:
            if answer is not None:
                typed, picked = answer
                self._write_tag(row, picked or typed.strip())

        self.app.push_screen(PickScreen(Text.assemble("Tag ", safe_line(row.name, 40),
                                                      " (a new name adds it; -name removes)"), lookup,
                                        placeholder="tag, e.g. wholesale"), chosen)

    def _write_tag(self, row, value: str) -> None:
        def job(store):
            try:
                if value.startswith("-"):
                    removed = store.remove_tag(row.customer_id, value[1:])
                    return f"#{value[1:].strip().lower()} removed" if removed else "no such tag on this customer"
                return f"tagged #{store.add_tag(row.customer_id, value)}"
            except ValueError as error:
                return error

        def done(result) -> None:
            if isinstance(result, Exception):
                self.app.notify(str(result), severity="warning")
            else:
                self._changed(f"{self._who(row)}: {result}")()

        self.run(job, done, what="tag the customer", lane="write")

    def action_note(self) -> None:
        from console.ui.screens import PickScreen

        row = self.need_customer()
        if row is None:
            return
        agent = self.agent

        def chosen(answer) -> None:
            if answer and answer[0].strip():
                body = answer[0]
                self.run(lambda store: store.add_note(row.customer_id, agent, body),
                         self._changed("Note saved on the customer card (i shows it)."),
                         what="save the note", lane="write")

        self.app.push_screen(PickScreen(Text.assemble("Note on ", safe_line(row.name, 40), " (only agents see it)"),
                                        lambda store, text: [], placeholder="e.g. prefers pickup after 5pm"), chosen)

    # ---- assignment -----------------------------------------------------------------------------
    def action_assign_me(self) -> None:
        row = self.need_customer()
        if row is None:
            return
        me = self.agent

        def job(store):
            # Mine -> nobody's; anything else -> mine (read from the store: the row may be a moment old).
            agent = None if store.assigned_to(row.customer_id, me) else me
            store.assign(row.customer_id, agent)
            return agent

        self.run(job, lambda agent: self._changed(f"{self._who(row)}: {'assigned to you' if agent else 'unassigned'}")(),
                 what="assign the customer", lane="write")

    def action_assign(self) -> None:
        from console.ui.screens import PickScreen

        row = self.need_customer()
        if row is None:
            return

        def lookup(store, text: str):
            typed = text.strip()
            agents = [a for a in store.agents() if typed.lower() in a.lower()]
            choices = [(a, a) for a in agents]
            if typed and typed not in agents:
                choices.append((typed, f"{typed} (a new agent here)"))
            if not typed:
                choices.append(("", "nobody (unassign)"))
            return choices

        def chosen(answer) -> None:
            if answer is None:
                return
            typed, picked = answer
            agent = (picked if picked is not None else typed.strip()) or None
            self.run(lambda store: store.assign(row.customer_id, agent),
                     self._changed(f"{self._who(row)}: {f'assigned to {agent}' if agent else 'unassigned'}"),
                     what="assign the customer", lane="write")

        self.app.push_screen(PickScreen(Text.assemble("Assign ", safe_line(row.name, 40), " to"), lookup,
                                        placeholder="agent name"), chosen)

    # ---- merging and splitting ------------------------------------------------------------------
    def action_merge(self) -> None:
        from console.ui.screens import PickScreen

        row = self.need_customer()
        if row is None:
            return

        def lookup(store, text: str):
            if not text.strip():
                found = [(s.customer_id, s.name, s.reason) for s in store.merge_suggestions(row.customer_id)]
            else:
                found = store.find_customers(text, exclude=row.customer_id)
            return [(str(cid), Text.assemble(safe_line(name, 30, style="bold"), "  ", safe_line(extra, 60, style="dim")))
                    for cid, name, extra in found]

        def chosen(answer) -> None:
            if answer and answer[1]:
                self._confirm_merge(row, int(answer[1]))

        self.app.push_screen(PickScreen(Text.assemble("Merge another customer into ", safe_line(row.name, 40),
                                                      " (type a name, email or phone)"), lookup,
                                        allow_free_text=False, empty="No other customer matches '{text}'"), chosen)

    def _confirm_merge(self, row, other_id: int) -> None:
        """Say exactly what will be merged, and merge only on enter (ctrl+z undoes it anyway)."""
        from console.ui.screens import ConfirmScreen

        def job(store):
            return (store.customer_name(other_id), store.identities(other_id), store.identities(row.customer_id),
                    store.customer_summary(other_id))

        def shown(result) -> None:
            other_name, theirs, mine, summary = result
            details = Text()
            details.append_text(safe_line(other_name, 40, style="bold"))
            details.append(" — ")
            details.append(", ".join(filter(None, [f"{summary['conversations']} conversation"
                                                   f"{'s' if summary['conversations'] != 1 else ''}",
                                                   f"{summary['messages']} messages",
                                                   f"{summary['notes']} notes" if summary['notes'] else "",
                                                   f"{summary['tags']} tags" if summary['tags'] else ""])))
            for ident in theirs:
                details.append("\n  ")
                details.append_text(identity_label(ident.kind, ident.address, ident.display_name, 50))
            details.append("\ninto ")
            details.append_text(safe_line(row.name, 40, style="bold"))
            for ident in mine:
                details.append("\n  ")
                details.append_text(identity_label(ident.kind, ident.address, ident.display_name, 50))
            details.append("\n\nThey become one customer with one timeline; ctrl+z undoes it.")

            def answered(yes: bool) -> None:
                if yes:
                    self.run(lambda store: store.merge_customers(row.customer_id, other_id),
                             self._changed(f"{safe_line(other_name, 40).plain} merged into {self._who(row)}; "
                                           "ctrl+z undoes it"), what="merge the customers", lane="write")

            self.app.push_screen(ConfirmScreen("Merge these customers?", details, "enter merges"), answered)

        self.run(job, shown, what="read the customer to merge")

    def action_split(self) -> None:
        from console.ui.screens import PickScreen

        row = self.need_customer()
        if row is None:
            return

        def shown(identities) -> None:
            if len(identities) < 2:
                self.app.notify("This customer has one identity: there is nothing to split out.", severity="warning")
                return

            def lookup(store, text: str):
                return [(str(i.id), identity_label(i.kind, i.address, i.display_name, 50))
                        for i in identities if text.strip().lower() in (i.address + " " + i.display_name).lower()]

            def chosen(answer) -> None:
                if answer and answer[1]:
                    identity_id = int(answer[1])

                    def job(store):
                        try:
                            store.split_identity(identity_id)
                        except ValueError as error:
                            return error
                        return None

                    def done(result) -> None:
                        if isinstance(result, Exception):
                            self.app.notify(str(result), severity="warning")
                        else:
                            self._changed("Identity split out into its own customer; ctrl+z undoes it.")()

                    self.run(job, done, what="split the identity out", lane="write")

            self.app.push_screen(PickScreen(Text.assemble("Split one identity out of ", safe_line(row.name, 40),
                                                          " into a customer of its own"), lookup,
                                            allow_free_text=False), chosen)

        self.run(lambda store: store.identities(row.customer_id), shown, what="read the customer's identities")

    def action_undo_merge(self) -> None:
        def job(store):
            last = store.last_merge()
            return None if last is None else store.undo_merge(last)

        def done(result) -> None:
            if result is None:
                self.app.notify("No merge or split to undo.")
                return
            self._changed(result[0].upper() + result[1:] + ".")()

        self.run(job, done, what="undo the merge", lane="write")
