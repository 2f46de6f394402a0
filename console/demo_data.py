"""The demo workspace's made-up bakery customers and their history, generated from a seed.

The same seed and anchor time always give the same customers and messages, so every demo account
of a workspace (mail, phone, social) sees one consistent set of people: a customer who emails and
also writes on Telegram shows up as one person with one cross-channel timeline. Times are relative
to the anchor (when the demo was first seeded), so waiting clocks look right on first start.

Pure data: no store, no network, no UI. `console.channels.demo` turns it into pulls.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timezone

from console.hours import BusinessHours, local_zone_name, parse_ranges
from console.model import Address, Attachment

SHOP = "Crumb & Co."
SHOP_DOMAIN = "crumbandco.example"
DAY = 86400.0
HOUR = 3600.0
# The bakery opens Tuesday to Sunday, 07:00 to 15:00 (the demo config's [business_hours] says the
# same, from here): it answers in those hours, and its customers write mostly by day.
OPEN_DAYS = ("tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
OPEN_HOURS = "07:00-15:00"
# Weight of each local hour of the day for a customer's first message (little at night).
WRITING_HOURS = (1, 1, 0, 0, 0, 1, 2, 5, 8, 10, 11, 12, 12, 11, 10, 9, 9, 10, 11, 10, 8, 6, 4, 2)


def opening_hours(zone: str | None = None) -> BusinessHours:
    days = tuple(parse_ranges(OPEN_HOURS) if day in OPEN_DAYS else ()
                 for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))
    return BusinessHours(zone or local_zone_name(), days)

FIRST = ["Ana", "Ben", "Chloé", "Dmitri", "Elif", "Farah", "George", "Hana", "Ivan", "Jasmine", "Kofi",
         "Lena", "Marco", "Nadia", "Oscar", "Priya", "Quentin", "Rosa", "Samir", "Tove", "Uma", "Victor",
         "Wen", "Ximena", "Yusuf", "Zoe", "Aisha", "Bruno", "Carmen", "Diego", "Emma", "Felix", "Grace",
         "Hugo", "Ines", "Jonas", "Keiko", "Liam", "Maya", "Noah", "Olga", "Pablo", "Rin", "Sofia",
         "Tariq", "Valentina", "Will", "Yara", "Zeynep", "Amir"]
LAST = ["Okafor", "Lindqvist", "Moreau", "Petrov", "Yilmaz", "Haddad", "Brennan", "Sato", "Novak",
        "Reyes", "Mensah", "Fischer", "Rossi", "Karimi", "Olsen", "Sharma", "Dubois", "García", "Aziz",
        "Berg", "Patel", "Hugo", "Chen", "López", "Demir", "Walsh", "Nakamura", "Costa", "Kowalski",
        "Ibrahim"]
MAIL_DOMAINS = ["mail.example", "post.example", "inbox.example", "fastmail.example", "home.example"]

ITEMS = ["sourdough loaf", "lemon drizzle cake", "dozen croissants", "birthday cake", "box of cinnamon buns",
         "rye bread", "gluten-free brownies", "seeded batch loaf", "carrot cake", "box of macarons",
         "focaccia", "almond tart", "plum cake", "vegan chocolate cake", "baguettes"]
DAYS = ["Saturday", "Friday", "Sunday morning", "Thursday", "next Tuesday", "Wednesday afternoon"]
TIMES = ["9:30", "10", "noon", "2 pm", "four", "5:30"]

# Conversation scripts: (speaker, text); "c" = customer, "b" = the bakery. Each has an email subject.
SCRIPTS: list[tuple[str, list[tuple[str, str]]]] = [
    ("Order for {day}", [
        ("c", "Hi! Could I order a {item} for {day}? I'd pick it up around {time}."),
        ("b", "Hi {first}, of course: one {item}, ready {day} at {time}. See you then!"),
        ("c", "Perfect, thank you!"),
    ]),
    ("Birthday cake", [
        ("c", "Hello, do you make birthday cakes with writing on them? It's for my daughter, she turns 7."),
        ("b", "We do! Sponge or chocolate, and what should the writing say?"),
        ("c", "Chocolate please, 'Happy birthday Mia' in pink if possible."),
        ("b", "Lovely. That's 38 for the 8-inch. Pickup Saturday from 9?"),
        ("c", "Yes, Saturday works. Can I pay when I collect?"),
        ("b", "Yes, pay on collection. Thanks {first}!"),
    ]),
    ("Allergens in the {item}", [
        ("c", "Does the {item} contain nuts? My son has a tree-nut allergy."),
        ("b", "Hi {first}, it has no nuts in the recipe, but it's baked in a kitchen that handles almonds, "
              "so we can't promise it is nut-free. I'm sorry we can't be more certain."),
        ("c", "Thanks for being honest, that helps."),
    ]),
    ("Opening hours over the holiday", [
        ("c", "Are you open on the bank holiday Monday?"),
        ("b", "We are, 8 till 1 on Monday. Normal hours after that."),
    ]),
    ("Delivery?", [
        ("c", "Do you deliver to the business park on Mill Road? We'd like pastries for a meeting."),
        ("b", "We deliver within 3 miles for orders over 40. How many people?"),
        ("c", "About 25. Mix of croissants and pain au chocolat, Thursday 8:30?"),
        ("b", "Done: 15 croissants, 15 pain au chocolat, Thursday 8:30 on Mill Road. Invoice by email."),
        ("c", "Great, thank you so much."),
    ]),
    ("Problem with my order", [
        ("c", "The {item} I bought yesterday was a bit burnt on the bottom, quite disappointed."),
        ("b", "I'm really sorry about that, {first}. Please come by and pick a fresh one on us."),
        ("c", "That's kind, thank you. I'll come by tomorrow."),
    ]),
    ("Gluten-free options", [
        ("c", "Do you have anything gluten-free? Coeliac here."),
        ("b", "Our brownies and the almond tart are made without gluten, in a separate batch in the morning. "
              "Happy to set some aside."),
        ("c", "Yes please, 2 brownies for {day}."),
        ("b", "Set aside for you, {first}."),
    ]),
    ("Catering for a wedding", [
        ("c", "We're getting married in June and love your bread. Do you do catering for about 80 guests?"),
        ("b", "Congratulations! We do bread baskets and dessert tables. Could you tell us the date and venue?"),
        ("c", "June 14th, at the Old Mill barn."),
        ("b", "That date is free. I'll send a quote with two menus by Friday."),
        ("c", "Wonderful, looking forward to it."),
        ("b", "Quote attached. No rush, the date is held for two weeks."),
        ("c", "We'd like menu B. How do we confirm?"),
        ("b", "A 20% deposit confirms it; bank details are on the quote. Thank you both!"),
    ]),
    ("Wholesale enquiry", [
        ("c", "I run the café on Station Street. Would you supply 20 loaves a day?"),
        ("b", "We'd love to. Which breads, and from when?"),
        ("c", "Sourdough and seeded, starting the 1st."),
        ("b", "Good. Our wholesale price list is attached; delivery is at 7 each morning."),
    ]),
    ("Lost property", [
        ("c", "I think I left my umbrella at the shop this morning, a green one?"),
        ("b", "Yes, it's behind the counter, {first}. Pick it up anytime."),
        ("c", "Phew, thanks!"),
    ]),
    ("Job opening", [
        ("c", "I saw the sign in the window, are you still looking for weekend staff?"),
        ("b", "We are! Could you send a short note about your experience and availability?"),
        ("c", "I worked two summers at a café and can do Saturdays and Sundays."),
        ("b", "Sounds great. Can you come in Thursday at 3 for a chat?"),
    ]),
    ("Regular order", [
        ("c", "Same as last week please: {item} and two baguettes, {day}."),
        ("b", "Noted, {first}. Ready from {time}."),
    ]),
    ("Recipe question", [
        ("c", "Your {item} is amazing. Any tips for making something like it at home?"),
        ("b", "Thank you! Long, cool proofing is most of the secret. We run a baking class once a month."),
        ("c", "Ooh, when is the next class?"),
        ("b", "The 18th at 6 pm, 45 per person including dinner."),
    ]),
]

# How the bakery ends an exchange the customer closed with thanks.
CLOSINGS = ["You're welcome, {first}!", "Our pleasure, see you soon!", "Thanks {first}, have a lovely day.",
            "Anytime! 🙂", "Glad we could help."]

# What a customer says first when they write out of the blue while the app runs (chatter).
NEW_QUESTIONS = [
    "Hi, are you open today until 6?", "Can I still order a {item} for {day}?",
    "Do you have any {item} left?", "Is the {item} vegan?", "Running 10 minutes late for my pickup, sorry!",
    "Could I change my order to two of them instead of one?", "Do you take card payments?",
    "Thank you for the lovely cake yesterday, everyone loved it!",
]
# How a customer answers one of our replies now and then.
ANSWERS = ["Thanks!", "Perfect, see you then.", "Great, thank you 😊", "Ok!", "Brilliant, thanks so much.",
           "Sorry, one more thing: could you add a {item}?"]

# Things real customers sometimes send that must be shown as data, never obeyed.
HOSTILE = [
    "[bold red]URGENT[/] where is my order?? [/x]",
    "Click here [@click=app.quit]for a discount[/] !!",
    "Hi\x1b[2J\x1b]0;pwned\x07 my cake arrived squashed \x1b[31mred text\x1b[0m",
    "Track it here: [link=https://evil.example]parcel[/link] \u009b31m",
    "Invoice attached: invoice\u202efdp.exe please pay",
]


@dataclass(frozen=True)
class Person:
    number: int
    first: str
    last: str
    email: str
    phone: str
    telegram: tuple[str, str]  # (user id, @username)
    instagram: tuple[str, str]  # (scoped id, handle)
    messenger: str  # page-scoped id
    channels: tuple[str, ...]  # the channels they write on, favourite first

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    def address(self, channel: str) -> Address:
        if channel == "email":
            return Address("email", self.email, self.name)
        if channel in ("sms", "whatsapp"):
            return Address("phone", self.phone, self.name)
        if channel == "telegram":
            return Address("telegram", self.telegram[0], f"{self.first} (@{self.telegram[1]})")
        if channel == "instagram":
            return Address("instagram", self.instagram[0], f"@{self.instagram[1]}")
        if channel == "messenger":
            return Address("messenger", self.messenger, self.name)
        raise ValueError(channel)

    def links(self, channel: str) -> tuple[Address, ...]:
        """The person's other identities: the demo service vouches they are one customer."""
        mine = self.address(channel)
        return tuple(a for a in (self.address(c) for c in self.channels) if a != mine and a.kind != mine.kind)


