"""The binding registry: every key binding of the app with its id, and the `[keymap]` checks.

Every binding has an id (`conversation.done`) that users remap in the config's `[keymap]` table.
`registry()` lists them from the classes that own them (the help screen, the palette, `console
check` and the real-terminal test suite, which needs one scenario per id, all read it).
`check_keymap()` finds what a remapping gets wrong, each as one `ConfigError` with the file,
the line and the key: an unknown id, a key name that is no key (`ctrl+shift+banana`), and a key
that two bindings now share where one would silently shadow the other (`"conversation.done" =
"e,x"` takes `x` from `customer.split`).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding
from textual.keys import Keys, _character_to_key

from console.config import ConfigError, WorkspaceConfig

MODIFIERS = ("ctrl", "shift", "alt", "meta", "super", "hyper")
# Keys by name: the special keys, and the names Textual gives printable ASCII ("question_mark").
NAMED_KEYS = frozenset({k.value.split("+")[-1] for k in Keys} | {"space", "enter", "tab", "backspace", "escape"}
                       | {_character_to_key(chr(code)) for code in range(33, 127)})


@dataclass(frozen=True)
class BindingInfo:
    id: str
    keys: tuple[str, ...]  # the default keys, normalised ("question_mark", not "?")
    description: str
    owner: str  # the class that owns it
    action: str


def owners() -> list[type]:
    """The classes whose bindings make up the app, outermost first."""
    from console.ui.app import ConsoleApp
    from console.ui.composer import Composer
    from console.ui.conversation_list import ConversationList
    from console.ui.inbox import InboxScreen
    from console.ui.outreach.campaigns import CampaignsScreen
    from console.ui.outreach.consent import ConsentScreen
    from console.ui.outreach.editor import CampaignEditorScreen, StepScreen
    from console.ui.outreach.preview import PreviewScreen
    from console.ui.outreach.report import ReportScreen
    from console.ui.outreach.segments import SegmentEditScreen, SegmentsScreen
    from console.ui.outreach.texts import TextScreen
    from console.ui.reports_screen import ReportsScreen
    from console.ui.screens import ConfirmScreen, HelpScreen, PickScreen, SnoozeScreen
    from console.ui.status_screen import StatusScreen
    from console.ui.timeline import Timeline

    return [ConsoleApp, InboxScreen, ConversationList, Timeline, Composer, HelpScreen, SnoozeScreen, PickScreen,
            ConfirmScreen, ReportsScreen, StatusScreen, CampaignsScreen, CampaignEditorScreen, StepScreen, TextScreen,
            PreviewScreen, ReportScreen, SegmentsScreen, SegmentEditScreen, ConsentScreen]


# The chains of owners a key press goes through (focused widget first): two bindings in one chain
# with the same key shadow each other. Modal screens are chains of their own.
CHAINS = (
    ("ConversationList", "InboxScreen", "ConsoleApp"),
    ("Timeline", "InboxScreen", "ConsoleApp"),
    ("Composer", "InboxScreen", "ConsoleApp"),
    ("HelpScreen",), ("SnoozeScreen",), ("PickScreen",), ("ConfirmScreen",), ("ReportsScreen", "ConsoleApp"),
    ("StatusScreen",),
    # The outreach screens: full screens under the app's keys, and two forms of their own.
    ("CampaignsScreen", "ConsoleApp"), ("CampaignEditorScreen", "ConsoleApp"), ("StepScreen", "ConsoleApp"),
    ("PreviewScreen", "ConsoleApp"), ("ReportScreen", "ConsoleApp"), ("SegmentsScreen", "ConsoleApp"),
    ("SegmentEditScreen", "ConsoleApp"), ("TextScreen",), ("ConsentScreen",),
)


def normal(key: str) -> str:
    key = key.strip()
    return _character_to_key(key) if len(key) == 1 else key


def registry() -> list[BindingInfo]:
    out, seen = [], set()
    for owner in owners():
        for binding in owner.BINDINGS:
            if not isinstance(binding, Binding) or not binding.id or binding.id in seen:
                continue
            seen.add(binding.id)
            out.append(BindingInfo(binding.id, tuple(normal(k) for k in binding.key.split(",")),
                                   binding.description, owner.__name__, binding.action))
    return out


def binding_ids() -> set[str]:
    return {info.id for info in registry()}


def key_problem(key: str) -> str | None:
    """Why `key` is not a key Textual can bind, or None."""
    key = key.strip()
    if not key:
        return "an empty key name (two commas in a row?)"
    if len(key) == 1:
        return None if key.isprintable() and key != " " else f"{key!r} is not a key; write space, tab..."
    *mods, base = key.split("+")
    for mod in mods:
        if mod not in MODIFIERS:
            return f"'{mod}' in '{key}' is not a modifier; use {', '.join(MODIFIERS[:3])}"
    if len(set(mods)) != len(mods):
        return f"'{key}' names a modifier twice"
    if len(base) == 1 or base in NAMED_KEYS:
        return None
    return f"'{base}' in '{key}' is not a key name (e.g. a, f5, home, pageup, question_mark)"


def needs_kitty(key: str) -> bool:
    """Chords most terminals cannot send without the Kitty keyboard protocol (and not over SSH)."""
    *mods, base = key.split("+")
    if {"super", "hyper"} & set(mods):
        return True
    if "ctrl" in mods and "shift" in mods:
        return True
    return bool(mods) and base in ("enter", "backspace", "escape") or (
        bool(set(mods) - {"shift"}) and base == "tab")


def check_keymap(ws: WorkspaceConfig) -> tuple[list[ConfigError], list[str]]:
    """(errors, warnings) of the workspace's `[keymap]`, each naming the file, line and key."""
    infos = {info.id: info for info in registry()}
    errors: list[ConfigError] = []
    warnings: list[str] = []

    def error(binding_id: str, message: str) -> ConfigError:
        return ConfigError(message, ws.path, ws.keymap_lines.get(binding_id), f"keymap.{binding_id}")

    keys: dict[str, tuple[str, ...]] = {i: info.keys for i, info in infos.items()}
    for binding_id, value in ws.keymap.items():
        if binding_id not in infos:
            errors.append(error(binding_id, "unknown binding id; `?` in the app and the README's key table list the ids"))
            continue
        problems = [p for p in (key_problem(k) for k in value.split(",")) if p]
        if problems:
            errors.append(error(binding_id, problems[0]))
            continue
        keys[binding_id] = tuple(normal(k) for k in value.split(","))
        for key in keys[binding_id]:
            if needs_kitty(key):
                where = f"{ws.path or 'config'}, line {ws.keymap_lines.get(binding_id)}"
                warnings.append(f"{where}, key 'keymap.{binding_id}': {key} needs a terminal with the Kitty "
                                "keyboard protocol and does not work over SSH")
    remapped = set(ws.keymap)
    for chain in CHAINS:
        holders: dict[str, str] = {}
        for owner in chain:
            for binding_id, info in infos.items():
                if info.owner != owner:
                    continue
                for key in keys[binding_id]:
                    other = holders.get(key)
                    if other is None:
                        holders[key] = binding_id
                    elif other != binding_id and (binding_id in remapped or other in remapped):
                        mine, theirs = (binding_id, other) if binding_id in remapped else (other, binding_id)
                        message = (f"{key} is already the key of {theirs} ({infos[theirs].description}); "
                                   "give one of them another key")
                        if not any(e.key == f"keymap.{mine}" and key in str(e) for e in errors):
                            errors.append(error(mine, message))
    errors.sort(key=lambda e: e.line or 0)
    return errors, warnings
