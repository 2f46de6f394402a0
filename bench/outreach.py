"""How long a campaign's dry run and its launch take for a segment of 10,000 customers.

    .venv/bin/python bench/outreach.py [--runs 5] [--customers 10000]

The workspace is built by the script, in a temporary folder, through the production paths, so
every fact is relative to the moment of the run (who wrote when, who is capped, who is in quiet
hours): 12,000 customers, 10,000 of them tagged `regular` (the segment `tag:regular`), on email
(40%), SMS (30%), WhatsApp (20%) or email and a phone (10%); 3% of the phones are US numbers.
60% once wrote to the shop (10 to 120 days ago, answered, closed: `apply_pull` from the accounts
`mail` and `phone`), the others only come from the shop's list. Then one CSV-style import
(`import_contacts`) gives everyone their tags, attributes (city, orders; 12% `timezone` =
Asia/Tokyo) and marketing consent: granted for 85% of the addresses, withdrawn for 4%, never
asked for the rest; then 2% write STOP on SMS (read by console/outreach/keywords.py as the engine
does); 1% write again and have an open conversation; an earlier campaign to 600 of them went out
an hour ago (so they are capped). Quiet hours are set for the run so that Tokyo is inside them
and Berlin (the phones' region, the workspace's zone) is not: those customers are held. The
campaign's step has an email, an SMS and an approved WhatsApp template, rule `last_used`.

Measured, interleaved, medians of `--runs`:
1. *preview*: `planner.preview` (the dry run the screen and `console campaign preview` show), store
   warm; the reference is the bare SQL that selects the segment's customer ids.
2. *launch*: `planner.launch` on a fresh copy of the workspace (the plan and its writes: a
   recipient row per customer, a message and an outbox row for each one queued, one
   transaction); the reference is a plain `executemany` INSERT of as many message and outbox
   rows into another copy.
Then one more preview and launch with the stages timed (where the time goes).
Goals: preview <= 1 s, launch <= 2 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from console.model import Address, InboundMessage, PullResult, SendResult  # noqa: E402
from console.outreach import keywords, planner  # noqa: E402
from console.outreach.campaign import Campaign, ChannelText, Step  # noqa: E402
from console.outreach.facts import ImportRow  # noqa: E402
from console.outreach.settings import OutreachSettings, Senders  # noqa: E402
from console.store import Store  # noqa: E402

SENDERS = Senders({"email": "mail", "sms": "phone", "whatsapp": "phone"}, {"mail": "shop@crumb.example"},
                  {"phone": {"spring_menu": "HX5f2"}}, {"mail": "email", "phone": "twilio"})
CITIES = ("Berlin", "Hamburg", "Munich", "Cologne", "Leipzig")
NAMES = ("Anna", "Ben", "Chloe", "Dmitri", "Elif", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kira", "Lukas")


def settings_for(now: float) -> OutreachSettings:
    """Quiet hours around Tokyo's present hour, so Tokyo is quiet and Berlin is not."""
    tokyo = dt.datetime.fromtimestamp(now, ZoneInfo("Asia/Tokyo"))
    minute = tokyo.hour * 60 + tokyo.minute
    return OutreachSettings(quiet_start=(minute - 60) % 1440, quiet_end=(minute + 180) % 1440,
                            timezone="Europe/Berlin", business="Crumb & Co.")


def people(count: int):
    """(n, name, email, phone, phone channel) for each customer."""
    for n in range(count):
        mix = n % 10
        email = f"customer{n}@example.com" if mix < 4 or mix == 9 else ""
        phone = ""
        channel = ""
        if mix >= 4:
            us = n % 33 == 0
            phone = f"+1202555{n % 10000:04d}" if us else f"+4917{n:09d}"
            channel = "sms" if mix < 7 or mix == 9 else "whatsapp"
        yield n, f"{NAMES[n % len(NAMES)]} Customer{n}", email, phone, channel


