"""What the reports read: episodes of a period, replies, ratings, who waits now.

Every query reads an index range of the period (episodes by start and by resolution, replies by
time through a partial covering index, ratings by time) or the precomputed list counts, never
every message: at a million messages the Reports screen must open within a second
(bench/reports.py). The figures themselves (percentiles, business hours, days, the weekday x
hour grid) are computed in Python by console/reports.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from console.store.db import Database


@dataclass
class ReportData:
    started: list[tuple]  # (conversation_id, channel, account, kind, started_at, first_response_at, responder)
    resolved: list[tuple]  # (conversation_id, channel, account, responder, first_response_at, started_at, resolved_at)
    open_at_start: int  # episodes unresolved when the period began (the backlog's first point)
    replies: list[tuple]  # (author, channel, count)
    ratings: list[tuple]  # (conversation_id, channel, responder, rating)
    waiting: list[tuple]  # (channel, customers, oldest waiting since); channel '' = all
    waiting_by_agent: list[tuple]  # (assignee or None, conversations, oldest waiting since)
    conversation_tags: dict[int, set[str]]  # tagged customers' conversations -> their tags


class MetricsMixin:
    db: Database

    def report_data(self, start: float, end: float) -> ReportData:
        with self.db.read() as conn:
            started = [tuple(r) for r in conn.execute(
                """SELECT conversation_id, channel, account, kind, started_at, first_response_at, responder
                   FROM episode WHERE started_at >= ? AND started_at < ?""", (start, end))]
            resolved = [tuple(r) for r in conn.execute(
                """SELECT conversation_id, channel, account, responder, first_response_at, started_at, resolved_at
                   FROM episode WHERE resolved_at >= ? AND resolved_at < ?""", (start, end))]
            # Unresolved at `start`: begun before it, minus those resolved before it.
            begun = conn.execute("SELECT COUNT(*) FROM episode WHERE started_at < ?", (start,)).fetchone()[0]
            ended = conn.execute("SELECT COUNT(*) FROM episode WHERE resolved_at < ?", (start,)).fetchone()[0]
            replies = [tuple(r) for r in conn.execute(
                """SELECT author, channel, COUNT(*) FROM message
                   WHERE direction = 'out' AND sent_at >= ? AND sent_at < ?
                   AND (author IS NULL OR author NOT LIKE 'auto:%') AND status IS DISTINCT FROM 'failed'
                   GROUP BY author, channel""", (start, end))]
            ratings = [tuple(r) for r in conn.execute(
                """SELECT s.conversation_id, c.channel, e.responder, s.rating FROM csat s
                   JOIN conversation c ON c.id = s.conversation_id LEFT JOIN episode e ON e.id = s.episode_id
                   WHERE s.rated_at >= ? AND s.rated_at < ? AND s.rating IS NOT NULL""", (start, end))]
            waiting = [tuple(r) for r in conn.execute(
                """SELECT channel, COUNT(*), MIN(since) FROM list_row WHERE status = 'open' GROUP BY channel""")]
            by_agent = [tuple(r) for r in conn.execute(
                # The agents first, from the assignee index: with `assignee IS NOT NULL` SQLite
                # walked every open conversation instead (0.4 s at a million messages).
                """SELECT assignee, COUNT(*), MIN(waiting_since) FROM conversation
                   WHERE assignee IN (SELECT DISTINCT assignee FROM conversation WHERE assignee IS NOT NULL)
                   AND status = 'open' GROUP BY assignee""")]
            tags: dict[int, set[str]] = {}
            for r in conn.execute("""SELECT c.id, t.name FROM tag t JOIN conversation c ON c.customer_id = t.customer_id"""):
                tags.setdefault(r[0], set()).add(r[1])
        return ReportData(started, resolved, begun - ended, replies, ratings, waiting, by_agent, tags)

    def needs_me(self, agent: str) -> int:
        """Customers in Open with a conversation assigned to `agent` or to nobody: the header's
        "needs me" count (the Open tab's customers, less those only others have taken). The
        agents come first from the assignee index, as in `report_data`."""
        return self.db.query_one(
            """SELECT COALESCE((SELECT customers FROM list_count WHERE status = 'open' AND channel = ''), 0)
                    - (SELECT COUNT(DISTINCT c.customer_id) FROM conversation c
                       WHERE c.assignee IN (SELECT DISTINCT assignee FROM conversation
                                            WHERE assignee IS NOT NULL AND assignee != ?) AND c.status = 'open'
                       AND NOT EXISTS (SELECT 1 FROM conversation o WHERE o.customer_id = c.customer_id
                                       AND o.status = 'open' AND (o.assignee IS NULL OR o.assignee = ?)))""",
            (agent, agent))[0]

    def account_health(self) -> list[dict]:
        """Per account: its state and reason, last successful sync, customers waiting on it, and
        replies not delivered yet (queued, in doubt) or failed in the last day."""
        accounts = [dict(r) for r in self.db.query("SELECT * FROM account ORDER BY name")]
        waiting = {r[0]: r[1] for r in self.db.query(
            "SELECT account, COUNT(*) FROM conversation WHERE status = 'open' GROUP BY account")}
        outbox = {}
        for r in self.db.query(
                """SELECT account, state, COUNT(*) FROM outbox WHERE state IN ('pending', 'sending')
                   GROUP BY account, state"""):
            outbox.setdefault(r[0], {})[r[1]] = r[2]
        for account in accounts:
            account["waiting"] = waiting.get(account["name"], 0)
            account["queued"] = outbox.get(account["name"], {}).get("pending", 0)
            account["in_doubt"] = outbox.get(account["name"], {}).get("sending", 0)
        return accounts

    def credit_replies(self, conversation_ids: list[int], agent: str) -> int:
        """Name `agent` as the author of the replies in these conversations that the store learnt
        of without one (the demo's history; an import from another tool); returns how many."""
        changed = 0
        with self.db.write() as conn:
            for first in range(0, len(conversation_ids), 500):
                part = conversation_ids[first:first + 500]
                marks = ",".join("?" * len(part))
                changed += conn.execute(
                    f"""UPDATE message SET author = ? WHERE conversation_id IN ({marks}) AND direction = 'out'
                        AND author IS NULL""", (agent, *part)).rowcount
                conn.execute(f"""UPDATE episode SET responder = ? WHERE conversation_id IN ({marks})
                                 AND first_response_at IS NOT NULL AND responder IS NULL""", (agent, *part))
        return changed

    def answered_episodes(self) -> list[dict]:
        """Every episode we answered: conversation, customer, when it began, was answered and resolved."""
        return [dict(r) for r in self.db.query(
            """SELECT e.id, e.conversation_id, c.customer_id, e.channel, e.started_at, e.first_response_at,
                      e.resolved_at, e.resolution FROM episode e JOIN conversation c ON c.id = e.conversation_id
               WHERE e.first_response_at IS NOT NULL ORDER BY e.started_at, e.id""")]
