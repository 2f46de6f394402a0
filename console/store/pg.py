"""A workspace on PostgreSQL: the same `Database` interface as console/store/db.py's SQLite one.

The store's mixins see no difference: `write()` is a transaction whose `before_commit` hooks run
just before COMMIT and `after_commit` hooks once it has, `read()` a consistent snapshot,
`query` / `query_one` return rows readable by name and by index, `?` placeholders (translated by
console/store/dialect.py), and `change_token()` tells whether anything changed since it was last
asked. What differs underneath:

- **Connections**: a psycopg pool (psycopg_pool); a thread borrows one connection for a whole
  transaction, and statements outside one run on any free connection. A statement inside a
  transaction always runs on that transaction's connection, whichever method it came through.
- **One writer at a time**, as on SQLite: every write transaction first takes one advisory
  transaction lock. The store's code reads, then writes (an identity looked up, then inserted;
  a list row recomputed from counts read in the same transaction), which is only right when no
  other transaction writes in between; SQLite's BEGIN IMMEDIATE guarantees it, this lock does the
  same here (claiming the outbox too: restraint counts what was sent, a refusal fails a message
  the episodes' hook must see; its `FOR UPDATE SKIP LOCKED` keeps out an engine taking over a
  send in doubt). Side transactions (`write(serial=False)`: taking over a send in doubt, raw
  bytes, the search indexer) do not wait for it, and run no hooks: they touch no conversation
  (the hooks have nothing to do) and must not wake the indexer (the indexer's own commits would
  wake it forever).
- **Changes** come by LISTEN/NOTIFY: statement triggers notify channel `console` with the table's
  name, and the list's refresh with the ids of the customers it recomputed (never any text). A
  thread of its own listens; `change_token()` is a counter it advances, read without a query. When
  the listening connection drops, the token raises `StoreUnavailable` until it is back, and then
  changes once more: whoever watches refreshes everything (notices sent meanwhile are lost).
- **A lost server** (restarted, unreachable) raises `StoreUnavailable`, a `StoreError` that says
  so in a sentence. A read is tried once more on a fresh connection first; a write is not (it
  may have committed): its caller repeats it, as every step of the store is safe to repeat.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from typing import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg.adapt
from psycopg import errors as pgerrors
from psycopg_pool import ConnectionPool, PoolTimeout

from console.store.db import StoreError, StoreRefused, StoreUnavailable
from console.store.dialect import POSTGRES, postgres_ddl, to_pyformat
from console.store.pgschema import EXTRAS, EXTRAS_VERSION, GRANTS
from console.store.schema import MIGRATIONS, SCHEMA_VERSION

log = logging.getLogger("console.store")

WRITE_LOCK = 0x636F6E736F6C65  # "console": the advisory lock of write transactions
MIGRATE_LOCK = WRITE_LOCK + 1
CONNECT_TIMEOUT = 5
POOL_SIZE = 12


def redact(url: str) -> str:
    """The URL without a password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


# ---- rows ---------------------------------------------------------------------------------------
_ROW_CLASSES: dict[tuple[str, ...], type] = {}


def _row_class(names: tuple[str, ...]) -> type:
    cls = _ROW_CLASSES.get(names)
    if cls is None:
        index: dict[str, int] = {}
        for number, name in enumerate(names):
            index.setdefault(name, number)
            index.setdefault(name.lower(), number)

        class Row(tuple):
            """A row readable by index and by column name, like sqlite3.Row (and dict(row) works)."""

            __slots__ = ()
            _index = index
            _names = names

            def __getitem__(self, key):
                if isinstance(key, str):
                    return tuple.__getitem__(self, self._index[key])
                return tuple.__getitem__(self, key)

            def keys(self) -> list[str]:
                return list(self._names)

        cls = _ROW_CLASSES[names] = Row
    return cls


def _rows(cursor):
    if cursor.description is None:
        return None
    cls = _row_class(tuple(column.name for column in cursor.description))
    return cls


def row_factory(cursor):
    cls = _rows(cursor)
    return (lambda values: cls(values)) if cls is not None else (lambda values: values)


