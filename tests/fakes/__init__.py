"""The peers the channel tests talk to: one fake per account kind, in one shape.

Each `fakes.<kind>` module holds a stateful local service that follows the official API
description (tests/specs/), started on 127.0.0.1 and checked against that description as it runs:

    fake = Fake<Service>(...).start()   # serving; `fake.url` is what `api_base_url` points at
    fake.<control API>(...)             # a customer writes, a fault is queued, a token revoked
    fake.violations                     # requests or answers outside the description: must be []
    fake.stop()

and a `Peer` (fakes.peer): the same service as the shared contract suite
(tests/channels/test_contract.py) drives it. A new account kind brings one module here.
"""
