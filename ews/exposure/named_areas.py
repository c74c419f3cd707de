"""Match the kecamatan names BMKG lists in a warning to Kemendagri codes (pure).

BMKG's nowcasts name kecamatan after "khususnya di" / "especially in:". The names come from an older
edition of the code list and are typed by hand, so they do not always match today's names:

- a kecamatan since split (KRAYAN, now Krayan, Krayan Selatan, Tengah, Timur and Barat);
- spelling variants (CIGEMLONG for Cigemblong) and spacing (CURUG BITUNG for Curugbitung);
- Title-Case in older files, abbreviations with a period ("Bl. Limbangan");
- the same name in several kabupaten/kota of a province (CIBEBER, KARANGANYAR, WONOSARI), which only
  the warning's polygons can tell apart;
- a kabupaten/kota name instead of kecamatan (Pekalongan for Kota Pekalongan's four kecamatan).

:func:`match_named_areas` applies these rules, in order, within the warning's province:

1. **exact**: the folded name (:func:`fold_name`, spaces ignored) equals a candidate's;
2. **children**: no exact match, but the caller's ``lineage`` maps the name to new codes, or else
   candidates are named "<name> <more words>" (in one kabupaten/kota): the split-off kecamatan. When an
   exact match exists *and* such children exist (Krayan still exists as 65.03.05 beside its children),
   the children are added when the warning covers them at least ``cover_fraction`` or when there is no
   usable coverage (a warning errs on the side of warning); they are always listed in
   :attr:`NameMatch.children`;
3. **spelling**: the nearest candidate by Damerau-Levenshtein distance (optimal string alignment),
   within a budget that grows with the name's length (:func:`edit_budget`), when only one name is
   nearest;
4. **ambiguity**: when a step finds several candidates (the same name in several kabupaten/kota), those
   the warning's polygons cover at least ``cover_fraction`` are kept (``coverage``; BMKG writes a name
   once even when two namesakes are under the warning), else the one nearest to the warning's geometry
   (``hint``, even a degenerate one), else all of them, flagged :attr:`Resolution.AMBIGUOUS`. A
   smaller coverage is a sliver along a border and does not choose.

:func:`named_area_gaps` compares the names with the polygons for the run report: named areas the
polygons hardly cover, and areas the polygons cover but the text does not name.
"""

from __future__ import annotations

import bisect
import enum
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from ews.errors import DataValidationError

_CODE = re.compile(r"^\d{2}(\.\d{2}){1,2}(\.\d{4})?$")
_PROVINCE = re.compile(r"^\d{2}$")
_DROPPED = re.compile(r"['\"`´‘’ʼ]")  # apostrophes and quotes join their neighbours: Ma'u -> mau
_SEPARATOR = re.compile(r"[^0-9a-z]+")
_KECAMATAN_PREFIXES = ("kecamatan", "kec", "distrik")
_REGENCY_PREFIXES = ("kabupaten", "kab", "kota administrasi", "kota adm", "kotamadya", "kota")
# Abbreviations in official names ("Bl. Limbangan", "Gn. Bintang Awai", "Kep. Masaloka Raya"): a name
# written either way folds to the same words.
_ABBREVIATIONS = {"bl": "balubur", "gn": "gunung", "kep": "kepulauan"}
_DISTANCE_TIE = 1e-9  # degrees: hint distances closer than this are a tie


class Relation(enum.StrEnum):
    """How a BMKG name relates to the codes it matched."""

    EXACT = "exact"
    EXACT_AND_CHILDREN = "exact+children"
    CHILDREN = "children"
    SPELLING = "spelling"


class Resolution(enum.StrEnum):
    """How a choice between several candidates was made (``UNIQUE``: there was no choice)."""

    UNIQUE = "unique"
    COVERAGE = "by coverage"
    HINT = "by hint"
    AMBIGUOUS = "ambiguous"


@dataclass(frozen=True)
class Candidate:
    """A kecamatan (or other area) a name may refer to.

    Parameters
    ----------
    code
        Dotted Kemendagri code, e.g. ``"33.26.07"``; its first two digits are the province.
    name
        The official name, e.g. ``"Karanganyar"``.
    geometry
        Its polygon or a representative point, EPSG:4326 (lon, lat); ``None`` when unknown (then a
        ``hint`` cannot choose it over a namesake).
    """

    code: str
    name: str
    geometry: BaseGeometry | None = None

    def __post_init__(self) -> None:
        if not _CODE.match(self.code):
            raise DataValidationError(
                f"candidate {self.name!r}: code {self.code!r} is not a dotted Kemendagri code (e.g. '33.26.07')"
            )

    @property
    def regency(self) -> str:
        """The kabupaten/kota code, e.g. ``"33.26"``."""
        return self.code[:5]