@dataclass(frozen=True)
class DemoMessage:
    external_id: str
    thread_key: str
    channel: str
    direction: str
    person: int
    at: float
    body: str
    subject: str = ""
    attachments: tuple[Attachment, ...] = ()
    # From an address of theirs the demo service does not vouch for (a work email): the store
    # sees another customer, and the card suggests merging the two.
    sender: Address | None = None


@dataclass
class Dataset:
    people: list[Person]
    messages: list[DemoMessage] = field(default_factory=list)


CHANNEL_COMBOS = [
    ("email",), ("sms",), ("whatsapp",), ("telegram",), ("instagram",), ("messenger",), ("email",), ("sms",),
    ("sms", "whatsapp"), ("whatsapp", "sms"), ("email", "telegram"), ("email", "sms"), ("instagram", "messenger"),
    ("telegram", "email"), ("email", "sms", "whatsapp"), ("whatsapp", "email", "instagram"),
]


def make_people(seed: int, count: int = 80) -> list[Person]:
    rng = random.Random(seed)
    people: list[Person] = []
    used: set[str] = set()
    for number in range(count):
        while True:
            first, last = rng.choice(FIRST), rng.choice(LAST)
            if f"{first} {last}" not in used:
                used.add(f"{first} {last}")
                break
        local = f"{first}.{last}".lower().replace("é", "e").replace("í", "i").replace("ó", "o")
        people.append(Person(
            number=number, first=first, last=last,
            email=f"{local}@{rng.choice(MAIL_DOMAINS)}",
            # 555-01xx numbers are reserved for fiction in North America.
            phone=f"+1555{rng.randrange(100, 999):03d}01{number:02d}",
            telegram=(str(700000000 + rng.randrange(10**8)), f"{first.lower()}{rng.randrange(10, 99)}"),
            instagram=(str(17840000000000000 + rng.randrange(10**12)), f"{first.lower()}.{last.lower()}.bakes"),
            messenger=str(24000000000000000 + rng.randrange(10**12)),
            channels=CHANNEL_COMBOS[rng.randrange(len(CHANNEL_COMBOS))],
        ))
    return people


