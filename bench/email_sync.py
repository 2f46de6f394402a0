"""Email initial and incremental sync against mbsync (isync), on the same Dovecot, in the same run.

    .venv/bin/python bench/email_sync.py [--messages 20000] [--runs 3]

1. A Maildir of --messages messages is generated once (deterministic seed) and cached under
   bench/.cache/mail-<N>-v1/: bodies of 2-50 KB mostly, threads with In-Reply-To/References,
   ~30% multipart/alternative with an HTML part, ~5% with a PDF or image attachment of 50-500 KB,
   some quoted-printable UTF-8 and RFC 2047 subjects.
2. A throw-away Dovecot (tests/servers/dovecot.py) serves a copy of it on 127.0.0.1 over
   implicit TLS with its self-signed certificate. Before timing, Dovecot builds its index and
   every message file is read once, so neither client pays for a cold server or a cold disk.
3. Initial sync, --runs times, interleaved: mbsync downloading the whole mailbox (all folders)
   to a fresh Maildir on the same disk, vs console's `Engine(ws, store).run(once=True)` on a fresh
   Store with the email account configured from TOML: IMAP fetch, MIME parse, store and FTS index.
   Console is timed in process, from opening the store to the end of the run.
4. Incremental sync with nothing new: mbsync again on its Maildir, console again on its store.

Medians of --runs; ratios are console / mbsync. Goals: initial <= 1.5x mbsync, incremental <= mbsync.
CONSOLE_BENCH_EXTRA adds TOML keys to console's email account, e.g. 'parse_workers = 2'.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import quopri
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from email.header import Header
from email.utils import format_datetime
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # servers.dovecot (and the conftest helpers it uses)
sys.path.insert(0, str(HERE))

from sync_probe import Probe  # noqa: E402

CACHE = HERE / ".cache"
SEED = 20260302
VERSION = 1
SHOP = "shop@acme.test"

WORDS = ("the order cake box delivery invoice please thanks could would pickup tomorrow friday price "
         "quote candles card birthday wedding dozen croissants bread sourdough rye gluten free vegan "
         "allergy nuts address payment refund receipt number account morning afternoon evening "
         "store shop bakery question about your we our they them this that with from have been will "
         "can not yes no maybe sure great perfect sorry late early again still also just only more "
         "less some many every each other another first last next week month year day time today").split()
ACCENTED = ("café crème brûlée naïve jalapeño Müller Straße smörgåsbord €40 ½ déjà vu — “quoted”").split()
FIRST = "Maria Kofi Ann Li Sven Aiko Priya Omar Lena Tomás Chloé Jonas Fatima Yusuf Elena Raj Nora Ivan Sara Ben".split()
LAST = "Lopez Mensah O'Neil Wang Berg Tanaka Shah Haddad Novak García Dubois Weber Khan Demir Rossi Patel Lund Petrov Cohen Kim".split()
DOMAINS = "example.com example.net example.org mail.example gmail.example outlook.example".split()


# ---- the mailbox -------------------------------------------------------------------------------------

class _Text:
    """Cheap deterministic prose: windows of one big pre-made text, wrapped at 72 columns."""

    def __init__(self, rnd: random.Random):
        lines, line = [], []
        width = 0
        for _ in range(400_000):
            word = rnd.choice(ACCENTED) if rnd.random() < 0.01 else rnd.choice(WORDS)
            if width + len(word) + 1 > 72:
                lines.append(" ".join(line))
                line, width = [], 0
                if rnd.random() < 0.12:
                    lines.append("")
            line.append(word)
            width += len(word) + 1
        self.blob = "\n".join(lines)

    def take(self, rnd: random.Random, size: int) -> str:
        start = rnd.randrange(0, len(self.blob) - size - 1)
        start = self.blob.find("\n", start) + 1
        return self.blob[start:start + size].rsplit("\n", 1)[0] + "\n"


def _body_size(rnd: random.Random) -> int:
    """Bytes of body text: 2-50 KB mostly (log-uniform), a few larger."""
    if rnd.random() < 0.03:
        return rnd.randint(50_000, 120_000)
    return int(2_000 * (25 ** rnd.random()))


def _b64(data: bytes) -> str:
    text = base64.b64encode(data).decode()
    return "\r\n".join(text[i:i + 76] for i in range(0, len(text), 76))


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def make_message(n: int, rnd: random.Random, text: _Text, people: list[tuple[str, str]],
                 threads: list[list[str]], when: float) -> bytes:
    name, addr = rnd.choice(people)
    msgid = f"<bench-{n:06d}.{rnd.getrandbits(32):08x}@{addr.split('@')[1]}>"
    if threads and rnd.random() < 0.6:  # a reply in an existing thread
        thread = rnd.choice(threads[-3000:])
        refs = thread[-10:] if len(thread) > 10 else list(thread)
        headers_refs = [f"In-Reply-To: {thread[-1]}", "References: " + "\r\n ".join(refs)]
        subject_base = f"Re: Order #{int(thread[0][7:13]) % 9000 + 1000}"
        thread.append(msgid)
    else:
        headers_refs = []
        subject_base = f"Order #{n % 9000 + 1000}"
        threads.append([msgid])
    ours = rnd.random() < 0.12  # a copy of our own reply, e.g. Bcc to ourselves
    sender = f"Acme Bakery <{SHOP}>" if ours else f"{name} <{addr}>"
    to = f"{name} <{addr}>" if ours else f"Acme Bakery <{SHOP}>"
    subject = subject_base + " " + " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(1, 5)))
    if rnd.random() < 0.1:
        subject = Header(subject + " " + rnd.choice(ACCENTED), "utf-8").encode()
    date = format_datetime(datetime.fromtimestamp(when, timezone.utc))
    headers = [
        "Return-Path: <" + (SHOP if ours else addr) + ">",
        f"Received: from mx.{addr.split('@')[1]} (mx.{addr.split('@')[1]} [192.0.2.{n % 250 + 1}])\r\n"
        f"\tby mail.acme.test with ESMTPS id {rnd.getrandbits(40):010x}\r\n\tfor <{SHOP}>; {date}",
        f"From: {sender}", f"To: {to}", f"Subject: {subject}", f"Date: {date}", f"Message-ID: {msgid}",
        *headers_refs, "MIME-Version: 1.0",
    ]
    if rnd.random() < 0.05:
        headers.append(f"Reply-To: {name} <billing@{addr.split('@')[1]}>")
    size = _body_size(rnd)
    alternative = rnd.random() < 0.30
    attachment = rnd.random() < 0.05
    plain = text.take(rnd, size // 2 if alternative else size)
    qp = not plain.isascii()
    plain_part = ("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: "
                  + ("quoted-printable\r\n\r\n" + quopri.encodestring(_crlf(plain).encode()).decode()
                     if qp else "7bit\r\n\r\n" + _crlf(plain)))
    if alternative:
        paras = "".join(f"<p>{p.replace(chr(10), ' ')}</p>\n" for p in plain.split("\n\n") if p.strip())
        html = (f"<html><head><style>p{{font-family:sans-serif}}</style></head><body>\n{paras}"
                f"<p><a href=\"https://shop.example/o/{n}\">your order</a></p></body></html>\n")
        html_part = ("Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
                     + quopri.encodestring(_crlf(html).encode()).decode())
        alt_b = f"=_alt_{n:06d}"
        content = (f"Content-Type: multipart/alternative; boundary=\"{alt_b}\"\r\n\r\n"
                   f"--{alt_b}\r\n{plain_part}\r\n--{alt_b}\r\n{html_part}\r\n--{alt_b}--\r\n")
    else:
        content = plain_part
    if attachment:
        kind = rnd.choice([("application/pdf", "invoice-{}.pdf", b"%PDF-1.7\n"),
                           ("image/jpeg", "photo-{}.jpg", b"\xff\xd8\xff\xe0"),
                           ("image/png", "cake-{}.png", b"\x89PNG\r\n\x1a\n")])
        data = kind[2] + rnd.randbytes(rnd.randint(50_000, 500_000) * 3 // 4)
        filename = kind[1].format(n)
        mix_b = f"=_mix_{n:06d}"
        content = (f"Content-Type: multipart/mixed; boundary=\"{mix_b}\"\r\n\r\n"
                   f"--{mix_b}\r\n{content}\r\n--{mix_b}\r\n"
                   f"Content-Type: {kind[0]}; name=\"{filename}\"\r\n"
                   f"Content-Disposition: attachment; filename=\"{filename}\"\r\n"
                   f"Content-Transfer-Encoding: base64\r\n\r\n{_b64(data)}\r\n--{mix_b}--\r\n")
    return ("\r\n".join(headers) + "\r\n" + content).encode()


def mailbox(count: int) -> Path:
    """The cached Maildir (cur/new/tmp) of `count` messages, generated if missing."""
    folder = CACHE / f"mail-{count}-v{VERSION}"
    if (folder / ".complete").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    rnd = random.Random(SEED)
    text = _Text(rnd)
    people = []
    for i in range(max(50, count // 8)):
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        people.append((f"{first} {last}", f"{first.lower()}.{last.lower().replace(chr(39), '')}{i}@{rnd.choice(DOMAINS)}"
                       .encode("ascii", "ignore").decode()))
    for leaf in ("cur", "new", "tmp"):
        (folder / leaf).mkdir(parents=True)
    threads: list[list[str]] = []
    when = datetime(2024, 3, 1, tzinfo=timezone.utc).timestamp()
    total = 0
    for n in range(count):
        when += rnd.expovariate(1 / (2 * 365 * 86400 / count))
        raw = make_message(n, rnd, text, people, threads, when)
        total += len(raw)
        (folder / "cur" / f"{int(when)}.M{n:06d}P1.bench:2,S").write_bytes(raw)
    (folder / ".complete").write_text(f"{count} messages, {total} bytes\n")
    print(f"generated {folder} ({count:,} messages, {total / 1e6:.0f} MB) in {time.perf_counter() - started:.0f} s")
    return folder


# ---- the clients -------------------------------------------------------------------------------------

def mbsync_config(server, maildir: Path, where: Path) -> Path:
    rc = where / "mbsyncrc"
    maildir.mkdir(parents=True, exist_ok=True)
    rc.write_text(f"""IMAPAccount bench