def build(folder: Path, count: int, segment: int, now: float) -> dict:
    started = time.perf_counter()
    rng = random.Random(12)
    store = Store(folder / "console.db", "DE", settings_for(now))
    crowd = list(people(count))
    pulls: dict[str, list[InboundMessage]] = {"mail": [], "phone": []}
    for n, name, email, phone, channel in crowd:
        if rng.random() >= 0.6:
            continue
        on = "email" if email and (not phone or rng.random() < 0.5) else channel
        peer = Address("email", email, name) if on == "email" else Address("phone", phone, name)
        at = now - rng.uniform(10, 120) * 86400
        thread = f"<t{n}@example.com>" if on == "email" else f"{on}:{phone}"
        account = "mail" if on == "email" else "phone"
        for i, direction in enumerate(("in", "out")):
            pulls[account].append(InboundMessage(
                f"<m{n}-{i}@example.com>" if on == "email" else f"{on}-{n}-{i}", thread, on, direction, peer,
                at + i * 1800, "Do you bake rye on Saturdays?" if direction == "in" else "We do, from 7 am.",
                subject="Saturday" if on == "email" else "", status="delivered" if direction == "out" else None))
    for account, batch in pulls.items():
        for first in range(0, len(batch), 2000):
            store.apply_pull(account, PullResult(batch[first:first + 2000]))
    store.close_waiting(now - 86400)
    rows = []
    for n, name, email, phone, channel in crowd:
        draw = rng.random()
        state = "granted" if draw < 0.85 else "withdrawn" if draw < 0.89 else ""
        consents = []
        if state:
            if email:
                consents.append(("email", "email", state))
            if phone:
                consents.append((channel, "phone", state))
        attributes = {"city": CITIES[n % len(CITIES)], "orders": str(rng.randint(0, 12))}
        if rng.random() < 0.12:
            attributes["timezone"] = "Asia/Tokyo"
        tags = ["regular"] if n < segment else []
        if n < segment and n % 16 == 3:
            tags.append("lastweek")
        rows.append(ImportRow(n + 2, name, email, phone, tags, attributes, consents, "signed up in shop",
                              "News from Crumb & Co., at most twice a month", now - 60 * 86400))
    report = store.import_contacts(rows, [])
    stops, again = [], []
    for n, name, email, phone, channel in crowd:
        if phone and channel == "sms" and rng.random() < 0.05:  # 5% of the SMS third: about 2% of all
            stops.append(InboundMessage(f"stop-{n}", f"sms:{phone}", "sms", "in", Address("phone", phone, name),
                                        now - 3 * 86400, "STOP"))
        elif rng.random() < 0.01:
            on, peer = (("email", Address("email", email, name)) if email else
                        (channel, Address("phone", phone, name)))
            again.append(InboundMessage(f"<again-{n}@example.com>" if on == "email" else f"again-{n}",
                                        f"<again-{n}@example.com>" if on == "email" else f"{on}:{peer.address}",
                                        on, "in", peer, now - 2 * 3600, "Is the shop open on Sunday?",
                                        subject="Sunday" if on == "email" else ""))
    result = PullResult(stops + [m for m in again if m.channel != "email"])
    result.opt_outs.extend(keywords.read(result, "twilio", store.outreach, now))
    store.apply_pull("phone", result)
    store.apply_pull("mail", PullResult([m for m in again if m.channel == "email"]))
    # An earlier campaign, sent an hour ago: its recipients are capped for three days.
    earlier = store.save_segment("Last week", "tag:lastweek")
    store.save_campaign(Campaign(None, "Bread club", earlier, steps=[step()]))
    planner.launch(store, "Bread club", SENDERS, "ana", at=now - 3600)
    sent = 0
    for out in store.claim_due(["mail", "phone"], 5000, at=now - 3600):
        store.record_sent(out, SendResult(f"x-{out.idempotency_key}", "delivered", sent_at=now - 3600))
        sent += 1
    segment_id = store.save_segment("Regulars", "tag:regular")
    store.save_campaign(Campaign(None, "Spring menu", segment_id, steps=[step()]))
    store.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return {"customers": count, "wrote": sum(len(b) for b in pulls.values()) // 2, "consents": report.consents,
            "stops": len(stops), "again": len(again), "earlier": sent, "seconds": time.perf_counter() - started}