@dataclass(frozen=True)
class _Province:
    compact: Mapping[str, tuple[str, ...]]  # folded name without spaces -> codes
    spaced: tuple[tuple[str, str], ...]  # (folded name, code), sorted: prefix search by bisection
    # Deletion neighbourhoods (as in SymSpell), built on first use per depth: every string reached from a
    # key by up to `depth` deletions -> the keys. Two strings at most k edits apart (optimal string
    # alignment) share a string reached by at most k deletions from each, so a look-up of the query's own
    # deletions finds every candidate within k edits without comparing against all of them.
    neighbourhoods: dict[int, dict[str, tuple[str, ...]]] = field(default_factory=dict, compare=False, repr=False)

    def near(self, word: str, budget: int, depth: int) -> tuple[int, tuple[str, ...]]:
        """The keys nearest to ``word`` within ``budget`` edits (``depth >= budget``), and their distance."""
        if depth not in self.neighbourhoods:
            table: dict[str, set[str]] = {}
            for key in self.compact:
                for variant in _deletions(key, depth):
                    table.setdefault(variant, set()).add(key)
            self.neighbourhoods[depth] = {v: tuple(sorted(keys)) for v, keys in table.items()}
        table_for_depth = self.neighbourhoods[depth]
        found = {key for variant in _deletions(word, budget) for key in table_for_depth.get(variant, ())}
        best, nearest = budget + 1, []
        for key in sorted(found):
            distance = edit_distance(word, key, budget)
            if distance < best:
                best, nearest = distance, [key]
            elif distance == best <= budget:
                nearest.append(key)
        return best, tuple(nearest)


@dataclass(frozen=True)
class CandidateIndex:
    """Candidates indexed once per run for many :func:`match_named_areas` calls.

    Build it with :meth:`from_candidates`; it holds the candidates by code and, per province, the
    folded names for exact, prefix and near-spelling look-ups.
    """

    by_code: Mapping[str, Candidate]
    provinces: Mapping[str, _Province] = field(repr=False)

    @classmethod
    def from_candidates(cls, candidates: Iterable[Candidate]) -> CandidateIndex:
        """Index ``candidates`` (any number of provinces).

        A name with a part in parentheses ("Misool (Misool Utara)") is found under the whole name, the
        part outside and the part inside.

        Raises
        ------
        DataValidationError
            When a code occurs twice.
        """
        by_code: dict[str, Candidate] = {}
        keys: dict[str, dict[str, set[str]]] = {}
        spaced: dict[str, set[tuple[str, str]]] = {}
        for candidate in candidates:
            if candidate.code in by_code:
                raise DataValidationError(
                    f"candidate code {candidate.code} occurs twice ({by_code[candidate.code].name!r} and "
                    f"{candidate.name!r}); give each area once"
                )
            by_code[candidate.code] = candidate
            province = candidate.code[:2]
            for folded in _name_variants(candidate.name):
                keys.setdefault(province, {}).setdefault(folded.replace(" ", ""), set()).add(candidate.code)
                spaced.setdefault(province, set()).add((folded, candidate.code))
        provinces = {
            province: _Province(
                compact={key: tuple(sorted(codes)) for key, codes in compact_keys.items()},
                spaced=tuple(sorted(spaced[province])),
            )
            for province, compact_keys in keys.items()
        }
        return cls(by_code=by_code, provinces=provinces)

    def __len__(self) -> int:
        return len(self.by_code)


