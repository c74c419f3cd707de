"""Hypothesis invariants of ews.command: normal form, word forms and report routing on any text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ews.command import PRECEDENCE, Category, Confidence, RoutingRules, report_routing
from ews.command.lexicon import DEFAULT_KEYWORDS
from ews.command.text import normal_form, word_forms

RULES = RoutingRules()
KEYWORDS = sorted({k for keywords in DEFAULT_KEYWORDS.values() for k in keywords})
CHAT = ["tolong", "tlg", "ada", "yg", "gak", "bisa", "di", "rt", "3", "pak", "air", "banjir", "need", "help", "tidak"]

# Chat-like texts: keywords and common chat words, joined by spaces or punctuation, sometimes shouted.
words = st.sampled_from(KEYWORDS + CHAT)
separators = st.sampled_from([" ", ", ", "!!! ", "... ", "\n", " - "])
chat_texts = st.lists(st.tuples(words, separators), max_size=12).map(lambda ws: "".join(w + s for w, s in ws))


@given(st.text())
def test_normal_form_is_idempotent_on_any_text(text: str) -> None:
    once = normal_form(text)
    assert normal_form(once) == once
    assert once == once.strip()
    assert "  " not in once


@given(st.text())
def test_every_text_gets_exactly_one_primary_unit(text: str) -> None:
    routing = report_routing(text)
    assert routing.category in set(Category)
    assert routing.unit == RULES.unit(routing.category)
    assert routing.deadline == RULES.deadline(routing.category)
    if routing.matches:
        # The primary is the first match, and the matches follow the precedence without repeats.
        assert routing.matches[0].category is routing.category
        order = [m.category for m in routing.matches]
        assert order == [c for c in PRECEDENCE if c in order]
        assert routing.terms
        assert routing.confidence in (Confidence.HIGH, Confidence.LOW)
    else:
        assert routing.category is Category.UNCLASSIFIED
        assert routing.confidence is Confidence.UNCLASSIFIED


@settings(max_examples=300)
@given(chat_texts)
def test_routing_is_deterministic_and_ignores_shouting(text: str) -> None:
    routing = report_routing(text)
    assert report_routing(text) == routing
    loud = report_routing(text.upper() + "!!!")
    assert (loud.category, loud.terms) == (routing.category, routing.terms)


@settings(max_examples=300)
@given(chat_texts)
def test_someone_trapped_is_always_a_rescue(text: str) -> None:
    # Life safety first: whatever else a report says, a person trapped sends it to Tagana.
    routing = report_routing("ada yang terjebak. " + text)
    assert routing.category is Category.RESCUE
    assert "jebak" in routing.terms


@given(chat_texts)
def test_unclassified_text_only_when_no_keyword_is_present(text: str) -> None:
    routing = report_routing(text)
    if routing.category is Category.UNCLASSIFIED:
        # Only a negation can hide a keyword, and negations cancel rescue and health terms only.
        relief_or_infrastructure = DEFAULT_KEYWORDS[Category.RELIEF] + DEFAULT_KEYWORDS[Category.INFRASTRUCTURE]
        padded = f" {normal_form(text)} "
        assert not any(f" {normal_form(k)} " in padded for k in relief_or_infrastructure)


@given(st.text(alphabet=st.characters(categories=("Ll",)), min_size=1, max_size=30))
def test_word_forms_contain_the_word_and_only_shorter_roots(word: str) -> None:
    forms = word_forms(word)
    assert word in forms
    # A form may put back a nasal's letter (menolong -> tolong) but never grows past the word.
    assert all(len(f) <= len(word) for f in forms)
