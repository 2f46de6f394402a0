"""The command palette (`ctrl+p`): every binding's action, searchable by its description."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


class ConsoleCommands(Provider):
    def _commands(self) -> list[tuple[str, str, str]]:
        """(description, action, keys) of the app-wide bindings: the ones that make sense anywhere."""
        app = self.app
        keys_by_id = {ident: keys for keys, _, ident in app.binding_rows()}
        commands = [(b.description, b.action, keys_by_id.get(b.id, b.key)) for b in type(app).BINDINGS if b.id]
        return commands + [(description, action, "palette") for description, action in app.PALETTE_ONLY]

    async def discover(self) -> Hits:
        for description, action, keys in self._commands():
            yield DiscoveryHit(description, partial(self.app.run_action, action), help=f"key: {keys}")

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for description, action, keys in self._commands():
            score = matcher.match(description)
            if score > 0:
                yield Hit(score, matcher.highlight(description), partial(self.app.run_action, action),
                          help=f"key: {keys}")
