"""The reference for cold start: a bare Textual app with a header line, two panes and a footer."""

import os
import time

from textual.app import App
from textual.containers import Horizontal
from textual.widgets import Footer, Static


class Bare(App):
    def compose(self):
        yield Static("bare")
        with Horizontal():
            yield Static("left")
            yield Static("right")
        yield Footer()

    def on_mount(self):
        self.call_after_refresh(self.done)

    def done(self):
        with open(os.environ["CONSOLE_BENCH_REPORT"], "w") as report:
            report.write(f"{time.time() - float(os.environ['CONSOLE_BENCH_T0']):.4f}")
        self.exit()


if __name__ == "__main__":
    Bare().run()
