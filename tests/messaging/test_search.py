"""Message search: the same cases on SQLite (FTS5) and PostgreSQL (tsvector/GIN).

CI's PostgreSQL step runs this file unchanged; every case below then runs there.
"""

import io
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from bamchat.errors import Invalid, NotFound
from messaging import lifecycle, services
from messaging.models import Message
from messaging.search import message_search, snippet_html
from messaging.search_query import parse_query
from tests.factories import BamFactory, UserFactory

pytestmark = pytest.mark.django_db

TEXTS = {
    "fox": "The quick brown fox",
    "quick": "quick thinking saves the day",
    "bread": "brown bread & <butter>",
    "cafe": "Le café est fermé",
    "dog": "lazy dog sleeps",
}


@pytest.fixture
def corpus():
    owner, member = UserFactory(), UserFactory()
    bam = BamFactory(owner=owner, members=[member])
    ids = {
        key: services.message_create(bam_id=bam.pk, sender=owner, content=text).pk
        for key, text in TEXTS.items()
    }
    return owner, member, bam, ids


def found(user, q, **filters) -> list[str]:
    results, _ = message_search(user=user, q=q, **filters)
    return [r["message"]["id"] for r in results]


@pytest.mark.parametrize(
    "q, keys",
    [
        ("quick", ["quick", "fox"]),
        ("QUICK brown", ["fox"]),
        ('"brown fox"', ["fox"]),
        ('"fox brown"', []),
        ("quick -fox", ["quick"]),
        ("fox or bread", ["bread", "fox"]),
        ("fox OR bread quick", ["fox"]),
        ("qui", ["quick", "fox"]),  # the last word is a prefix
        ("sle", ["dog"]),
        ('"qui"', []),  # a quoted last word is not
        ("café", ["cafe"]),
        ("butter", ["bread"]),
        ("brown-fox", ["fox"]),  # joined words are a phrase
        ("nothing", []),
    ],
)
def test_query_syntax(corpus, q, keys):
    _owner, member, _bam, ids = corpus
    assert found(member, q) == [str(ids[k]) for k in keys]


@pytest.mark.parametrize(
    "q",
    [
        "",
        "   ",
        "x" * 201,
        "-fox",
        "!!! ???",
        "a b c d e f g h i",
        "or",
        '"' * 200,
    ],
)
def test_empty_long_negative_only_or_wordless_queries_are_invalid(corpus, q):
    _owner, member, _bam, _ids = corpus
    with pytest.raises(Invalid) as err:
        message_search(user=member, q=q)
    assert "q" in err.value.fields


@pytest.mark.parametrize(
    "q",
    [
        "fox NEAR(a b) *",
        "'); DROP TABLE x; --",
        'fox" OR "dog',
        "fox:* & !dog | (",
        "^fox {content}:dog",
        "\uff46\uff4f\uff58",  # fullwidth
    ],
)
def test_hostile_syntax_is_only_ever_words(corpus, q):
    _owner, member, _bam, ids = corpus
    assert set(found(member, q)) <= {str(i) for i in ids.values()}


def test_snippet_marks_words_and_escapes_the_rest(corpus):
    _owner, member, _bam, _ids = corpus
    (hit,) = message_search(user=member, q="butter")[0]
    assert hit["snippet"] == "brown bread &amp; &lt;<mark>butter</mark>&gt;"
    query = parse_query("Fox or qu")
    long = "x " * 100 + "the <Fox> & quiet " + "y " * 100
    snippet = snippet_html(long, query)
    assert snippet.startswith("… x x") and snippet.endswith("y y…")
    assert "the &lt;<mark>Fox</mark>&gt; &amp; <mark>quiet</mark> y" in snippet
    bare = snippet.replace("<mark>", "").replace("</mark>", "")
    assert "<" not in bare and ">" not in bare
    assert (
        len(bare.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")) == 202
    )


def test_only_bams_the_user_takes_part_in_now(corpus):
    owner, member, bam, ids = corpus
    other = BamFactory(owner=owner)
    services.message_create(bam_id=other.pk, sender=owner, content="quick secret")
    assert found(member, "quick") == [str(ids["quick"]), str(ids["fox"])]
    services.participant_remove(bam_id=bam.pk, user=member, removed_user_id=member.pk)
    assert found(member, "quick") == []
    with pytest.raises(NotFound):
        message_search(user=member, q="quick", bam_id=bam.pk)
    assert len(found(owner, "quick", bam_id=other.pk)) == 1


def test_deleted_vanish_and_edits_match_their_new_text_at_once(corpus):
    owner, member, _bam, ids = corpus
    lifecycle.message_delete(message_id=ids["dog"], user=owner)
    assert found(member, "dog") == []
    lifecycle.message_edit(message_id=ids["fox"], user=owner, content="slow turtle")
    assert found(member, "fox") == []
    assert found(member, "turtle") == [str(ids["fox"])]


def test_filters_and_pages(corpus):
    owner, member, bam, _ids = corpus
    mine = [
        services.message_create(bam_id=bam.pk, sender=member, content=f"page {n}").pk
        for n in range(53)
    ]
    results, cursor = message_search(user=owner, q="page")
    assert [r["message"]["id"] for r in results] == [str(i) for i in mine[::-1][:50]]
    assert results[0]["bamId"] == str(bam.pk)
    rest, last = message_search(user=owner, q="page", cursor=cursor)
    assert [r["message"]["id"] for r in rest] == [str(i) for i in mine[2::-1]]
    assert last is None
    assert found(owner, "page", from_user_id=owner.pk) == []
    Message.objects.filter(pk=mine[0]).update(
        created_at=timezone.now() - timedelta(days=3)
    )
    yesterday = (timezone.now() - timedelta(days=1)).isoformat()
    assert found(owner, "page", before=yesterday) == [str(mine[0])]
    assert len(found(owner, "page", after=yesterday)) == 50
    with pytest.raises(Invalid):
        message_search(user=owner, q="page", before="yesterday")


# PostgreSQL's statement_timeout takes no deadline in the past, so this case runs
# on SQLite only (CI's PostgreSQL run deselects the marker).
@pytest.mark.sqlite_only
def test_a_search_past_its_deadline_is_refused(corpus, settings):
    _owner, member, _bam, _ids = corpus
    settings.SEARCH = {**settings.SEARCH, "TIMEOUT_MS": -1}
    with pytest.raises(Invalid) as err:
        message_search(user=member, q="quick")
    assert "q" in err.value.fields
    assert connection.vendor == "sqlite"


def test_reindex_rebuilds_what_the_search_finds(corpus):
    from django.core.management import call_command

    _owner, member, _bam, ids = corpus
    call_command("search_reindex", stdout=io.StringIO())
    assert found(member, "sleeps") == [str(ids["dog"])]
