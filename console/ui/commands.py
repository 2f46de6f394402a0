"""The command palette (`ctrl+p`): every binding's action, searchable by its description."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


class ConsoleCommands(Provider):
    def _commands(self) -> list[tuple[str, str, str, object]]:
        """(description, action, keys, namespace) of the app's and the inbox's bindings, and the
        commands that have no key of their own."""
        from console.ui.keys import registry

        app = self.app
        inbox = app.inbox
        keys_by_id = {ident: keys for keys, _, ident in app.binding_rows()}
        commands = []
        for info in registry():
            if info.owner == "ConsoleApp":
                commands.append((info.description, info.action, keys_by_id.get(info.id, ""), app))
            elif info.owner == "InboxScreen" and inbox is not None:
                commands.append((info.description, info.action, keys_by_id.get(info.id, ""), inbox))
        if inbox is not None:
            commands += [(description, action, "palette", inbox) for description, action in inbox.PALETTE_ONLY]
        return commands

    async def discover(self) -> Hits:
        for description, action, keys, namespace in self._commands():
            yield DiscoveryHit(description, partial(self.app.run_action, action, namespace), help=f"key: {keys}")

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for description, action, keys, namespace in self._commands():
            score = matcher.match(description)
            if score > 0:
                yield Hit(score, matcher.highlight(description), partial(self.app.run_action, action, namespace),
                          help=f"key: {keys}")
