"""Search at 1M messages: 21 typical queries, each against the bare FTS5 floor in the same run.

    .venv/bin/python bench/make_search_store.py          # once: bench/.cache/search-1m/console.db
    .venv/bin/python bench/search.py [--store PATH] [--rounds 30] [--limit 50]

Each round runs every query once through `Store.search(query, limit)` (the first 50 hits, newest
first, one per conversation, with their matching lines: what the UI shows) and, right before it,
the floor: `SELECT count(*) FROM message_fts WHERE message_fts MATCH ?` with the query's MATCH
expression as FTS5 syntax spells it (each word quoted, the last one `"word"*`): the bare work of
FTS5 for those words. Queries with no words have no floor and are held to the absolute goal only.
"as run" is the same count for the expression the search actually runs (the last word spelled
out as the words it begins). Rounds interleave the queries, so a slow moment of
the machine hits every query alike. Per query: p50 and p95 of both, and the ratios.

Goals: every query p95 <= 30 ms, and <= 2x its floor's p95.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from make_search_store import DEFAULT, SEED, vocabulary  # noqa: E402

from console.store import Store  # noqa: E402


def queries() -> list[str]:
    rare = vocabulary(random.Random(SEED))[0][3000]  # a made-up word of rank 3,000
    return [
        "the", "order", "cake", "sourdough", "choc", rare, "zanzibar",
        "cake delivery", "refund order", "the order",
        "from:maria", "from:maria cake",
        "channel:sms", "invoice channel:email",
        "status:open", "refund status:open",
        "tag:vip", "tag:wholesale order",
        "after:2026-07-01", "cake after:2026-07-01",
        "delivery from:kofi channel:whatsapp status:done before:2026-01-01",
    ]


def match_expression(words: list[str]) -> str:
    """The MATCH string the search builds for these words (each quoted, the last a prefix)."""
    terms = ['"' + w.replace('"', '""') + '"' for w in words]
    terms[-1] += "*"
    return " ".join(terms)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    try:
        from console.store.search import parse_search
    except ImportError:  # a commit before search.py had it here
        from console.store.triage import parse_search

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=DEFAULT)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--limit", type=int, default=50)
    args = parser.parse_args()
    if not args.store.exists():
        sys.exit(f"no store at {args.store}; make it with bench/make_search_store.py")
    started = time.perf_counter()
    store = Store(args.store)
    print(f"opened {args.store} in {time.perf_counter() - started:.1f} s "
          f"({store.count_messages():,} messages)", flush=True)
    index = getattr(store, "index", None)  # the code before search.py indexed in the workspace itself
    if index is not None and not index.settle(timeout=0):
        started = time.perf_counter()
        while not index.settle(timeout=5):
            pass
        print(f"search index built in {time.perf_counter() - started:.0f} s", flush=True)
    floor_conn, fts = (store.index.reader, "search.message_fts") if index is not None else (store.db.conn, "message_fts")
    table = queries()
    words = {q: parse_search(q)[0] for q in table}
    for q in table:  # warm the page cache and the statement cache
        store.search(q, limit=args.limit)
    times: dict[str, list[float]] = {q: [] for q in table}
    floors: dict[str, list[float]] = {q: [] for q in table}
    # The same count for the expression the search runs (the last word spelled out), if any.
    ran: dict[str, str] = {}
    if index is not None:
        from console.store.search import SqliteSearch

        with index.reader_lock:
            for q in table:
                if words[q]:
                    expression = SqliteSearch(store.db, index)._expression(index.reader, tuple(words[q])).text
                    if expression:
                        ran[q] = expression
    ran_floors: dict[str, list[float]] = {q: [] for q in ran}
    hits: dict[str, int] = {}
    for _ in range(args.rounds):
        for q in table:
            if words[q]:
                t0 = time.perf_counter()
                floor_conn.execute(f"SELECT count(*) FROM {fts} WHERE message_fts MATCH ?",
                                   (match_expression(words[q]),)).fetchone()
                floors[q].append(time.perf_counter() - t0)
            if q in ran:
                t0 = time.perf_counter()
                floor_conn.execute(f"SELECT count(*) FROM {fts} WHERE message_fts MATCH ?", (ran[q],)).fetchone()
                ran_floors[q].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            found = store.search(q, limit=args.limit)
            times[q].append(time.perf_counter() - t0)
            hits[q] = len(found)
    store.close()

    print(f"\n{'query':<68} {'hits':>4} {'p50':>8} {'p95':>8} {'floor p50':>9} {'floor p95':>9} {'p95/floor':>9}"
          f" {'as run p95':>10}")
    p50s, worst, ratios = [], 0.0, []
    for q in table:
        p50, p95 = pct(times[q], 0.5) * 1000, pct(times[q], 0.95) * 1000
        p50s.append(p50)
        worst = max(worst, p95)
        if floors[q]:
            f50, f95 = pct(floors[q], 0.5) * 1000, pct(floors[q], 0.95) * 1000
            ratio = p95 / f95
            ratios.append(ratio)
            floor_text = f"{f50:8.2f}  {f95:8.2f}  {ratio:8.2f}x"
        else:
            floor_text = f"{'-':>8}  {'-':>8}  {'-':>9}"
        as_run = f"{pct(ran_floors[q], 0.95) * 1000:10.2f}" if ran_floors.get(q) else f"{'-':>10}"
        print(f"{q:<68} {hits[q]:>4} {p50:8.2f} {p95:8.2f} {floor_text} {as_run}")
    print(f"\nmedian of per-query p50: {statistics.median(p50s):.2f} ms; worst p95: {worst:.2f} ms "
          f"(goal <= 30 ms); worst p95/floor: {max(ratios):.2f}x (goal <= 2x), "
          f"{args.rounds} rounds, limit {args.limit}")


if __name__ == "__main__":
    main()
