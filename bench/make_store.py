"""Make a large store for the benchmarks: 100,000 conversations and 300,000 messages.

With --long N, two more customers head the Open tab: one with an N-message history ("Long
History", 2,000 by default in bench/ui_speed.py) and one with three messages ("Short History"),
for the benchmark of opening a customer.

Everything goes through the production ingest path (`Store.apply_pull`, the same call the sync
engine makes), in batches of 2,000 messages, so identities, conversations, the FTS index and the
list's covering index are exactly what a real workspace would hold. About 35 s on the 2-core
bench machine.

    .venv/bin/python bench/make_store.py bench/.cache/big/console.db [--conversations N]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from console.model import Address, InboundMessage, PullResult  # noqa: E402
from console.store import Store  # noqa: E402

WORDS = ("bread sourdough order pickup tomorrow cake birthday gluten free delivery thanks price "
         "croissant rye loaf box dozen saturday morning invoice allergy nuts vegan refund").split()
CHANNELS = (("email", "email"), ("sms", "phone"), ("whatsapp", "phone"), ("telegram", "telegram"))


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 30))).capitalize() + "."


def messages(count: int, seed: int):
    """`count` conversations of three messages (in, out, in or in, in, out) over 60 days."""
    rng = random.Random(seed)
    now = time.time()
    for n in range(count):
        channel, kind = CHANNELS[n % len(CHANNELS)]
        address = f"customer{n}@example.com" if kind == "email" else (
            f"+1555{n:07d}" if kind == "phone" else str(9_000_000 + n))
        peer = Address(kind, address, f"Customer {n}")
        start = now - rng.uniform(0, 60 * 86400)
        thread = f"bench-{n}"
        directions = ("in", "out", "in") if rng.random() < 0.6 else ("in", "in", "out")
        for i, direction in enumerate(directions):
            yield InboundMessage(
                external_id=f"bench-{n}-{i}", thread_key=thread, channel=channel, direction=direction,
                peer=peer, sent_at=start + i * rng.uniform(60, 7200), body=sentence(rng),
                subject="Order question" if channel == "email" else "",
                status="delivered" if direction == "out" else None,
            )


def long_histories(count: int):
    """A customer with `count` messages and one with three, waiting longer than anyone else."""
    now = time.time()
    rng = random.Random(7)
    for name, number, size, last in (("Long History", 1, count, now - 61 * 86400),
                                     ("Short History", 2, 3, now - 60.9 * 86400)):
        peer = Address("phone", f"+1555999{number:04d}", name)
        start = last - size * 3600
        for i in range(size):
            direction = "in" if (size - 1 - i) % 2 == 0 else "out"
            yield InboundMessage(f"hist-{number}-{i}", f"hist-{number}", "sms", direction, peer, start + i * 3600,
                                 sentence(rng), status="delivered" if direction == "out" else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path)
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--long", type=int, default=0, help="add the long and short histories (N messages)")
    args = parser.parse_args()
    if args.path.exists():
        sys.exit(f"make_store: {args.path} exists; delete it first")
    args.path.parent.mkdir(parents=True, exist_ok=True)
    store = Store(args.path)
    started = time.perf_counter()
    batch: list[InboundMessage] = []
    total = 0
    for message in messages(args.conversations, args.seed):
        batch.append(message)
        if len(batch) == 2000:
            total += store.apply_pull("bench", PullResult(messages=batch))
            batch = []
    if batch:
        total += store.apply_pull("bench", PullResult(messages=batch))
    if args.long:
        history = list(long_histories(args.long))
        for first in range(0, len(history), 2000):
            total += store.apply_pull("bench", PullResult(messages=history[first:first + 2000]))
    store.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conversations = store.db.query_one("SELECT COUNT(*) FROM conversation")[0]
    store.close()
    print(f"{args.path}: {conversations:,} conversations, {total:,} messages in "
          f"{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