@dataclass(frozen=True)
class NameMatch:
    """What one BMKG name matched.

    Attributes
    ----------
    name
        The name as BMKG wrote it.
    folded
        The same after :func:`fold_name`.
    codes
        The matched codes, sorted.
    relation, resolution
        How the name relates to them, and how a choice between namesakes was made.
    considered
        Every code the rules found before the choice (equal to ``codes`` when the resolution is unique).
    children
        Codes split off from the matched kecamatan (by ``lineage`` or by name), whether included in
        ``codes`` or not.
    edits
        Edit distance of a spelling match (0 otherwise).
    note
        One sentence for the run report.
    """

    name: str
    folded: str
    codes: tuple[str, ...]
    relation: Relation
    resolution: Resolution = Resolution.UNIQUE
    considered: tuple[str, ...] = ()
    children: tuple[str, ...] = ()
    edits: int = 0
    note: str = ""

    @property
    def how(self) -> str:
        """``"exact"``, ``"children"``, ``"spelling"``, ``"exact+children"``, or e.g. ``"exact/by coverage"``."""
        if self.resolution is Resolution.UNIQUE:
            return str(self.relation)
        return f"{self.relation}/{self.resolution}"


@dataclass(frozen=True)
class NamedAreaMatch:
    """The names of one warning matched in one province.

    ``matches`` has one entry per distinct folded name that matched, in the order given; ``unmatched``
    the names that matched nothing (as written), with a reason each in ``notes``.
    """

    province: str
    matches: tuple[NameMatch, ...]
    unmatched: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def codes(self) -> tuple[str, ...]:
        """Every matched code, sorted, each once."""
        return tuple(sorted({code for match in self.matches for code in match.codes}))

    @property
    def ambiguous(self) -> tuple[NameMatch, ...]:
        """The matches left ambiguous: all namesakes were returned."""
        return tuple(m for m in self.matches if m.resolution is Resolution.AMBIGUOUS)

    def match_for(self, name: str) -> NameMatch | None:
        """The match of ``name`` (compared folded), or ``None`` when it did not match."""
        folded = fold_name(name)
        return next((m for m in self.matches if m.folded == folded), None)


@dataclass(frozen=True)
class AreaGap:
    """One disagreement between the named areas and the polygons: ``fraction`` of ``code`` covered (0-1)."""

    code: str
    fraction: float
    area_name: str = ""  # the candidate's official name, when known
    named_as: str = ""  # the BMKG name that matched it ("" for an area the text does not name)


@dataclass(frozen=True)
class NamedAreaGaps:
    """Where a warning's text and its polygons disagree (see :func:`named_area_gaps`)."""

    named_uncovered: tuple[AreaGap, ...]
    covered_unnamed: tuple[AreaGap, ...]
    unmatched: tuple[str, ...]
    ambiguous: tuple[NameMatch, ...]

    def __bool__(self) -> bool:
        return bool(self.named_uncovered or self.covered_unnamed or self.unmatched or self.ambiguous)

    def to_notes(self) -> tuple[str, ...]:
        """One line per disagreement, for ``report.json``."""
        notes = [
            f"named {g.named_as!r} -> {g.code} {g.area_name} but only {g.fraction:.0%} covered by the polygons"
            for g in self.named_uncovered
        ]
        notes += [f"{g.code} {g.area_name} is {g.fraction:.0%} covered but not named" for g in self.covered_unnamed]
        notes += [f"named {name!r} matches no kecamatan of the province" for name in self.unmatched]
        notes += [f"named {m.name!r} is ambiguous: kept {', '.join(m.codes)}" for m in self.ambiguous]
        return tuple(notes)


def fold_name(text: str, *, regency: bool = False) -> str:
    """Fold an area name for comparison.

    Lower case, accents removed, apostrophes and quotes dropped ("Ma'u" -> "mau"), any other run of
    punctuation or spaces made one space ("Bl. Limbangan", "BL LIMBANGAN" and "bl.limbangan" all give
    ``"balubur limbangan"``), the abbreviations Bl./Gn./Kep. written out, and a leading "Kec.",
    "Kecamatan" or "Distrik" removed (when a name remains). Characters outside the Latin alphabet and
    digits are dropped. Folding twice gives the same as folding once.

    Parameters
    ----------
    text
        The name.
    regency
        Also remove a leading "Kab.", "Kabupaten", "Kota" or "Kota Administrasi": for kabupaten/kota
        names only, since many kecamatan are called "Kota ..." ("Kota Bangun").

    Returns
    -------
    str
        Words of ``[0-9a-z]`` separated by single spaces; ``""`` for a name without letters or digits.
    """
    # Quotes go before decomposing: NFKD turns an acute accent sign into a space and a combining mark.
    decomposed = unicodedata.normalize("NFKD", _DROPPED.sub("", text.casefold()))
    ascii_only = "".join(c for c in decomposed if c.isascii())
    words = _SEPARATOR.sub(" ", _DROPPED.sub("", ascii_only)).split()
    words = [_ABBREVIATIONS.get(w, w) for w in words]
    prefixes = _KECAMATAN_PREFIXES + (_REGENCY_PREFIXES if regency else ())
    stripped = True
    while stripped:
        stripped = False
        for prefix in prefixes:
            head = prefix.split()
            if len(words) > len(head) and words[: len(head)] == head:
                words = words[len(head) :]
                stripped = True
    return " ".join(words)