class _NumericLoader(psycopg.adapt.Loader):
    """SUM() of integers is `numeric` in PostgreSQL: load whole numbers as int, like SQLite."""

    def load(self, data):
        text = bytes(data).decode()
        if "." in text or "e" in text.lower() or text in ("NaN", "Infinity", "-Infinity"):
            return float(text)
        return int(text)


# PostgreSQL's text cannot hold NUL, which customers' names and messages may (SQLite keeps them):
# text goes in with NUL written as ESC "0" (and ESC itself as ESC ESC) and comes back as it was.
# ESC is U+FFFF, a noncharacter no text is meant to hold, so the escape costs nothing in practice.
_ESC = "\uffff"


def nul_safe(text: str) -> str:
    return text.replace(_ESC, _ESC + _ESC).replace("\x00", _ESC + "0") if "\x00" in text or _ESC in text else text


def nul_restored(text: str) -> str:
    if _ESC not in text:
        return text
    out, i = [], 0
    while (j := text.find(_ESC, i)) >= 0:
        out.append(text[i:j])
        nxt = text[j + 1:j + 2]
        out.append("\x00" if nxt == "0" else _ESC)
        i = j + (2 if nxt in ("0", _ESC) else 1)
    out.append(text[i:])
    return "".join(out)


class _NulSafeStrDumper(psycopg.adapt.Dumper):
    """Python str as PostgreSQL text (of unknown type, as psycopg's own: the server infers it)."""

    oid = 0

    def dump(self, obj: str) -> bytes:
        return nul_safe(obj).encode()


class _NulSafeTextLoader(psycopg.adapt.Loader):
    def load(self, data) -> str:
        return nul_restored(bytes(data).decode())


# ---- a connection, as the store's code sees it --------------------------------------------------
class Connection:
    """A psycopg connection behind sqlite3.Connection's few methods the store uses."""

    def __init__(self, raw: psycopg.Connection):
        self.raw = raw

    def execute(self, sql: str, params=()):
        try:
            return self.raw.execute(to_pyformat(sql), params if params is not None else ())
        except psycopg.OperationalError as exc:
            raise _unavailable(exc) from None
        except pgerrors.InsufficientPrivilege as exc:
            raise _refused(exc) from None

    def executemany(self, sql: str, seq):
        cursor = self.raw.cursor()
        try:
            cursor.executemany(to_pyformat(sql), list(seq))
        except psycopg.OperationalError as exc:
            raise _unavailable(exc) from None
        except pgerrors.InsufficientPrivilege as exc:
            raise _refused(exc) from None
        return cursor

    def batches(self, sql: str, params=(), size: int = 2000, grow: bool = False):
        """The rows of a large result a batch at a time, through a server-side cursor (inside a
        transaction); with `grow`, each batch twice the one before."""
        with self.raw.cursor(name=f"batches_{threading.get_ident()}_{time.monotonic_ns()}") as cursor:
            try:
                cursor.execute(to_pyformat(sql), params)
                while rows := cursor.fetchmany(size):
                    yield rows
                    if grow:
                        size *= 2
            except psycopg.OperationalError as exc:
                raise _unavailable(exc) from None

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE


def _refused(exc: Exception) -> StoreRefused:
    """The authorship rules' refusal (console/store/pgschema.py) as one sentence for people: the
    transaction is rolled back by whoever opened it, so nothing of it was written."""
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StoreRefused(f"the database refused the change: {detail}")


def _unavailable(exc: Exception) -> StoreUnavailable:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StoreUnavailable(f"the workspace's database is unreachable ({detail}); console keeps trying")


class _Statements:
    """`db.conn` outside a transaction: each statement on a pooled connection, committed at once."""

    def __init__(self, db: "PgDatabase"):
        self.db = db
        self.in_transaction = False

    def execute(self, sql: str, params=()):
        return self.db._retrying(lambda conn: conn.execute(sql, params))


