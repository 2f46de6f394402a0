"""Make a 1,000,000-message store for the search benchmark (bench/search.py).

    .venv/bin/python bench/make_search_store.py [bench/.cache/search-1m/console.db] [--messages N]

What it holds (fixed seed, so every run makes the same store):
- text drawn from a 20,000-word vocabulary with Zipf-like frequencies (exponent 1.05): English
  function words first ("the", "to", "and"...), then the words of a bakery's mail ("order",
  "cake", "delivery", "refund"...), then made-up words; chat messages of 3-40 words, emails of
  30-250 with a subject;
- 40,000 customers with names from 120 first and 120 last names, one or two identities each;
- conversations of 1-12 messages (about 4 on average) on email, SMS, WhatsApp, Telegram,
  Messenger, Instagram and Mastodon, spread over two years, more of them recently (a growing
  business); a conversation quiet for two weeks is done, the others open, waiting or snoozed;
- tags on one customer in ten (vip, wholesale, allergy, wedding, newsletter, late-payer).

Messages go through the production ingest path (`Store.apply_pull`) in batches of 5,000, and in
an order that is not their time order, as in real workspaces (a mailbox's old history arrives
after the app has been in use for months; message ids follow insertion, not time): the newest
half of the two years first, then the older half. About 6 minutes on the 2-core bench machine.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from console.model import Address, InboundMessage, PullResult  # noqa: E402
from console.store import Store  # noqa: E402

SEED = 20261201
END = 1_788_000_000.0  # 2026-08-29 UTC: the store's "now"
SPAN = 2 * 365 * 86400
DEFAULT = HERE / ".cache" / "search-1m" / "console.db"

FUNCTION = ("the to and a i you of for is in it we my your on be can have this that with at are "
            "will not me so do if as but our would just please thanks all from about get they "
            "what when there up out there an was by one could also no yes still like know").split()
DOMAIN = ("order cake delivery pickup tomorrow bread sourdough croissant birthday wedding price quote "
          "invoice refund payment receipt box dozen gluten free vegan allergy nuts friday saturday "
          "morning afternoon address card candles chocolate lemon rye loaf tart pastry catering "
          "office party deposit discount voucher late early collect shop store opening hours "
          "menu sample tasting custom design photo topper message frosting sponge layers "
          "cupcakes macarons baguette brioche focaccia bagel muffin scone cookie flour sugar").split()
FIRST = ("maria kofi ann li sven aiko priya omar lena tomas chloe jonas fatima yusuf elena raj nora "
         "ivan sara ben lucas emma noah olivia liam ava mia zoe leo amir hana yuki kenji mateo "
         "sofia diego lucia pablo carmen javier ines marta hugo louise jules camille theo manon "
         "lea paul anna jan eva piotr kasia olga dmitri irina aleksander nadia sami leila karim "
         "youssef amina ali zara imran ayesha bilal sana chen wei ming jing hui lin tao mei "
         "arjun deepa vikram meera rohan anika kwame ama kojo efua yaw akua chidi ngozi emeka "
         "ada tunde bisi femi lola kemi joao ana pedro beatriz rafael clara tiago rita bruno "
         "alice oscar ruby felix iris hector nina otto greta").split()
LAST = ("lopez mensah oneil wang berg tanaka shah haddad novak garcia dubois weber khan demir rossi "
        "patel lund petrov cohen kim smith jones brown taylor wilson davies evans thomas johnson "
        "roberts walker wright robinson thompson white hughes edwards green hall wood harris "
        "martin jackson clarke lewis young king baker turner hill moore cooper ward morris "
        "silva santos ferreira pereira costa almeida nguyen tran le pham hoang phan vu dang "
        "bui do müller schmidt schneider fischer meyer wagner becker schulz hoffmann koch "
        "richter klein wolf schröder neumann schwarz zimmermann braun krüger hofmann hartmann "
        "lange schmitt werner krause meier lehmann schmid schulze maier köhler herrmann "
        "kaiser fuchs peters lang scholz möller weiss jung hahn vogel friedrich keller").split()
CHANNELS = (("email", "email", 0.45), ("sms", "phone", 0.22), ("whatsapp", "phone", 0.16),
            ("telegram", "telegram", 0.07), ("messenger", "messenger", 0.05), ("instagram", "instagram", 0.03),
            ("mastodon", "mastodon", 0.02))
TAGS = ("vip", "wholesale", "allergy", "wedding", "newsletter", "late-payer")


def vocabulary(rnd: random.Random, size: int = 20_000) -> tuple[list[str], list[float]]:
    """Words and their cumulative Zipf weights (rank r has weight 1 / r^1.05)."""
    words = list(dict.fromkeys(FUNCTION + DOMAIN))
    syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"] + ["ch", "sh", "th", "qu", "st", "tr"]
    seen = set(words)
    while len(words) < size:
        word = "".join(rnd.choice(syllables) for _ in range(rnd.choice((2, 2, 3, 3, 3, 4))))
        if word not in seen:
            seen.add(word)
            words.append(word)
    weights = list(itertools.accumulate(1 / (rank ** 1.05) for rank in range(1, size + 1)))
    return words, weights


class Text:
    def __init__(self, rnd: random.Random):
        self.rnd = rnd
        self.words, self.cum = vocabulary(rnd)
        self.pool: list[str] = []

    def words_of(self, count: int) -> list[str]:
        if len(self.pool) < count:
            self.pool = self.rnd.choices(self.words, cum_weights=self.cum, k=200_000)
        out, self.pool = self.pool[-count:], self.pool[:-count]
        return out

    def body(self, count: int) -> str:
        words = self.words_of(count)
        lines, line = [], []
        for n, word in enumerate(words):
            line.append(word)
            if len(line) >= 12 or n == len(words) - 1:
                text = " ".join(line)
                lines.append(text[0].upper() + text[1:] + ".")
                line = []
        return "\n".join(lines)


def customers(rnd: random.Random, count: int) -> list[tuple[str, list[Address]]]:
    out = []
    for n in range(count):
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        name = f"{first.title()} {last.title()}"
        picks = {rnd.choices(CHANNELS, weights=[c[2] for c in CHANNELS])[0] for _ in range(rnd.choice((1, 1, 2)))}
        identities = []
        for channel, kind, _ in sorted(picks):
            if kind == "email":
                plain = last.encode("ascii", "ignore").decode()
                address = f"{first}.{plain}{n}@example.{rnd.choice(('com', 'net', 'org'))}"
            elif kind == "phone":
                address = f"+1555{n:07d}"
            else:
                address = f"{first}{last.encode('ascii', 'ignore').decode()}{n}"
            identities.append((channel, Address(kind, address, name)))
        out.append((name, identities))
    return out


def conversations(rnd: random.Random, text: Text, people, total: int):
    """(start time, messages) per conversation until `total` messages, in no particular order."""
    made = 0
    n = 0
    while made < total:
        name, identities = rnd.choice(people)
        channel, peer = rnd.choice(identities)
        # More business recently: start times have density rising linearly over the two years.
        start = END - SPAN * (1 - rnd.random() ** 0.5)
        size = min(total - made, min(12, 1 + int(rnd.expovariate(1 / 3.0))))
        thread = f"search-{n}"
        subject = " ".join(text.words_of(rnd.randint(2, 6))).capitalize() if channel == "email" else ""
        at = start
        msgs = []
        for i in range(size):
            direction = "in" if i % 2 == 0 or rnd.random() < 0.25 else "out"
            count = rnd.randint(30, 250) if channel == "email" else rnd.randint(3, 40)
            msgs.append(InboundMessage(
                external_id=f"{thread}-{i}", thread_key=thread, channel=channel, direction=direction, peer=peer,
                sent_at=min(at, END), body=text.body(count),
                subject=(("Re: " if i else "") + subject) if subject else "",
                status="delivered" if direction == "out" else None))
            at += rnd.expovariate(1 / 14_400)
        yield start, msgs
        made += size
        n += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path, nargs="?", default=DEFAULT)
    parser.add_argument("--messages", type=int, default=1_000_000)
    args = parser.parse_args()
    if args.path.exists():
        sys.exit(f"make_search_store: {args.path} exists; delete it first")
    args.path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rnd = random.Random(SEED)
    text = Text(rnd)
    people = customers(rnd, max(200, args.messages // 25))
    made = list(conversations(rnd, text, people, args.messages))
    middle = END - SPAN / 2
    order = [c for c in made if c[0] >= middle] + [c for c in made if c[0] < middle]
    print(f"generated {len(made):,} conversations in {time.perf_counter() - started:.0f} s", flush=True)
    store = Store(args.path)
    store.db.conn.execute("PRAGMA synchronous = OFF")
    batch: list[InboundMessage] = []
    total = 0
    for _, msgs in order:
        batch.extend(msgs)
        if len(batch) >= 5000:
            total += store.apply_pull("shop", PullResult(messages=batch))
            batch = []
            if total % 100_000 < 5000:
                print(f"  {total:,} messages, {time.perf_counter() - started:.0f} s", flush=True)
    if batch:
        total += store.apply_pull("shop", PullResult(messages=batch))
    with store.db.write() as conn:
        # Quiet for two weeks: done. Of the others, some were snoozed; the rest keep the status
        # the ingest gave them (open: waiting for us; waiting: for them).
        conn.execute("UPDATE conversation SET status = 'done', waiting_since = NULL WHERE last_message_at < ?",
                     (END - 14 * 86400,))
        ids = [r[0] for r in conn.execute("SELECT id FROM conversation WHERE status != 'done'")]
        snoozed = rnd.sample(ids, len(ids) // 10)
        conn.executemany("UPDATE conversation SET status = 'snoozed', snooze_until = ? WHERE id = ?",
                         [(END + 86400, i) for i in snoozed])
        customer_ids = [r[0] for r in conn.execute("SELECT id FROM customer")]
        tagged = rnd.sample(customer_ids, len(customer_ids) // 10)
        conn.executemany("INSERT OR IGNORE INTO tag (customer_id, name, created_at) VALUES (?, ?, ?)",
                         [(c, rnd.choices(TAGS, weights=(3, 2, 2, 1, 4, 1))[0], END) for c in tagged])
    store.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conversations_count = store.db.query_one("SELECT COUNT(*) FROM conversation")[0]
    store.close()
    print(f"{args.path}: {total:,} messages, {conversations_count:,} conversations, {len(people):,} customers "
          f"in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
