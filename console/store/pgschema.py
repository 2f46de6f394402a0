"""PostgreSQL's part of the schema: the plpgsql versions of the migrations' triggers, and what only
PostgreSQL has (its search tables, raw mail, change notices, authorship rules).

The migrations of console/store/schema.py are the one schema; console/store/dialect.py translates
their tables and indexes and takes each trigger's PostgreSQL version from `TRIGGERS` here, by the
trigger's name. A migration that adds a trigger adds its version here too (a test fails until it
does). `EXTRAS` are PostgreSQL-only migrations, numbered apart (`schema_version` row
'postgresql'): forward-only like the others, never edited once released.
"""

from __future__ import annotations


def _row_trigger(name: str, when: str, table: str, body: str, condition: str = "") -> list[str]:
    """A plpgsql function and the row trigger that runs it (PostgreSQL triggers call functions)."""
    return [
        f"""CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $fn$
            BEGIN {body} RETURN NULL; END $fn$""",
        f"CREATE TRIGGER {name} {when} ON {table} FOR EACH ROW {condition} EXECUTE FUNCTION {name}()",
    ]


# SQLite's FTS5 index of the first schema versions: PostgreSQL never had it.
SQLITE_ONLY_TRIGGERS = {"message_fts_insert", "message_fts_delete", "message_fts_update"}
SQLITE_ONLY_TABLES = {"message_fts"}

_DIRTY = "INSERT INTO list_dirty (customer_id) VALUES ({}) ON CONFLICT DO NOTHING;"
_SLA_DIRTY = "INSERT INTO sla_dirty (conversation_id) {} ON CONFLICT (conversation_id) DO NOTHING;"

