"""Leads compatibility tests driving the official Python SDK ``klozeo==0.1.4``.

Real SDK surface (differs from the public docs, see wire-contract §12.11):
``Klozeo(api_key, base_url=, timeout=, max_retries=)``; ``client.create(Lead)``,
``get(id)``, ``update(id, UpdateLeadInput)``, ``delete(id)``,
``list(*filters, sort_by=, sort_order=, limit=, cursor=, options=)``,
``iterate(*filters, sort_by=, sort_order=)`` (no limit parameter).

Every test creates its own uniquely named data and only asserts about that data,
so the suite works against a non-empty database. Filters are deliberately NOT
used (not implemented server-side yet): leads are found by scanning everything
with ``iterate`` and selecting a unique ``source`` value.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest

from klozeo import (
    AsyncKlozeo,
    BadRequestError,
    Klozeo,
    KlozeoError,
    Lead,
    ListOptions,
    NotFoundError,
    SortField,
    SortOrder,
    UnauthorizedError,
    UpdateLeadInput,
    bool_attr,
    list_attr,
    number_attr,
    object_attr,
    text_attr,
)

# A syntactically valid lead id that never exists.
MISSING_LEAD_ID = "cl_00000000-0000-0000-0000-000000000000"
VALID_STATUSES = ("new", "contacted", "qualified", "disqualified", "converted")
# Every sensible server clock is within a day of ours; this catches milliseconds.
MAX_CLOCK_SKEW = 86_400
# Guard against a server whose cursor never ends.
MAX_PAGES = 5_000


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def uid() -> str:
    """A fresh 32-hex-digit unique suffix."""
    return uuid.uuid4().hex


def assert_unix_seconds(value, what: str) -> None:
    assert type(value) is int, f"{what} must be an int (unix seconds), got {value!r}"
    assert abs(value - time.time()) < MAX_CLOCK_SKEW, (
        f"{what}={value} is not a current unix timestamp in seconds"
    )


def assert_lead_shape(lead: Lead) -> None:
    """What every SDK needs in a Lead (wire-contract §4.1 'safe server output')."""
    assert isinstance(lead.id, str) and lead.id.startswith("cl_"), lead.id
    assert isinstance(lead.name, str)
    assert isinstance(lead.source, str)
    assert isinstance(lead.score, (int, float)), f"score must be a number, got {lead.score!r}"
    assert isinstance(lead.tags, list), f"tags must be an array (never null), got {lead.tags!r}"
    assert isinstance(lead.attributes, list), (
        f"attributes must be an array (never null), got {lead.attributes!r}"
    )
    for a in lead.attributes:
        assert isinstance(a.id, str) and a.id, f"attribute without id: {a!r}"
    assert_unix_seconds(lead.created_at, "created_at")
    assert_unix_seconds(lead.updated_at, "updated_at")
    assert_unix_seconds(lead.last_interaction_at, "last_interaction_at")
    if lead.review_count is not None:
        assert lead.review_count >= 0


def assert_page_invariants(page, limit: int | None = None) -> None:
    assert isinstance(page.leads, list)
    assert page.count == len(page.leads), f"count={page.count} but {len(page.leads)} leads"
    assert page.has_more == bool(page.next_cursor), (
        f"has_more={page.has_more} must be true exactly when next_cursor is non-empty "
        f"(next_cursor={page.next_cursor!r})"
    )
    if limit is not None:
        assert len(page.leads) <= limit
        if page.has_more:
            assert len(page.leads) == limit, "a page with has_more=true should be full"
    else:
        assert len(page.leads) <= 50, "default page size is 50"


def collect_pages(client: Klozeo, *, limit: int | None = None, options: ListOptions | None = None,
                  **kwargs) -> list[list[Lead]]:
    """Follow next_cursor from the first page until has_more is false."""
    pages = []
    cursor = None
    seen_cursors = set()
    while True:
        if options is not None:
            page = client.list(options=options.with_cursor(cursor))
        else:
            page = client.list(limit=limit, cursor=cursor, **kwargs)
        assert_page_invariants(page, limit)
        pages.append(page.leads)
        if not page.has_more:
            break
        assert page.next_cursor not in seen_cursors, "server returned the same cursor twice"
        seen_cursors.add(page.next_cursor)
        cursor = page.next_cursor
        assert len(pages) < MAX_PAGES, "pagination does not terminate"
    return pages


def ids_with_source(leads, source: str) -> list[str]:
    return [l.id for l in leads if l.source == source]


def full_lead_fields(tag: str) -> dict:
    s = uid()
    digits = str(uuid.UUID(s).int)[-9:]
    return dict(
        name=f"sdkpy {tag} {s}",
        source=f"sdkpy-{tag}-{s}",
        description=f"Full-field lead {s}",
        address="1 Market Street",
        city="San Francisco",
        state="CA",
        country="US",
        postal_code="94105",
        latitude=37.7936,
        longitude=-122.3958,
        phone=f"+1{digits}",
        email=f"sdkpy-{s}@example.com",
        website=f"https://{s}.example.com",
        rating=4.5,
        review_count=128,
        category="Software",
        tags=["enterprise", "vip", f"t-{s[:8]}"],
        source_id=f"ext-{s}",
        logo_url=f"https://{s}.example.com/logo.png",
        status="qualified",
        attributes=[
            text_attr("industry", "Software"),
            number_attr("employees", 500),
            bool_attr("verified", True),
            list_attr("languages", ["en", "fr"]),
            object_attr("contract", {"tier": "gold", "seats": 12}),
        ],
    )


SCALAR_FIELDS = ("name", "source", "description", "address", "city", "state", "country",
                 "postal_code", "phone", "email", "website", "review_count", "category",
                 "source_id", "logo_url", "status")
FLOAT_FIELDS = ("latitude", "longitude", "rating")


def assert_fields_equal(lead: Lead, expected: dict, skip: tuple = ()) -> None:
    for f in SCALAR_FIELDS:
        if f in expected and f not in skip:
            assert getattr(lead, f) == expected[f], f"{f}: {getattr(lead, f)!r} != {expected[f]!r}"
    for f in FLOAT_FIELDS:
        if f in expected and f not in skip:
            assert getattr(lead, f) == pytest.approx(expected[f]), f
    if "tags" in expected and "tags" not in skip:
        assert lead.tags == expected["tags"]
    if "attributes" in expected and "attributes" not in skip:
        got = {a.name: (a.type, a.value) for a in lead.attributes}
        want = {a.name: (a.type, a.value) for a in expected["attributes"]}
        assert got == want
        assert len(lead.attributes) == len(expected["attributes"])
        for a in lead.attributes:
            assert isinstance(a.id, str) and a.id, f"attribute {a.name} has no id"


def index_of(ids: list[str], lead_id: str) -> int:
    assert ids.count(lead_id) == 1, f"{lead_id} appears {ids.count(lead_id)} times"
    return ids.index(lead_id)


# ---------------------------------------------------------------------------
# create / get
# ---------------------------------------------------------------------------


def test_create_returns_create_response(client: Klozeo, cleanup):
    s = uid()
    resp = client.create(Lead(name=f"sdkpy create {s}", source=f"sdkpy-{s}",
                              email=f"sdkpy-{s}@example.com"))
    cleanup.append((client, resp.id))
    assert resp.id.startswith("cl_"), resp.id
    uuid.UUID(resp.id[3:])  # cl_<uuid>
    assert_unix_seconds(resp.created_at, "CreateResponse.created_at")
    assert isinstance(resp.message, str) and resp.message, "message is required (Rust SDK)"
    assert not resp.duplicate


def test_create_full_lead_then_get_returns_every_field(client: Klozeo, cleanup):
    fields = full_lead_fields("full")
    resp = client.create(Lead(**fields))
    cleanup.append((client, resp.id))
    assert resp.id.startswith("cl_")
    assert_unix_seconds(resp.created_at, "CreateResponse.created_at")

    lead = client.get(resp.id)
    assert_lead_shape(lead)
    assert lead.id == resp.id
    assert lead.created_at == resp.created_at
    assert lead.updated_at >= lead.created_at
    assert_fields_equal(lead, fields)


def test_create_minimal_lead_defaults(client: Klozeo, cleanup):
    s = uid()
    resp = client.create(Lead(name=f"sdkpy minimal {s}", source=f"sdkpy-{s}"))
    cleanup.append((client, resp.id))
    lead = client.get(resp.id)
    assert_lead_shape(lead)
    assert lead.name == f"sdkpy minimal {s}"
    assert lead.source == f"sdkpy-{s}"
    assert lead.status == "new", "documented default status is 'new'"
    assert lead.tags == []
    assert lead.attributes == []
    for f in ("description", "address", "city", "state", "country", "postal_code", "phone",
              "email", "website", "category", "source_id", "logo_url", "latitude",
              "longitude", "rating", "review_count"):
        assert getattr(lead, f) in (None, ""), f"{f} should be unset, got {getattr(lead, f)!r}"


@pytest.mark.parametrize("status", VALID_STATUSES)
def test_create_with_each_valid_status(create_lead, client: Klozeo, status):
    lead_id = create_lead(status=status)
    assert client.get(lead_id).status == status


def test_get_missing_raises_not_found(client: Klozeo):
    with pytest.raises(NotFoundError) as ei:
        client.get(MISSING_LEAD_ID)
    assert ei.value.status_code == 404
    assert ei.value.code == "not_found"
    assert isinstance(ei.value, KlozeoError)


# ---------------------------------------------------------------------------
# update
# ---------------------------------------------------------------------------


def test_update_partial_returns_full_lead(client: Klozeo, cleanup):
    fields = full_lead_fields("upd")
    resp = client.create(Lead(**fields))
    cleanup.append((client, resp.id))
    before = client.get(resp.id)

    new_email = f"sdkpy-upd-{uid()}@example.com"
    change = dict(city="New York", rating=4.8, tags=["enterprise", "updated"],
                  status="contacted", description="changed description",
                  latitude=40.7128, review_count=7, email=new_email)
    updated = client.update(resp.id, UpdateLeadInput(**change))

    assert_lead_shape(updated)
    assert updated.id == resp.id
    assert updated.created_at == before.created_at
    assert updated.updated_at >= updated.created_at
    assert updated.updated_at >= before.updated_at
    assert updated.last_interaction_at >= before.last_interaction_at
    # changed fields
    assert_fields_equal(updated, change)
    # unchanged fields survive the partial update (not nulled)
    assert_fields_equal(updated, fields, skip=tuple(change))
    assert {a.id for a in updated.attributes} == {a.id for a in before.attributes}

    # and the change is persisted
    again = client.get(resp.id)
    assert_fields_equal(again, change)
    assert_fields_equal(again, fields, skip=tuple(change))
    assert again.updated_at == updated.updated_at


def test_update_single_field(create_lead, client: Klozeo):
    s = uid()
    lead_id = create_lead(name=f"sdkpy single {s}", city="Lyon", rating=3.0)
    updated = client.update(lead_id, UpdateLeadInput(status="converted"))
    assert updated.status == "converted"
    assert updated.name == f"sdkpy single {s}"
    assert updated.city == "Lyon"
    assert updated.rating == pytest.approx(3.0)
    assert client.get(lead_id).status == "converted"


def test_update_missing_raises_not_found(client: Klozeo):
    with pytest.raises(NotFoundError):
        client.update(MISSING_LEAD_ID, UpdateLeadInput(city="Nowhere"))


# ---------------------------------------------------------------------------
# delete
# ---------------------------------------------------------------------------


def test_delete_then_get_raises_not_found(create_lead, client: Klozeo):
    source = f"sdkpy-del-{uid()}"
    lead_id = create_lead(source=source)
    assert client.get(lead_id).id == lead_id

    assert client.delete(lead_id) is None
    with pytest.raises(NotFoundError):
        client.get(lead_id)
    with pytest.raises(NotFoundError):
        client.delete(lead_id)
    with pytest.raises(NotFoundError):
        client.update(lead_id, UpdateLeadInput(city="Ghost"))
    assert ids_with_source(client.iterate(), source) == []


def test_delete_missing_raises_not_found(client: Klozeo):
    with pytest.raises(NotFoundError):
        client.delete(MISSING_LEAD_ID)


# ---------------------------------------------------------------------------
# list / pagination
# ---------------------------------------------------------------------------


def test_list_default(create_lead, client: Klozeo):
    source = f"sdkpy-listdef-{uid()}"
    lead_id = create_lead(source=source)
    page = client.list()
    assert_page_invariants(page)
    assert page.count >= 1
    for lead in page.leads:
        assert_lead_shape(lead)
    if not page.has_more:
        assert ids_with_source(page.leads, source) == [lead_id]


def test_list_with_limit(create_lead, client: Klozeo):
    source = f"sdkpy-limit-{uid()}"
    for _ in range(3):
        create_lead(source=source)

    page = client.list(limit=2)
    assert_page_invariants(page, limit=2)
    assert len(page.leads) == 2
    assert page.has_more is True
    assert isinstance(page.next_cursor, str) and page.next_cursor

    one = client.list(limit=1)
    assert_page_invariants(one, limit=1)
    assert len(one.leads) == 1 and one.count == 1 and one.has_more is True


def test_list_pages_via_cursor_until_done(create_lead, client: Klozeo):
    source = f"sdkpy-page-{uid()}"
    mine = {create_lead(source=source) for _ in range(7)}

    pages = collect_pages(client, limit=3)
    assert len(pages) >= 3, "7+ leads with limit=3 need at least 3 pages"
    all_ids = [l.id for p in pages for l in p]
    assert len(all_ids) == len(set(all_ids)), "a lead appeared on two pages"
    assert sorted(ids_with_source([l for p in pages for l in p], source)) == sorted(mine)
    # last page ends with has_more=false / no cursor (checked in collect_pages)


def test_list_with_list_options_builder(create_lead, client: Klozeo):
    source = f"sdkpy-opts-{uid()}"
    mine = {create_lead(source=source) for _ in range(3)}
    opts = ListOptions().with_limit(2).with_sort(SortField.CREATED_AT, SortOrder.DESC)
    first = client.list(options=opts)
    assert_page_invariants(first, limit=2)
    assert len(first.leads) == 2 and first.has_more

    pages = collect_pages(client, limit=2, options=opts)
    leads = [l for p in pages for l in p]
    assert sorted(ids_with_source(leads, source)) == sorted(mine)
    stamps = [l.created_at for l in leads]
    assert stamps == sorted(stamps, reverse=True)


# ---------------------------------------------------------------------------
# iterate
# ---------------------------------------------------------------------------


def test_iterate_yields_every_created_lead_exactly_once(create_lead, client: Klozeo):
    source = f"sdkpy-iter-{uid()}"
    mine = [create_lead(source=source) for _ in range(12)]

    it = client.iterate()
    assert not isinstance(it, list)  # a generator, pages fetched lazily
    leads = list(it)
    for lead in leads:
        assert isinstance(lead, Lead)
    all_ids = [l.id for l in leads]
    assert len(all_ids) == len(set(all_ids)), "iterate yielded a lead twice"
    found = ids_with_source(leads, source)
    assert len(found) == 12
    assert sorted(found) == sorted(mine)


# ---------------------------------------------------------------------------
# sorting
# ---------------------------------------------------------------------------


def _created_at_pair(create_lead, source: str) -> tuple[str, str]:
    older = create_lead(source=source)
    time.sleep(1.1)  # timestamps are whole seconds
    newer = create_lead(source=source)
    return older, newer


def test_sort_by_created_at_asc_and_desc(create_lead, client: Klozeo):
    source = f"sdkpy-sort-{uid()}"
    older, newer = _created_at_pair(create_lead, source)

    asc = list(client.iterate(sort_by=SortField.CREATED_AT, sort_order=SortOrder.ASC))
    stamps = [l.created_at for l in asc]
    assert stamps == sorted(stamps), "ASC order by created_at is not non-decreasing"
    asc_ids = [l.id for l in asc]
    assert index_of(asc_ids, older) < index_of(asc_ids, newer)

    desc = list(client.iterate(sort_by=SortField.CREATED_AT, sort_order=SortOrder.DESC))
    stamps = [l.created_at for l in desc]
    assert stamps == sorted(stamps, reverse=True), "DESC order by created_at is not non-increasing"
    desc_ids = [l.id for l in desc]
    assert index_of(desc_ids, newer) < index_of(desc_ids, older)

    assert sorted(asc_ids) == sorted(desc_ids)


def test_sort_by_created_at_is_kept_across_cursor_pages(create_lead, client: Klozeo):
    source = f"sdkpy-sortpage-{uid()}"
    older, newer = _created_at_pair(create_lead, source)
    create_lead(source=source)

    for order in (SortOrder.ASC, SortOrder.DESC):
        pages = collect_pages(client, limit=2, sort_by=SortField.CREATED_AT, sort_order=order)
        leads = [l for p in pages for l in p]
        stamps = [l.created_at for l in leads]
        assert stamps == sorted(stamps, reverse=(order is SortOrder.DESC)), order
        ids = [l.id for l in leads]
        assert len(ids) == len(set(ids))
        if order is SortOrder.ASC:
            assert index_of(ids, older) < index_of(ids, newer)
        else:
            assert index_of(ids, newer) < index_of(ids, older)


def test_sort_order_is_case_insensitive(create_lead, client: Klozeo):
    # The Python SDK passes raw strings through, so "desc" can reach the server.
    source = f"sdkpy-sortcase-{uid()}"
    older, newer = _created_at_pair(create_lead, source)
    ids = [l.id for l in client.iterate(sort_by="created_at", sort_order="desc")]
    assert index_of(ids, newer) < index_of(ids, older)
    ids = [l.id for l in client.iterate(sort_by="created_at", sort_order="asc")]
    assert index_of(ids, older) < index_of(ids, newer)


def test_sort_by_name(create_lead, client: Klozeo):
    s = uid()
    source = f"sdkpy-sortname-{s}"
    # created out of alphabetical order so created_at order != name order
    b = create_lead(source=source, name=f"sdkpy-sortname-{s}-b")
    c = create_lead(source=source, name=f"sdkpy-sortname-{s}-c")
    a = create_lead(source=source, name=f"sdkpy-sortname-{s}-a")
    asc = ids_with_source(client.iterate(sort_by=SortField.NAME, sort_order=SortOrder.ASC), source)
    assert asc == [a, b, c]
    desc = ids_with_source(client.iterate(sort_by=SortField.NAME, sort_order=SortOrder.DESC), source)
    assert desc == [c, b, a]


def test_sort_by_rating(create_lead, client: Klozeo):
    source = f"sdkpy-sortrating-{uid()}"
    mid = create_lead(source=source, rating=3.0)
    high = create_lead(source=source, rating=4.5)
    low = create_lead(source=source, rating=1.5)
    asc = ids_with_source(client.iterate(sort_by=SortField.RATING, sort_order=SortOrder.ASC), source)
    assert asc == [low, mid, high]
    desc = ids_with_source(client.iterate(sort_by=SortField.RATING, sort_order=SortOrder.DESC), source)
    assert desc == [high, mid, low]


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad_key", ["sk_live_invalid_" + "0" * 32, ""])
def test_bad_api_key_raises_unauthorized(make_client, bad_key: str):
    bad = make_client(bad_key)
    with pytest.raises(UnauthorizedError) as ei:
        bad.list()
    assert ei.value.status_code == 401
    assert ei.value.code == "unauthorized"
    with pytest.raises(UnauthorizedError):
        bad.get(MISSING_LEAD_ID)
    with pytest.raises(UnauthorizedError):
        bad.create(Lead(name=f"sdkpy unauth {uid()}", source="sdkpy-unauth"))


def test_create_with_invalid_status_raises_bad_request(client: Klozeo, cleanup):
    s = uid()
    source = f"sdkpy-badstatus-{s}"
    try:
        with pytest.raises(BadRequestError) as ei:
            resp = client.create(Lead(name=f"sdkpy bad status {s}", source=source,
                                      email=f"sdkpy-{s}@example.com", status="bogus"))
            cleanup.append((client, resp.id))
        assert ei.value.status_code == 400
        assert ei.value.code == "bad_request"
    finally:
        leftovers = ids_with_source(client.iterate(), source)
        cleanup.extend((client, i) for i in leftovers)
    assert leftovers == [], "a rejected create must not store the lead"


def test_update_with_invalid_status_raises_bad_request(create_lead, client: Klozeo):
    lead_id = create_lead(status="contacted")
    with pytest.raises(BadRequestError) as ei:
        client.update(lead_id, UpdateLeadInput(status="bogus"))
    assert ei.value.status_code == 400
    assert client.get(lead_id).status == "contacted"


# ---------------------------------------------------------------------------
# tenant isolation
# ---------------------------------------------------------------------------


def test_tenant_isolation(create_lead, client: Klozeo, client2: Klozeo):
    s = uid()
    source = f"sdkpy-tenant-{s}"
    lead_id = create_lead(source=source, name=f"sdkpy tenant {s}", city="Berlin")

    with pytest.raises(NotFoundError):
        client2.get(lead_id)
    with pytest.raises(NotFoundError):
        client2.update(lead_id, UpdateLeadInput(city="Hijacked"))
    with pytest.raises(NotFoundError):
        client2.delete(lead_id)
    assert ids_with_source(client2.iterate(), source) == []
    assert lead_id not in {l.id for l in client2.iterate()}

    lead = client.get(lead_id)
    assert lead.id == lead_id
    assert lead.city == "Berlin", "account 2's update must not touch account 1's lead"
    assert lead.name == f"sdkpy tenant {s}"
    assert ids_with_source(client.iterate(), source) == [lead_id]


def test_tenant_isolation_reverse_direction(create_lead, client: Klozeo, client2: Klozeo):
    source = f"sdkpy-tenant2-{uid()}"
    lead_id = create_lead(owner=client2, source=source)
    assert client2.get(lead_id).source == source
    with pytest.raises(NotFoundError):
        client.get(lead_id)
    assert ids_with_source(client.iterate(), source) == []


# ---------------------------------------------------------------------------
# async client (same wire behaviour, separate code path in the SDK)
# ---------------------------------------------------------------------------


def test_async_client_crud_and_iterate(base_url: str, api_key: str, client_kwargs: dict,
                                       client: Klozeo, cleanup):
    s = uid()
    source = f"sdkpy-async-{s}"

    async def scenario() -> str:
        async with AsyncKlozeo(api_key=api_key, base_url=base_url, **client_kwargs) as ac:
            resp = await ac.create(Lead(name=f"sdkpy async {s}", source=source,
                                        email=f"sdkpy-{s}@example.com", tags=["async"]))
            cleanup.append((client, resp.id))
            assert resp.id.startswith("cl_")
            assert_unix_seconds(resp.created_at, "created_at")

            got = await ac.get(resp.id)
            assert got.name == f"sdkpy async {s}" and got.tags == ["async"]

            upd = await ac.update(resp.id, UpdateLeadInput(city="Paris"))
            assert upd.city == "Paris" and upd.source == source

            page = await ac.list(limit=1)
            assert_page_invariants(page, limit=1)

            found = [l.id async for l in ac.iterate(sort_by=SortField.CREATED_AT,
                                                     sort_order=SortOrder.DESC)
                     if l.source == source]
            assert found == [resp.id]

            await ac.delete(resp.id)
            with pytest.raises(NotFoundError):
                await ac.get(resp.id)
            return resp.id

    asyncio.run(scenario())


# ---------------------------------------------------------------------------
# wire-level check the SDK cannot see
# ---------------------------------------------------------------------------


def test_wire_timestamps_are_json_integers(base_url: str, api_key: str, create_lead):
    """pydantic silently turns 1703520000.0 into an int, but the Rust and Go SDKs
    reject float timestamps (wire-contract §2.5). Check the raw JSON."""
    lead_id = create_lead(source=f"sdkpy-wire-{uid()}")
    headers = {"X-API-Key": api_key}
    with httpx.Client(base_url=base_url + "/", headers=headers, timeout=15) as h:
        r = h.get(f"leads/{lead_id}")
        assert r.status_code == 200, r.text
        body = r.json()
        for key in ("created_at", "updated_at", "last_interaction_at"):
            assert type(body[key]) is int, f"{key} is {body[key]!r} on the wire"
        assert isinstance(body["score"], (int, float)) and body["score"] is not None
        assert body["tags"] == []
        assert body["attributes"] == []

        r = h.get("leads", params={"limit": "1"})
        assert r.status_code == 200, r.text
        page = r.json()
        assert {"leads", "next_cursor", "has_more", "count"} <= page.keys()
        assert type(page["count"]) is int and type(page["has_more"]) is bool
        for lead in page["leads"]:
            assert type(lead["created_at"]) is int

        r = h.get("leads/" + MISSING_LEAD_ID)
        assert r.status_code == 404
        err = r.json()
        assert err.get("error") == "not_found" and err.get("code") == "not_found"
        assert isinstance(err.get("message"), str) and err["message"]