def edit_budget(length: int, max_edits: int = 2) -> int:
    """How many edits a name of ``length`` letters (spaces not counted) may be away from a candidate.

    None up to 3 letters (too many short names are one edit apart), 1 up to 6, ``max_edits`` beyond.
    """
    if length <= 3:
        return 0
    if length <= 6:
        return min(1, max_edits)
    return max_edits


def edit_distance(a: str, b: str, limit: int | None = None) -> int:
    """Damerau-Levenshtein distance (optimal string alignment) between ``a`` and ``b``.

    Insertions, deletions, substitutions and transpositions of neighbours cost 1. With ``limit`` the
    computation stops as soon as the distance must exceed it and returns ``limit + 1``.
    """
    if limit is not None and abs(len(a) - len(b)) > limit:
        return limit + 1
    if a == b:
        return 0
    cap = limit + 1 if limit is not None else len(a) + len(b)
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            best = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                best = min(best, before[j - 2] + 1)
            current[j] = best
        if min(current) >= cap:
            return cap
        before, previous = previous, current
    return min(previous[-1], cap)


def candidates_from_frame(
    frame: pd.DataFrame, *, code_column: str = "code", name_column: str = "name"
) -> tuple[Candidate, ...]:
    """Candidates from a table: a GeoDataFrame (its geometry, EPSG:4326) or a plain DataFrame (no geometry).

    Raises
    ------
    DataValidationError
        When a column is missing, or the geometry is not in EPSG:4326.
    """
    for column in (code_column, name_column):
        if column not in frame.columns:
            raise DataValidationError(
                f"candidate table has no column {column!r} (columns: {', '.join(map(str, frame.columns))})"
            )
    geometry: Sequence[BaseGeometry | None]
    if isinstance(frame, gpd.GeoDataFrame):
        if frame.crs is not None and not frame.crs.equals("EPSG:4326"):
            raise DataValidationError(
                f"candidate geometry is in {frame.crs}, not EPSG:4326 (lon, lat); reproject with to_crs('EPSG:4326')"
            )
        geometry = [None if g is None or g.is_empty else g for g in frame.geometry]
    else:
        geometry = [None] * len(frame)
    return tuple(
        Candidate(str(code), str(name), geom)
        for code, name, geom in zip(frame[code_column], frame[name_column], geometry, strict=True)
    )


