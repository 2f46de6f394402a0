"""The store: de-duplication, identities, conversation states, the outbox and backups."""

import io
import sqlite3
import time

import pytest

from console.model import Address, InboundMessage, OptOutChange, PullResult, SendResult, StatusUpdate
from console.store import ListFilter, OptedOut, Store, StoreError
from console.store.rawfile import digest

NOW = time.time()


def msg(ext, peer, direction="in", at=NOW - 3600, thread="t1", channel="sms", body="hello", **kw):
    return InboundMessage(ext, thread, channel, direction, peer, at, body, **kw)


ANN_SMS = Address("phone", "(555) 010-0001", "Ann")
ANN_WA = Address("phone", "whatsapp:+15550100001", "")
BOB = Address("email", "Bob@Example.COM", "Bob")


def test_pulling_the_same_messages_twice_stores_them_once(store):
    result = PullResult([msg("m1", ANN_SMS), msg("m2", ANN_SMS, at=NOW - 10)], cursor="c1")
    assert store.apply_pull("acct", result) == 2
    assert store.apply_pull("acct", result) == 0
    assert store.count_messages() == 2
    assert store.cursor("acct") == "c1"


def test_same_external_id_on_two_accounts_is_two_messages(store):
    store.apply_pull("a", PullResult([msg("m1", ANN_SMS)]))
    store.apply_pull("b", PullResult([msg("m1", ANN_SMS)]))
    assert store.count_messages() == 2


def test_sms_and_whatsapp_from_one_number_are_one_customer(store):
    store.apply_pull("tw", PullResult([msg("s1", ANN_SMS), msg("w1", ANN_WA, channel="whatsapp", thread="w")]))
    rows = store.list_rows(ListFilter("open"), 0, 10)
    assert len(rows) == 1
    assert set(rows[0].channels) == {"sms", "whatsapp"}
    assert [i.address for i in store.identities(rows[0].customer_id)] == ["+15550100001"]


def test_email_addresses_match_case_insensitively(store):
    store.apply_pull("mail", PullResult([msg("e1", BOB, channel="email", thread="x")]))
    store.apply_pull("mail2", PullResult([msg("e2", Address("email", "bob@example.com"), channel="email", thread="y")]))
    assert store.count_rows(ListFilter("open")) == 1


def test_open_list_is_oldest_waiting_first(store):
    store.apply_pull("a", PullResult([
        msg("1", Address("phone", "+15550100011", "Newer"), at=NOW - 60, thread="a"),
        msg("2", Address("phone", "+15550100012", "Oldest"), at=NOW - 7200, thread="b"),
        msg("3", Address("phone", "+15550100013", "Middle"), at=NOW - 600, thread="c"),
    ]))
    assert [r.name for r in store.list_rows(ListFilter("open"), 0, 10)] == ["Oldest", "Middle", "Newer"]


def test_our_reply_moves_to_waiting_and_their_answer_reopens(store):
    store.apply_pull("a", PullResult([msg("1", ANN_SMS, at=NOW - 100)]))
    store.apply_pull("a", PullResult([msg("2", ANN_SMS, direction="out", at=NOW - 50)]))
    assert store.status_counts(ListFilter())["waiting"] == 1
    store.apply_pull("a", PullResult([msg("3", ANN_SMS, at=NOW - 10)]))
    rows = store.list_rows(ListFilter("open"), 0, 10)
    assert len(rows) == 1 and rows[0].since == pytest.approx(NOW - 10)


def test_new_message_reopens_a_done_conversation(store):
    store.apply_pull("a", PullResult([msg("1", ANN_SMS)]))
    customer = store.list_rows(ListFilter("open"), 0, 1)[0].customer_id
    assert store.set_status("done", customer_id=customer) == 1
    assert store.count_rows(ListFilter("open")) == 0
    store.apply_pull("a", PullResult([msg("2", ANN_SMS, at=NOW)]))
    assert store.count_rows(ListFilter("open")) == 1


def test_an_old_message_arriving_late_does_not_reopen(store):
    store.apply_pull("a", PullResult([msg("1", ANN_SMS, at=NOW - 100), msg("2", ANN_SMS, "out", at=NOW - 50)]))
    store.apply_pull("a", PullResult([msg("0", ANN_SMS, at=NOW - 500)]))
    assert store.status_counts(ListFilter())["waiting"] == 1


