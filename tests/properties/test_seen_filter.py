"""The seen filter never says "new" of an id it was given, and rarely "maybe seen" of a new one."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pipeline.stages.seen_filter import SeenFilter


@given(st.lists(st.text(max_size=40), max_size=300))
def test_an_id_given_before_is_always_maybe_seen(ids: list[str]) -> None:
    # Given a filter that was given some ids
    seen = SeenFilter()
    for key in ids:
        seen.add(key)

    # When each is given again, then each may have been seen
    assert all(seen.add(key) for key in ids)


def test_distinct_ids_are_almost_never_taken_for_seen() -> None:
    # Given 20,000 distinct session ids
    ids = [f"session-{number:08d}" for number in range(20_000)]

    # When they are given to a new filter one after another
    seen = SeenFilter()
    suspected = sum(seen.add(key) for key in ids)

    # Then almost none is taken for one seen before (expected: well under one)
    assert suspected < 5
