"""The latency percentiles every suite, the bench and the load test print are numpy's
nearest-rank percentile: one of the measured values, the same as the rank definition."""

from hypothesis import given
from hypothesis import strategies as st

from assistant.evals import percentile


def nearest_rank(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


@given(st.lists(st.integers(0, 10**6), min_size=1) | st.lists(
    st.floats(0, 1e6, allow_nan=False), min_size=1), st.floats(0, 100))
def test_the_percentile_is_the_nearest_rank_value(values, q):
    got = percentile(values, q)
    assert got == nearest_rank(values, q)
    assert got in values and type(got) is type(nearest_rank(values, q))


def test_no_values_have_no_percentile():
    assert percentile([], 50) is None
    assert percentile([7, 1, 3], 50) == 3 and percentile([7, 1, 3], 100) == 7