def step() -> Step:
    return Step(1, 0, "last_used", ("whatsapp", "sms", "email"), {
        "email": ChannelText("The spring menu at Crumb & Co.",
                             "Hi {first_name|there},\n\nthe spring menu is here: wild garlic bread, rhubarb tart and "
                             "a new rye. Come by this week!\n\n{agent}"),
        "sms": ChannelText(body="Hi {first_name|there}, the spring menu is in: wild garlic bread & rhubarb tart."),
        "whatsapp": ChannelText(template="spring_menu", variables=("{first_name|there}", "rhubarb tart")),
    })


def copy(src: Path, dst: Path) -> Path:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    return dst


def segment_sql(store: Store) -> list[int]:
    """The reference for the preview: the segment's customers, selected by bare SQL."""
    return [r[0] for r in store.db.conn.execute(
        """SELECT cu.id FROM customer cu WHERE EXISTS (SELECT 1 FROM identity i WHERE i.customer_id = cu.id)
           AND EXISTS (SELECT 1 FROM tag t WHERE t.customer_id = cu.id AND t.name = 'regular') ORDER BY cu.id""")]


def plain_insert(store: Store, rows: list[tuple[int, int, str]]) -> None:
    """The reference for the launch: as many message and outbox rows, inserted plainly in one
    transaction (to the identity and conversation each queued recipient's message goes to)."""
    at = time.time()
    with store.db.write() as conn:
        first = conn.execute("SELECT COALESCE(MAX(id), 0) FROM message").fetchone()[0] + 1
        keys = [uuid.uuid4().hex for _ in rows]
        conn.executemany(
            """INSERT INTO message (id, conversation_id, account, external_id, channel, direction, identity_id,
                   sent_at, subject, body, status, author, created_at)
               VALUES (?, ?, ?, ?, 'sms', 'out', ?, ?, '', 'Hi there, the spring menu is in.', 'queued', 'ana', ?)""",
            [(first + i, conv, account, f"local:{keys[i]}", ident, at, at)
             for i, (ident, conv, account) in enumerate(rows)])
        conn.executemany(
            """INSERT INTO outbox (message_id, account, idempotency_key, options, next_try_at, created_at, updated_at,
                   purpose) VALUES (?, ?, ?, '{}', ?, ?, ?, 'marketing')""",
            [(first + i, account, keys[i], at, at, at) for i, (_, _, account) in enumerate(rows)])


def targets(store: Store) -> list[tuple[int, int, str]]:
    return [(r[0], r[1], r[2]) for r in store.db.conn.execute(
        """SELECT identity_id, MAX(id), account FROM conversation GROUP BY identity_id, account
           ORDER BY identity_id LIMIT 10000""")]


@contextmanager
def stages(spent: Counter):
    """Time the planner's stages (a wrapper around each, for the one breakdown run)."""
    import console.outreach.planner as p

    originals = {}

    def wrap(owner, name, label):
        original = getattr(owner, name)
        originals[(owner, name)] = original

        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - t
        setattr(owner, name, timed)

    wrap(Store, "segment_members", "segment (SQL)")
    wrap(Store, "recipients", "facts of the customers (SQL)")
    wrap(Store, "unsubscribe_tokens", "unsubscribe tokens")
    wrap(p, "_plan_one", "restraint + channel rule + text (Python)")
    wrap(Store, "write_step", "writing rows (SQL)")
    try:
        yield
    finally:
        for (owner, name), original in originals.items():
            setattr(owner, name, original)