def _fill(text: str, rng: random.Random, person: Person, slots: dict[str, str]) -> str:
    for key, choices in (("item", ITEMS), ("day", DAYS), ("time", TIMES)):
        slots.setdefault(key, rng.choice(choices))
    return text.format(first=person.first, **slots)


def _quote(text: str, when: float, who: str) -> str:
    stamp = datetime.fromtimestamp(when, timezone.utc).strftime("%a %d %b %Y at %H:%M")
    quoted = "\n".join("> " + line if line else ">" for line in text.splitlines())
    return f"\n\nOn {stamp}, {who} wrote:\n{quoted}"


def _shifted(msg: DemoMessage, by: float) -> DemoMessage:
    return msg if not by else DemoMessage(msg.external_id, msg.thread_key, msg.channel, msg.direction,
                                           msg.person, msg.at + by, msg.body, msg.subject, msg.attachments,
                                           msg.sender)


def demo_pdf(title: str) -> bytes:
    """A small, valid one-page PDF standing in for the demo's quotes and price lists (the size
    the timeline lists is the size of these bytes)."""
    title = title.replace("(", "").replace(")", "").replace("\\", "")
    stream = f"BT /F1 18 Tf 72 720 Td ({SHOP} Bakery - {title}) Tj ET".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def _episode(rng: random.Random, person: Person, channel: str, subject: str, turns: list[tuple[str, str]],
             at: float, ext) -> list[DemoMessage]:
    """One exchange on one channel: an email thread with quoted replies, or a few chat messages."""
    out: list[DemoMessage] = []
    slots: dict[str, str] = {}
    thread = None
    previous: tuple[str, float, str] | None = None  # (text, when, who) for email quoting
    email_subject = _fill(subject, rng, person, slots)
    for turn, (speaker, template) in enumerate(turns):
        text = _fill(template, rng, person, slots)
        if person.number in HOSTILE_PEOPLE and speaker == "c" and turn == 0:
            text = HOSTILE[HOSTILE_PEOPLE.index(person.number)] + "\n" + text
        direction = "in" if speaker == "c" else "out"
        if channel == "email":
            domain = SHOP_DOMAIN if direction == "out" else person.email.split("@")[1]
            msg_id = f"<{ext('demo.')}@{domain}>"
            thread = thread or msg_id
            body = text
            if direction == "out":
                body += f"\n\n-- \n{SHOP} · 12 Mill Road · open Tue-Sun 8-17"
            if previous:
                body += _quote(*previous)
            previous = (text, at, person.name if direction == "in" else SHOP)
            attachments: tuple[Attachment, ...] = ()
            if "attached" in text:
                name = "quote.pdf" if "Quote" in text else "price-list.pdf"
                attachments = (Attachment(name, "application/pdf", len(demo_pdf(name)), f"demo:{name}"),)
            out.append(DemoMessage(msg_id, thread, channel, direction, person.number, at, body,
                                   ("Re: " if turn else "") + email_subject, attachments))
        else:
            address = person.address(channel).address
            prefix = "SMdemo" if channel in ("sms", "whatsapp") else f"{channel}-"
            out.append(DemoMessage(ext(prefix), f"{channel}:{address}", channel, direction, person.number, at, text))
        # The bakery answers within minutes to a few hours when open; customers take longer.
        at = _answer_time(rng, at) if speaker == "c" else _by_day(rng, at + rng.uniform(3 * 60, 3 * HOUR))
    return out


