"""Editing a draft campaign: its steps (`CampaignEditorScreen`) and one step's texts per channel,
delay and channel rule (`StepScreen`).

Every change is saved at once (a write job): a draft never waits for a "save". A launched
campaign is shown the same way, read only. The texts themselves are edited in texts.py, in the
screen or in `$EDITOR`.
"""

from __future__ import annotations

import copy

from rich.text import Text
from textual.binding import Binding

from console.channels import catalog
from console.outreach.campaign import ChannelText, Step, convert_rule_problem, delay_words, parse_delay
from console.outreach.messages import render
from console.ui.outreach.base import MOVES, OPEN, OutreachScreen, guarded
from console.ui.render import channel_icon, channel_name, safe_line


def step_summary(step: Step) -> Text:
    rule = "last used, then " if step.rule == "last_used" else ""
    channels = ", ".join(channel_name(c) for c in step.channels) or "no text yet"
    text = Text(f"{step.position}  ", style="bold")
    text.append(f"{delay_words(step.delay_seconds):<9}", style="dim")
    text.append(f"{rule}{channels}")
    first = next((step.texts[c] for c in step.channels), None)
    if first is not None:
        text.append("  ")
        text.append_text(safe_line(first.subject or first.body or f"template {first.template}", 50, style="dim"))
    return text


