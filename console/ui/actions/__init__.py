"""What the inbox's keys do, one module per group of actions.

Each module is a mixin of `InboxScreen` (console/ui/inbox.py) with its bindings in `KEYS`; the
screen lists them in its BINDINGS. Every store call goes through `self.run(...)`, off the UI
thread, and its failure reaches the app's one error handler.
"""
