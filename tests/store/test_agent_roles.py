"""Authorship on PostgreSQL is the database's to enforce (console/store/pgschema.py): each agent
connects as a role of their own, a member of `<database>_agents`, and may write notes, drafts,
replies and presence only under their own name; who made an assignment is the connecting role,
whatever the code says; the owner role writes any author (imports, `console migrate`).

The agents are real login roles of the session's cluster with passwords (scram-sha-256), and
their stores open the way a console opens them: a config with a `[store]` url and password_env,
through `open_store` of console/cli.py.
"""

from __future__ import annotations

import io
import time

import pytest

from backends import cluster
from console.cli import open_store
from console.config import parse
from console.model import Address, InboundMessage, PullResult
from console.store import StoreError, StoreRefused

pytestmark = pytest.mark.postgres_only


@pytest.fixture
def team(backend, monkeypatch):
    """(owner's store, open(agent, config_agent=None) -> the agent's store, a customer id, its identity id)."""
    url = backend.location("team", empty=True)
    owner = backend.open("team")  # the owner makes the schema and the group role `<database>_agents`
    database = url.rsplit("/", 1)[1]
    owner.apply_pull("shop-sms", PullResult([InboundMessage("m1", "t1", "sms", "in", Address("phone", "+15550100"),
                                                            time.time(), body="is my order ready?")]))
    customer, identity = owner.db.query_one("SELECT customer_id, id FROM identity")
    host = url.split("@", 1)[1]

    def open_as(agent: str, config_agent: str | None = None):
        role(agent, database)
        monkeypatch.setenv(f"PW_{agent.upper()}", f"pw-{agent}")
        named = f'agent = "{config_agent}"\n' if config_agent else ""
        text = (f'[workspace]\n{named}[store]\nurl = "postgresql://{agent}@{host}"\n'
                f'password_env = "PW_{agent.upper()}"\n')
        store = open_store(parse(text))
        backend._stores.append(store)
        return store

    return owner, open_as, customer, identity


def role(name: str, database: str) -> None:
    """A login role with a password, in this database's agents' group (roles are the cluster's)."""
    server = cluster()
    try:
        server.sql(f"CREATE ROLE {name} LOGIN PASSWORD 'pw-{name}'")
    except Exception:  # noqa: BLE001 - made by an earlier test of the session
        pass
    server.sql(f"GRANT {database}_agents TO {name}")


def test_an_agent_writes_notes_drafts_replies_and_presence_as_herself(team):
    owner, open_as, customer, identity = team
    ana = open_as("ana")
    assert not ana.db.is_admin and ana.db.user == "ana"
    ana.add_note(customer, "ana", "called back, no answer")
    ana.save_draft(customer, "ana", "Your order is ready")
    reply = ana.enqueue_reply(identity, "shop-sms", "sms", "Your order is ready", author="ana")
    ana.set_presence("ana", 4242, customer)
    assert [n.author for n in owner.notes(customer)] == ["ana"]
    assert owner.draft(customer, "ana") == "Your order is ready"
    assert owner.db.query_one("SELECT author FROM message WHERE id = ?", (reply,))[0] == "ana"


@pytest.mark.parametrize("write", ["note", "draft", "reply", "presence"])
def test_writing_under_another_agents_name_is_refused_by_the_database_in_one_sentence(team, write):
    owner, open_as, customer, identity = team
    ana = open_as("ana")
    before = owner.db.query_one("SELECT (SELECT count(*) FROM note) + (SELECT count(*) FROM draft) + "
                                "(SELECT count(*) FROM message) + (SELECT count(*) FROM presence) + "
                                "(SELECT count(*) FROM outbox)")[0]
    attempts = {
        "note": lambda: ana.add_note(customer, "ben", "signed as ben"),
        "draft": lambda: ana.save_draft(customer, "ben", "ben's words"),
        "reply": lambda: ana.enqueue_reply(identity, "shop-sms", "sms", "from ben", author="ben"),
        "presence": lambda: ana.set_presence("ben", 1, customer),
    }
    with pytest.raises(StoreRefused) as refused:
        attempts[write]()
    message = str(refused.value)
    assert "\n" not in message and "connected as ana" in message and "ben" in message
    assert isinstance(refused.value, StoreError)  # the UI's and the CLI's one-line errors
    after = owner.db.query_one("SELECT (SELECT count(*) FROM note) + (SELECT count(*) FROM draft) + "
                               "(SELECT count(*) FROM message) + (SELECT count(*) FROM presence) + "
                               "(SELECT count(*) FROM outbox)")[0]
    assert after == before  # the whole transaction rolled back: no outbox row without its message