def match_named_areas(
    names: Sequence[str],
    candidates: CandidateIndex | Iterable[Candidate],
    *,
    province: str,
    hint: BaseGeometry | None = None,
    coverage: Mapping[str, float] | None = None,
    lineage: Mapping[str, Sequence[str]] | None = None,
    max_edits: int = 2,
    cover_fraction: float = 0.5,
) -> NamedAreaMatch:
    """Match the kecamatan names of one warning to candidate codes in its province.

    The rules, in order, are in the module docstring: exact, children (lineage, else name prefix),
    spelling, then a choice between namesakes by coverage, by hint, or none (ambiguous).

    Parameters
    ----------
    names
        The names as BMKG lists them (:func:`ews.ingest.bmkg_cap.named_areas`), any case.
    candidates
        The areas they may refer to, at least those of ``province``; a :class:`CandidateIndex` built
        once per run when matching many warnings.
    province
        Two-digit province code of the warning (``"33"``); only candidates whose code starts with it
        are considered.
    hint
        The warning's geometry in EPSG:4326 (lon, lat), even a degenerate one (a line or points): among
        namesakes, the one nearest to it is chosen when ``coverage`` cannot choose. Distances are in
        degrees, which ranks correctly at Indonesia's latitudes.
    coverage
        Fraction (0-1) of each candidate code the warning's polygons cover, e.g. from
        :func:`ews.exposure.coverage.village_coverage` on the kecamatan; codes absent count as 0.
    lineage
        Old code or old name -> the codes it became (from a code list with lineage). It takes
        precedence over children found by name prefix. Codes not among the candidates are reported in
        ``notes`` and skipped.
    max_edits
        Largest edit distance for a spelling match of a long name (see :func:`edit_budget`).
    cover_fraction
        Coverage at which a namesake or a split-off child counts as covered (0-1].

    Returns
    -------
    NamedAreaMatch
        One :class:`NameMatch` per matched name, the names not matched, and notes.

    Raises
    ------
    ValueError
        When ``province`` is not two digits, ``max_edits`` is negative, ``cover_fraction`` is outside
        (0, 1], a coverage fraction is outside [0, 1] or a lineage entry is a string, not a sequence.
    DataValidationError
        When ``candidates`` (not an index) repeat a code.
    """
    if not _PROVINCE.match(province):
        raise ValueError(f"province {province!r} must be a two-digit Kemendagri code such as '33'")
    if max_edits < 0:
        raise ValueError(f"max_edits must be 0 or more, got {max_edits}")
    if not 0 < cover_fraction <= 1:
        raise ValueError(f"cover_fraction must be in (0, 1], got {cover_fraction}")
    _check_coverage(coverage)
    index = candidates if isinstance(candidates, CandidateIndex) else CandidateIndex.from_candidates(candidates)
    context = _Context(
        index=index,
        province=index.provinces.get(province, _Province({}, ())),
        hint=None if hint is None or hint.is_empty else hint,
        coverage=coverage if coverage and any(f > 0 for f in coverage.values()) else None,
        lineage=_folded_lineage(lineage or {}),
        max_edits=max_edits,
        cover_fraction=cover_fraction,
    )
    matches: list[NameMatch] = []
    unmatched: list[str] = []
    notes: list[str] = []
    if not context.province.compact:
        notes.append(f"no candidates in province {province}: check the region's boundaries")
    seen: set[str] = set()
    for name in names:
        folded = fold_name(name)
        if folded in seen:
            continue
        seen.add(folded)
        match, reason = _match_one(name, folded, context, notes) if folded else (None, "no letters")
        if match is None:
            unmatched.append(name)
            notes.append(f"{name!r}: {reason}")
        else:
            matches.append(match)
    return NamedAreaMatch(province, tuple(matches), tuple(unmatched), tuple(notes))


def named_area_gaps(
    match: NamedAreaMatch,
    coverage: Mapping[str, float],
    *,
    candidates: CandidateIndex | None = None,
    named_min_fraction: float = 0.5,
    unnamed_min_fraction: float = 0.5,
) -> NamedAreaGaps:
    """Where a warning's named areas and its polygons disagree, for the run report.

    BMKG draws a nowcast as a union of kecamatan shapes: in the real alerts the named kecamatan are 81-100 %
    covered and the others at most 25 %. So a named area covered less than half, or an area covered at
    least half but not named, points at a wrong name, an outdated polygon, or a wrong match.

    Parameters
    ----------
    match
        The result of :func:`match_named_areas` for the warning.
    coverage
        Fraction (0-1) of each area the warning's polygons cover (absent codes: 0), at the level of the
        candidates (kecamatan).
    candidates
        For the official names in the report (optional).
    named_min_fraction
        A named area covered less than this is reported in ``named_uncovered``. For a name left
        ambiguous, its namesakes are reported only when none is covered this much.
    unnamed_min_fraction
        An area covered at least this much and matched by no name is reported in ``covered_unnamed``.

    Returns
    -------
    NamedAreaGaps
        Both lists sorted by code, plus the names not matched and the matches left ambiguous.
    """
    _check_coverage(coverage)

    def area_name(code: str) -> str:
        candidate = candidates.by_code.get(code) if candidates is not None else None
        return candidate.name if candidate is not None else ""

    uncovered: dict[str, AreaGap] = {}
    for m in match.matches:
        fractions = {code: coverage.get(code, 0.0) for code in m.codes}
        if m.resolution is Resolution.AMBIGUOUS and max(fractions.values()) >= named_min_fraction:
            continue
        for code, fraction in fractions.items():
            if fraction < named_min_fraction and code not in uncovered:
                uncovered[code] = AreaGap(code, fraction, area_name(code), m.name)
    named = set(match.codes)
    unnamed = [
        AreaGap(code, fraction, area_name(code))
        for code, fraction in sorted(coverage.items())
        if fraction >= unnamed_min_fraction and code not in named
    ]
    return NamedAreaGaps(
        named_uncovered=tuple(uncovered[c] for c in sorted(uncovered)),
        covered_unnamed=tuple(unnamed),
        unmatched=match.unmatched,
        ambiguous=match.ambiguous,
    )


