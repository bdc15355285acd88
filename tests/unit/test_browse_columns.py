"""Browse as columns (the window's grid at 100,000 photos) lists what browse() lists, and
its months are the ones by_month() groups; filters answer from the filters' index."""

from __future__ import annotations

import time

import numpy as np
import pytest

from lookalike.core.search.browse import BrowseColumns, allowed_ids, browse, browse_columns, by_month
from lookalike.core.search.parse import parse
from lookalike.core.store.catalog import Catalog, NewPhoto


@pytest.fixture
def catalog(tmp_path):
    """300 photos over three years (month ends, midnights, daylight-saving changes), some
    with no date taken or no size."""
    cat = Catalog(tmp_path / "catalog.sqlite3")
    folder = cat.add_folder(tmp_path / "pics")
    rng = np.random.default_rng(4)
    lo, hi = time.mktime((2021, 1, 1, 0, 0, 0, 0, 0, -1)), time.mktime((2024, 1, 1, 0, 0, 0, 0, 0, -1))
    stamps = list(rng.uniform(lo, hi, 260))
    for year, month in ((2022, 3), (2022, 4), (2022, 11), (2023, 10)):  # first instants of months
        start = time.mktime((year, month, 1, 0, 0, 0, 0, 0, -1))
        stamps += [start, start - 1, start + 0.5] * 10
    new = []
    for i, t in enumerate(stamps):
        taken = None if i % 4 == 0 else float(t)
        w, h = (None, None) if i % 9 == 0 else (4000, 3000) if i % 2 else (3000, 4000)
        kind = ("jpg", "png", "heic")[i % 3]
        new.append(
            NewPhoto(
                tmp_path / "pics" / f"p{i}.{kind}",
                folder.id,
                10 + i,
                int(t * 1e9),
                f"h{i}",
                w,
                h,
                taken,
                np.ones(4, np.float32) / 2,
            )  # fmt: skip
        )
    cat.commit_batch(added=new)
    yield cat
    cat.close()


def test_columns_list_what_browse_lists_and_months_group_as_by_month(catalog):
    items = browse(catalog)
    cols = browse_columns(catalog)
    assert len(cols) == len(items) == 380
    assert [cols.item(i) for i in range(len(cols))] == items
    groups = by_month(items)
    starts = np.cumsum([0] + [len(g) for _, g in groups])[:-1].tolist()
    assert cols.months() == list(zip(starts, [m for m, _ in groups]))
    assert BrowseColumns.of(items).months() == cols.months()
    assert [BrowseColumns.of(items).item(i) for i in (0, 7, 379)] == [items[0], items[7], items[379]]


def test_columns_of_the_allowed_photos_only(catalog):
    allowed = allowed_ids(catalog, parse("year:2022 kind:png"))
    assert allowed is not None and 0 < len(allowed) < 380
    cols = browse_columns(catalog, allowed)
    assert [cols.item(i) for i in range(len(cols))] == browse(catalog, allowed)
    assert len(browse_columns(catalog, np.zeros(0, np.int64))) == 0


def test_filters_read_the_filters_index_not_the_photo_rows(catalog):
    plan = catalog.query(
        "EXPLAIN QUERY PLAN SELECT id FROM photos WHERE height > width * 1.05 "
        "AND COALESCE(taken, mtime_ns / 1000000000.0) >= 1"
    )
    assert any("COVERING INDEX photos_browse" in str(row) for row in plan)
    newest = catalog.query(
        "EXPLAIN QUERY PLAN SELECT id, path, COALESCE(taken, mtime_ns / 1000000000.0), taken, width, height, size "
        "FROM photos ORDER BY COALESCE(taken, mtime_ns / 1000000000.0) DESC, id DESC"
    )
    assert any("COVERING INDEX photos_browse" in str(row) for row in newest)
    ids = allowed_ids(catalog, parse("shape:portrait after:2022"))
    assert ids is not None and ids.tolist() == sorted(ids.tolist())
    want = [
        i.photo_id
        for i in browse(catalog)
        if i.height and i.width and i.height > i.width and i.date >= time.mktime((2022, 1, 1, 0, 0, 0, 0, 0, -1))
    ]
    assert sorted(want) == ids.tolist()