def test_snoozed_conversation_returns_when_its_time_comes(store):
    store.apply_pull("a", PullResult([msg("1", ANN_SMS)]))
    customer = store.list_rows(ListFilter("open"), 0, 1)[0].customer_id
    store.set_status("snoozed", customer_id=customer, snooze_until=time.time() - 1)
    assert store.count_rows(ListFilter("snoozed")) == 1
    assert store.wake_snoozed() == 1
    assert store.count_rows(ListFilter("open")) == 1


def test_edits_replace_the_body_and_are_marked(store):
    store.apply_pull("t", PullResult([msg("u1", ANN_SMS, body="helo")]))
    store.apply_pull("t", PullResult([msg("u1", ANN_SMS, body="hello", edited=True)]))
    entry = store.timeline(store.list_rows(ListFilter("open"), 0, 1)[0].customer_id)[0]
    assert (entry.body, entry.edited) == ("hello", True)


def test_full_text_index_follows_messages(store):
    store.apply_pull("a", PullResult([msg("1", ANN_SMS, body="the croissant order for friday")]))
    assert store.index.settle(timeout=5)
    assert [hit.line for hit in store.search("croissant")] == ["the croissant order for friday"]


def test_reply_goes_through_the_outbox_and_back(store):
    store.apply_pull("a", PullResult([msg("1", ANN_SMS)]))
    identity = store.identities(1)[0]
    message_id = store.enqueue_reply(identity.id, "a", "sms", "On its way!", author="ana")
    assert store.in_doubt(["a"]) == []
    [out] = store.claim_due(["a"])
    assert (out.message_id, out.to.address, out.thread_external_ids) == (message_id, "+15550100001", ("1",))
    assert store.claim_due(["a"]) == []  # claimed once only
    assert [o.outbox_id for o in store.in_doubt(["a"])] == [out.outbox_id]
    store.record_sent(out, SendResult("SM1", "sent"))
    store.apply_pull("a", PullResult(status_updates=[StatusUpdate("SM1", "delivered")]))
    last = store.timeline(1)[-1]
    assert (last.direction, last.status, last.author) == ("out", "delivered", "ana")
    assert store.in_doubt(["a"]) == []


def test_send_recorded_after_the_pull_saw_it_keeps_one_copy(store):
    """The Sent folder may show our message before the engine records its id: no duplicate."""
    store.apply_pull("a", PullResult([msg("1", ANN_SMS)]))
    store.enqueue_reply(1, "a", "sms", "hi")
    [out] = store.claim_due(["a"])
    store.apply_pull("a", PullResult([msg("SM9", ANN_SMS, "out", body="hi", at=NOW)]))
    store.record_sent(out, SendResult("SM9"))
    assert [e.body for e in store.timeline(1)] == ["hello", "hi"]


def test_a_send_recorded_as_another_replys_message_deletes_nothing_and_is_left_for_a_person(store):
    """An adapter that names an id already recorded for another reply (issue 15) must not make the
    store delete that reply: this send becomes 'unknown' with a sentence, the other stays as it was."""
    store.apply_pull("a", PullResult([msg("1", ANN_SMS)]))
    first = store.enqueue_reply(1, "a", "sms", "Thanks!")
    [out] = store.claim_due(["a"])
    store.record_sent(out, SendResult("SM1", "delivered"))
    second = store.enqueue_reply(1, "a", "sms", "Thanks!")
    [again] = store.claim_due(["a"])
    assert again.taken_external_ids == frozenset({"SM1"})

    store.record_sent(again, SendResult("SM1", "sent"))

    rows = {r["id"]: r for r in store.db.query("SELECT * FROM message")}
    assert (rows[first]["external_id"], rows[first]["status"]) == ("SM1", "delivered")
    assert rows[second]["status"] == "unknown" and rows[second]["external_id"].startswith("local:")
    assert "SM1" in rows[second]["status_detail"] and "check whether" in rows[second]["status_detail"]
    assert [r["state"] for r in store.db.query("SELECT state FROM outbox ORDER BY id")] == ["sent", "failed"]


def test_opted_out_identity_cannot_be_enqueued(store):
    store.apply_pull("a", PullResult([msg("1", ANN_SMS)], opt_outs=[OptOutChange(ANN_SMS, True)]))
    with pytest.raises(OptedOut):
        store.enqueue_reply(1, "a", "sms", "hi")
    store.apply_pull("a", PullResult(opt_outs=[OptOutChange(ANN_SMS, False)]))
    store.enqueue_reply(1, "a", "sms", "hi")


def test_permanent_failure_marks_message_and_opt_out(store):
    store.apply_pull("a", PullResult([msg("1", ANN_SMS)]))
    store.enqueue_reply(1, "a", "sms", "hi")
    [out] = store.claim_due(["a"])
    store.record_failed(out, "The customer opted out (STOP).", opted_out=True)
    assert store.timeline(1)[-1].status == "failed"
    assert store.identities(1)[0].opted_out