def test_an_assignment_records_the_connecting_role_whatever_the_code_says(team):
    owner, open_as, customer, _ = team
    ana = open_as("ana")
    ana.assign(customer, "ben")
    assert owner.db.query("SELECT assignee, assigned_by FROM conversation WHERE customer_id = ?",
                          (customer,)) == [("ben", "ana")]
    with ana.db.write() as conn:  # code that names someone else
        conn.execute("UPDATE conversation SET assignee = 'ana', assigned_by = 'ben' WHERE customer_id = ?",
                     (customer,))
    assert tuple(owner.db.query_one("SELECT assignee, assigned_by FROM conversation WHERE customer_id = ?",
                                    (customer,))) == ("ana", "ana")
    with pytest.raises(StoreRefused):
        with ana.db.write() as conn:
            conn.execute("UPDATE conversation SET assigned_by = 'ben' WHERE customer_id = ?", (customer,))


def test_the_owner_writes_and_imports_any_author(team, backend):
    owner, open_as, customer, identity = team
    assert owner.db.is_admin
    owner.add_note(customer, "ben", "ben's note, written by an import")
    owner.save_draft(customer, "ana", "ana's draft")
    owner.enqueue_reply(identity, "shop-sms", "sms", "ben's reply", author="ben")
    owner.assign(customer, "ana")
    export = "".join(line + "\n" for line in owner.export_lines())
    other = backend.open("copy", empty=True)
    added = other.import_lines(io.StringIO(export))
    assert added["note"] == 1 and added["draft"] == 1
    assert [n.author for n in other.notes(customer)] == ["ben"]
    assert other.db.query_one("SELECT author FROM message WHERE author IS NOT NULL")[0] == "ben"


def test_a_config_naming_another_agent_than_its_role_is_refused(team):
    _, open_as, _, _ = team
    with pytest.raises(StoreError) as refused:
        open_as("ana", config_agent="ben")
    assert "agent is 'ben'" in str(refused.value) and "role 'ana'" in str(refused.value)
    assert "\n" not in str(refused.value)
    assert open_as("ana").db.user == "ana"


def test_another_agents_note_draft_and_presence_cannot_be_rewritten(team):
    owner, open_as, customer, _ = team
    ben, ana = open_as("ben"), open_as("ana")
    ben.add_note(customer, "ben", "customer prefers email")
    ben.save_draft(customer, "ben", "Dear customer")
    ben.set_presence("ben", 7, customer)
    for statement in ("UPDATE note SET body = 'ben says: refund everything' WHERE author = 'ben'",
                      "UPDATE draft SET body = 'refund everything' WHERE agent = 'ben'",
                      "UPDATE note SET author = 'ana' WHERE author = 'ben'",
                      "UPDATE presence SET customer_id = NULL WHERE agent = 'ben'"):
        with pytest.raises(StoreRefused, match="cannot change what ben wrote"):
            with ana.db.write() as conn:
                conn.execute(statement)
    assert [n.body for n in owner.notes(customer)] == ["customer prefers email"]
    assert owner.draft(customer, "ben") == "Dear customer"
    with ana.db.write() as conn:  # what any console does to any row: a merge moves the notes
        assert conn.execute("UPDATE note SET customer_id = customer_id WHERE author = 'ben'").rowcount == 1
    with owner.db.write() as conn:
        conn.execute("UPDATE note SET body = 'corrected by the owner' WHERE author = 'ben'")