class CampaignEditorScreen(OutreachScreen):
    BINDINGS = [
        *MOVES, OPEN,
        Binding("n", "new", "Add a step", id="outreach.new"),
        Binding("delete", "delete", "Remove the step", id="outreach.delete", show=False),
        Binding("s", "segment", "Segment", id="campaign.segment"),
        Binding("N", "rename", "Rename", id="campaign.rename", show=False),
        Binding("o", "settings", "Measure & holdout", id="campaign.settings"),
        Binding("p", "preview", "Dry run", id="campaigns.preview"),
        Binding("L", "launch", "Launch", id="campaigns.launch"),
    ]

    def __init__(self, campaign_id: int):
        super().__init__()
        self.campaign_id = campaign_id
        self.campaign = None
        self.count: int | None = None

    def reload(self) -> None:
        campaign_id = self.campaign_id

        def job(store):
            campaign = store.campaign(campaign_id)
            segment = store.segment(campaign.segment_id) if campaign and campaign.segment_id else None
            return campaign, segment

        self.run(job, self._show, what="read the campaign", key=f"campaign-{campaign_id}")

    def _show(self, result) -> None:
        self.campaign, segment = result
        if self.campaign is None:
            self.app.pop_screen()
            return
        c = self.campaign
        title = Text.assemble(safe_line(c.name, 30, style="bold"), f" · {c.state} · segment ")
        title.append_text(safe_line(segment.name if segment else "none (s picks one)", 24))
        self.title_line(title)
        self.rows.placeholder = "No step: n adds one."
        self.rows.show([step_summary(step) for step in c.steps])
        warnings = []
        cap = self.workspace.outreach.cap_days * 86400
        for step in c.steps[1:]:
            if 0 < step.delay_seconds < cap or (step.delay_seconds == 0 and cap > 0):
                warnings.append(f"step {step.position} comes {delay_words(step.delay_seconds)} after the one before, "
                                f"inside the frequency cap ({self.workspace.outreach.cap_days:g} days): it reaches "
                                "no one who got that one")
        line = Text(f"replies within {c.reply_days} days · converted: {c.convert_on or 'not measured'}"
                    f"{f' within {c.convert_days} days' if c.convert_on else ''} · holdout {c.holdout * 100:.0f}%",
                    style="dim")
        for warning in warnings:
            line.append(f"\n⚠ {warning}", style="bold")
        self.note(line)

    def _editable(self) -> bool:
        if self.campaign is None:
            return False
        if not self.campaign.editable:
            self.app.notify(f"The campaign is {self.campaign.state}: only a draft can be changed.", severity="warning")
            return False
        return True

    def save(self, change, note: str = "") -> None:
        """Apply `change(campaign)` to a copy and save it; the screen then shows what was saved."""
        if not self._editable():
            return
        campaign = copy.deepcopy(self.campaign)
        change(campaign)
        _save(self, campaign, note, "save the campaign")

    # ---- actions ------------------------------------------------------------------------------
    def action_open(self) -> None:
        index = self.rows.index
        if self.campaign is None or index is None:
            self.app.bell()
            return
        self.app.push_screen(StepScreen(self.campaign_id, index + 1))

    def action_new(self) -> None:
        def add(campaign) -> None:
            last = campaign.steps[-1] if campaign.steps else None
            delay = max(3 * 86400, self.workspace.outreach.cap_seconds) if last else 0
            campaign.steps.append(Step(len(campaign.steps) + 1, delay, last.rule if last else "last_used",
                                       last.order if last else ()))

        self.save(add, "Step added: enter writes its texts.")

    def action_delete(self) -> None:
        index = self.rows.index
        if index is None:
            self.app.bell()
            return

        def remove(campaign) -> None:
            del campaign.steps[index]
            for position, step in enumerate(campaign.steps, 1):
                step.position = position

        self.save(remove, f"Step {index + 1} removed.")

    def action_segment(self) -> None:
        from console.ui.screens import PickScreen

        if not self._editable():
            return

        def lookup(store, text: str):
            return [(str(s.id), Text.assemble(safe_line(s.name, 30, style="bold"), "  ", safe_line(s.query, 40, style="dim")))
                    for s in store.segments() if text.strip().lower() in s.name.lower()]

        def chosen(answer) -> None:
            if answer and answer[1]:
                segment_id = int(answer[1])
                self.save(lambda c: setattr(c, "segment_id", segment_id))

        self.app.push_screen(PickScreen("Who is it for? (segments are made with S on the campaigns list)", lookup,
                                        allow_free_text=False, empty="No segment matches '{text}'"), chosen)

    def action_rename(self) -> None:
        from console.ui.screens import PickScreen

        if not self._editable():
            return

        def chosen(answer) -> None:
            if answer and answer[0].strip():
                name = answer[0].strip()
                self.save(lambda c: setattr(c, "name", name))

        self.app.push_screen(PickScreen("New name", lambda store, text: [], value=self.campaign.name), chosen)

    def action_settings(self) -> None:
        from console.ui.screens import PickScreen

        if not self._editable():
            return
        c = self.campaign
        choices = [("reply_days", f"Replies count within {c.reply_days} days of a message"),
                   ("convert_on", f"Converted when: {c.convert_on or 'not measured'} (tag:NAME or attribute:NAME)"),
                   ("convert_days", f"... within {c.convert_days} days"),
                   ("holdout", f"Holdout: {c.holdout * 100:.0f}% of the segment kept out to measure the lift")]

        def chosen(answer) -> None:
            if answer and answer[1]:
                self._ask_setting(answer[1])

        self.app.push_screen(PickScreen("Measure", lambda store, text: choices, allow_free_text=False), chosen)

    def _ask_setting(self, key: str) -> None:
        from console.ui.screens import PickScreen

        c = self.campaign
        current = {"reply_days": str(c.reply_days), "convert_on": c.convert_on, "convert_days": str(c.convert_days),
                   "holdout": f"{c.holdout * 100:.0f}%"}[key]

        def chosen(answer) -> None:
            if answer is None:
                return
            value = answer[0].strip()
            try:
                if key in ("reply_days", "convert_days"):
                    number = int(value)
                    if not 1 <= number <= 90:
                        raise ValueError
                    self.save(lambda camp: setattr(camp, key, number))
                elif key == "holdout":
                    share = float(value.rstrip("%")) / 100
                    if not 0 <= share < 1:
                        raise ValueError
                    self.save(lambda camp: setattr(camp, "holdout", share))
                else:
                    problem = convert_rule_problem(value)
                    if problem:
                        self.app.notify(problem, severity="warning")
                        return
                    self.save(lambda camp: setattr(camp, "convert_on", value))
            except ValueError:
                self.app.notify("Days are a whole number from 1 to 90; the holdout a share like 10%.",
                                severity="warning")

        self.app.push_screen(PickScreen(key.replace("_", " "), lambda store, text: [], value=current), chosen)

    def action_preview(self) -> None:
        from console.ui.outreach.preview import PreviewScreen

        self.app.push_screen(PreviewScreen(self.campaign_id))

    def action_launch(self) -> None:
        from console.ui.outreach.campaigns import launch

        launch(self, self.campaign_id, self.reload)


