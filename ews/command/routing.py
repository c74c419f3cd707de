"""Report routing (kanalisasi): which unit must act on an inbound report text, and by when.

Every report gets exactly one primary unit, and none is dropped: a text that no rule recognises goes to the
duty operator. The rules, applied by :func:`report_routing`:

1. The text is put in normal form (:func:`ews.command.text.normal_form`: lower case, no punctuation,
   stretched letters and chat abbreviations undone). A word that is not a keyword word is corrected to the one
   keyword word of seven letters or more one typing slip away with the same first letter, if there is
   exactly one (``jembtan`` -> ``jembatan``); otherwise a word typed without spaces is split into known
   words (``butuhmakanan`` -> ``butuh makanan``).
2. Keywords (:mod:`ews.command.lexicon`, extended or replaced per region by
   :class:`ews.command.rules.RoutingRules`) are found from left to right, the longest first, so
   ``evacuation center`` (relief) wins over ``evacuation`` (rescue) and ``rumah sakit`` is one health term. A
   keyword word matches a text word when it is one of the word's forms (:func:`ews.command.text.word_forms`:
   ``jebak`` matches ``terjebak``, ``kejebak``, ``dijebak``). Each text word belongs to at most one term.
3. A rescue or health term right after a negation (``tidak``, ``gak``, ``no``, ``not``, ``nobody``, ``tanpa``,
   ``bukan``; up to three of ``ada``, ``yang``, ``one``, ``is``, ``korban`` … between) is cancelled: "tidak ada
   yang luka", "no one injured" report no harm. Relief and infrastructure terms are not: "tidak ada makanan",
   "tidak ada listrik" report a need.
4. Every category with a term is a match; the primary is the first in :data:`ews.command.lexicon.PRECEDENCE`,
   life safety first: rescue (Tagana), health (Dinas Kesehatan), relief (Dinas Sosial and the ministry's
   Direktorat PSKBA), infrastructure (BPBD / PUPR). No match: unclassified, to the duty operator.
5. The confidence says how much the primary rests on: ``high`` for two different terms or a phrase, ``low``
   for a single word, ``unclassified`` when nothing matched.

Known limits, left to the duty operator: "tidak ada obat" (no medicine) cancels the health term like "tidak
ada luka" does; a person's name that is a keyword ("Pak Lukas" reads as ``luka``) matches it; the rules read
words, not meaning, so a rumour about a breached levee routes like a report of one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache

from ews.command.lexicon import PRECEDENCE, Category
from ews.command.rules import RoutingRules
from ews.command.text import (
    ABBREVIATIONS,
    CHAT_WORDS,
    NEGATIONS,
    normal_form,
    split_run_together,
    within_one_edit,
    word_forms,
)

_MIN_CORRECTED = 7  # at six, Indonesian words one letter apart are common (miring, mising)
_NEGATED = frozenset({Category.RESCUE, Category.HEALTH})
_BETWEEN_NEGATION = frozenset(
    {"ada", "yang", "satu", "satupun", "pun", "korban", "warga", "orang", "one", "is", "was", "were", "are", "any"}
)
_MAX_BETWEEN = 3


class Confidence(StrEnum):
    """How much the primary category rests on (see the module docstring, rule 5)."""

    HIGH = "high"
    LOW = "low"
    UNCLASSIFIED = "unclassified"


@dataclass(frozen=True)
class CategoryMatch:
    """One category that a report's text matched.

    ``terms``: the keywords found, as written in the rules, in the order of the text.
    """

    category: Category
    unit: str
    deadline: timedelta
    terms: tuple[str, ...]


@dataclass(frozen=True)
class ReportRouting:
    """Where a report goes: the primary category's unit and deadline, and every category it matched.

    ``matches`` holds every matched category in precedence order, the primary first; it is empty when the
    report is unclassified (then ``unit`` is the duty operator and ``terms`` is empty).
    """

    category: Category
    unit: str
    deadline: timedelta
    terms: tuple[str, ...]
    confidence: Confidence
    matches: tuple[CategoryMatch, ...]

    def due(self, received: datetime) -> datetime:
        """The instant by which the unit must take the report in hand.

        Parameters
        ----------
        received
            When the report was received, with its time zone.

        Raises
        ------
        ValueError
            ``received`` has no time zone (a deadline must be an instant).
        """
        if received.tzinfo is None or received.utcoffset() is None:
            raise ValueError(f"received {received.isoformat()} has no time zone; give an aware datetime")
        return received + self.deadline


@dataclass(frozen=True)
class _Term:
    words: tuple[str, ...]
    keyword: str
    category: Category


@dataclass(frozen=True)
class _Matcher:
    by_first_word: Mapping[str, tuple[_Term, ...]]
    keyword_words: frozenset[str]
    correction_index: Mapping[str, frozenset[str]]
    split_vocabulary: frozenset[str]


@lru_cache(maxsize=1)
def _built_in_rules() -> RoutingRules:
    # Built lazily and once: validating the built-in keyword lists takes milliseconds.
    return RoutingRules()


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


@lru_cache(maxsize=32)
def _matcher(rules: RoutingRules) -> _Matcher:
    by_first: dict[str, list[_Term]] = defaultdict(list)
    for category in PRECEDENCE:
        for keyword in rules.keywords(category):
            words = tuple(normal_form(keyword).split())
            by_first[words[0]].append(_Term(words, keyword, category))
    keyword_words = frozenset(w for terms in by_first.values() for t in terms for w in t.words)
    index: dict[str, set[str]] = defaultdict(set)
    for word in keyword_words:
        if len(word) >= _MIN_CORRECTED and not word.isdigit():
            for key in {word} | _deletions(word):
                index[key].add(word)
    abbreviations = {w for pair in ABBREVIATIONS.items() for text in pair for w in text.split()}
    return _Matcher(
        by_first_word={k: tuple(sorted(v, key=lambda t: -len(t.words))) for k, v in by_first.items()},
        keyword_words=keyword_words,
        correction_index={k: frozenset(v) for k, v in index.items()},
        split_vocabulary=keyword_words | CHAT_WORDS | frozenset(ABBREVIATIONS) | abbreviations,
    )


def _known(word: str, matcher: _Matcher) -> bool:
    return word in matcher.split_vocabulary or not word_forms(word).isdisjoint(matcher.keyword_words)


def _correction(word: str, matcher: _Matcher) -> str | None:
    if len(word) < _MIN_CORRECTED - 1 or word.isdigit():
        return None
    near = {c for key in {word} | _deletions(word) for c in matcher.correction_index.get(key, ())}
    # Slips rarely hit the first letter, and requiring it keeps "rising" from becoming "missing".
    near = {c for c in near if c[0] == word[0] and within_one_edit(word, c)}
    return next(iter(near)) if len(near) == 1 else None


def _words(text: str, matcher: _Matcher) -> list[str]:
    words: list[str] = []
    for word in normal_form(text).split():
        if _known(word, matcher):
            words.append(word)
            continue
        corrected = _correction(word, matcher)
        if corrected is not None:
            words.append(corrected)
            continue
        words.extend(split_run_together(word, lambda piece: _known(piece, matcher)) or (word,))
    return words


def _term_at(words: Sequence[str], i: int, matcher: _Matcher) -> _Term | None:
    candidates = [t for form in word_forms(words[i]) for t in matcher.by_first_word.get(form, ())]
    for term in sorted(candidates, key=lambda t: (-len(t.words), -len(t.words[0]))):
        end = i + len(term.words)
        if end <= len(words) and all(w in word_forms(words[i + k]) for k, w in enumerate(term.words)):
            return term
    return None


def _negated(words: Sequence[str], start: int) -> bool:
    j = start - 1
    while j >= 0 and words[j] in _BETWEEN_NEGATION and start - 1 - j < _MAX_BETWEEN:
        j -= 1
    return j >= 0 and words[j] in NEGATIONS


def report_routing(text: str, rules: RoutingRules | None = None) -> ReportRouting:
    """Route one inbound report text to the unit that must act on it (see the module docstring).

    Parameters
    ----------
    text
        The report as received (WhatsApp message, operator's note, forwarded report), any language or script.
    rules
        The region's routing rules (``RegionConfig.routing``); the built-in rules when None.

    Returns
    -------
    ReportRouting
        The primary category, its unit and deadline, the terms found, the confidence and every matched
        category; unclassified (the duty operator) when no keyword matched.
    """
    rules = _built_in_rules() if rules is None else rules
    matcher = _matcher(rules)
    words = _words(text, matcher)
    found: dict[Category, list[str]] = defaultdict(list)
    phrase_found: set[Category] = set()
    i = 0
    while i < len(words):
        term = _term_at(words, i, matcher)
        if term is None:
            i += 1
            continue
        if not (term.category in _NEGATED and _negated(words, i)):
            if term.keyword not in found[term.category]:
                found[term.category].append(term.keyword)
            if len(term.words) > 1:
                phrase_found.add(term.category)
        i += len(term.words)
    matches = tuple(
        CategoryMatch(c, rules.unit(c), rules.deadline(c), tuple(found[c])) for c in PRECEDENCE if found.get(c)
    )
    if not matches:
        unclassified = Category.UNCLASSIFIED
        return ReportRouting(
            unclassified, rules.unit(unclassified), rules.deadline(unclassified), (), Confidence.UNCLASSIFIED, ()
        )
    primary = matches[0]
    strong = len(primary.terms) >= 2 or primary.category in phrase_found
    return ReportRouting(
        primary.category,
        primary.unit,
        primary.deadline,
        primary.terms,
        Confidence.HIGH if strong else Confidence.LOW,
        matches,
    )
