"""The engine's duties: work that runs in the sync engine, headless, on a clock.

A duty is whatever the shop wants done with no console open: campaign steps sent when due, rules
applied to new messages, SLA clocks, satisfaction questions. Each is an object with a `name`, an
interval `every` (seconds) and `async def run(self, engine)`, made by a factory that takes the
workspace's config and the store; `FACTORIES` lists them, and adding one is one line here. The
engine runs each in a task of its own (console/sync.py `run_duty`): a failure is logged and the
duty tries again at its next turn, and `console sync --once` runs each once.
"""

from __future__ import annotations

from typing import Callable, Protocol

from console.outreach.duty import campaign_duty


class Duty(Protocol):
    name: str
    every: float

    async def run(self, engine) -> None: ...


def _sla(workspace, store):
    from console.sla_duty import factory
    return factory(workspace, store)


def _rules(workspace, store):
    from console.rules.duty import factory
    return factory(workspace, store)


def _csat(workspace, store):
    from console.csat_duty import factory
    return factory(workspace, store)


# Each factory returns a Duty, or None when the workspace does not use it. The SLA clocks come
# before the rules, whose `sla_breaching` events read them; campaigns' later steps and their end
# are console/outreach/duty.py.
FACTORIES: list[Callable[..., Duty | None]] = [_sla, _rules, _csat, campaign_duty]


def duties_for(workspace, store) -> list[Duty]:
    duties = []
    for factory in FACTORIES:
        duty = factory(workspace, store)
        if duty is not None:
            duties.append(duty)
    return duties
