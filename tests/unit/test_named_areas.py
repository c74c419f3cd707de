"""Matching BMKG's named kecamatan to codes: hand-made tables worked out by hand, then the real code lists."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from defusedxml import ElementTree
from shapely.geometry import LineString, Point, box
from shapely.geometry.base import BaseGeometry

from ews.errors import DataValidationError
from ews.exposure.coverage import VillageLayer, village_coverage
from ews.exposure.named_areas import (
    Candidate,
    CandidateIndex,
    NamedAreaMatch,
    Relation,
    Resolution,
    candidates_from_frame,
    edit_budget,
    edit_distance,
    fold_name,
    match_named_areas,
    named_area_gaps,
)
from ews.ingest.bmkg_cap import named_areas, parse_cap
from ews.ingest.boundaries import read_boundaries

# A toy province 99 of one-degree squares (lon 100 + i for Kab. 99.01, lon 110 + i for Kab. 99.02, lat 0..1):
#   99.01.01 Sukamaju    99.01.02 Krayan    99.01.03 Krayan Barat    99.01.04 Krayan Timur
#   99.01.05 Bl. Limbangan    99.01.06 Cigemblong
#   99.02.01 Sukamaju    99.02.02 Kota Baru Utara    99.02.03 Kota Baru Selatan
# and 98.01.01 Krayan in another province.
TOY = (
    ("99.01.01", "Sukamaju", 100),
    ("99.01.02", "Krayan", 101),
    ("99.01.03", "Krayan Barat", 102),
    ("99.01.04", "Krayan Timur", 103),
    ("99.01.05", "Bl. Limbangan", 104),
    ("99.01.06", "Cigemblong", 105),
    ("99.02.01", "Sukamaju", 110),
    ("99.02.02", "Kota Baru Utara", 111),
    ("99.02.03", "Kota Baru Selatan", 112),
    ("98.01.01", "Krayan", 120),
)


def square(lon: float) -> BaseGeometry:
    return box(lon, 0.0, lon + 1.0, 1.0)


@pytest.fixture
def toy() -> CandidateIndex:
    return CandidateIndex.from_candidates(Candidate(code, name, square(lon)) for code, name, lon in TOY)


def match(names: list[str], index: CandidateIndex | list[Candidate], **kw: object) -> NamedAreaMatch:
    kw.setdefault("province", "99")
    return match_named_areas(names, index, **kw)


# ---------------------------------------------------------------- folding and distances


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Bl. Limbangan", "balubur limbangan"),
        ("BL LIMBANGAN", "balubur limbangan"),
        ("bl.limbangan", "balubur limbangan"),
        ("  Balubur   Limbangan ", "balubur limbangan"),
        ("KEC. CIBEBER", "cibeber"),
        ("Kecamatan Cibeber", "cibeber"),
        ("Ma'u", "mau"),  # apostrophes join, they do not split
        ("Ma´u", "mau"),
        ("Ma’u", "mau"),
        ('Ra"as', "raas"),
        ("Grong-grong", "grong grong"),
        ("Cigémblong", "cigemblong"),
        ("Gn. Bintang Awai", "gunung bintang awai"),
        ("Kota Bangun", "kota bangun"),  # a kecamatan called Kota ...: kept
        ("Kec.", "kec"),  # nothing would remain: kept
        ("...", ""),
    ],
)
def test_fold_name(text: str, folded: str) -> None:
    assert fold_name(text) == folded


@pytest.mark.parametrize(
    ("text", "folded"),
    [("Kota Pekalongan", "pekalongan"), ("Kab. Pekalongan", "pekalongan"), ("KABUPATEN PEKALONGAN", "pekalongan")],
)
def test_fold_regency_names(text: str, folded: str) -> None:
    assert fold_name(text, regency=True) == folded
    assert fold_name(text) != folded  # kecamatan folding keeps Kota/Kab.


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [
        ("cigemlong", "cigemblong", 1),  # one letter left out
        ("ab", "ba", 1),  # a transposition is one edit (plain Levenshtein says 2)
        ("kitten", "sitting", 3),  # k->s, e->i, +g
        ("", "abc", 3),
        ("same", "same", 0),
    ],
)
def test_edit_distance_by_hand(a: str, b: str, distance: int) -> None:
    assert edit_distance(a, b) == distance
    assert edit_distance(b, a) == distance


def test_edit_distance_stops_past_the_limit() -> None:
    # kitten/sitting is 3 apart: with limit 1 the answer is "more than 1", i.e. 2.
    assert edit_distance("kitten", "sitting", 1) == 2
    assert edit_distance("abc", "abcdef", 2) == 3  # lengths differ by 3 > 2: no table at all


@pytest.mark.parametrize(("length", "budget"), [(3, 0), (4, 1), (6, 1), (7, 2), (20, 2)])
def test_edit_budget(length: int, budget: int) -> None:
    assert edit_budget(length) == budget
    assert edit_budget(length, max_edits=0) == 0


# ---------------------------------------------------------------- rules on the toy province


def test_exact_in_any_case_and_only_in_the_province(toy: CandidateIndex) -> None:
    result = match(["Cigemblong", "BL. LIMBANGAN", "kec. cigemblong"], toy)
    # "kec. cigemblong" folds like "Cigemblong": one match for both.
    assert [(m.name, m.codes, m.relation, m.resolution) for m in result.matches] == [
        ("Cigemblong", ("99.01.06",), Relation.EXACT, Resolution.UNIQUE),
        ("BL. LIMBANGAN", ("99.01.05",), Relation.EXACT, Resolution.UNIQUE),
    ]
    # Krayan of province 98 is never a candidate in 99, and the other way round.
    assert "98.01.01" not in match(["KRAYAN"], toy).codes
    assert match(["KRAYAN"], toy, province="98").codes == ("98.01.01",)


def test_namesakes_without_polygons_are_all_kept_and_flagged(toy: CandidateIndex) -> None:
    result = match(["SUKAMAJU"], toy)
    (m,) = result.matches
    assert m.codes == ("99.01.01", "99.02.01")
    assert m.resolution is Resolution.AMBIGUOUS
    assert m.how == "exact/ambiguous"
    assert result.ambiguous == (m,)


def test_namesakes_resolved_by_coverage(toy: CandidateIndex) -> None:
    # The warning covers 90 % of Kab. 99.02's Sukamaju and 10 % of the other: the first one is meant.
    m = match(["SUKAMAJU"], toy, coverage={"99.02.01": 0.9, "99.01.01": 0.1}).matches[0]
    assert (m.codes, m.resolution, m.how) == (("99.02.01",), Resolution.COVERAGE, "exact/by coverage")
    assert m.considered == ("99.01.01", "99.02.01")
    # Both at least half covered: BMKG writes the name once, both are under the warning.
    both = match(["SUKAMAJU"], toy, coverage={"99.02.01": 0.9, "99.01.01": 0.6}).matches[0]
    assert both.codes == ("99.01.01", "99.02.01")
    assert both.resolution is Resolution.COVERAGE


def test_sliver_coverage_does_not_choose_the_hint_does(toy: CandidateIndex) -> None:
    # 20 % of 99.01.01 is below cover_fraction (a border sliver); the hint point lies in 99.02.01's
    # square (lon 110..111), 9.5 degrees from 99.01.01's: the hint decides.
    m = match(["SUKAMAJU"], toy, coverage={"99.01.01": 0.2}, hint=Point(110.5, 0.5)).matches[0]
    assert (m.codes, m.resolution) == (("99.02.01",), Resolution.HINT)


def test_degenerate_hint_nearest_wins(toy: CandidateIndex) -> None:
    # A three-point "polygon" on a line at lon 101.5..101.7 (no area) lies 0.5 degrees from 99.01.01's square
    # (lon 100..101) and 8.3 from 99.02.01's (lon 110..111).
    hint = LineString([(101.5, 0.5), (101.6, 0.5), (101.7, 0.5)])
    m = match(["SUKAMAJU"], toy, hint=hint).matches[0]
    assert (m.codes, m.resolution, m.how) == (("99.01.01",), Resolution.HINT, "exact/by hint")


def test_hint_touching_both_namesakes_stays_ambiguous(toy: CandidateIndex) -> None:
    hint = LineString([(100.5, 0.5), (110.5, 0.5)])  # crosses both squares: distance 0 to each
    m = match(["SUKAMAJU"], toy, hint=hint).matches[0]
    assert (m.codes, m.resolution) == (("99.01.01", "99.02.01"), Resolution.AMBIGUOUS)


def test_hint_cannot_choose_candidates_without_geometry() -> None:
    plain = [Candidate("99.01.01", "Sukamaju"), Candidate("99.02.01", "Sukamaju")]
    m = match(["SUKAMAJU"], plain, hint=Point(100.5, 0.5)).matches[0]
    assert m.resolution is Resolution.AMBIGUOUS


def test_vanished_name_matches_its_children_by_prefix(toy: CandidateIndex) -> None:
    # No "Kota Baru" any more; "Kota Baru Utara" and "Kota Baru Selatan" start with "kota baru ".
    m = match(["KOTA BARU"], toy).matches[0]
    assert (m.codes, m.relation, m.resolution) == (("99.02.02", "99.02.03"), Relation.CHILDREN, Resolution.UNIQUE)


def test_split_kecamatan_exact_plus_children_unless_the_polygons_say_otherwise(toy: CandidateIndex) -> None:
    # Krayan still exists (99.01.02) beside Krayan Barat and Krayan Timur.
    # No polygons: the old Krayan may mean all three, and a warning errs on the side of warning.
    m = match(["KRAYAN"], toy).matches[0]
    assert (m.codes, m.relation) == (("99.01.02", "99.01.03", "99.01.04"), Relation.EXACT_AND_CHILDREN)
    assert m.children == ("99.01.03", "99.01.04")
    assert "no usable polygon coverage" in m.note
    # The polygons cover Krayan and Krayan Barat only: Krayan Timur is left out, and the note says so.
    m = match(["KRAYAN"], toy, coverage={"99.01.02": 0.95, "99.01.03": 0.9, "99.01.04": 0.1}).matches[0]
    assert m.codes == ("99.01.02", "99.01.03")
    assert "99.01.04 not covered, left out" in m.note
    # The polygons cover today's Krayan only: exact, and the children are still reported.
    m = match(["KRAYAN"], toy, coverage={"99.01.02": 1.0}).matches[0]
    assert (m.codes, m.relation, m.children) == (("99.01.02",), Relation.EXACT, ("99.01.03", "99.01.04"))


def test_lineage_takes_precedence_over_prefix(toy: CandidateIndex) -> None:
    # The caller's code list says old Krayan became Krayan and Krayan Barat (not Krayan Timur).
    by_name = match(["KRAYAN"], toy, lineage={"KRAYAN": ["99.01.02", "99.01.03"]}).matches[0]
    by_code = match(["KRAYAN"], toy, lineage={"99.01.02": ["99.01.03"]}).matches[0]
    assert by_name.codes == by_code.codes == ("99.01.02", "99.01.03")
    assert "by lineage" in by_name.note
    # An old name that no longer exists at all, and a lineage code that is not a candidate.
    result = match(["Krayan Raya"], toy, lineage={"krayan raya": ["99.01.03", "99.01.04", "99.01.99"]})
    (m,) = result.matches
    assert (m.codes, m.relation) == (("99.01.03", "99.01.04"), Relation.CHILDREN)
    assert any("99.01.99" in note and "skipped" in note for note in result.notes)


def test_spelling_variant_within_budget(toy: CandidateIndex) -> None:
    # CIGEMLONG -> cigemblong: one letter inserted (budget 2 for 9 letters).
    m = match(["CIGEMLONG"], toy).matches[0]
    assert (m.codes, m.relation, m.edits, m.how) == (("99.01.06",), Relation.SPELLING, 1, "spelling")
    assert "Cigemblong" in m.note
    # KRAYNA is a transposition of krayan (1 edit; budget 1 for 6 letters).
    assert match(["KRAYNA"], toy).matches[0].codes == ("99.01.02",)
    # With max_edits=0 spelling is off.
    assert match(["CIGEMLONG"], toy, max_edits=0).unmatched == ("CIGEMLONG",)


def test_spelling_tie_between_two_names_is_not_a_match() -> None:
    # CIBEBEL is one substitution from Cibeber (l->r) and one from Cibebek (l->k): nothing chooses.
    index = [Candidate("99.01.01", "Cibeber"), Candidate("99.01.02", "Cibebek")]
    result = match(["CIBEBEL"], index)
    assert result.matches == ()
    assert result.unmatched == ("CIBEBEL",)
    assert "several names 1 edits away" in result.notes[0]


def test_spelling_of_a_name_with_namesakes_is_resolved_like_an_exact_one(toy: CandidateIndex) -> None:
    # SUKAMAJI is one substitution from sukamaju, which has two namesakes; the coverage chooses.
    m = match(["SUKAMAJI"], toy, coverage={"99.02.01": 0.8}).matches[0]
    assert (m.codes, m.relation, m.resolution) == (("99.02.01",), Relation.SPELLING, Resolution.COVERAGE)


def test_unmatched_names_are_listed_with_a_reason(toy: CandidateIndex) -> None:
    result = match(["SUKAMAJU", "ANTAH BERANTAH", "ABC", "..."], toy, coverage={"99.01.01": 1.0})
    assert result.unmatched == ("ANTAH BERANTAH", "ABC", "...")
    assert [n.split(":")[0] for n in result.notes] == ["'ANTAH BERANTAH'", "'ABC'", "'...'"]
    assert "too short" in result.notes[1]
    empty = match(["KRAYAN"], toy, province="97")
    assert empty.unmatched == ("KRAYAN",)
    assert "no candidates in province 97" in empty.notes[0]


def test_invalid_arguments(toy: CandidateIndex) -> None:
    with pytest.raises(ValueError, match="two-digit"):
        match(["X"], toy, province="9")
    with pytest.raises(ValueError, match="cover_fraction"):
        match(["X"], toy, cover_fraction=0.0)
    with pytest.raises(ValueError, match="max_edits"):
        match(["X"], toy, max_edits=-1)
    with pytest.raises(ValueError, match=r"coverage of 99\.01\.01 is 1\.5"):
        match(["X"], toy, coverage={"99.01.01": 1.5})
    with pytest.raises(ValueError, match="sequence of codes"):
        match(["X"], toy, lineage={"krayan": "99.01.03"})
    with pytest.raises(DataValidationError, match="occurs twice"):
        CandidateIndex.from_candidates([Candidate("99.01.01", "A"), Candidate("99.01.01", "B")])
    with pytest.raises(DataValidationError, match="not a dotted Kemendagri code"):
        Candidate("990101", "A")


def test_gaps_by_hand(toy: CandidateIndex) -> None:
    # Named: Cigemblong (covered 0.9), Bl. Limbangan (0.2: under half), Sukamaju (namesakes, neither covered
    # at all -> both reported), NOWHERE (unmatched). Covered but not named: Krayan Timur 0.7; Krayan Barat
    # 0.4 is under half and not reported.
    coverage = {"99.01.06": 0.9, "99.01.05": 0.2, "99.01.04": 0.7, "99.01.03": 0.4}
    result = match(["CIGEMBLONG", "BL LIMBANGAN", "SUKAMAJU", "NOWHERE"], toy, coverage=coverage)
    gaps = named_area_gaps(result, coverage, candidates=toy)
    assert [(g.code, g.fraction, g.named_as) for g in gaps.named_uncovered] == [
        ("99.01.01", 0.0, "SUKAMAJU"),
        ("99.01.05", 0.2, "BL LIMBANGAN"),
        ("99.02.01", 0.0, "SUKAMAJU"),
    ]
    assert [(g.code, g.area_name) for g in gaps.covered_unnamed] == [("99.01.04", "Krayan Timur")]
    assert gaps.unmatched == ("NOWHERE",)
    assert [m.name for m in gaps.ambiguous] == ["SUKAMAJU"]
    assert "named 'SUKAMAJU' is ambiguous: kept 99.01.01, 99.02.01" in gaps.to_notes()
    assert len(gaps.to_notes()) == 6
    assert "99.01.04 Krayan Timur is 70% covered but not named" in gaps.to_notes()


def test_gaps_of_an_ambiguous_name_with_one_namesake_covered(toy: CandidateIndex) -> None:
    # Sukamaju is left ambiguous (the coverage is too low to choose: 0.3 < 0.5 for cover_fraction), but for
    # the report only one namesake needs to be covered at least named_min_fraction (here 0.25).
    coverage = {"99.01.01": 0.3}
    result = match(["SUKAMAJU"], toy, coverage=coverage)
    assert result.matches[0].resolution is Resolution.AMBIGUOUS
    assert named_area_gaps(result, coverage, named_min_fraction=0.25).named_uncovered == ()
    assert not named_area_gaps(result, coverage, named_min_fraction=0.25).covered_unnamed


def test_names_in_parentheses_are_found_either_way() -> None:
    index = CandidateIndex.from_candidates([Candidate("92.05.01", "Misool (Misool Utara)")])
    for name in ("MISOOL", "MISOOL UTARA", "Misool (Misool Utara)"):
        assert match_named_areas([name], index, province="92").codes == ("92.05.01",)


def test_candidates_from_frames() -> None:
    plain = pd.DataFrame({"code": ["99.01.01"], "name": ["Sukamaju"]})
    assert candidates_from_frame(plain) == (Candidate("99.01.01", "Sukamaju"),)
    geo = gpd.GeoDataFrame({"kode": ["99.01.01"], "nama": ["Sukamaju"]}, geometry=[square(100)], crs="EPSG:4326")
    (candidate,) = candidates_from_frame(geo, code_column="kode", name_column="nama")
    assert candidate.geometry is not None
    assert candidate.geometry.equals(square(100))
    with pytest.raises(DataValidationError, match="no column 'code'"):
        candidates_from_frame(geo)
    with pytest.raises(DataValidationError, match="not EPSG:4326"):
        candidates_from_frame(geo.to_crs("EPSG:3857"), code_column="kode", name_column="nama")


# ---------------------------------------------------------------- the real code lists and alerts

real_data = pytest.mark.shared_data
PROVINCES = ("11", "33", "35", "36", "51", "62", "64", "65", "71", "75")


@pytest.fixture(scope="module")
def kec(kec_dir: Path) -> Callable[[str], gpd.GeoDataFrame]:
    @functools.cache
    def read(province: str) -> gpd.GeoDataFrame:
        return read_boundaries(kec_dir / f"wilayah_boundaries_kec_{province}.geojson")

    return read


@pytest.fixture(scope="module")
def kec_index(kec: Callable[[str], gpd.GeoDataFrame]) -> Callable[[str], CandidateIndex]:
    @functools.cache
    def build(province: str) -> CandidateIndex:
        return CandidateIndex.from_candidates(candidates_from_frame(kec(province)))

    return build


@pytest.fixture(scope="module")
def districts(shared_data: Path) -> CandidateIndex:
    """Every kecamatan of the 2025 code list (7,285), without geometry."""
    table = pd.read_csv(shared_data / "wilayah_codes" / "idn-area-data_districts.csv", dtype=str)
    return CandidateIndex.from_candidates(candidates_from_frame(table))


def coverage_of(table: gpd.GeoDataFrame, geometry: BaseGeometry) -> dict[str, float]:
    rows = village_coverage(VillageLayer.from_villages(table), geometry)
    return dict(zip(rows["code"], rows["fraction"], strict=True))


def shape_of(table: gpd.GeoDataFrame, *codes: str) -> BaseGeometry:
    return shapely.union_all(table.set_index("code").loc[list(codes), "geometry"].to_numpy())


@real_data
@pytest.mark.parametrize("province", PROVINCES)
def test_every_official_name_matches_itself_in_any_case(
    province: str, kec: Callable[[str], gpd.GeoDataFrame], kec_index: Callable[[str], CandidateIndex]
) -> None:
    table = kec(province)
    index = kec_index(province)
    for code, name in zip(table["code"], table["name"], strict=True):
        for written in (name, name.upper(), name.title()):
            result = match_named_areas([written], index, province=province)
            assert code in result.codes, (written, result)


@real_data
def test_krayan_in_kalimantan_utara(
    kec: Callable[[str], gpd.GeoDataFrame], kec_index: Callable[[str], CandidateIndex]
) -> None:
    table, index = kec("65"), kec_index("65")
    # Without polygons: Krayan 65.03.05 and everything named "Krayan ..." in Kab. Nunukan 65.03.
    m = match_named_areas(["KRAYAN"], index, province="65").matches[0]
    assert m.codes == ("65.03.05", "65.03.07", "65.03.17", "65.03.18", "65.03.19")
    assert m.relation is Relation.EXACT_AND_CHILDREN
    # BMKG's polygon is the old Krayan of before the 2019 split (today's Krayan, Tengah, Timur, Barat):
    # those four are covered, Krayan Selatan (split off earlier) is not and is left out.
    old_krayan = shape_of(table, "65.03.05", "65.03.17", "65.03.18", "65.03.19")
    coverage = coverage_of(table, old_krayan)
    m = match_named_areas(["KRAYAN"], index, province="65", coverage=coverage).matches[0]
    assert m.codes == ("65.03.05", "65.03.17", "65.03.18", "65.03.19")
    assert "65.03.07 not covered, left out" in m.note
    # A code list with lineage decides instead of the names.
    lineage = {"65.03.05": ["65.03.17", "65.03.18", "65.03.19"]}
    m = match_named_areas(["KRAYAN"], index, province="65", lineage=lineage).matches[0]
    assert m.codes == ("65.03.05", "65.03.17", "65.03.18", "65.03.19")


@real_data
def test_cigemlong_in_banten(kec_index: Callable[[str], CandidateIndex]) -> None:
    m = match_named_areas(["CIGEMLONG"], kec_index("36"), province="36").matches[0]
    assert (m.codes, m.relation, m.edits) == (("36.02.28",), Relation.SPELLING, 1)


@real_data
def test_bl_limbangan_in_jawa_barat_from_the_code_list(districts: CandidateIndex) -> None:
    # Jawa Barat has no boundary file here: the 2025 code list's names, no geometry.
    for written in ("Bl. Limbangan", "BL LIMBANGAN", "bl.limbangan", "BL. LIMBANGAN", "Balubur Limbangan"):
        assert match_named_areas([written], districts, province="32").codes == ("32.05.38",)
    # Cibeber of Jawa Barat is one kecamatan (Kab. Cianjur); Banten's two are not candidates in 32.
    assert match_named_areas(["CIBEBER"], districts, province="32").codes == ("32.03.03",)


@real_data
@pytest.mark.parametrize(("meant", "other"), [("36.72.01", "36.02.19"), ("36.02.19", "36.72.01")])
def test_cibeber_in_banten_resolved_by_coverage(
    meant: str, other: str, kec: Callable[[str], gpd.GeoDataFrame], kec_index: Callable[[str], CandidateIndex]
) -> None:
    # A warning drawn as BMKG does, from the kecamatan's own shape: the namesake it covers is meant.
    table = kec("36")
    coverage = coverage_of(table, shape_of(table, meant))
    assert coverage[meant] == pytest.approx(1.0)
    m = match_named_areas(["CIBEBER"], kec_index("36"), province="36", coverage=coverage).matches[0]
    assert (m.codes, m.resolution, m.considered) == ((meant,), Resolution.COVERAGE, tuple(sorted((meant, other))))
    # Without polygons it stays ambiguous: both are kept.
    m = match_named_areas(["CIBEBER"], kec_index("36"), province="36").matches[0]
    assert (m.codes, m.resolution) == (tuple(sorted((meant, other))), Resolution.AMBIGUOUS)


@real_data
def test_jateng_alert_with_its_degenerate_polygon_as_hint(
    cap_dir: Path, kec_index: Callable[[str], CandidateIndex]
) -> None:
    # ews.ingest rejects the file's only polygon (3 points on a line, no area), so the hint is built
    # here from its points (CAP order lat,lon -> lon,lat): near -6.88, 109.68 in Kota Pekalongan.
    root = ElementTree.parse(cap_dir / "dhanyyudi_cap_jateng.xml").getroot()
    ns = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
    names = named_areas(root.findtext(".//cap:description", "", ns))
    assert names == ("WIRADESA", "KAJEN", "KARANGANYAR", "PEKALONGAN")
    points = [tuple(map(float, p.split(","))) for p in root.findtext(".//cap:polygon", "", ns).split()]
    hint = LineString([(lon, lat) for lat, lon in points])
    result = match_named_areas(names, kec_index("33"), province="33", hint=hint)
    got = {m.name: (m.codes, m.how) for m in result.matches}
    assert got == {
        "WIRADESA": (("33.26.16",), "exact"),
        "KAJEN": (("33.26.08",), "exact"),
        # five Karanganyar in Jawa Tengah; Kab. Pekalongan's is 0.11 degrees away, the next (Purbalingga) 0.43
        "KARANGANYAR": (("33.26.07",), "exact/by hint"),
        # no kecamatan Pekalongan: Kota Pekalongan's four, Pekalongan Barat/Timur/Utara/Selatan
        "PEKALONGAN": (("33.75.01", "33.75.02", "33.75.03", "33.75.04"), "children"),
    }
    assert result.matches[2].considered == ("33.03.11", "33.05.20", "33.13.09", "33.21.09", "33.26.07")
    assert result.unmatched == ()


@real_data
def test_kalimantan_timur_alert_all_names_exact(
    cap_dir: Path, kec: Callable[[str], gpd.GeoDataFrame], kec_index: Callable[[str], CandidateIndex]
) -> None:
    path = cap_dir / "rallsix66_CKT20261010004_alert_en.xml"
    warning = parse_cap(path.read_bytes(), str(path))
    coverage = coverage_of(kec("64"), warning.geometry)
    result = match_named_areas(
        warning.named_areas, kec_index("64"), province="64", coverage=coverage, hint=warning.geometry
    )
    # All eight are today's kecamatan of Kalimantan Timur under the same names, none in Kalimantan Utara.
    assert {m.name: m.codes for m in result.matches} == {
        "BUSANG": ("64.08.06",),
        "GUNUNG TABUR": ("64.03.06",),
        "LONG BAGUN": ("64.11.01",),
        "MUARA MUNTAI": ("64.02.01",),
        "MUARA WIS": ("64.02.18",),
        "SEGAH": ("64.03.04",),
        "TABALAR": ("64.03.10",),
        "TABANG": ("64.02.12",),
    }
    assert {m.how for m in result.matches} == {"exact"}
    assert result.unmatched == ()
    # The polygons agree with the text: each named one 81-99 % covered, no other at half (Biatan is 24 %).
    gaps = named_area_gaps(result, coverage, candidates=kec_index("64"))
    assert not gaps
    assert min(coverage[c] for c in result.codes) > 0.8
    assert match_named_areas(warning.named_areas, kec_index("65"), province="65").matches == ()


@real_data
def test_banten_fixture_names_all_match(
    cap_dir: Path, kec: Callable[[str], gpd.GeoDataFrame], kec_index: Callable[[str], CandidateIndex]
) -> None:
    # 20 names with spacing variants (CURUG BITUNG for Curugbitung) and two namesake pairs (CIBEBER in
    # Lebak and Cilegon, SOBANG in Pandeglang and Lebak). The fixture's two polygons were trimmed, so most
    # named areas are uncovered; the hint (the two polygons) picks the namesakes they touch.
    path = cap_dir / "dhanyyudi_cap_banten.xml"
    warning = parse_cap(path.read_bytes(), str(path))
    coverage = coverage_of(kec("36"), warning.geometry)
    result = match_named_areas(
        warning.named_areas, kec_index("36"), province="36", coverage=coverage, hint=warning.geometry
    )
    assert len(result.matches) == 20
    assert result.unmatched == ()
    curug_bitung = result.match_for("CURUG BITUNG")
    assert curug_bitung is not None
    assert curug_bitung.codes == ("36.02.23",)
    assert {m.name: (m.codes, m.how) for m in result.matches if m.how != "exact"} == {
        "CIBEBER": (("36.02.19",), "exact/by hint"),
        "SOBANG": (("36.02.22",), "exact/by hint"),
    }
    gaps = named_area_gaps(result, coverage)
    assert len(gaps.named_uncovered) == 18  # only Citangkil and Lebakgedong are under the trimmed polygons


@real_data
def test_karanganyar_nationally(districts: CandidateIndex) -> None:
    # One national index: the province filter decides, then the namesakes.
    in_33 = match_named_areas(["KARANGANYAR"], districts, province="33").matches[0]
    assert in_33.codes == ("33.03.11", "33.05.20", "33.13.09", "33.21.09", "33.26.07")
    assert in_33.resolution is Resolution.AMBIGUOUS
    assert match_named_areas(["KARANGANYAR"], districts, province="35").codes == ("35.21.17",)
    wonosari = match_named_areas(["WONOSARI"], districts, province="35").matches[0]
    assert wonosari.codes == ("35.07.32", "35.11.09")