def summary(plan) -> str:
    reasons = ", ".join(f"{reason.value} {len(rows)}" for reason, rows in sorted(plan.excluded.items(),
                                                                                key=lambda kv: -len(kv[1])))
    channels = ", ".join(f"{c} {n}" for c, n in plan.by_channel.most_common())
    return (f"{plan.selected:,} selected: {len(plan.now):,} now, {len(plan.held):,} held ({channels}); "
            f"left out: {reasons}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--customers", type=int, default=10_000, help="the segment's size")
    args = parser.parse_args()
    total = args.customers * 6 // 5
    with tempfile.TemporaryDirectory(prefix="outreach-bench-") as tmp:
        base = Path(tmp) / "base"
        base.mkdir()
        now = time.time()
        made = build(base, total, args.customers, now)
        print(f"workspace: {made['customers']:,} customers ({made['wrote']:,} wrote once), {made['consents']:,} "
              f"consents imported, {made['stops']} STOPs, {made['again']} open conversations, an earlier campaign to "
              f"{made['earlier']} an hour ago; built in {made['seconds']:.1f} s")
        store = Store(base / "console.db", "DE", settings_for(time.time()))
        store.unsubscribe_tokens([])
        preview_t, segment_t = [], []
        for _ in range(args.runs + 1):  # the first warms the page cache
            t = time.perf_counter()
            ids = segment_sql(store)
            segment_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            plan = planner.preview(store, "Spring menu", SENDERS, "ana")
            preview_t.append(time.perf_counter() - t)
        rows = targets(store)
        store.close()
        print(f"dry run: {summary(plan)}")
        queued = len(plan.now) + len(plan.held)
        launch_t, insert_t = [], []
        for run in range(args.runs):
            ref = Store(copy(base, Path(tmp) / "ref") / "console.db", "DE", settings_for(time.time()))
            ref.db.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()
            t = time.perf_counter()
            plain_insert(ref, (rows * (queued // len(rows) + 1))[:queued])
            insert_t.append(time.perf_counter() - t)
            ref.close()
            fresh = Store(copy(base, Path(tmp) / "run") / "console.db", "DE", settings_for(time.time()))
            fresh.unsubscribe_tokens([])
            planner.preview(fresh, "Spring menu", SENDERS, "ana")  # warm, as after the dry run
            t = time.perf_counter()
            launched = planner.launch(fresh, "Spring menu", SENDERS, "ana")
            launch_t.append(time.perf_counter() - t)
            fresh.close()
        print(f"launch: {len(launched.now) + len(launched.held):,} outbox rows, {launched.selected:,} recipient rows")

        def line(what, mine, ref, goal):
            m, r = statistics.median(mine), statistics.median(ref)
            print(f"{what}: median {m * 1000:.0f} ms (runs {' / '.join(f'{x * 1000:.0f}' for x in mine)}); reference "
                  f"{r * 1000:.0f} ms; ratio {m / r:.1f}x; goal <= {goal * 1000:.0f} ms: "
                  f"{'met' if m <= goal else 'MISSED'}")

        line(f"preview of {plan.selected:,}", preview_t[1:], segment_t[1:], 1.0)
        line(f"launch of {launched.selected:,}", launch_t, insert_t, 2.0)
        print("  (references: preview = the segment's bare SQL; launch = a plain INSERT of as many message + "
              "outbox rows)")

        spent: Counter = Counter()
        fresh = Store(copy(base, Path(tmp) / "run") / "console.db", "DE", settings_for(time.time()))
        fresh.unsubscribe_tokens([])
        planner.preview(fresh, "Spring menu", SENDERS, "ana")
        with stages(spent):
            t = time.perf_counter()
            planner.preview(fresh, "Spring menu", SENDERS, "ana")
            whole = time.perf_counter() - t
        print(f"where a preview's {whole * 1000:.0f} ms go: " + "; ".join(
            f"{k} {v * 1000:.0f} ms" for k, v in spent.most_common()))
        spent.clear()
        with stages(spent):
            t = time.perf_counter()
            planner.launch(fresh, "Spring menu", SENDERS, "ana")
            whole = time.perf_counter() - t
        print(f"where a launch's {whole * 1000:.0f} ms go: " + "; ".join(
            f"{k} {v * 1000:.0f} ms" for k, v in spent.most_common()) + "; the rest: the transaction and its commit")
        fresh.close()


if __name__ == "__main__":
    main()