@dataclass(frozen=True)
class _Context:
    index: CandidateIndex
    province: _Province
    hint: BaseGeometry | None
    coverage: Mapping[str, float] | None  # None when no code is covered at all: the polygons cannot choose
    lineage: Mapping[str, tuple[str, ...]]
    max_edits: int
    cover_fraction: float


def _match_one(name: str, folded: str, ctx: _Context, notes: list[str]) -> tuple[NameMatch | None, str]:
    compact = folded.replace(" ", "")
    exact = ctx.province.compact.get(compact, ())
    if exact:
        codes, resolution = _choose([(c,) for c in exact], ctx)
        return _with_children(name, folded, codes, exact, resolution, ctx, notes), ""

    children = _lineage_children(folded, (), ctx, notes)
    via = "lineage"
    if not children:
        children = _prefix_children(folded, None, ctx)
        via = "name prefix"
    if children:
        groups: dict[str, list[str]] = {}
        for code in children:
            groups.setdefault(code[:5] if via == "name prefix" else "", []).append(code)
        codes, resolution = _choose([tuple(g) for _, g in sorted(groups.items())], ctx)
        note = f"{name}: no kecamatan of this name; its split-off parts (by {via}): {', '.join(codes)}"
        note += _choice_note(children, codes, resolution)
        return NameMatch(
            name, folded, codes, Relation.CHILDREN, resolution, tuple(sorted(children)), codes, note=note
        ), ""

    budget = edit_budget(len(compact), ctx.max_edits)
    if budget == 0:
        return None, "no exact match; too short for a spelling match"
    best, keys = ctx.province.near(compact, budget, max(budget, ctx.max_edits))
    nearest = [(key, ctx.province.compact[key]) for key in keys]
    if not nearest:
        return None, f"no kecamatan of this name or within {budget} edits in the province"
    considered = tuple(sorted(c for _, codes in nearest for c in codes))
    codes, resolution = _choose([(c,) for c in considered], ctx)
    if resolution is Resolution.AMBIGUOUS and len(nearest) > 1:
        listed = ", ".join(f"{ctx.index.by_code[c].name} {c}" for c in considered)
        return None, f"no exact match; several names {best} edits away ({listed}) and nothing chooses between them"
    spelled = ", ".join(sorted({ctx.index.by_code[c].name for c in codes}))
    note = f"{name}: read as {spelled} ({best} edit{'s' if best > 1 else ''})"
    note += _choice_note(considered, codes, resolution)
    return NameMatch(name, folded, codes, Relation.SPELLING, resolution, considered, edits=best, note=note), ""


def _with_children(
    name: str,
    folded: str,
    codes: tuple[str, ...],
    exact: tuple[str, ...],
    resolution: Resolution,
    ctx: _Context,
    notes: list[str],
) -> NameMatch:
    children = _lineage_children(folded, codes, ctx, notes)
    via = "lineage"
    if not children:
        regencies = {c[:5] for c in codes}
        children = _prefix_children(folded, regencies, ctx)
        via = "name prefix"
    children = tuple(c for c in children if c not in codes)
    choice = _choice_note(exact, codes, resolution)
    if not children:
        note = f"{name}: exact {', '.join(codes)}{choice}" if choice else ""
        return NameMatch(name, folded, codes, Relation.EXACT, resolution, exact, note=note)
    if ctx.coverage is None:
        included = children
        why = "no usable polygon coverage"
    else:
        coverage = ctx.coverage
        included = tuple(c for c in children if coverage.get(c, 0.0) >= ctx.cover_fraction)
        why = f"covered at least {ctx.cover_fraction:.0%}"
    left_out = [c for c in children if c not in included]
    note = f"{name}: exact {', '.join(codes)}{choice}; split-off parts (by {via}) {', '.join(children)}"
    note += f": {', '.join(included)} included ({why})" if included else ""
    note += f"; {', '.join(left_out)} not covered, left out" if left_out else ""
    relation = Relation.EXACT_AND_CHILDREN if included else Relation.EXACT
    return NameMatch(name, folded, tuple(sorted({*codes, *included})), relation, resolution, exact, children, note=note)


