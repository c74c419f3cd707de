"""Invariants of named-area matching: folding is stable, exact names match themselves, others do not interfere."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st

from ews.exposure.named_areas import (
    Candidate,
    Relation,
    Resolution,
    edit_budget,
    edit_distance,
    fold_name,
    match_named_areas,
)

# Names like BMKG's: a few words over a small alphabet (so that near-misses and namesakes happen often),
# with the punctuation and case they come with.
words = st.text(alphabet="abegiklmnorsu", min_size=1, max_size=7)
names = st.lists(words, min_size=1, max_size=3).map(" ".join)
separators = st.sampled_from([" ", "  ", ". ", "-", " - ", "."])
regencies = st.sampled_from(["99.01", "99.02", "99.03"])


@st.composite
def tables(draw: st.DrawFn, min_size: int = 1) -> list[Candidate]:
    """A province-99 table with distinct codes in three kabupaten."""
    rows = draw(st.lists(st.tuples(regencies, names), min_size=min_size, max_size=12))
    return [Candidate(f"{regency}.{i:02d}", name.title()) for i, (regency, name) in enumerate(rows, start=1)]


@given(st.text(max_size=40), st.booleans())
def test_folding_is_idempotent(text: str, regency: bool) -> None:
    once = fold_name(text, regency=regency)
    assert fold_name(once, regency=regency) == once


@given(st.lists(words, min_size=1, max_size=3), st.data())
def test_folding_ignores_case_and_punctuation(parts: list[str], data: st.DataObject) -> None:
    plain = " ".join(parts)
    written = parts[0]
    for part in parts[1:]:
        written += data.draw(separators) + part
    written = data.draw(st.sampled_from([written, written.upper(), written.title()]))
    assert fold_name(written) == fold_name(plain)


@given(st.text(alphabet="abcd", max_size=8), st.text(alphabet="abcd", max_size=8), st.integers(0, 4))
def test_edit_distance_is_symmetric_and_the_limit_only_caps(a: str, b: str, limit: int) -> None:
    full = edit_distance(a, b)
    assert full == edit_distance(b, a)
    assert edit_distance(a, b, limit) == min(full, limit + 1)


@given(tables(), st.data())
def test_an_exact_name_always_matches_itself(table: list[Candidate], data: st.DataObject) -> None:
    candidate = data.draw(st.sampled_from(table))
    written = data.draw(st.sampled_from([candidate.name, candidate.name.upper(), candidate.name.lower()]))
    result = match_named_areas([written], table, province="99")
    assert candidate.code in result.codes
    assert result.matches[0].relation in (Relation.EXACT, Relation.EXACT_AND_CHILDREN)


@given(tables(), regencies, names, st.data())
def test_an_unrelated_candidate_never_changes_an_unambiguous_exact_match(
    table: list[Candidate], regency: str, extra_name: str, data: st.DataObject
) -> None:
    candidate = data.draw(st.sampled_from(table))
    before = match_named_areas([candidate.name], table, province="99").matches[0]
    assume(before.relation is Relation.EXACT and before.resolution is Resolution.UNIQUE)
    folded, extra = fold_name(candidate.name), fold_name(extra_name)
    # Unrelated: another name, and not a part split off from this one ("<name> <more words>").
    assume(extra.replace(" ", "") != folded.replace(" ", "") and not extra.startswith(folded + " "))
    grown = [*table, Candidate(f"{regency}.99", extra_name.title())]
    after = match_named_areas([candidate.name], grown, province="99").matches[0]
    assert after == before


@given(tables(min_size=2), names)
def test_spelling_matches_are_the_nearest_names_by_brute_force(table: list[Candidate], written: str) -> None:
    folded = fold_name(written)
    compact = folded.replace(" ", "")
    keys = {fold_name(c.name).replace(" ", "") for c in table}
    assume(compact not in keys)
    assume(not any(fold_name(c.name).startswith(folded + " ") for c in table))
    budget = edit_budget(len(compact))
    distances = {key: edit_distance(compact, key) for key in keys}
    best = min(distances.values())
    nearest = sorted(key for key, d in distances.items() if d == best)
    result = match_named_areas([written], table, province="99")
    if best > budget or len(nearest) > 1:
        assert result.matches == ()
        assert result.unmatched == (written,)
    else:
        (m,) = result.matches
        expected = sorted(c.code for c in table if fold_name(c.name).replace(" ", "") == nearest[0])
        assert (m.relation, m.edits, list(m.considered)) == (Relation.SPELLING, best, expected)
