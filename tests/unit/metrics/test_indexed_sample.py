"""IndexedSample's quantiles walk an index up from the smallest value for the lower half
and down from the largest for the upper half: either way, the sorted values' quantile."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Float, Integer, MetaData, Table, create_engine, select

from interlock.metrics.stats import quantile_of_sorted
from interlock.storage.metric_rollups import IndexedSample

metadata = MetaData()
values = Table(
    "values_", metadata, Column("id", Integer, primary_key=True), Column("v", Float, index=True)
)
ENGINE = create_engine("sqlite://")
metadata.create_all(ENGINE)


@settings(max_examples=60, deadline=None)
@given(
    found=st.lists(st.integers(min_value=-50, max_value=500), min_size=1, max_size=40),
    qs=st.lists(st.sampled_from((0.0, 0.1, 0.25, 0.5, 0.51, 0.75, 0.9, 0.99, 1.0)), min_size=1),
    clamp=st.booleans(),
)
def test_quantiles_from_either_end_equal_the_sorted_values(found, qs, clamp):
    with ENGINE.begin() as conn:
        conn.execute(values.delete())
        conn.execute(values.insert(), [{"v": float(v)} for v in found])
        sample = IndexedSample(
            conn, select(values.c.v.label("v")), n=len(found), mean=0.0, clamp=clamp
        )
        ordered = sorted(max(v, 0) if clamp else v for v in found)
        for q in qs:
            assert sample.quantile(q) == quantile_of_sorted([float(v) for v in ordered], q)