Host localhost
Port {server.port}
User {server.user}
Pass {server.password}
SSLType IMAPS
CertificateFile {server.cert}

IMAPStore far
Account bench

MaildirStore near
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel bench
Far :far:
Near :near:
Patterns *
Create Near
Sync Pull
SyncState *
""")
    return rc


def run_mbsync(rc: Path, server=None) -> float:
    probe = Probe(server.proc.pid).start() if server is not None else None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(["mbsync", "-q", "-c", str(rc), "bench"], check=True)
    elapsed = time.perf_counter() - started
    if probe is not None:
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        probe.stop()
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        print(f"  mbsync: wall {elapsed:.2f} s, cpu {cpu:.2f} s; dovecot cpu {probe.server:.2f} s", flush=True)
    return elapsed


def console_workspace(server, data_dir: Path):
    from console.config import parse

    text = f"""[workspace]
name = "Bench"
data_dir = "{data_dir}"

[[accounts]]
kind = "email"
name = "mail"
email = "{server.user}"
display_name = "Acme Bakery"
imap_host = "127.0.0.1"
imap_port = {server.port}
imap_user = "{server.user}"
password_env = "CONSOLE_BENCH_MAIL_PASSWORD"
ca_file = "{server.cert}"
sent_folder = "Sent"
smtp_host = "127.0.0.1"
smtp_port = 1
""" + os.environ.get("CONSOLE_BENCH_EXTRA", "")
    os.environ["CONSOLE_BENCH_MAIL_PASSWORD"] = server.password
    return parse(text, data_dir / "config.toml")


def run_console(ws, profile: Path | None = None, server=None) -> tuple[float, int]:
    """Seconds for one `Engine.run(once=True)` on the workspace's store (opened and closed inside).
    With `server`, a probe reports where the CPU time went (bench/sync_probe.py)."""
    from console.store import Store
    from console.sync import Engine

    ws.data_dir.mkdir(parents=True, exist_ok=True)
    probe = undo = None
    if server is not None:
        probe = Probe(server.proc.pid)
        undo = instrument(probe)
        probe.start()
    profiler = None
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    store = Store(ws.store_path)
    failed = asyncio.run(Engine(ws, store).run(once=True))
    synced = time.perf_counter() - started
    index = getattr(store, "index", None)  # before console/store/searchindex.py the index was written inline
    while index is not None and not index.settle(timeout=1):
        pass
    elapsed = time.perf_counter() - started
    if elapsed - synced > 0.05:
        print(f"  console: synced in {synced:.2f} s, everything searchable at {elapsed:.2f} s", flush=True)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    count = store.count_messages()
    store.close()
    if probe is not None:
        probe.stop()
        undo()
        print(probe.report(elapsed), flush=True)
    if failed:
        raise RuntimeError(f"console sync failed: {failed}")
    return elapsed, count


def instrument(probe: Probe):
    """Time the store's and the adapter's calls; returns the function that undoes it."""
    from console.channels.email.pull import Puller
    from console.store import Store
    from console.store.rawfile import RawFile

    originals = []
    for owner, name, label in ((Store, "apply_pull", "store.apply_pull"), (Puller, "pull", "adapter pull (thread)"),
                               (Puller, "_sync", "adapter fetch+parse"), (RawFile, "put", "raw file put")):
        original = getattr(owner, name)
        originals.append((owner, name, original))

        def timed(*args, _original=original, _label=label, **kwargs):
            with probe.call(_label):
                return _original(*args, **kwargs)

        setattr(owner, name, timed)

    def undo() -> None:
        for owner, name, original in originals:
            setattr(owner, name, original)

    return undo


def count_maildir(path: Path) -> int:
    return sum(1 for leaf in ("cur", "new") for folder in path.rglob(leaf) if folder.is_dir()
               for _ in folder.iterdir())


def warm(server, source: Path) -> None:
    """Let Dovecot index the mailbox and pull every file into the page cache before timing."""
    import imaplib
    import ssl

    for path in (server.maildir / "cur").iterdir():
        with open(path, "rb") as f:
            while f.read(1 << 20):
                pass
    conn = imaplib.IMAP4_SSL("127.0.0.1", server.port, ssl_context=ssl.create_default_context(cafile=str(server.cert)))
    conn.login(server.user, server.password)
    conn.select("INBOX", readonly=True)
    conn.uid("FETCH", "1:*", "(FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    conn.logout()


def fmt(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", type=Path, help="write a cProfile of console's last initial sync here")
    parser.add_argument("--cpu", action="store_true", help="report CPU per thread, worker and Dovecot (sync_probe.py)")
    parser.add_argument("--no-duties", action="store_true",
                        help="the engine without its duties (SLA, rules, CSAT, campaigns), which run(once=True) runs once")
    args = parser.parse_args()
    if args.no_duties:
        import console.duties

        console.duties.FACTORIES[:] = []
    if not shutil.which("mbsync"):
        sys.exit("mbsync is not installed: sudo apt-get install isync")

    from servers.dovecot import Dovecot

    source = mailbox(args.messages)
    size = sum(p.stat().st_size for p in (source / "cur").iterdir())
    CACHE.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="email-sync-", dir=CACHE))  # the same disk as the clients' output
    server = Dovecot(work / "dovecot")
    try:
        target = server.maildir / "cur"
        target.rmdir()
        subprocess.run(["cp", "-r", str(source / "cur"), str(target)], check=True)
        if os.getuid() == 0:
            subprocess.run(["chown", "-R", f"{server.uid}:{server.gid}", str(target)], check=True)
        server.start()
        warm(server, source)
        print(f"mailbox: {args.messages:,} messages, {size / 1e6:.0f} MB, Dovecot "
              f"{subprocess.run([server.binary, '--version'], capture_output=True, text=True).stdout.strip()} "
              f"on 127.0.0.1 (IMAPS), {os.cpu_count()} cores")

        initial_m, initial_c, inc_m, inc_c = [], [], [], []
        for run in range(args.runs):  # interleaved, alternating who goes first
            out = work / f"run{run}"
            out.mkdir()
            rc = mbsync_config(server, out / "mbsync", out)
            ws = console_workspace(server, out / "console")
            last = run == args.runs - 1
            order = ("mbsync", "console") if run % 2 == 0 else ("console", "mbsync")
            for who in order:
                if who == "mbsync":
                    initial_m.append(run_mbsync(rc, server if args.cpu else None))
                    got = count_maildir(out / "mbsync")
                else:
                    seconds, got = run_console(ws, args.profile if last else None, server if args.cpu else None)
                    initial_c.append(seconds)
                if got != args.messages:
                    raise RuntimeError(f"{who} has {got} messages, expected {args.messages}")
            for who in order:
                if who == "mbsync":
                    inc_m.append(run_mbsync(rc))
                else:
                    inc_c.append(run_console(ws)[0])
            print(f"  run {run + 1}: initial mbsync {fmt(initial_m[-1])}, console {fmt(initial_c[-1])}; "
                  f"incremental mbsync {fmt(inc_m[-1])}, console {fmt(inc_c[-1])}", flush=True)
            if not last:
                shutil.rmtree(out)
    finally:
        server.stop()
        server.remove()
        shutil.rmtree(work, ignore_errors=True)

    m, c = statistics.median(initial_m), statistics.median(initial_c)
    print(f"initial sync, median of {args.runs}: mbsync {fmt(m)} ({args.messages / m:,.0f} msg/s), "
          f"console {fmt(c)} ({args.messages / c:,.0f} msg/s), ratio {c / m:.2f}x (goal <= 1.5x)")
    m, c = statistics.median(inc_m), statistics.median(inc_c)
    print(f"incremental sync (nothing new), median of {args.runs}: mbsync {fmt(m)}, console {fmt(c)}, "
          f"ratio {c / m:.2f}x (goal <= 1.0x)")


if __name__ == "__main__":
    main()