TRIGGERS: dict[str, list[str]] = {
    # The search queue (schema 6): on PostgreSQL the indexer recomputes a message's document
    # from its row, so the old text is not needed; the columns stay for one schema.
    "search_message_insert": _row_trigger(
        "search_message_insert", "AFTER INSERT", "message",
        "INSERT INTO search_queue (message_id) VALUES (NEW.id);"),
    "search_message_delete": _row_trigger(
        "search_message_delete", "AFTER DELETE", "message",
        "INSERT INTO search_queue (message_id, changed) VALUES (OLD.id, 1);"),
    "search_message_update": _row_trigger(
        "search_message_update", "AFTER UPDATE OF subject, body, sent_at", "message",
        "INSERT INTO search_queue (message_id, changed) VALUES (NEW.id, 1);"),
    "search_conversation_update": _row_trigger(
        "search_conversation_update", "AFTER UPDATE OF customer_id", "conversation",
        "INSERT INTO search_queue (conversation_id) VALUES (NEW.id);",
        "WHEN (NEW.customer_id IS DISTINCT FROM OLD.customer_id)"),
    "search_customer_insert": _row_trigger(
        "search_customer_insert", "AFTER INSERT", "customer", "INSERT INTO search_queue (customer_id) VALUES (NEW.id);"),
    "search_customer_update": _row_trigger(
        "search_customer_update", "AFTER UPDATE OF name", "customer",
        "INSERT INTO search_queue (customer_id) VALUES (NEW.id);"),
    "search_customer_delete": _row_trigger(
        "search_customer_delete", "AFTER DELETE", "customer", "INSERT INTO search_queue (customer_id) VALUES (OLD.id);"),
    "search_identity_insert": _row_trigger(
        "search_identity_insert", "AFTER INSERT", "identity",
        "INSERT INTO search_queue (customer_id) VALUES (NEW.customer_id);"),
    "search_identity_update": _row_trigger(
        "search_identity_update", "AFTER UPDATE OF customer_id, address, display_name", "identity",
        """INSERT INTO search_queue (customer_id) VALUES (OLD.customer_id);
           IF NEW.customer_id IS DISTINCT FROM OLD.customer_id THEN
               INSERT INTO search_queue (customer_id) VALUES (NEW.customer_id);
           END IF;"""),
    "search_identity_delete": _row_trigger(
        "search_identity_delete", "AFTER DELETE", "identity",
        "INSERT INTO search_queue (customer_id) VALUES (OLD.customer_id);"),
    # The precomputed list (schema 7, console/store/lists.py).
    "list_conversation_insert": _row_trigger(
        "list_conversation_insert", "AFTER INSERT", "conversation", _DIRTY.format("NEW.customer_id")),
    "list_conversation_update": _row_trigger(
        "list_conversation_update",
        "AFTER UPDATE OF status, customer_id, channel, waiting_since, last_inbound_at, last_message_at, snooze_until",
        "conversation", _DIRTY.format("NEW.customer_id") + _DIRTY.format("OLD.customer_id")),
    "list_conversation_delete": _row_trigger(
        "list_conversation_delete", "AFTER DELETE", "conversation", _DIRTY.format("OLD.customer_id")),
    # Measuring and automation (console/store/episodes.py, sla.py): what changed, for the hook.
    "episode_message": _row_trigger(
        "episode_message", "AFTER INSERT", "message",
        "INSERT INTO episode_change (conversation_id, message_id) VALUES (NEW.conversation_id, NEW.id);"),
    "episode_unsent": _row_trigger(
        "episode_unsent", "AFTER UPDATE OF status", "message",
        """INSERT INTO episode_change (conversation_id, message_id, new_status)
               VALUES (NEW.conversation_id, NEW.id, 'unsent');""",
        "WHEN (NEW.direction = 'out' AND NEW.status = 'failed' AND OLD.status IS DISTINCT FROM 'failed')"),
    "episode_status": _row_trigger(
        "episode_status", "AFTER UPDATE OF status", "conversation",
        """INSERT INTO episode_change (conversation_id, old_status, new_status)
               VALUES (NEW.id, OLD.status, NEW.status);""",
        "WHEN (OLD.status IS DISTINCT FROM NEW.status)"),
    "sla_customer_moved": _row_trigger(
        "sla_customer_moved", "AFTER UPDATE OF customer_id", "conversation", _SLA_DIRTY.format("VALUES (NEW.id)")),
    "sla_tag_added": _row_trigger(
        "sla_tag_added", "AFTER INSERT", "tag",
        _SLA_DIRTY.format("SELECT id FROM conversation WHERE customer_id = NEW.customer_id "
                          "AND status IN ('open', 'snoozed')")),
    "sla_tag_removed": _row_trigger(
        "sla_tag_removed", "AFTER DELETE", "tag",
        _SLA_DIRTY.format("SELECT id FROM conversation WHERE customer_id = OLD.customer_id "
                          "AND status IN ('open', 'snoozed')")),
}


# Tables whose changes other consoles are told of (LISTEN/NOTIFY, console/store/pg.py): one
# notice per statement, naming the table; customer ids come with the list's refresh.
NOTIFIED_TABLES = ("customer", "identity", "conversation", "message", "outbox", "account", "tag", "note",
                   "draft", "template", "presence", "download", "merge_log")

NOTIFIED_TABLES_2 = ("episode", "sla_clock", "event", "activity", "csat", "notice", "rule_firing", "consent",
                     "attribute_change", "segment", "campaign", "campaign_step", "campaign_recipient")

_NOTIFY = """CREATE OR REPLACE FUNCTION console_notify() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN PERFORM pg_notify('console', TG_TABLE_NAME); RETURN NULL; END $fn$"""

# Who is writing: the agent a database role stands for is the role's name. The workspace's owner
# (the role that ran the migrations: imports, `console migrate`) and superusers may write any
# author; every other role only its own name.
_AUTHOR_CHECK = """CREATE OR REPLACE FUNCTION console_is_admin() RETURNS boolean LANGUAGE sql STABLE AS $fn$
    SELECT r.rolsuper OR pg_has_role(session_user, (SELECT tableowner FROM pg_tables
                                                    WHERE schemaname = current_schema() AND tablename = 'meta'),
                                     'MEMBER')
    FROM pg_roles r WHERE r.rolname = session_user $fn$"""