def _lineage_children(folded: str, codes: Sequence[str], ctx: _Context, notes: list[str]) -> tuple[str, ...]:
    found: set[str] = set()
    for key in (folded, *codes):
        for code in ctx.lineage.get(key, ()):
            if code in ctx.index.by_code:
                found.add(code)
            else:
                notes.append(f"lineage of {key!r} names {code}, which is not among the candidates: skipped")
    return tuple(sorted(found))


def _prefix_children(folded: str, regencies: set[str] | None, ctx: _Context) -> tuple[str, ...]:
    prefix = folded + " "
    rows = ctx.province.spaced
    start = bisect.bisect_left(rows, (prefix, ""))
    found: set[str] = set()
    for key, code in rows[start:]:
        if not key.startswith(prefix):
            break
        if regencies is None or code[:5] in regencies:
            found.add(code)
    return tuple(sorted(found))


def _choose(options: Sequence[tuple[str, ...]], ctx: _Context) -> tuple[tuple[str, ...], Resolution]:
    """Choose among options (a code, or a group of codes): coverage first, then the hint, else all."""
    everything = tuple(sorted({c for option in options for c in option}))
    if len(options) == 1:
        return everything, Resolution.UNIQUE
    if ctx.coverage is not None:
        coverage = ctx.coverage
        scores = [max(coverage.get(c, 0.0) for c in option) for option in options]
        # BMKG lists a name once even when two namesakes are under the warning: keep every one covered
        # at least cover_fraction. A smaller share is a sliver along a shared border (BMKG's other
        # touched kecamatan are up to 25 % covered): it cannot tell namesakes apart.
        covered = {c for option, s in zip(options, scores, strict=True) if s >= ctx.cover_fraction for c in option}
        if covered:
            return tuple(sorted(covered)), Resolution.COVERAGE
    if ctx.hint is not None:
        geometries = [[ctx.index.by_code[c].geometry for c in option] for option in options]
        if all(g is not None for option in geometries for g in option):
            distances = [float(np.min(shapely.distance(ctx.hint, option))) for option in geometries]
            nearest = min(distances)
            tied = [o for o, d in zip(options, distances, strict=True) if d <= nearest + _DISTANCE_TIE]
            chosen = tuple(sorted({c for option in tied for c in option}))
            return chosen, Resolution.HINT if len(tied) == 1 else Resolution.AMBIGUOUS
    return everything, Resolution.AMBIGUOUS


def _choice_note(considered: Sequence[str], codes: Sequence[str], resolution: Resolution) -> str:
    if resolution is Resolution.UNIQUE:
        return ""
    if resolution is Resolution.AMBIGUOUS:
        kept = "all" if tuple(codes) == tuple(considered) else f"the hint is as near to {', '.join(codes)}, all"
        return f" (ambiguous among {', '.join(considered)}: {kept} kept)"
    return f" (chosen {resolution} among {', '.join(considered)})"


def _deletions(word: str, depth: int) -> set[str]:
    found, frontier = {word}, {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        found |= frontier
    return found


def _name_variants(name: str) -> set[str]:
    variants = {fold_name(name)}
    outside = re.sub(r"\([^)]*\)", " ", name)
    if outside != name:
        variants.add(fold_name(outside))
        variants.update(fold_name(inside) for inside in re.findall(r"\(([^)]*)\)", name))
    return {v for v in variants if v}


def _folded_lineage(lineage: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    folded: dict[str, tuple[str, ...]] = {}
    for key, codes in lineage.items():
        if isinstance(codes, str):
            raise ValueError(f"lineage of {key!r} must be a sequence of codes, not the string {codes!r}")
        folded_key = key.strip() if _CODE.match(key.strip()) else fold_name(key)
        folded[folded_key] = (*folded.get(folded_key, ()), *codes)
    return folded


def _check_coverage(coverage: Mapping[str, float] | None) -> None:
    for code, fraction in (coverage or {}).items():
        if math.isnan(fraction) or not 0 <= fraction <= 1 + 1e-9:
            raise ValueError(f"coverage of {code} is {fraction}; a fraction must be in [0, 1]")
