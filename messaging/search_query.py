"""A search query parsed once, then written for PostgreSQL or SQLite FTS5.

The syntax is websearch's (``websearch_to_tsquery``): words (all must match),
``"a phrase"``, ``-word`` (must not match), ``or`` between two items; the last
word also matches as a prefix. Both databases get the same parsed query, so
they find the same messages; neither ever sees the user's text as syntax.
"""

import re
from dataclasses import dataclass

from django.conf import settings

from bamchat.errors import invalid

Q_MAX_CHARS = 200
# A prefix shorter than this would expand to most of the index's words.
PREFIX_MIN_CHARS = 2
TOKEN = re.compile(r'"([^"]*)"?|(\S+)')
# Words as both databases' tokenizers cut them: letters and digits only.
WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Item:
    """Words that must appear in this order (one word: a term)."""

    words: tuple[str, ...]
    negated: bool = False
    prefix: bool = False


@dataclass(frozen=True)
class SearchQuery:
    """Groups that must all match; each group matches when any of its items does."""

    groups: tuple[tuple[Item, ...], ...]
    excluded: tuple[Item, ...]

    def postgres(self) -> str:
        """The query as ``to_tsquery`` input (each word normalised by the config)."""

        def item(i: Item) -> str:
            words = [f"'{w}'" for w in i.words]
            if i.prefix:
                words[-1] += ":*"
            return words[0] if len(words) == 1 else "(" + " <-> ".join(words) + ")"

        parts = ["(" + " | ".join(item(i) for i in g) + ")" for g in self.groups]
        parts += ["!" + item(i) for i in self.excluded]
        return " & ".join(parts)

    def fts5(self) -> str:
        """The query as an FTS5 ``MATCH`` expression."""

        def item(i: Item) -> str:
            return '"' + " ".join(i.words) + '"' + ("*" if i.prefix else "")

        text = " AND ".join(
            "(" + " OR ".join(item(i) for i in g) + ")" for g in self.groups
        )
        return "".join([f"({text})", *(f" NOT {item(i)}" for i in self.excluded)])


def parse_query(q) -> SearchQuery:
    """The parsed query, or Invalid on ``q`` (empty, too long, too many words,
    nothing that must match)."""
    if not isinstance(q, str) or not q.strip():
        raise invalid("q", "Give something to search for.")
    if len(q) > Q_MAX_CHARS:
        raise invalid("q", f"Ensure q has no more than {Q_MAX_CHARS} characters.")
    items: list[Item | str] = []
    for match in TOKEN.finditer(q):
        phrase, word = match.groups()
        negated = False
        if word is not None:
            if word.lower() == "or":
                items.append("or")
                continue
            negated = word.startswith("-")
            phrase = word.lstrip("-")
        words = tuple(w.lower() for w in WORD.findall(phrase))
        if words:
            items.append(Item(words=words, negated=negated))
    count = sum(len(i.words) for i in items if isinstance(i, Item))
    if count > settings.SEARCH["MAX_TERMS"]:
        raise invalid(
            "q", f"Use at most {settings.SEARCH['MAX_TERMS']} words in a search."
        )
    last = items[-1] if items else None
    ends_with_word = not q.rstrip().endswith('"')
    if (
        isinstance(last, Item)
        and ends_with_word
        and not last.negated
        and len(last.words) == 1
        and len(last.words[0]) >= PREFIX_MIN_CHARS
    ):
        items[-1] = Item(words=last.words, prefix=True)
    groups: list[list[Item]] = []
    excluded: list[Item] = []
    joining = False
    for i in items:
        if i == "or":
            joining = bool(groups)
        elif i.negated:
            excluded.append(i)
            joining = False
        elif joining:
            groups[-1].append(i)
            joining = False
        else:
            groups.append([i])
    if not groups:
        raise invalid("q", "Give at least one word that must match.")
    return SearchQuery(groups=tuple(tuple(g) for g in groups), excluded=tuple(excluded))