class StepScreen(OutreachScreen):
    """One step: a row per channel with its text; the delay and the channel rule."""

    BINDINGS = [
        *MOVES, OPEN,
        Binding("t", "template", "WhatsApp template", id="step.template"),
        Binding("d", "delay", "Delay", id="step.delay"),
        Binding("r", "rule", "Channel rule", id="step.rule"),
        Binding("K", "shift(-1)", "Earlier in the order", id="step.earlier", show=False),
        Binding("J", "shift(1)", "Later in the order", id="step.later", show=False),
        Binding("x", "clear", "Clear the text", id="step.clear", show=False),
    ]

    def __init__(self, campaign_id: int, position: int):
        super().__init__()
        self.campaign_id, self.position = campaign_id, position
        self.campaign = None
        self.order: list[str] = []

    @property
    def step(self) -> Step | None:
        if self.campaign is None:
            return None
        return next((s for s in self.campaign.steps if s.position == self.position), None)

    def reload(self) -> None:
        campaign_id = self.campaign_id
        self.run(lambda store: store.campaign(campaign_id), self._show, what="read the step", key=f"step-{campaign_id}")

    def _show(self, campaign) -> None:
        self.campaign = campaign
        step = self.step
        if step is None:
            self.app.pop_screen()
            return
        ranked = [c for c in step.order if c in {e.id for e in catalog.channels()}]
        self.order = ranked + [e.id for e in catalog.channels() if e.id not in ranked]
        # Short enough for 80 columns: the title is cut, not wrapped.
        rule = "last used channel, then this order" if step.rule == "last_used" else "in this order"
        when = "at launch" if step.position == 1 else f"{delay_words(step.delay_seconds)} after step {step.position - 1}"
        self.title_line(Text.assemble(safe_line(campaign.name, 24, style="bold"),
                                      f" · step {step.position} of {len(campaign.steps)} · {when} · {rule}"))
        settings = self.workspace.outreach
        rows = []
        for channel in self.order:
            text = step.texts.get(channel, ChannelText())
            row = Text(f"{channel_icon(channel)} {channel_name(channel):<10}", style="bold")
            if text.empty:
                row.append("(no text: enter writes one)", style="dim")
            elif channel == "whatsapp" and text.template:
                row.append(f"template {text.template} (" + ", ".join(text.variables) + ")")
            else:
                if channel == "sms":  # first: the row is cut at the screen's edge
                    sample = render(text, "sms", "Maria Lopez", {}, self.workspace.agent, settings)
                    row.append(f"{sample.segments} seg. ~{settings.currency} {sample.cost:.3f} · ", style="dim")
                if text.subject:
                    row.append_text(safe_line(text.subject, 30))
                    row.append(" — ", style="dim")
                row.append_text(safe_line(text.body, 60))
            rows.append(row)
        self.rows.show(rows)
        self.note("enter writes (ctrl+e: $EDITOR) · t template · d delay · r rule · K/J order")

    @property
    def channel(self) -> str | None:
        index = self.rows.index
        return self.order[index] if index is not None and index < len(self.order) else None

    def save(self, change, note: str = "") -> None:
        if self.campaign is None:
            return
        if not self.campaign.editable:
            self.app.notify(f"The campaign is {self.campaign.state}: only a draft can be changed.", severity="warning")
            return
        campaign = copy.deepcopy(self.campaign)
        change(next(s for s in campaign.steps if s.position == self.position))
        _save(self, campaign, note, "save the step")

    def action_open(self) -> None:
        from console.ui.outreach.texts import TextScreen

        channel, step = self.channel, self.step
        if channel is None or step is None:
            return
        if self.campaign is not None and not self.campaign.editable:
            self.app.notify("Only a draft can be changed.", severity="warning")
            return

        def saved(text: ChannelText | None) -> None:
            if text is not None:
                self.save(lambda s: s.texts.__setitem__(channel, text), f"{channel_name(channel)} text saved.")

        self.app.push_screen(TextScreen(channel, step.texts.get(channel, ChannelText())), saved)

    def action_template(self) -> None:
        from console.ui.screens import PickScreen

        account = self.senders.accounts.get("whatsapp")
        templates = self.senders.templates.get(account or "", {})
        if not templates:
            self.app.notify("No approved WhatsApp template is configured ([accounts.templates] of the account "
                            "carrying WhatsApp).", severity="warning")
            return

        def chosen(answer) -> None:
            if answer and answer[1]:
                name = answer[1]

                def use(step) -> None:
                    text = step.texts.get("whatsapp", ChannelText())
                    step.texts["whatsapp"] = ChannelText(body=text.body, template=name,
                                                         variables=text.variables or ("{first_name|there}",))

                self.save(use, f"WhatsApp template {name}: enter on WhatsApp writes its variables, one per line.")

        self.app.push_screen(PickScreen("Approved WhatsApp template (sent outside the 24-hour window)",
                                        lambda store, text: [(n, f"{n}  ({ident})") for n, ident in templates.items()
                                                             if text.strip().lower() in n.lower()],
                                        allow_free_text=False), chosen)

    def action_delay(self) -> None:
        from console.ui.screens import PickScreen

        step = self.step
        if step is None:
            return
        if step.position == 1:
            self.app.notify("The first step goes at the launch; later steps have a delay.")
            return

        def chosen(answer) -> None:
            if answer is None:
                return
            seconds = parse_delay(answer[0])
            if seconds is None:
                self.app.notify("Write a delay like 3d, 12h or 30m.", severity="warning")
                return
            self.save(lambda s: setattr(s, "delay_seconds", seconds))

        self.app.push_screen(PickScreen(f"Delay after step {step.position - 1} (per customer, after their message went)",
                                        lambda store, text: [], value=delay_words(step.delay_seconds).replace(" days", "d")
                                        .replace(" day", "d")), chosen)

    def action_rule(self) -> None:
        step = self.step
        if step is None:
            return
        rule = "order" if step.rule == "last_used" else "last_used"
        words = "the order below" if rule == "order" else "the customer's last used channel first"
        self.save(lambda s: setattr(s, "rule", rule), f"Channel: {words}.")

    def action_shift(self, delta: int) -> None:
        index = self.rows.index
        if index is None:
            return
        target = index + delta
        if not 0 <= target < len(self.order):
            self.app.bell()
            return
        order = list(self.order)
        order[index], order[target] = order[target], order[index]
        self.rows.cursor = target
        self.save(lambda s: setattr(s, "order", tuple(order)))

    def action_clear(self) -> None:
        channel = self.channel
        if channel is not None:
            self.save(lambda s: s.texts.pop(channel, None), f"{channel_name(channel)}: no text (not sent there).")


def _save(screen, campaign, note: str, what: str) -> None:
    """Save a changed copy of the campaign; the screen then says `note` and shows what was saved
    (or why the store refused it)."""
    def done(result) -> None:
        if isinstance(result, Exception):
            screen.refused(result)
        elif note:
            screen.app.notify(note, timeout=2)
        screen.reload()

    screen.run(guarded(lambda store: store.save_campaign(campaign)), done, what=what, lane="write")