def _author_rule(table: str, column: str, on: str, nullable: bool) -> list[str]:
    allow_null = f"NEW.{column} IS NULL OR " if nullable else ""
    name = f"console_author_{table}"
    return [
        f"""CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $fn$
            BEGIN
                IF TG_OP = 'UPDATE' AND NEW.{column} IS NOT DISTINCT FROM OLD.{column} THEN RETURN NEW; END IF;
                IF {allow_null}NEW.{column} = session_user::text OR console_is_admin() THEN RETURN NEW; END IF;
                RAISE EXCEPTION 'you are connected as %, so you cannot write as %', session_user, NEW.{column}
                    USING ERRCODE = 'insufficient_privilege';
            END $fn$""",
        f"CREATE TRIGGER {name} BEFORE {on} ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()",
    ]


def _authorship(table: str, column: str, changed: str) -> str:
    """The authorship rule of `table` again (extras 3), now also for updates: a row another
    agent wrote keeps its author *and* its words (`changed`: what an update may not touch),
    so a role cannot put its text into someone else's note or draft, nor move their presence;
    what every console does to any row (a merge moving notes to the kept customer) still works."""
    return f"""CREATE OR REPLACE FUNCTION console_author_{table}() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
            IF TG_OP = 'UPDATE' AND OLD.{column} IS DISTINCT FROM session_user::text
               AND (NEW.{column} IS DISTINCT FROM OLD.{column} OR {changed}) AND NOT console_is_admin() THEN
                RAISE EXCEPTION 'you are connected as %, so you cannot change what % wrote', session_user, OLD.{column}
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            IF TG_OP = 'UPDATE' AND NEW.{column} IS NOT DISTINCT FROM OLD.{column} THEN RETURN NEW; END IF;
            IF NEW.{column} = session_user::text OR console_is_admin() THEN RETURN NEW; END IF;
            RAISE EXCEPTION 'you are connected as %, so you cannot write as %', session_user, NEW.{column}
                USING ERRCODE = 'insufficient_privilege';
        END $fn$"""