def test_delayed_send_can_be_undone_before_it_leaves(store):
    store.apply_pull("a", PullResult([msg("1", ANN_SMS)]))
    message_id = store.enqueue_reply(1, "a", "sms", "oops", delay=60)
    assert store.claim_due(["a"]) == []
    assert store.cancel_send(message_id)
    assert store.next_due_at(["a"]) is None


def test_export_then_import_into_an_empty_store_is_complete(store, backend):
    store.apply_pull("a", PullResult([msg("1", ANN_SMS, raw=b"\x00raw\xff"), msg("2", BOB, channel="email", thread="e")],
                                     cursor="42"))
    dump = "\n".join(store.export_lines()) + "\n"
    other = backend.open("other.db")
    added = other.import_lines(io.StringIO(dump))
    assert added == {"customer": 2, "identity": 2, "conversation": 2, "message": 2, "cursor": 1,
                     "tag": 0, "note": 0, "draft": 0, "template": 0, "csat": 0, "activity": 0, "rule_firing": 0}
    assert "\n".join(other.export_lines()) + "\n" == dump
    assert other.import_lines(io.StringIO(dump))["message"] == 0  # idempotent
    row = other.db.query_one("SELECT id, raw FROM message WHERE external_id = '1'")
    assert other.message_raw(row["id"]) == b"\x00raw\xff" and row["raw"] is None


@pytest.mark.sqlite_only
def test_store_written_by_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "new.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    with pytest.raises(StoreError, match="newer console"):
        Store(path)


@pytest.mark.sqlite_only
def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a usable console workspace"):
        Store(path)


@pytest.mark.sqlite_only
def test_store_uses_wal_and_foreign_keys(store):
    assert store.db.query_one("PRAGMA journal_mode")[0] == "wal"
    assert store.db.query_one("PRAGMA foreign_keys")[0] == 1


def test_a_new_identity_vouched_for_by_the_service_joins_that_customer(store):
    tg = Address("telegram", "700001", "Ann (@ann)")
    store.apply_pull("mail", PullResult([msg("e1", BOB, channel="email")]))
    store.apply_pull("tg", PullResult([msg("t1", tg, channel="telegram", thread="tg:1", peer_links=(BOB,))]))
    customers = {r.customer_id for r in store.list_rows(ListFilter("open"), 0, 10)}
    assert len(customers) == 1
    assert {i.kind for i in store.identities(customers.pop())} == {"email", "telegram"}
    # A link never merges two customers that already exist.
    store.apply_pull("a", PullResult([msg("s1", ANN_SMS)]))
    store.apply_pull("a", PullResult([msg("s2", ANN_SMS, at=NOW - 5, peer_links=(BOB,))]))
    assert store.count_rows(ListFilter("open")) == 2


def test_long_quiet_waiting_conversations_close_and_reopen_on_news(store):
    store.apply_pull("a", PullResult([msg("1", ANN_SMS, at=NOW - 9 * 86400),
                                      msg("2", ANN_SMS, direction="out", at=NOW - 8 * 86400)]))
    store.apply_pull("a", PullResult([msg("3", BOB, direction="out", at=NOW - 3600, thread="b")]))
    assert store.close_waiting(NOW - 7 * 86400) == 1
    assert store.status_counts(ListFilter()) | {} == {**store.status_counts(ListFilter()), "done": 1, "waiting": 1}
    store.apply_pull("a", PullResult([msg("4", ANN_SMS, at=NOW - 10)]))
    assert store.status_counts(ListFilter())["open"] == 1


@pytest.mark.sqlite_only
def test_background_checkpoints_copy_the_wal_into_the_database_while_the_writer_goes_on(tmp_path):
    store = Store(tmp_path / "c.db")
    path = tmp_path / "c.db"
    store.db.checkpoint_in_background(every=0.05)
    try:
        assert store.db.query_one("PRAGMA wal_autocheckpoint")[0] == 0, "the writer no longer checkpoints"
        before = path.stat().st_size
        peer = Address("email", "maria@example.com")
        for batch in range(5):
            store.apply_pull("mail", PullResult(messages=[
                msg(f"<{batch}-{n}@x>", peer, channel="email", thread=f"t{n}", body="x " * 10_000)
                for n in range(50)]))
        deadline = time.monotonic() + 30  # a bound on waiting (a busy disk is slow), not a timing
        while path.stat().st_size < before + 4_000_000 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert path.stat().st_size >= before + 4_000_000, "the thread copied the WAL into the database file"
    finally:
        store.db.stop_background_checkpoints()
    assert store.db.query_one("PRAGMA wal_autocheckpoint")[0] == 1000
    assert store.count_messages() == 250
    store.close()