class PgDatabase:
    """A workspace in a PostgreSQL database, reachable from any thread."""

    dialect = POSTGRES
    errors = (psycopg.Error,)
    integrity_errors = (psycopg.IntegrityError,)

    def __init__(self, url: str, password: str | None = None, before_commit: tuple[Callable, ...] = (),
                 pool_size: int = POOL_SIZE, listen: bool = True):
        self.url = url
        self.path = None
        self.where = redact(url)
        self.before_commit = list(before_commit)
        self.after_commit: list[Callable[[], None]] = []
        self.lock = threading.RLock()  # for callers that serialise their own use (as with SQLite)
        self._local = threading.local()
        self._kwargs = dict(password=password, connect_timeout=CONNECT_TIMEOUT, application_name="console",
                            keepalives=1, keepalives_idle=5, keepalives_interval=2, keepalives_count=3)
        if password is None:
            del self._kwargs["password"]
        self._check_reachable()
        self.pool = ConnectionPool(url, min_size=1, max_size=pool_size, kwargs=self._kwargs,
                                   configure=self._configure, open=False, timeout=CONNECT_TIMEOUT + 5,
                                   name="console", reconnect_timeout=0)
        self.pool.open(wait=False)
        self.user = self.query_one("SELECT session_user")[0]
        self._migrate()
        # The workspace's owner and superusers may write as anyone (imports, `console migrate`);
        # an agent's role only as itself (console/store/pgschema.py).
        self.is_admin = bool(self.query_one("SELECT console_is_admin()")[0])
        self.listener = Listener(self) if listen else None

    # ---- connections ----------------------------------------------------------------------------
    def connect(self, autocommit: bool = True) -> psycopg.Connection:
        """A connection of its own, outside the pool (the listener's, a lock holder's)."""
        try:
            conn = psycopg.connect(self.url, autocommit=autocommit, **self._kwargs)
        except psycopg.OperationalError as exc:
            raise _unavailable(exc) from None
        self._configure(conn)
        return conn

    def _check_reachable(self) -> None:
        """One connection up front, so a wrong URL or password is one sentence, not a pool's retries."""
        try:
            psycopg.connect(self.url, autocommit=True, **self._kwargs).close()
        except psycopg.OperationalError as exc:
            # psycopg's text spans lines (and indents its hint with a tab): one line of it, whole.
            message = " ".join(str(exc).split()) or type(exc).__name__
            if "password" in message or "authentication" in message:
                raise StoreError(f"{self.where}: the database refused the login ({message}); "
                                 "check [store] url and password_cmd / password_env") from None
            raise StoreUnavailable(f"cannot reach the workspace's database {self.where}: {message}") from None

    @staticmethod
    def _configure(conn: psycopg.Connection) -> None:
        conn.autocommit = True
        conn.row_factory = row_factory
        conn.adapters.register_loader("numeric", _NumericLoader)
        conn.adapters.register_dumper(str, _NulSafeStrDumper)
        for name in ("text", "varchar"):
            conn.adapters.register_loader(name, _NulSafeTextLoader)
        conn.prepare_threshold = 2

    @contextlib.contextmanager
    def _borrow(self) -> Iterator[Connection]:
        current = getattr(self._local, "conn", None)
        if current is not None:
            yield current
            return
        try:
            with self.pool.connection() as raw:
                yield Connection(raw)
        except PoolTimeout as exc:
            raise _unavailable(exc) from None
        except psycopg.OperationalError as exc:
            raise _unavailable(exc) from None

    @property
    def conn(self):
        """This thread's transaction's connection; outside one, something with `execute` that
        runs each statement on its own (autocommit), as SQLite's connection does."""
        current = getattr(self._local, "conn", None)
        return current if current is not None else _Statements(self)

    # ---- schema ---------------------------------------------------------------------------------
    def _versions(self, conn: Connection) -> dict[str, int]:
        exists = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()[0]
        if not exists:
            return {}
        return {r[0]: r[1] for r in conn.execute("SELECT name, version FROM schema_version")}

    def _migrate(self) -> None:
        with self._borrow() as conn:
            versions = self._versions(conn)
        store, extras = versions.get("store", 0), versions.get("postgresql", 0)
        if store > SCHEMA_VERSION or extras > EXTRAS_VERSION:
            raise StoreError(f"{self.where} was written by a newer console (schema {store}.{extras}, this one knows "
                             f"{SCHEMA_VERSION}.{EXTRAS_VERSION}); upgrade console")
        if store == SCHEMA_VERSION and extras == EXTRAS_VERSION:
            return
        try:
            with self.write() as conn:
                conn.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATE_LOCK,))
                conn.execute("CREATE TABLE IF NOT EXISTS schema_version (name TEXT PRIMARY KEY, version BIGINT NOT NULL)")
                versions = self._versions(conn)  # again, under the lock: another console may have done it
                store, extras = versions.get("store", 0), versions.get("postgresql", 0)
                if store == 0:
                    conn.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
                triggers: dict[str, str] = {}
                for number in range(SCHEMA_VERSION):
                    for statement in MIGRATIONS[number]:
                        for translated in postgres_ddl(statement, triggers):
                            if number >= store:
                                conn.execute(translated)
                for number in range(extras, EXTRAS_VERSION):
                    for statement in EXTRAS[number]:
                        conn.execute(statement)
                conn.execute(GRANTS)
                for name, version in (("store", SCHEMA_VERSION), ("postgresql", EXTRAS_VERSION)):
                    conn.execute("""INSERT INTO schema_version (name, version) VALUES (?, ?)
                                    ON CONFLICT (name) DO UPDATE SET version = excluded.version""", (name, version))
        except (pgerrors.InsufficientPrivilege, StoreRefused) as exc:
            # The reason too: an owner without CREATEROLE is refused the agents' group role.
            reason = str(exc).strip().splitlines()[0].removeprefix("the database refused the change: ")
            raise StoreError(
                f"{self.where} holds schema {store}.{extras} and this console needs {SCHEMA_VERSION}."
                f"{EXTRAS_VERSION}; the role {self.user} may not change the schema ({reason}): run `console check` "
                "once as the workspace's owner (README: Running a team, upgrading the schema)") from None

    def schema_version(self) -> int:
        with self._borrow() as conn:
            return self._versions(conn).get("store", 0)

    def columns(self, table: str) -> list[str]:
        return [r[0] for r in self.query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = ? ORDER BY ordinal_position", (table,))]

    @property
    def claim_grace(self) -> float:
        from console.store.pglocks import CLAIM_GRACE

        return CLAIM_GRACE

    def claim_gone_clause(self, claimer: str, claimed_at: str, grace: bool = True) -> tuple[str, list]:
        """SQL: an outbox claim's engine is gone (its token's advisory lock is held by nobody),
        and, with `grace`, for longer than an engine that lost its connection takes to be back."""
        from console.store.pglocks import gone_clause

        return gone_clause(claimer, claimed_at), [time.time() - (self.claim_grace if grace else 0.0)]

    def leases(self):
        from console.store.pglocks import PgLeases

        return PgLeases(self)

    def ids_taken(self, conn: Connection, tables: list[str], column: str = "id") -> None:
        """After rows were inserted with ids of their own (an import, `console migrate`): each
        table's identity sequence moves past the highest id, so new rows never collide."""
        for table in tables:
            conn.execute(f"""SELECT setval(pg_get_serial_sequence('{table}', '{column}'),
                                           GREATEST((SELECT max({column}) FROM {table}), 1))""")

    # ---- transactions ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def write(self, serial: bool = True) -> Iterator[Connection]:
        current = getattr(self._local, "conn", None)
        if current is not None:  # a write inside a write (or a read) of this thread: one transaction
            yield current
            return
        with self._borrow() as conn:
            self._local.conn = conn
            try:
                conn.execute("BEGIN")
                if serial:
                    conn.execute("SELECT pg_advisory_xact_lock(?)", (WRITE_LOCK,))
                try:
                    yield conn
                    if serial:
                        for hook in self.before_commit:
                            hook(conn)
                except BaseException:
                    with contextlib.suppress(psycopg.Error, StoreError):
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                self._local.conn = None
        if serial:
            for hook in self.after_commit:
                hook()

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A consistent snapshot for several queries."""
        current = getattr(self._local, "conn", None)
        if current is not None:
            yield current
            return
        with self._borrow() as conn:
            self._local.conn = conn
            try:
                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                try:
                    yield conn
                finally:
                    with contextlib.suppress(psycopg.Error, StoreError):
                        conn.execute("COMMIT")
            finally:
                self._local.conn = None

    def query(self, sql: str, params: tuple | list | dict = ()) -> list:
        return self._retrying(lambda conn: conn.execute(sql, params).fetchall())

    def query_one(self, sql: str, params: tuple | list | dict = ()):
        return self._retrying(lambda conn: conn.execute(sql, params).fetchone())

    def _retrying(self, work):
        """A statement outside a transaction, tried again once on a fresh connection when the one it
        had was cut (a restarted server leaves every pooled connection dead)."""
        if getattr(self._local, "conn", None) is not None:
            return work(self._local.conn)
        try:
            with self._borrow() as conn:
                return work(conn)
        except StoreUnavailable:
            self.pool.check()  # drop the dead connections
            with self._borrow() as conn:
                return work(conn)

    # ---- changes ----------------------------------------------------------------------------
    def change_token(self):
        """Different from the last one when any console committed something since (or the
        connection that listens for it was lost and is back). Raises StoreUnavailable while the
        server cannot be reached."""
        if self.listener is None:
            raise StoreError("this connection does not listen for changes")
        return self.listener.token()

    data_version = change_token

    def checkpoint_in_background(self, every: float = 0.5) -> None:
        """SQLite's concern (its WAL); PostgreSQL checkpoints by itself."""

    def stop_background_checkpoints(self) -> None:
        pass

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
        self.pool.close()


class Listener:
    """A thread that LISTENs on `console` and counts notices; reconnects when the server goes."""

    def __init__(self, db: PgDatabase):
        self.db = db
        self._count = 0
        self._epoch = 0
        self._up = threading.Event()
        self._stop = threading.Event()
        self._changed: list[Callable[[], None]] = []
        self.customers: set[int] = set()  # customer ids named by notices since the last token read
        self._lock = threading.Lock()
        self._conn: psycopg.Connection | None = None
        self._wakeup = os.pipe()  # written by close(): the thread's select returns at once
        self._thread = threading.Thread(target=self._run, name="pg-listen", daemon=True)
        self._connect()
        self._thread.start()

    def _connect(self) -> bool:
        try:
            conn = self.db.connect()
            conn.execute("LISTEN console")
        except (StoreError, psycopg.Error) as exc:
            log.warning("listening for changes: %s", exc)
            return False
        self._conn = conn
        with self._lock:
            self._epoch += 1  # whatever happened while nobody listened: refresh everything
        self._up.set()
        return True

    def _run(self) -> None:
        delay, quiet = 0.2, 0
        while not self._stop.is_set():
            if self._conn is None:
                if self._stop.wait(delay):
                    return
                if not self._connect():
                    delay = min(delay * 2, 2.0)
                    continue
                delay = 0.2
            try:
                ready, _, _ = select.select([self._conn.fileno(), self._wakeup[0]], [], [], 1.0)
                if self._stop.is_set():
                    return
                if ready:
                    notices = list(self._conn.notifies(timeout=0.0))
                    if notices:
                        quiet = 0
                        self._noticed(notices)
                    continue
                quiet += 1
                if quiet >= 2:  # a quiet while: make sure the connection is still there
                    quiet = 0
                    self._conn.execute("SELECT 1")
            except (psycopg.Error, OSError, ValueError):
                if self._stop.is_set():
                    return
                log.warning("the connection listening for changes was lost; reconnecting")
                self._up.clear()
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = None

    def _noticed(self, notices) -> None:
        with self._lock:
            self._count += len(notices)
            for notice in notices:
                if notice.payload.startswith("customers:"):
                    self.customers.update(int(x) for x in notice.payload[10:].split(",") if x.isdigit())
        for callback in list(self._changed):
            callback()

    def token(self) -> tuple[int, int]:
        if not self._up.is_set():
            raise StoreUnavailable(f"the workspace's database {self.db.where} is unreachable; console keeps trying")
        with self._lock:
            return self._epoch, self._count

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from the listening thread) after every notice."""
        self._changed.append(callback)

    def close(self) -> None:
        self._stop.set()
        os.write(self._wakeup[1], b"x")
        self._thread.join(timeout=3)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        for fd in self._wakeup:
            os.close(fd)
