"""The store's schema as forward-only migrations, indexed by `PRAGMA user_version`.

A migration is a list of statements run in one transaction; never edit a released one, append.
The file is long because it is the schema's whole history, in order, one list per version: it
only grows, and splitting it would scatter what a reader needs side by side.
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
        # The index covers the first 8,000 characters of each body: a customer's own words come
        # first, and what follows in a long mail is mostly quoted history (indexed with the
        # message it quotes) and signatures. Indexing whole bodies made the first sync of a
        # mailbox four times slower (bench/email_sync.py). Delete and insert use the same slice.
        """CREATE TRIGGER message_fts_insert AFTER INSERT ON message BEGIN
            INSERT INTO message_fts(rowid, subject, body) VALUES (new.id, new.subject, substr(new.body, 1, 8000));
        END""",
        """CREATE TRIGGER message_fts_delete AFTER DELETE ON message BEGIN
            INSERT INTO message_fts(message_fts, rowid, subject, body)
                VALUES ('delete', old.id, old.subject, substr(old.body, 1, 8000));
        END""",
        """CREATE TRIGGER message_fts_update AFTER UPDATE OF subject, body ON message BEGIN
            INSERT INTO message_fts(message_fts, rowid, subject, body)
                VALUES ('delete', old.id, old.subject, substr(old.body, 1, 8000));
            INSERT INTO message_fts(rowid, subject, body) VALUES (new.id, new.subject, substr(new.body, 1, 8000));
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
    # 2: triage: tags, notes, drafts, templates, presence, customer attributes, merge history
    [
        "ALTER TABLE customer ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}'",
        """CREATE TABLE tag (
            customer_id INTEGER NOT NULL REFERENCES customer(id),
            name TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (customer_id, name)
        )""",
        "CREATE INDEX tag_name ON tag(name)",
        """CREATE TABLE note (
            id INTEGER PRIMARY KEY,
            customer_id INTEGER NOT NULL REFERENCES customer(id),
            author TEXT NOT NULL,
            body TEXT NOT NULL,
            created_at REAL NOT NULL
        )""",
        "CREATE INDEX note_customer ON note(customer_id, created_at)",
        """CREATE TABLE draft (
            customer_id INTEGER NOT NULL REFERENCES customer(id),
            agent TEXT NOT NULL,
            body TEXT NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (customer_id, agent)
        )""",
        """CREATE TABLE template (
            name TEXT PRIMARY KEY,
            body TEXT NOT NULL,
            updated_at REAL NOT NULL
        )""",
        """CREATE TABLE presence (
            agent TEXT NOT NULL,
            pid INTEGER NOT NULL,
            customer_id INTEGER,
            activity TEXT NOT NULL DEFAULT 'viewing' CHECK (activity IN ('viewing', 'replying')),
            updated_at REAL NOT NULL,
            PRIMARY KEY (agent, pid)
        )""",
        # Attachments the UI asked for and the engine fetches from the service (the UI never
        # calls a channel): pending -> done (with the saved path) or failed (with a sentence).
        """CREATE TABLE download (
            id INTEGER PRIMARY KEY,
            message_id INTEGER NOT NULL REFERENCES message(id),
            account TEXT NOT NULL,
            ref TEXT NOT NULL,
            name TEXT NOT NULL,
            folder TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
            path TEXT NOT NULL DEFAULT '',
            error TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )""",
        "CREATE INDEX download_pending ON download(state, account)",
        """CREATE TABLE merge_log (
            id INTEGER PRIMARY KEY,
            kept_id INTEGER NOT NULL,
            other_id INTEGER NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('merge', 'split')),
            moved TEXT NOT NULL,  -- JSON: identity ids, and for a merge the tags and notes it moved
            other_name TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            undone_at REAL
        )""",
    ],
    # 3: a fingerprint per message, so a different message reusing a known external id (a sender
    # reusing a Message-ID) is kept under its own id instead of being taken for a duplicate
    [
        "ALTER TABLE message ADD COLUMN fingerprint TEXT",
    ],
    # 4: raw bytes move to a file of their own (console/store/rawfile.py), named by their SHA-256;
    # the `raw` column is still read for messages stored before
    [
        "ALTER TABLE message ADD COLUMN raw_sha TEXT",
    ],
    # 5: each conversation keeps the key a reply with nothing but its subject finds it by, as the
    # channel's adapter gave it (email: the subject without "Re:" and the like). NULL for
    # conversations stored before, for which the folded subject stands in.
    [
        "ALTER TABLE conversation ADD COLUMN subject_key TEXT",
    ],
    # 6: the full-text index moves to a file of its own, ordered by time (console/store/
    # searchindex.py). The workspace keeps what the indexer has to (re)read: a queue written by
    # triggers in the same transaction as the messages and customers it names, and the id that
    # pairs the index file with this workspace. The new file is built from the messages at first
    # open, so the old index goes.
    [
        "DROP TRIGGER message_fts_insert",
        "DROP TRIGGER message_fts_delete",
        "DROP TRIGGER message_fts_update",
        "DROP TABLE message_fts",
        # AUTOINCREMENT: a sequence number is never reused, so the index's high-water mark never
        # skips a row (a message id can be reused after the newest message is deleted).
        # A change or a deletion keeps the text as it was (the part that is indexed): the index
        # keeps no copy of the text, and needs it to take the old words out.
        """CREATE TABLE search_queue (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            message_id INTEGER,
            customer_id INTEGER,
            conversation_id INTEGER,
            changed INTEGER NOT NULL DEFAULT 0,
            old_subject TEXT,
            old_body TEXT
        )""",
        """CREATE TRIGGER search_message_insert AFTER INSERT ON message BEGIN
            INSERT INTO search_queue (message_id) VALUES (new.id);
        END""",
        """CREATE TRIGGER search_message_delete AFTER DELETE ON message BEGIN
            INSERT INTO search_queue (message_id, changed, old_subject, old_body)
                VALUES (old.id, 1, old.subject, substr(old.body, 1, 8000));
        END""",
        """CREATE TRIGGER search_message_update AFTER UPDATE OF subject, body, sent_at ON message BEGIN
            INSERT INTO search_queue (message_id, changed, old_subject, old_body)
                VALUES (new.id, 1, old.subject, substr(old.body, 1, 8000));
        END""",
        # The index keeps each message's customer, which a merge or a split changes.
        """CREATE TRIGGER search_conversation_update AFTER UPDATE OF customer_id ON conversation BEGIN
            INSERT INTO search_queue (conversation_id) SELECT new.id WHERE new.customer_id != old.customer_id;
        END""",
        # `from:` finds customers by name, address or display name.
        """CREATE TRIGGER search_customer_insert AFTER INSERT ON customer BEGIN
            INSERT INTO search_queue (customer_id) VALUES (new.id);
        END""",
        """CREATE TRIGGER search_customer_update AFTER UPDATE OF name ON customer BEGIN
            INSERT INTO search_queue (customer_id) VALUES (new.id);
        END""",
        """CREATE TRIGGER search_customer_delete AFTER DELETE ON customer BEGIN
            INSERT INTO search_queue (customer_id) VALUES (old.id);
        END""",
        """CREATE TRIGGER search_identity_insert AFTER INSERT ON identity BEGIN
            INSERT INTO search_queue (customer_id) VALUES (new.customer_id);
        END""",
        """CREATE TRIGGER search_identity_update AFTER UPDATE OF customer_id, address, display_name ON identity BEGIN
            INSERT INTO search_queue (customer_id) VALUES (old.customer_id);
            INSERT INTO search_queue (customer_id) SELECT new.customer_id WHERE new.customer_id != old.customer_id;
        END""",
        """CREATE TRIGGER search_identity_delete AFTER DELETE ON identity BEGIN
            INSERT INTO search_queue (customer_id) VALUES (old.customer_id);
        END""",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "INSERT INTO meta (key, value) VALUES ('search_index', lower(hex(randomblob(16))))",
    ],
    # 7: the conversation list precomputed (console/store/lists.py): one row per status, channel
    # ('' = all) and customer, and the counts per tab; triggers note which customers changed, and
    # the store refreshes their rows before each commit.
    [
        """CREATE TABLE list_row (
            status TEXT NOT NULL,
            channel TEXT NOT NULL,
            customer_id INTEGER NOT NULL,
            since REAL NOT NULL,
            conversation_id INTEGER NOT NULL,
            threads INTEGER NOT NULL,
            PRIMARY KEY (status, channel, customer_id)
        ) WITHOUT ROWID""",
        "CREATE INDEX list_row_order ON list_row (status, channel, since, customer_id)",
        "CREATE INDEX list_row_customer ON list_row (customer_id)",
        """CREATE TABLE list_count (
            status TEXT NOT NULL,
            channel TEXT NOT NULL,
            customers INTEGER NOT NULL,
            threads INTEGER NOT NULL,
            PRIMARY KEY (status, channel)
        ) WITHOUT ROWID""",
        "CREATE TABLE list_dirty (customer_id INTEGER PRIMARY KEY)",
        """CREATE TRIGGER list_conversation_insert AFTER INSERT ON conversation BEGIN
            INSERT OR IGNORE INTO list_dirty (customer_id) VALUES (new.customer_id);
        END""",
        """CREATE TRIGGER list_conversation_update AFTER UPDATE OF status, customer_id, channel, waiting_since,
               last_inbound_at, last_message_at, snooze_until ON conversation BEGIN
            INSERT OR IGNORE INTO list_dirty (customer_id) VALUES (new.customer_id);
            INSERT OR IGNORE INTO list_dirty (customer_id) VALUES (old.customer_id);
        END""",
        """CREATE TRIGGER list_conversation_delete AFTER DELETE ON conversation BEGIN
            INSERT OR IGNORE INTO list_dirty (customer_id) VALUES (old.customer_id);
        END""",
        # Per-thread lists read the conversation table in each tab's order.
        """CREATE INDEX conversation_open_order ON conversation
            (status, COALESCE(waiting_since, last_inbound_at, last_message_at), id)""",
        "CREATE INDEX conversation_latest ON conversation (status, last_message_at)",
        # A customer's conversations by status, newest first: the refresh's lookups stay per customer
        # (with only the index above, SQLite walked every conversation of a status for each row).
        "DROP INDEX conversation_customer",
        "CREATE INDEX conversation_customer ON conversation (customer_id, status, last_message_at)",
        "CREATE INDEX conversation_assignee ON conversation (assignee, status)",
        # Presence by heartbeat, with the host, so a console can forget its own host's dead ones.
        "ALTER TABLE presence ADD COLUMN host TEXT NOT NULL DEFAULT ''",
        # Existing workspaces: every customer's rows are computed once, by the first commit.
        "INSERT INTO list_dirty (customer_id) SELECT DISTINCT customer_id FROM conversation",
    ],
    # 8: measuring and automation. An *episode* is one need of a customer in one conversation,
    # from their first message to its resolution, with the first response and the intervals we
    # owed them an answer, kept at write time (console/store/episodes.py) so that reports read
    # what they need instead of scanning messages. Triggers only note what changed in
    # `episode_change`; the store's hook turns that into episodes, events for the rules, and
    # SLA clocks to recompute, before each commit (the list's way, console/store/lists.py).
    [
        """CREATE TABLE episode (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversation(id),
            account TEXT NOT NULL,
            channel TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('new', 'reopened')),
            started_at REAL NOT NULL,
            first_response_at REAL,
            responder TEXT,
            last_inbound_at REAL,
            last_outbound_at REAL,
            owed_since REAL,
            owed TEXT NOT NULL DEFAULT '[]',  -- JSON: [[from, until], ...] answered owed intervals
            resolved_at REAL,
            resolution TEXT,  -- 'done' (closed) or 'quiet' (a new need after a quiet day)
            closed_at REAL  -- when it was marked done (resolved_at may be our last reply before)
        )""",
        "CREATE INDEX episode_started ON episode (started_at)",
        "CREATE INDEX episode_resolved ON episode (resolved_at)",
        "CREATE INDEX episode_conversation ON episode (conversation_id, id)",
        """CREATE TABLE episode_change (
            seq INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL,
            message_id INTEGER,
            old_status TEXT,
            new_status TEXT
        )""",
        """CREATE TRIGGER episode_message AFTER INSERT ON message BEGIN
            INSERT INTO episode_change (conversation_id, message_id) VALUES (new.conversation_id, new.id);
        END""",
        """CREATE TRIGGER episode_unsent AFTER UPDATE OF status ON message
            WHEN new.direction = 'out' AND new.status = 'failed' AND old.status IS DISTINCT FROM 'failed' BEGIN
            INSERT INTO episode_change (conversation_id, message_id, new_status)
                VALUES (new.conversation_id, new.id, 'unsent');
        END""",
        """CREATE TRIGGER episode_status AFTER UPDATE OF status ON conversation
            WHEN old.status != new.status BEGIN
            INSERT INTO episode_change (conversation_id, old_status, new_status) VALUES (new.id, old.status, new.status);
        END""",
        # SLA clocks: one per open conversation, the most urgent, kept by the engine's SLA duty
        # (console/sla_duty.py) for the conversations the hook or the triggers mark dirty.
        """CREATE TABLE sla_clock (
            conversation_id INTEGER PRIMARY KEY,
            policy TEXT NOT NULL,
            kind TEXT NOT NULL,
            started_at REAL NOT NULL,
            due_at REAL NOT NULL,
            target REAL NOT NULL,
            business INTEGER NOT NULL
        )""",
        "CREATE INDEX sla_clock_due ON sla_clock (due_at)",
        "CREATE TABLE sla_dirty (conversation_id INTEGER PRIMARY KEY)",
        """CREATE TRIGGER sla_customer_moved AFTER UPDATE OF customer_id ON conversation BEGIN
            INSERT INTO sla_dirty (conversation_id) VALUES (new.id) ON CONFLICT (conversation_id) DO NOTHING;
        END""",
        """CREATE TRIGGER sla_tag_added AFTER INSERT ON tag BEGIN
            INSERT INTO sla_dirty (conversation_id) SELECT id FROM conversation
                WHERE customer_id = new.customer_id AND status IN ('open', 'snoozed')
                ON CONFLICT (conversation_id) DO NOTHING;
        END""",
        """CREATE TRIGGER sla_tag_removed AFTER DELETE ON tag BEGIN
            INSERT INTO sla_dirty (conversation_id) SELECT id FROM conversation
                WHERE customer_id = old.customer_id AND status IN ('open', 'snoozed')
                ON CONFLICT (conversation_id) DO NOTHING;
        END""",
        # What happened, for the rules and the consoles' notifications (read by sequence).
        # AUTOINCREMENT: the rules' and the consoles' high-water marks never skip a reused number.
        """CREATE TABLE event (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            conversation_id INTEGER NOT NULL,
            message_id INTEGER,
            at REAL NOT NULL
        )""",
        """CREATE TABLE rule_firing (
            rule TEXT NOT NULL,
            event_key TEXT NOT NULL,
            conversation_id INTEGER,
            fired_at REAL NOT NULL,
            summary TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (rule, event_key)
        )""",
        "CREATE INDEX rule_firing_recent ON rule_firing (rule, fired_at)",
        # What rules (and later people) did to a conversation, shown in the timeline.
        """CREATE TABLE activity (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversation(id),
            at REAL NOT NULL,
            actor TEXT NOT NULL,
            text TEXT NOT NULL
        )""",
        "CREATE INDEX activity_conversation ON activity (conversation_id, at)",
        """CREATE TABLE csat (
            conversation_id INTEGER PRIMARY KEY REFERENCES conversation(id),
            episode_id INTEGER,
            message_id INTEGER,
            asked_at REAL,
            skipped TEXT NOT NULL DEFAULT '',
            rating INTEGER,
            comment TEXT NOT NULL DEFAULT '',
            rated_at REAL
        )""",
        "CREATE INDEX csat_rated ON csat (rated_at)",
        # Notices for the agents' consoles (a rule's `notify`).
        """CREATE TABLE notice (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            agent TEXT,
            conversation_id INTEGER,
            text TEXT NOT NULL
        )""",
        # Replies in a period, per agent, without reading every message.
        "CREATE INDEX message_replies ON message (sent_at) WHERE direction = 'out'",
        # Existing workspaces: their history becomes episodes at the first commit.
        """INSERT INTO episode_change (conversation_id, message_id)
            SELECT conversation_id, id FROM message ORDER BY sent_at, id""",
        """INSERT INTO episode_change (conversation_id, old_status, new_status)
            SELECT id, 'history', 'done' FROM conversation WHERE status = 'done'""",
        "INSERT INTO sla_dirty (conversation_id) SELECT id FROM conversation WHERE status IN ('open', 'snoozed')",
    ],
    # 9: outreach (console/outreach/): consent per identity x channel x purpose with its history,
    # unsubscribe tokens' key, segments, campaigns, their recipients and what the outbox needs to
    # tell marketing from replies. `identity.opted_out` is superseded by `consent` (a STOP on SMS
    # no longer blocks WhatsApp): what it held moves to the channel it was about, and nothing
    # reads or writes the column any more.
    [
        """CREATE TABLE consent (
            identity_id INTEGER NOT NULL REFERENCES identity(id),
            channel TEXT NOT NULL,
            purpose TEXT NOT NULL CHECK (purpose IN ('service', 'marketing')),
            state TEXT NOT NULL CHECK (state IN ('granted', 'withdrawn')),
            source TEXT NOT NULL DEFAULT '',
            agreed_text TEXT NOT NULL DEFAULT '',
            granted_at REAL,
            withdrawn_at REAL,
            withdrawn_source TEXT NOT NULL DEFAULT '',
            changed_at REAL NOT NULL,
            acknowledged_at REAL,
            PRIMARY KEY (identity_id, channel, purpose)
        )""",
        """CREATE TABLE consent_log (
            id INTEGER PRIMARY KEY,
            identity_id INTEGER NOT NULL REFERENCES identity(id),
            channel TEXT NOT NULL,
            purpose TEXT NOT NULL,
            state TEXT NOT NULL,
            source TEXT NOT NULL DEFAULT '',
            agreed_text TEXT NOT NULL DEFAULT '',
            reason TEXT NOT NULL DEFAULT '',
            agent TEXT NOT NULL DEFAULT '',
            message_id INTEGER,
            at REAL NOT NULL,
            recorded_at REAL NOT NULL
        )""",
        "CREATE INDEX consent_log_identity ON consent_log (identity_id, at)",
        """INSERT INTO consent (identity_id, channel, purpose, state, source, withdrawn_at, withdrawn_source, changed_at)
           SELECT i.id, CASE WHEN i.kind = 'phone' THEN 'sms' ELSE i.kind END, p.purpose, 'withdrawn', '',
                  COALESCE(i.opted_out_at, i.created_at), 'opted out (recorded before consent per channel)',
                  COALESCE(i.opted_out_at, i.created_at)
           FROM identity i CROSS JOIN (SELECT 'service' AS purpose UNION ALL SELECT 'marketing') p
           WHERE i.opted_out = 1""",
        """INSERT INTO consent_log (identity_id, channel, purpose, state, source, at, recorded_at)
           SELECT identity_id, channel, purpose, state, withdrawn_source, changed_at, changed_at FROM consent""",
        "CREATE TABLE outreach_key (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        # When a customer attribute was set: a campaign counts a conversion by it.
        """CREATE TABLE attribute_change (
            customer_id INTEGER NOT NULL REFERENCES customer(id),
            name TEXT NOT NULL,
            value TEXT NOT NULL,
            at REAL NOT NULL
        )""",
        "CREATE INDEX attribute_change_name ON attribute_change (name, customer_id, at)",
        """CREATE TABLE segment (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            query TEXT NOT NULL DEFAULT '',
            exclude TEXT NOT NULL DEFAULT '[]',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )""",
        """CREATE TABLE campaign (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            segment_id INTEGER REFERENCES segment(id),
            state TEXT NOT NULL DEFAULT 'draft'
                CHECK (state IN ('draft', 'running', 'paused', 'cancelled', 'finished')),
            reply_days INTEGER NOT NULL DEFAULT 7,
            convert_on TEXT NOT NULL DEFAULT '',
            convert_days INTEGER NOT NULL DEFAULT 7,
            holdout REAL NOT NULL DEFAULT 0,
            run_key TEXT NOT NULL DEFAULT '',
            launched_at REAL,
            launched_by TEXT NOT NULL DEFAULT '',
            finished_at REAL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )""",
        """CREATE TABLE campaign_step (
            id INTEGER PRIMARY KEY,
            campaign_id INTEGER NOT NULL REFERENCES campaign(id),
            position INTEGER NOT NULL,
            delay_seconds REAL NOT NULL DEFAULT 0,
            channel_rule TEXT NOT NULL DEFAULT 'last_used',
            channel_order TEXT NOT NULL DEFAULT '[]',
            texts TEXT NOT NULL DEFAULT '{}',
            UNIQUE (campaign_id, position)
        )""",
        # One row per recipient x step, made when the step is planned (launch, for the first):
        # queued (with its outbox row), excluded (with the reason) or holdout.
        """CREATE TABLE campaign_recipient (
            id INTEGER PRIMARY KEY,
            campaign_id INTEGER NOT NULL REFERENCES campaign(id),
            position INTEGER NOT NULL,
            customer_id INTEGER NOT NULL REFERENCES customer(id),
            state TEXT NOT NULL CHECK (state IN ('queued', 'excluded', 'holdout')),
            reason TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT '',
            channel TEXT NOT NULL DEFAULT '',
            account TEXT NOT NULL DEFAULT '',
            identity_id INTEGER,
            message_id INTEGER,
            outbox_id INTEGER,
            planned_at REAL NOT NULL,
            UNIQUE (campaign_id, position, customer_id)
        )""",
        "CREATE INDEX campaign_recipient_message ON campaign_recipient (message_id)",
        "CREATE INDEX campaign_recipient_outbox ON campaign_recipient (outbox_id)",
        "CREATE INDEX campaign_recipient_customer ON campaign_recipient (customer_id, campaign_id)",
        # What an outbox row is for: service (a reply), marketing, test (to our own addresses) or
        # ack (the one confirmation of an opt-out); and the reason code when restraint refused it.
        "ALTER TABLE outbox ADD COLUMN purpose TEXT NOT NULL DEFAULT 'service'",
        "ALTER TABLE outbox ADD COLUMN refusal TEXT NOT NULL DEFAULT ''",
        # Marketing messages handed to a channel, per customer: what the frequency cap counts.
        """CREATE TABLE marketing_send (
            outbox_id INTEGER PRIMARY KEY,
            customer_id INTEGER NOT NULL REFERENCES customer(id),
            at REAL NOT NULL
        )""",
        "CREATE INDEX marketing_send_customer ON marketing_send (customer_id, at)",
    ],
    # 10: the replies of a period with their author and channel, from the index alone (the
    # Reports screen, bench/reports.py).
    [
        "DROP INDEX message_replies",
        "CREATE INDEX message_replies ON message (sent_at, author, channel, status) WHERE direction = 'out'",
    ],
    # 11: a team on several machines (console/store/pg.py): who gave a conversation to its assignee
    # (on PostgreSQL the database sets it from the role that connects, so it cannot be forged),
    # and which engine claimed an outbox row (several engines deliver; one that died leaves its
    # claims to the others, console/store/outbox.py)
    [
        "ALTER TABLE conversation ADD COLUMN assigned_by TEXT",
        "ALTER TABLE outbox ADD COLUMN claimed_by INTEGER",
    ],
]

SCHEMA_VERSION = len(MIGRATIONS)
