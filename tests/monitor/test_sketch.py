"""The pure parts: windows tiled by buckets, sketches that merge and round-trip, features read off inputs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from inferlog.monitor import features as ft
from inferlog.monitor import windows
from inferlog.monitor.sketch import CATEGORY_CAP, BucketState, Categories, merged


@given(st.integers(0, 400 * 86400), st.integers(0, 40 * 86400))
def test_cover_tiles_every_minute_of_a_window_once(since: int, length: int) -> None:
    """The pieces cover exactly the minute starts in [since, until), each once, coarse where they fit."""
    until = since + length
    pieces = windows.cover(since, until)
    minutes = [b + m for level, b in pieces for m in range(0, level, 60)]
    assert minutes == list(range(windows.ceil(since, 60), windows.ceil(until, 60), 60))
    assert all(b % level == 0 for level, b in pieces)
    assert len(pieces) <= 2 * (59 + 23) + length // 86400 + 2
    runs = windows.runs(pieces)
    assert sum((end - first) // level for level, first, end in runs) == len(pieces)
    assert len(runs) <= 5


def test_a_window_over_ten_thousand_years_stays_small() -> None:
    """Windows are clamped to 1970-2200, so an absurd period cannot make millions of pieces."""
    pieces = windows.cover(-(10**12), 10**12)
    assert len(pieces) <= 84_010  # 230 years of days
    assert len(windows.runs(pieces)) == 1


def test_categories_keep_the_cap_and_count_the_rest_as_other() -> None:
    """Past the cap, values count as other; a merge keeps the most frequent values."""
    a = Categories()
    for i in range(CATEGORY_CAP + 10):
        a.add(f"v{i}")
    assert len(a.counts) == CATEGORY_CAP
    assert a.other == 10
    assert a.total == CATEGORY_CAP + 10
    b = Categories({"late": 50})
    a.merge(b)
    assert a.counts["late"] == 50
    assert len(a.counts) == CATEGORY_CAP
    assert a.total == CATEGORY_CAP + 60


def test_a_bucket_state_round_trips_and_merges() -> None:
    """Counts, sketches, categories and pairs survive bytes; a merge adds them up."""
    one = BucketState()
    one.volume, one.errors, one.rows = 3, 1, 3
    one.add_latency(5.0)
    one.feature("x").add_number(1.5)
    one.feature("x").add_number(2.5)
    one.feature("c").cats.add("a")
    one.add_pair("1", "0")
    one.add_error(2.0, 1.0)
    back = BucketState.from_bytes(one.to_bytes())
    assert (back.volume, back.errors, back.rows) == (3, 1, 3)
    assert back.features["x"].numbers == 2
    assert back.features["c"].cats.counts == {"a": 1}
    assert back.confusion == {"1": {"0": 1}}
    assert (back.reg_n, back.reg_abs) == (1, 1.0)
    both = merged([back, BucketState.from_bytes(one.to_bytes())])
    assert both.volume == 6
    assert both.features["x"].numbers == 4
    assert both.latency_quantile(0.5) == 5.0
    counts_only = BucketState.from_bytes(one.to_bytes(), frozenset())
    assert counts_only.volume == 3
    assert counts_only.latency is None
    assert counts_only.features == {}


def test_features_from_flat_nested_batched_and_tensor_inputs() -> None:
    """Dotted names for nested objects, one row per batch item, tensors by name; free text is no feature."""
    assert ft.rows_of({"a": 1, "b": {"c": "x", "d": {"e": 2.0}}, "l": [1, 2]}) == [
        {"a": 1, "b.c": "x", "b.d.e": 2.0}
    ]
    assert ft.rows_of([{"a": 1}, {"a": 2}]) == [{"a": 1}, {"a": 2}]
    tensors = {"inputs": [{"name": "t", "shape": [2, 1], "data": [[1], [2]]}]}
    assert ft.rows_of(tensors) == [{"t": 1}, {"t": 2}]
    assert ft.rows_of("a prompt") == []
    assert ft.classify("x" * 65) == ("skip", None)
    assert ft.classify(float("nan")) == ("null", None)
    assert ft.class_label(1.0) == ft.class_label(1) == ft.class_label("1") == "1"
    assert ft.predictions({"outputs": [{"name": "p", "data": [0, 1]}]}) == [0, 1]
    assert ft.prediction({"label": "approve", "score": 0.9}) == "approve"


def test_a_rollup_filter_refuses_text_no_store_holds() -> None:
    """A NUL in a scope is a BadParameter naming the field, before any database sees it."""
    import pytest

    from inferlog.errors import BadParameter
    from inferlog.store.base import RollupFilter

    with pytest.raises(BadParameter, match="system"):
        RollupFilter(60, system="a\x00b")
    with pytest.raises(BadParameter, match="version"):
        RollupFilter(3600, system="a", model="m", version="\ud800")
