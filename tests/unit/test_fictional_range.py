"""ews's reserved fictional range holds a million distinct numbers that its import accepts as mobiles."""

from __future__ import annotations

import pytest

from ews.contacts import (
    FICTIONAL_PREFIX,
    FICTIONAL_SIZE,
    can_receive_messages,
    fictional_phone,
    is_fictional,
    normalize_phone,
)


def test_a_million_distinct_numbers_of_one_length_fit() -> None:
    numbers = [fictional_phone(n) for n in range(FICTIONAL_SIZE)]
    assert FICTIONAL_SIZE >= 1_000_000
    assert len(set(numbers)) == FICTIONAL_SIZE
    # +62 and 12 national digits (8999 00xx xxxx), the length of the former range's numbers.
    assert {len(n) for n in numbers} == {15}
    assert all(n.startswith(FICTIONAL_PREFIX) for n in numbers)


@pytest.mark.parametrize("n", [-1, FICTIONAL_SIZE])
def test_a_number_outside_the_range_is_refused(n: int) -> None:
    with pytest.raises(ValueError, match="outside ews's reserved range"):
        fictional_phone(n)


def test_the_normaliser_accepts_numbers_across_the_whole_range() -> None:
    # phonenumbers validates by pattern on the leading digits and the length: a stride that is prime to 10
    # puts every digit value in every free position; the ends and the former range are checked too.
    sample = sorted({*range(0, FICTIONAL_SIZE, 997), 0, 9_999, 10_000, FICTIONAL_SIZE - 1})
    for n in sample:
        e164 = fictional_phone(n)
        assert normalize_phone(e164) == e164
        assert normalize_phone("0" + e164[3:]) == e164  # as written locally: 0899 900…
        assert can_receive_messages(e164)
        assert is_fictional(e164)


@pytest.mark.parametrize(
    ("old", "n"),
    # Numbers of the former +62 8999 0000 xxxx range, as the tests and the demo region wrote them.
    [("+6289990000" + "0001", 1), ("+6289990000" + "9001", 9001), ("+6289990000" + "9999", 9_999)],
)
def test_the_former_range_is_the_first_ten_thousand(old: str, n: int) -> None:
    assert fictional_phone(n) == old
    assert is_fictional(old)


def test_a_real_looking_three_number_is_not_fictional() -> None:
    assert not is_fictional(normalize_phone("0899 9100 0001"))
