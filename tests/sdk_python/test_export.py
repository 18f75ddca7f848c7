"""The official Python SDK's ``export`` (klozeo==0.1.4) against the server: every format comes
back as the bytes of a file that parses (csv, json, openpyxl), holding exactly the leads that
``list`` returns for the same filter and sort, in the same order, with attribute columns,
neutralised formulas and typed XLSX cells.

Every lead is created with a unique ``source``, and every export filters on it, so the suite's
other leads in the same account never show up.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import uuid

import openpyxl
import pytest
from klozeo import BadRequestError, ExportFormat, Klozeo, Lead, SortField, SortOrder, number_attr, source, text_attr

FIXED = [
    "id", "name", "source", "status", "score", "email", "phone", "website", "description",
    "address", "city", "state", "country", "postal_code", "latitude", "longitude", "rating",
    "review_count", "category", "tags", "source_id", "logo_url", "created_at", "updated_at",
    "last_interaction_at",
]


@pytest.fixture
def seeded(client: Klozeo, cleanup) -> tuple[str, list[str]]:
    src = f"sdkpy-export-{uuid.uuid4().hex}"
    ids = []
    for i, (name, rating) in enumerate([("Bravo", 3.5), ("=Alpha()", 4.5), ("Charlie", None),
                                        ("+Delta", 1.0), ("Echo", 4.0)]):
        attrs = [number_attr("employees", 10 * (i + 1))] if i % 2 == 0 else [text_attr("industry", "@ops")]
        lead = Lead(name=name, source=src, city="Lyon", rating=rating, tags=["vip", "b2b"] if i < 2 else [],
                    attributes=attrs)
        lead_id = client.create(lead).id
        cleanup.append((client, lead_id))
        ids.append(lead_id)
    return src, ids


def listed(client: Klozeo, src: str, sort_by=None, sort_order=None) -> list[str]:
    return [l.id for l in client.iterate(source().eq(src), sort_by=sort_by, sort_order=sort_order)]


def test_json_export_equals_the_list_and_get(client: Klozeo, seeded) -> None:
    src, _ = seeded
    for sort_by, order in [(None, None), (SortField.NAME, SortOrder.ASC), (SortField.RATING, SortOrder.DESC)]:
        data = client.export(ExportFormat.JSON, source().eq(src), sort_by=sort_by, sort_order=order)
        assert isinstance(data, bytes)
        leads = json.loads(data)
        assert [l["id"] for l in leads] == listed(client, src, sort_by, order)
    for l in leads:
        assert client.get(l["id"]).model_dump(mode="json", exclude_none=True) == \
            Lead.model_validate(l).model_dump(mode="json", exclude_none=True)


def test_csv_export_parses_with_attribute_columns_and_neutralised_formulas(client: Klozeo, seeded) -> None:
    src, ids = seeded
    data = client.export(ExportFormat.CSV, source().eq(src), sort_by=SortField.NAME, sort_order=SortOrder.ASC)
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    header, body = rows[0], rows[1:]
    assert header == FIXED + ["attr:employees", "attr:industry"]
    assert [r[0] for r in body] == listed(client, src, SortField.NAME, SortOrder.ASC)
    by_id = {r[0]: dict(zip(header, r)) for r in body}
    assert by_id[ids[1]]["name"] == "'=Alpha()"
    assert by_id[ids[3]]["name"] == "'+Delta"
    assert by_id[ids[1]]["attr:industry"] == "'@ops"
    assert by_id[ids[0]]["attr:employees"] == "10"
    assert by_id[ids[0]]["tags"] == "vip, b2b"
    assert by_id[ids[2]]["rating"] == ""


def test_xlsx_export_has_typed_cells(client: Klozeo, seeded) -> None:
    src, ids = seeded
    data = client.export(ExportFormat.XLSX, source().eq(src), sort_by=SortField.RATING, sort_order=SortOrder.DESC)
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    rows = list(ws.iter_rows(values_only=True))
    header, body = list(rows[0]), rows[1:]
    assert header == FIXED + ["attr:employees", "attr:industry"]
    assert [r[0] for r in body] == listed(client, src, SortField.RATING, SortOrder.DESC)
    by_id = {r[0]: dict(zip(header, r)) for r in body}
    alpha = by_id[ids[1]]
    # Strings are never formulas in XLSX, so they are written as they are.
    assert alpha["name"] == "=Alpha()"
    assert alpha["rating"] == 4.5 and isinstance(alpha["rating"], float)
    assert alpha["attr:industry"] == "@ops"
    assert by_id[ids[0]]["attr:employees"] == 10
    created = client.get(ids[0]).created_at
    assert isinstance(by_id[ids[0]]["created_at"], datetime.datetime)
    assert by_id[ids[0]]["created_at"] == datetime.datetime.fromtimestamp(created, datetime.timezone.utc).replace(tzinfo=None)
    assert by_id[ids[2]]["rating"] is None


def test_unknown_format_is_a_bad_request(client: Klozeo) -> None:
    with pytest.raises(BadRequestError):
        client.export("pdf")  # type: ignore[arg-type]