# PostgreSQL-only migrations (never edit a released one; append).
EXTRAS: list[list[str]] = [
    # 1: search (console/store/pgsearch.py), raw mail, change notices, authorship
    [
        "CREATE EXTENSION IF NOT EXISTS pg_trgm",
        # One document per message: its words with their positions (made by the indexer in
        # Python, with the tokenizer rules of the SQLite index, so both find the same), and what
        # filters read without touching the message rows.
        """CREATE TABLE search_doc (
            message_id BIGINT PRIMARY KEY,
            sent_ms BIGINT NOT NULL,
            conversation_id BIGINT NOT NULL,
            customer_id BIGINT NOT NULL,
            channel TEXT NOT NULL,
            words TSVECTOR NOT NULL
        )""",
        "CREATE INDEX search_doc_words ON search_doc USING gin (words)",
        "CREATE INDEX search_doc_time ON search_doc (sent_ms DESC, message_id DESC)",
        "CREATE INDEX search_doc_customer ON search_doc (customer_id, sent_ms DESC, message_id DESC)",
        "CREATE INDEX search_doc_conversation ON search_doc (conversation_id)",
        # `from:`: per customer, their name, addresses and display names, lower-cased.
        "CREATE TABLE search_who (customer_id BIGINT PRIMARY KEY, who TEXT NOT NULL)",
        "CREATE INDEX search_who_trgm ON search_who USING gin (who gin_trgm_ops)",
        # Raw mail bytes by their SHA-256 (console/store/pgraw.py), stored as they are: mail is
        # mostly compressed already (attachments), and compressing the rest cost CPU on every sync.
        "CREATE TABLE raw_mail (sha TEXT PRIMARY KEY, data BYTEA NOT NULL)",
        "ALTER TABLE raw_mail ALTER COLUMN data SET STORAGE EXTERNAL",
        # `console migrate`: what has been copied, so an interrupted move resumes.
        "CREATE TABLE migrate_progress (source TEXT NOT NULL, item TEXT NOT NULL, done BIGINT NOT NULL, "
        "PRIMARY KEY (source, item))",
        _NOTIFY,
        *[f"CREATE TRIGGER console_notify AFTER INSERT OR UPDATE OR DELETE ON {t} "
          "FOR EACH STATEMENT EXECUTE FUNCTION console_notify()" for t in NOTIFIED_TABLES],
        _AUTHOR_CHECK,
        *_author_rule("note", "author", "INSERT OR UPDATE", False),
        *_author_rule("message", "author", "INSERT OR UPDATE", True),
        *_author_rule("presence", "agent", "INSERT OR UPDATE", False),
        *_author_rule("draft", "agent", "INSERT OR UPDATE", False),
        # Assignments: who gave each conversation to its assignee (schema 8) is set by the database.
        """CREATE OR REPLACE FUNCTION console_assigned_by() RETURNS trigger LANGUAGE plpgsql AS $fn$
            BEGIN
                IF console_is_admin() THEN RETURN NEW; END IF;
                IF TG_OP = 'INSERT' OR NEW.assignee IS DISTINCT FROM OLD.assignee THEN
                    NEW.assigned_by := CASE WHEN NEW.assignee IS NULL THEN NULL ELSE session_user::text END;
                ELSIF NEW.assigned_by IS DISTINCT FROM OLD.assigned_by THEN
                    RAISE EXCEPTION 'assigned_by is set by the database' USING ERRCODE = 'insufficient_privilege';
                END IF;
                RETURN NEW;
            END $fn$""",
        "CREATE TRIGGER console_assigned_by BEFORE INSERT OR UPDATE ON conversation FOR EACH ROW "
        "EXECUTE FUNCTION console_assigned_by()",
        # The group role every agent's role belongs to (`console agent add`): what agents may do.
        """DO $do$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = current_database() || '_agents') THEN
                EXECUTE format('CREATE ROLE %I NOLOGIN', current_database() || '_agents');
            END IF;
            EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I',
                           current_schema(), current_database() || '_agents');
            EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I',
                           current_schema(), current_database() || '_agents');
            EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), current_database() || '_agents');
        END $do$""",
    ],
    # 2: measuring, automation and outreach (schema migrations "measuring and automation" and
    # "outreach") tell the other consoles of their changes too: SLA clocks on the list, what rules
    # did in the timeline, notices, ratings, consent on the card, a campaign's progress.
    [
        *[f"CREATE TRIGGER console_notify AFTER INSERT OR UPDATE OR DELETE ON {t} "
          "FOR EACH STATEMENT EXECUTE FUNCTION console_notify()" for t in NOTIFIED_TABLES_2],
    ],
    # 3: an agent's role could rewrite the text of another agent's note or draft (or their
    # presence) with an UPDATE that left the author as it was; now only its author, the owner or
    # a superuser may (tests/store/test_agent_roles.py).
    [
        _authorship("note", "author", "NEW.body IS DISTINCT FROM OLD.body"),
        _authorship("draft", "agent", "NEW.body IS DISTINCT FROM OLD.body"),
        _authorship("presence", "agent", "TRUE"),
    ],
]
EXTRAS_VERSION = len(EXTRAS)

# After every migration (the common ones add tables too): agents may use what exists now.
GRANTS = """DO $do$ BEGIN
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I',
                   current_schema(), current_database() || '_agents');
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I',
                   current_schema(), current_database() || '_agents');
END $do$"""
