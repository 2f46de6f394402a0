"""Search answers the shared query corpus (tests/store/search_corpus.py) exactly."""

from __future__ import annotations

import pytest

from store import search_corpus
from console.store import SearchSyntaxError, Store


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Store:
    store = Store(tmp_path_factory.mktemp("corpus") / "console.db")
    search_corpus.load(store)
    yield store
    store.close()


@pytest.mark.parametrize("query, expected, limit", search_corpus.QUERIES, ids=[q[0] or "(empty)" for q in search_corpus.QUERIES])
def test_the_query_finds_exactly_its_hits_newest_first_one_per_conversation(corpus, query, expected, limit):
    assert search_corpus.external_ids(corpus, corpus.search(query, limit=limit)) == expected


@pytest.mark.parametrize("query, lines", search_corpus.LINES)
def test_each_hit_shows_the_line_that_matched(corpus, query, lines):
    assert [hit.line for hit in corpus.search(query)] == lines


@pytest.mark.parametrize("query", search_corpus.ERRORS)
def test_a_filter_that_cannot_be_read_is_a_sentence_not_an_empty_result(corpus, query):
    with pytest.raises(SearchSyntaxError):
        corpus.search(query)


FILTERED = [(q, expected, limit) for q, expected, limit in search_corpus.QUERIES if "from:" in q or "tag:" in q]


@pytest.mark.parametrize("query, expected, limit", FILTERED, ids=[q[0] for q in FILTERED])
def test_reading_customer_first_or_match_first_gives_the_same_answer(corpus, monkeypatch, query, expected, limit):
    from console.store.search import SqliteSearch

    def never(*args, **kwargs):  # a way that never finishes: the other one must answer
        while True:
            yield [], 0.0

    monkeypatch.setattr(SqliteSearch, "_candidates", lambda self, *args: 10**9)
    assert search_corpus.external_ids(corpus, corpus.search(query, limit=limit)) == expected, "match first"
    monkeypatch.setattr(SqliteSearch, "_candidates", lambda self, *args: 1)
    monkeypatch.setattr(SqliteSearch, "_by_words", never)
    monkeypatch.setattr(SqliteSearch, "_by_time", never)
    assert search_corpus.external_ids(corpus, corpus.search(query, limit=limit)) == expected, "customer first"