@pytest.mark.sqlite_only
def test_raw_bytes_live_beside_the_workspace_and_are_committed_before_their_messages(tmp_path):
    path = tmp_path / "console.db"
    (tmp_path / "console.raw.db").mkdir()  # the raw file cannot be written (think: permissions)
    store = Store(path)
    peer = Address("email", "maria@example.com")
    pull = PullResult([msg("<1@x>", peer, channel="email", raw=b"From: maria\r\n\r\nhi")], cursor="c1")
    with pytest.raises(sqlite3.Error):
        store.apply_pull("mail", pull)
    assert store.count_messages() == 0 and store.cursor("mail") is None, "no message names missing bytes"
    store.close()
    (tmp_path / "console.raw.db").rmdir()
    store = Store(path)
    assert store.apply_pull("mail", pull) == 1 and store.cursor("mail") == "c1"
    [row] = store.db.query("SELECT id, raw, raw_sha FROM message")
    assert row["raw"] is None and store.message_raw(row["id"]) == b"From: maria\r\n\r\nhi"
    assert (tmp_path / "console.raw.db").is_file()
    store.close()


def test_raw_bytes_stored_inside_the_workspace_by_an_earlier_version_are_still_read(store):
    store.apply_pull("mail", PullResult([msg("<1@x>", Address("email", "a@example.com"), channel="email")]))
    store.db.conn.execute("UPDATE message SET raw = ?, raw_sha = NULL", (b"old bytes",))
    [row] = store.db.query("SELECT id FROM message")
    assert store.message_raw(row["id"]) == b"old bytes"


def test_a_reply_with_nothing_but_its_subject_joins_by_the_key_its_adapter_gave(store):
    maria = Address("email", "maria@example.com", "Maria")
    # The conversation was opened by a reply whose original is not stored: its key is the one
    # the adapter gave ("cake"), not its subject folded ("re: cake").
    store.apply_pull("mail", PullResult([
        msg("<a@x>", maria, channel="email", thread="<root@x>", subject="Re: Cake", reply_subject="cake"),
        msg("<b@x>", maria, channel="email", thread="<b@x>", subject="AW: cake", reply_subject="cake", at=NOW - 60),
    ]))
    assert [r[0] for r in store.db.query("SELECT message_count FROM conversation")] == [2]


def test_raw_bytes_are_appended_to_a_pack_and_a_pack_cut_short_reads_as_missing_until_stored_again(tmp_path):
    path = tmp_path / "console.db"
    store = Store(path)
    peer = Address("email", "maria@example.com")
    first, second = b"From: maria\r\n\r\none", b"From: maria\r\n\r\ntwo"
    store.apply_pull("mail", PullResult([msg("<1@x>", peer, channel="email", raw=first),
                                         msg("<2@x>", peer, channel="email", raw=second, thread="t2")]))
    ids = [r["id"] for r in store.db.query("SELECT id FROM message ORDER BY id")]
    assert [store.message_raw(i) for i in ids] == [first, second]
    store.close()
    pack = tmp_path / "console.raw.pack"
    assert pack.read_bytes() == first + second, "each message's bytes once, one after the other"
    with open(pack, "r+b") as f:  # the machine stopped before the last bytes reached the disk
        f.truncate(len(first) + 5)
    store = Store(path)
    try:
        assert store.message_raw(ids[0]) == first and store.message_raw(ids[1]) is None, "never wrong bytes"
        store.raw.put({digest(second): second})  # the next pull that brings it stores it again
        assert store.message_raw(ids[1]) == second
    finally:
        store.close()


def test_raw_bytes_kept_by_the_raw_file_of_an_earlier_version_are_still_read(tmp_path):
    path = tmp_path / "console.db"
    store = Store(path)
    store.apply_pull("mail", PullResult([msg("<1@x>", Address("email", "a@example.com"), channel="email",
                                             raw=b"new bytes")]))
    [row] = store.db.query("SELECT id FROM message")
    store.close()
    old = sqlite3.connect(tmp_path / "console.raw.db")
    old.execute("DELETE FROM packed")
    old.execute("INSERT INTO raw (sha, data) VALUES (?, ?)", (digest(b"new bytes"), b"new bytes"))
    old.commit()
    old.close()
    store = Store(path)
    try:
        assert store.message_raw(row["id"]) == b"new bytes"
    finally:
        store.close()