HOSTILE_PEOPLE = [7, 19, 33, 52, 61]
_HOURS = opening_hours()


def _answer_time(rng: random.Random, at: float) -> float:
    """When the bakery answers a message written at `at`: soon if open, else after it opens."""
    soon = at + rng.uniform(4 * 60, 100 * 60)
    opens = _HOURS.next_open(soon)
    return soon if opens == soon else opens + rng.uniform(5 * 60, 150 * 60)


def _by_day(rng: random.Random, at: float) -> float:
    """A customer's next message: in their waking hours."""
    local = datetime.fromtimestamp(at, _HOURS.tz)
    if local.hour >= 22 or local.hour < 7:
        morning = local.replace(hour=7, minute=0, second=0, microsecond=0)
        if local.hour >= 22:
            morning = datetime.fromtimestamp(morning.timestamp() + DAY, _HOURS.tz).replace(hour=7, minute=0)
        return morning.timestamp() + rng.uniform(30 * 60, 4 * HOUR)
    return at


def _daytime(rng: random.Random, at: float) -> float:
    """`at` moved to an hour of the same local day a customer would write in."""
    local = datetime.fromtimestamp(at, _HOURS.tz)
    hour = rng.choices(range(24), weights=WRITING_HOURS)[0]
    return local.replace(hour=hour, minute=rng.randrange(60), second=rng.randrange(60), microsecond=0).timestamp()


