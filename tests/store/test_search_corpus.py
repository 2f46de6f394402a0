"""Search answers the shared query corpus (tests/store/search_corpus.py) exactly."""

from __future__ import annotations

import pytest

import backends
from store import search_corpus
from console.store import SearchSyntaxError, Store

pytestmark = pytest.mark.own_backends


@pytest.fixture(scope="module", params=backends.BACKENDS, ids=["sqlite", "pg"])
def corpus(request, tmp_path_factory) -> Store:
    """The corpus, loaded once per module on each backend."""
    if request.param == "postgresql":
        server = backends.cluster()
        database = server.create_database(backends.template("schema"))
        store = Store(server.url(database))
    else:
        store = Store(tmp_path_factory.mktemp("corpus") / "console.db")
    search_corpus.load(store)
    yield store
    store.close()
    if request.param == "postgresql":
        server.drop_database(database)


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


FILTERED = [(q, expected, limit) for q, expected, limit in search_corpus.QUERIES
            if "from:" in q or "tag:" in q]


@pytest.mark.parametrize("corpus", ["sqlite"], indirect=True)  # the two ways of reading are the SQLite index's
@pytest.mark.parametrize("query, expected, limit", FILTERED, ids=[q[0] for q in FILTERED])
def test_reading_candidates_first_or_matches_first_gives_the_same_answer(corpus, monkeypatch, query, expected, limit):
    from console.store.search import SqliteSearch

    def never(*args, **kwargs):  # a way that never finishes: another one must answer
        while True:
            yield [], 0.0

    with monkeypatch.context() as patch:
        patch.setattr(SqliteSearch, "_by_candidates", never)
        assert search_corpus.external_ids(corpus, corpus.search(query, limit=limit)) == expected, "matches first"
    with monkeypatch.context() as patch:
        patch.setattr(SqliteSearch, "_by_words", never)
        patch.setattr(SqliteSearch, "_by_time", never)
        assert search_corpus.external_ids(corpus, corpus.search(query, limit=limit)) == expected, "candidates first"
