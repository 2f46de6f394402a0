"""The store's schema as forward-only migrations, indexed by `PRAGMA user_version`.

A migration is a list of statements run in one transaction; never edit a released one, append.
"""

from __future__ import annotations

MIGRATIONS: list[list[str]] = [
    # 1: the foundation
    [
        """CREATE TABLE customer (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )""",
        """CREATE TABLE identity (
            id INTEGER PRIMARY KEY,
            customer_id INTEGER NOT NULL REFERENCES customer(id),
            kind TEXT NOT NULL,
            address TEXT NOT NULL,
            display_name TEXT NOT NULL DEFAULT '',
            opted_out INTEGER NOT NULL DEFAULT 0,
            opted_out_at REAL,
            created_at REAL NOT NULL,
            UNIQUE (kind, address)
        )""",
        "CREATE INDEX identity_customer ON identity(customer_id)",
        """CREATE TABLE account (
            name TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'idle',
            detail TEXT NOT NULL DEFAULT '',
            progress_done INTEGER,
            progress_total INTEGER,
            last_ok_at REAL,
            updated_at REAL NOT NULL
        )""",
        """CREATE TABLE cursor (
            account TEXT PRIMARY KEY,
            value TEXT,
            updated_at REAL NOT NULL
        )""",
        """CREATE TABLE conversation (
            id INTEGER PRIMARY KEY,
            account TEXT NOT NULL,
            thread_key TEXT NOT NULL,
            channel TEXT NOT NULL,
            customer_id INTEGER NOT NULL REFERENCES customer(id),
            identity_id INTEGER NOT NULL REFERENCES identity(id),
            subject TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'open'
                CHECK (status IN ('open', 'waiting', 'snoozed', 'done')),
            snooze_until REAL,
            assignee TEXT,
            waiting_since REAL,
            last_inbound_at REAL,
            last_outbound_at REAL,
            last_message_at REAL NOT NULL,
            preview TEXT NOT NULL DEFAULT '',
            message_count INTEGER NOT NULL DEFAULT 0,
            UNIQUE (account, thread_key)
        )""",
        # Covering index for the conversation list: filter by status, group by customer.
        """CREATE INDEX conversation_list ON conversation
            (status, customer_id, waiting_since, last_inbound_at, last_message_at, snooze_until, channel)""",
        "CREATE INDEX conversation_customer ON conversation(customer_id)",
        """CREATE TABLE message (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversation(id),
            account TEXT NOT NULL,
            external_id TEXT NOT NULL,
            channel TEXT NOT NULL,
            direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            identity_id INTEGER NOT NULL REFERENCES identity(id),
            sent_at REAL NOT NULL,
            subject TEXT NOT NULL DEFAULT '',
            body TEXT NOT NULL DEFAULT '',
            html TEXT,
            raw BLOB,
            attachments TEXT,
            status TEXT,
            status_detail TEXT NOT NULL DEFAULT '',
            author TEXT,
            edited INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            UNIQUE (account, external_id)
        )""",
        "CREATE INDEX message_conversation ON message(conversation_id, sent_at)",
        """CREATE VIRTUAL TABLE message_fts USING fts5(
            subject, body, content='message', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
        )""",
        """CREATE TRIGGER message_fts_insert AFTER INSERT ON message BEGIN
            INSERT INTO message_fts(rowid, subject, body) VALUES (new.id, new.subject, new.body);
        END""",
        """CREATE TRIGGER message_fts_delete AFTER DELETE ON message BEGIN
            INSERT INTO message_fts(message_fts, rowid, subject, body)
                VALUES ('delete', old.id, old.subject, old.body);
        END""",
        """CREATE TRIGGER message_fts_update AFTER UPDATE OF subject, body ON message BEGIN
            INSERT INTO message_fts(message_fts, rowid, subject, body)
                VALUES ('delete', old.id, old.subject, old.body);
            INSERT INTO message_fts(rowid, subject, body) VALUES (new.id, new.subject, new.body);
        END""",
        """CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            message_id INTEGER NOT NULL UNIQUE REFERENCES message(id),
            account TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'cancelled')),
            idempotency_key TEXT NOT NULL,
            options TEXT NOT NULL DEFAULT '{}',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_try_at REAL NOT NULL,
            last_error TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )""",
        "CREATE INDEX outbox_due ON outbox(state, next_try_at)",
    ],
]

SCHEMA_VERSION = len(MIGRATIONS)
