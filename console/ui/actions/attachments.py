"""Saving attachments: the UI asks, the sync engine fetches and saves (the UI never calls a
channel nor reads mail itself), and the UI says when each is saved or why it could not be."""

from __future__ import annotations

from console.sanitize import one_line
from console.ui.timeline import Timeline


class AttachmentActions:
    def on_timeline_save_attachments(self, message: Timeline.SaveAttachments) -> None:
        entry = message.entry
        folder = str(self.workspace.download_dir)

        def asked(ids: list[int]) -> None:
            if not ids:
                self.app.notify("This message has no attachment to save.")
                return
            self.downloads.extend(ids)
            self.app.notify(f"Saving {len(ids)} attachment{'s' if len(ids) != 1 else ''} into {folder}…", timeout=3)

        self.run(lambda store: store.request_downloads(entry.id, folder), asked, what="ask for the attachments",
                 lane="write")

    def check_downloads(self) -> None:
        """Say which requested attachments the engine has saved (or could not)."""
        ids = list(self.downloads)

        def reported(items: list[dict]) -> None:
            for item in items:
                if item["state"] == "pending" or item["id"] not in self.downloads:
                    continue
                self.downloads.remove(item["id"])
                if item["state"] == "done":
                    self.app.notify(f"Saved {one_line(item['path'], 300)}", timeout=6)
                else:
                    self.app.notify(f"{one_line(item['name'], 80)}: {one_line(item['error'], 200)}", severity="warning")

        self.run(lambda store: store.downloads(ids), reported, what="check the attachments", key="downloads")