def build(seed: int, anchor: float) -> Dataset:
    """Every demo message of the last six weeks, oldest first, relative to `anchor`."""
    rng = random.Random(seed * 7919 + 1)
    data = Dataset(make_people(seed))
    waiting_ages = [4, 11, 25, 48, 95, 130, 170, 290, 420, 610, 900, 1100, 1250, 1600]  # minutes since the customer wrote
    rng.shuffle(waiting_ages)
    serial = 0

    def ext(prefix: str) -> str:
        nonlocal serial
        serial += 1
        return f"{prefix}{seed}-{serial:06d}"

    for person in data.people:
        episodes = rng.randint(4, 15)
        starts = sorted(_daytime(rng, anchor - rng.uniform(1.5, 42) * DAY) for _ in range(episodes))
        unanswered = person.number % 6 == 0 and bool(waiting_ages)
        for index, start in enumerate(starts):
            last = index == episodes - 1
            channel = person.channels[0] if rng.random() < 0.7 else rng.choice(person.channels)
            subject, script = SCRIPTS[rng.randrange(len(SCRIPTS))]
            turns = list(script)
            if last and unanswered:  # ends on the customer's words, minutes to a day ago
                turns = turns[:rng.choice([i + 1 for i, (who, _) in enumerate(turns) if who == "c"])]
            if turns[-1][0] == "c" and not (last and unanswered):
                turns.append(("b", rng.choice(CLOSINGS)))  # the bakery always has the last word
            episode = _episode(rng, person, channel, subject, turns, start, ext)
            if last and unanswered:
                shift = anchor - waiting_ages.pop() * 60.0 - episode[-1].at
            else:  # earlier episodes end before any unanswered one began
                shift = min(0.0, (anchor - (60 if last else 28 * HOUR)) - episode[-1].at)
            data.messages.extend(_shifted(m, shift) for m in episode)
    # One customer texted STOP; the carrier confirmed it. The composer must refuse to send them an
    # SMS, while their WhatsApp, a channel of its own, stays open.
    stopper = next(p for p in data.people if {"sms", "whatsapp"} <= set(p.channels) and p.number % 6 != 0)
    stop_at = anchor - 10 * DAY
    data.messages.append(DemoMessage(ext("SMdemo"), f"sms:{stopper.phone}", "sms", "in", stopper.number,
                                     stop_at, "STOP"))
    data.messages.append(DemoMessage(ext("SMdemo"), f"sms:{stopper.phone}", "sms", "out", stopper.number,
                                     stop_at + 2, "You have successfully been unsubscribed. You will not receive "
                                     "any more messages from this number. Reply START to resubscribe."))
    # Impatient customers who wrote again on another channel ("did you get my email?").
    for person in [p for p in data.people if p.number % 6 == 0 and len(p.channels) > 1][:3]:
        earlier = max((m for m in data.messages if m.person == person.number), key=lambda m: m.at)
        if earlier.direction != "in":
            continue
        channel = next(c for c in person.channels if c != earlier.channel)
        address = person.address(channel).address
        body = f"Hi, I sent you a message on {earlier.channel} about this, did you get it?"
        at = earlier.at + (anchor - earlier.at) / 2
        if channel == "email":
            msg_id = f"<{ext('demo.')}@{person.email.split('@')[1]}>"
            data.messages.append(DemoMessage(msg_id, msg_id, channel, "in", person.number, at, body,
                                             "Did you get my message?"))
        else:
            prefix = "SMdemo" if channel in ("sms", "whatsapp") else f"{channel}-"
            data.messages.append(DemoMessage(ext(prefix), f"{channel}:{address}", channel, "in", person.number,
                                             at, body))
    # Two people who also wrote from an address the shop did not know (a work email), and one whose
    # email signature quotes the phone number of a texting customer: the cards suggest merges.
    for person in [p for p in data.people if "email" in p.channels][2:4]:
        work = Address("email", f"{person.first.lower()}@work-{person.number}.example", person.name)
        msg_id = f"<{ext('demo.')}@work-{person.number}.example>"
        data.messages.append(DemoMessage(msg_id, msg_id, "email", "in", person.number, anchor - 3 * DAY,
                                         f"Hi, writing from my work address: could I add a {ITEMS[person.number % len(ITEMS)]} "
                                         "to my usual order?", "From work", sender=work))
        data.messages.append(DemoMessage(f"<{ext('demo.')}@{SHOP_DOMAIN}>", msg_id, "email", "out", person.number,
                                         anchor - 3 * DAY + 1800, "Of course, added!", "Re: From work", sender=work))
    texter = next(p for p in data.people if p.channels == ("sms",) and p.number % 6 != 0)
    office = Address("email", f"orders@{texter.last.lower()}-studio.example", f"{texter.last} Studio")
    msg_id = f"<{ext('demo.')}@{texter.last.lower()}-studio.example>"
    data.messages.append(DemoMessage(
        msg_id, msg_id, "email", "in", texter.number, anchor - 5 * DAY,
        f"Hello, we'd like 30 croissants for a studio event next week. Invoice to the studio please.\n\n"
        f"-- \n{texter.first} {texter.last}\n{texter.last} Studio · tel. {texter.phone}", "Studio order",
        sender=office))
    data.messages.append(DemoMessage(f"<{ext('demo.')}@{SHOP_DOMAIN}>", msg_id, "email", "out", texter.number,
                                     anchor - 5 * DAY + 3600, "Lovely, 30 croissants noted. Invoice to follow.",
                                     "Re: Studio order", sender=office))
    data.messages.sort(key=lambda m: (m.at, m.external_id))
    return data
