"""Filters, sorting, batch calls, deduplication and 429 handling through the official
Python SDK ``klozeo==0.1.4``.

Real SDK surface used here (see ``site-packages/klozeo``):

* filter builders ``name() city() country() state() category() source() email() phone()
  website()`` → ``eq neq contains not_contains is_empty is_not_empty``;
  ``rating() review_count()`` → ``eq neq gt gte lt lte`` (values written with ``str()``,
  so ``4.0`` and ``1e-07`` reach the server as written);
  ``tags()`` → ``contains not_contains is_empty is_not_empty`` (``array_*`` on the wire);
  ``location()`` → ``within_radius is_set is_not_set``;
  ``attr(name)`` → ``eq neq contains eq_number gt gte lt lte``;
  ``or_()`` → the same builders with ``or.`` logic; ``attr_sort_field(name)``;
* ``batch_create(list[Lead])`` → ``BatchCreateResult`` (``created[].duplicate`` is NOT in the
  SDK model, so the wire is checked with httpx), ``batch_update(ids, UpdateLeadInput)`` and
  ``batch_delete(ids)`` → ``BatchResult``;
* 429: ``RateLimitedError.retry_after`` (float seconds from ``Retry-After``); the client
  retries 429 ``max_retries`` times (default 3), sleeping ``Retry-After`` seconds;
  ``rate_limit_state()`` returns the raw header strings.

Every filter test builds its own small dataset under a unique ``source`` and always adds
``source().eq(<that source>)`` (or ``source().contains(<uid>)`` for the source-field tests),
so data of other tests can never change the result. Semantics pinned for missing values
(lead without the field / attribute): it matches ``neq``, ``not_contains``,
``array_not_contains``, ``is_empty``, ``is_not_set`` and nothing else.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterable

import httpx
import klozeo
import pytest
from klozeo import (
    BadRequestError,
    Filter,
    Klozeo,
    KlozeoError,
    Lead,
    NotFoundError,
    RateLimitedError,
    SortField,
    SortOrder,
    UpdateLeadInput,
    attr_sort_field,
    number_attr,
    or_,
    source,
    text_attr,
)

from conftest import BURST_LIMIT, BURST_WINDOW_SECS

MISSING_LEAD_ID = "cl_00000000-0000-0000-0000-000000000000"
MAX_PAGES = 1_000

# A value with dots, a comma, spaces and '&': the server must split the filter on the
# first three dots only and decode the form-encoded query (',' '&' ' ').
ST_LOUIS = "St. Louis, MO & co"


def uid() -> str:
    return uuid.uuid4().hex


def rand_digits(n: int) -> str:
    return "".join(random.choice("0123456789") for _ in range(n))


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def iterate_names(client: Klozeo, *filters: Filter, **kw) -> list[str]:
    return [lead.name for lead in client.iterate(*filters, **kw)]


def paged_names(client: Klozeo, *filters: Filter, limit: int = 2, **kw) -> list[str]:
    """Walks every page with ``list(limit=...)`` and the cursor, checking page invariants."""
    out: list[str] = []
    cursor = None
    for _ in range(MAX_PAGES):
        page = client.list(*filters, limit=limit, cursor=cursor, **kw)
        assert page.count == len(page.leads)
        assert len(page.leads) <= limit
        assert page.has_more == bool(page.next_cursor), page
        out.extend(lead.name for lead in page.leads)
        if not page.has_more:
            return out
        cursor = page.next_cursor
    raise AssertionError("paging did not end")


def check_cases(client: Klozeo, scope: Filter,
                cases: Iterable[tuple[str, Filter | tuple[Filter, ...], set[str]]]) -> None:
    """Runs every (label, filter(s), expected names) case through ``iterate`` and through
    ``list`` pages of 2, and reports every mismatch at once."""
    problems: list[str] = []
    n = 0
    for label, flt, expected in cases:
        n += 1
        filters = flt if isinstance(flt, tuple) else (flt,)
        wire = [f.to_param() for f in filters]
        try:
            got = iterate_names(client, scope, *filters)
            paged = paged_names(client, scope, *filters)
        except KlozeoError as e:
            problems.append(f"{label} {wire}: {type(e).__name__} {e.status_code} {e.message!r}")
            continue
        if len(got) != len(set(got)):
            problems.append(f"{label} {wire}: a lead came back twice: {got}")
        if set(got) != expected:
            problems.append(f"{label} {wire}: expected {sorted(expected)}, got {sorted(got)}")
        if sorted(paged) != sorted(got):
            problems.append(f"{label} {wire}: pages of 2 gave {sorted(paged)}, "
                            f"iterate gave {sorted(got)}")
    assert n > 0
    assert not problems, f"{len(problems)} of {n} filter cases failed:\n" + "\n".join(problems)


ALL = {"Alpha Bakery", "Bravo Labs", "Charlie Café", "Delta", "Echo"}
A, B, C, D, E = "Alpha Bakery", "Bravo Labs", "Charlie Café", "Delta", "Echo"


def everyone_but(*names: str) -> set[str]:
    return ALL - set(names)


class Dataset:
    """Five leads under one unique source; see ``dataset`` for the values."""

    def __init__(self, src: str, u: str, ids: dict[str, str], phones: dict[str, str],
                 emails: dict[str, str]) -> None:
        self.source = src
        self.uid = u
        self.ids = ids
        self.phones = phones
        self.emails = emails

    @property
    def scope(self) -> Filter:
        return source().eq(self.source)


@pytest.fixture
def dataset(client: Klozeo, cleanup) -> Dataset:
    u = uid()
    src = f"sdkpy-flt-{u}"
    phones = {
        A: f"+1 314-555-{rand_digits(7)}",
        B: f"+49 30 {rand_digits(8)}",
        D: f"+44 20 {rand_digits(8)}",
    }
    emails = {
        A: f"alpha.{u}@example.com",
        B: f"bravo.{u}@example.com",
        D: f"delta.{u}@mail.example.org",
    }
    rows = [
        Lead(name=A, source=src, city=ST_LOUIS, country="US", state="MO",
             category="Food & Drink", email=emails[A], phone=phones[A],
             website="https://alpha.example.com", rating=4.0, review_count=120,
             tags=["vip", "b2b"], latitude=52.52, longitude=13.405,
             attributes=[text_attr("industry", "Software"), number_attr("employees", 500),
                         number_attr("ratio", 0.5), text_attr("tier", "gold.plus")]),
        Lead(name=B, source=src, city="Berlin", country="DE", state="Berlin",
             category="Software", email=emails[B], phone=phones[B], website="",
             rating=4.5, review_count=10, tags=["b2b"],
             latitude=52.3906, longitude=13.0645,  # Potsdam, ~26 km from Berlin
             attributes=[text_attr("industry", "Hardware"), number_attr("employees", 50),
                         number_attr("ratio", 1e-07)]),
        Lead(name=C, source=src, city="Paris", country="FR", rating=1e-07, review_count=0,
             attributes=[text_attr("industry", "Software Services"),
                         number_attr("employees", 4), number_attr("ratio", 0)]),
        Lead(name=D, source=src, city=ST_LOUIS.lower(), country="us", state="Missouri",
             category="Retail", email=emails[D], phone=phones[D],
             website="https://delta.example.org/path?x=1&y=2", tags=["vip", "partner"],
             latitude=53.5511, longitude=9.9937),  # Hamburg, ~255 km from Berlin
        Lead(name=E, source=src, rating=3.0, review_count=4, tags=["churned"],
             attributes=[text_attr("tier", "silver")]),
    ]
    ids: dict[str, str] = {}
    for lead in rows:
        resp = client.create(lead)
        cleanup.append((client, resp.id))
        assert not resp.duplicate, f"{lead.name} was merged into {resp.id}"
        ids[lead.name] = resp.id
    return Dataset(src, u, ids, phones, emails)


# ---------------------------------------------------------------------------
# text fields
# ---------------------------------------------------------------------------


def test_text_field_filters(client: Klozeo, dataset: Dataset):
    ds = dataset
    k = klozeo
    cases = [
        # name
        ("name eq (case-insensitive, non-ASCII)", k.name().eq("charlie café"), {C}),
        ("name neq", k.name().neq("Delta"), everyone_but(D)),
        ("name contains", k.name().contains("a"), {A, B, C, D}),
        ("name not_contains", k.name().not_contains("LAB"), everyone_but(B)),
        ("name is_empty", k.name().is_empty(), set()),
        ("name is_not_empty", k.name().is_not_empty(), ALL),
        # city: dots, comma, spaces and '&' in the value
        ("city eq with . , & and spaces", k.city().eq(ST_LOUIS), {A, D}),
        ("city eq upper-case", k.city().eq(ST_LOUIS.upper()), {A, D}),
        ("city neq", k.city().neq(ST_LOUIS), {B, C, E}),
        ("city contains '. louis, mo &'", k.city().contains(". Louis, MO &"), {A, D}),
        ("city not_contains", k.city().not_contains("louis"), {B, C, E}),
        ("city is_empty", k.city().is_empty(), {E}),
        ("city is_not_empty", k.city().is_not_empty(), {A, B, C, D}),
        # country
        ("country eq", k.country().eq("US"), {A, D}),
        ("country neq", k.country().neq("us"), {B, C, E}),
        ("country contains", k.country().contains("e"), {B}),
        ("country not_contains", k.country().not_contains("u"), {B, C, E}),
        ("country is_empty", k.country().is_empty(), {E}),
        ("country is_not_empty", k.country().is_not_empty(), {A, B, C, D}),
        # state
        ("state eq", k.state().eq("berlin"), {B}),
        ("state neq", k.state().neq("MO"), {B, C, D, E}),
        ("state contains", k.state().contains("mo"), {A}),
        ("state not_contains", k.state().not_contains("i"), {A, C, E}),
        ("state is_empty", k.state().is_empty(), {C, E}),
        ("state is_not_empty", k.state().is_not_empty(), {A, B, D}),
        # category
        ("category eq with &", k.category().eq("food & drink"), {A}),
        ("category neq", k.category().neq("Software"), {A, C, D, E}),
        ("category contains '& dr'", k.category().contains("& Dr"), {A}),
        ("category not_contains", k.category().not_contains("o"), {C, D, E}),
        ("category is_empty", k.category().is_empty(), {C, E}),
        ("category is_not_empty", k.category().is_not_empty(), {A, B, D}),
        # email
        ("email eq (case-insensitive)", k.email().eq(ds.emails[A].upper()), {A}),
        ("email neq", k.email().neq(ds.emails[B]), {A, C, D, E}),
        ("email contains", k.email().contains("@example.com"), {A, B}),
        ("email not_contains", k.email().not_contains("@example.com"), {C, D, E}),
        ("email is_empty", k.email().is_empty(), {C, E}),
        ("email is_not_empty", k.email().is_not_empty(), {A, B, D}),
        # phone: '+' must travel as %2B, not as a space
        ("phone eq with + and spaces", k.phone().eq(ds.phones[B]), {B}),
        ("phone neq", k.phone().neq(ds.phones[A]), {B, C, D, E}),
        ("phone contains '+49 30'", k.phone().contains("+49 30"), {B}),
        ("phone not_contains", k.phone().not_contains("+4"), {A, C, E}),
        ("phone is_empty", k.phone().is_empty(), {C, E}),
        ("phone is_not_empty", k.phone().is_not_empty(), {A, B, D}),
        # website: B was sent as "" (empty = not set)
        ("website eq with ?, & and =", k.website().eq("https://delta.example.org/path?x=1&y=2"),
         {D}),
        ("website neq", k.website().neq("https://alpha.example.com"), {B, C, D, E}),
        ("website contains", k.website().contains(".org/path?x=1&y"), {D}),
        ("website not_contains", k.website().not_contains("alpha"), {B, C, D, E}),
        ("website is_empty", k.website().is_empty(), {B, C, E}),
        ("website is_not_empty", k.website().is_not_empty(), {A, D}),
    ]
    check_cases(client, ds.scope, cases)


def test_source_field_filters(client: Klozeo, cleanup):
    u = uid()
    web = f"sdkpy-src-{u} Web.Site & co"
    api = f"sdkpy-src-{u} api"
    for name, src in [("S1", web), ("S2", web), ("S3", api)]:
        resp = client.create(Lead(name=name, source=src))
        cleanup.append((client, resp.id))
    scope = source().contains(f"sdkpy-src-{u}")
    cases = [
        ("source eq with dots/&", source().eq(web.upper()), {"S1", "S2"}),
        ("source neq", source().neq(web), {"S3"}),
        ("source contains", source().contains(" API"), {"S3"}),
        ("source not_contains", source().not_contains("web.site"), {"S3"}),
        ("source is_empty", source().is_empty(), set()),
        ("source is_not_empty", source().is_not_empty(), {"S1", "S2", "S3"}),
        ("or source eq", or_().source().eq(api), {"S3"}),
        ("or source eq + or source eq", (or_().source().eq(api), or_().source().eq(web)),
         {"S1", "S2", "S3"}),
    ]
    check_cases(client, scope, cases)


# ---------------------------------------------------------------------------
# numbers
# ---------------------------------------------------------------------------


def test_number_field_filters(client: Klozeo, dataset: Dataset):
    k = klozeo
    cases = [
        # rating: A 4.0, B 4.5, C 1e-07, D none, E 3.0
        ("rating eq 4.0 (sent as '4.0')", k.rating().eq(4.0), {A}),
        ("rating eq 4 (sent as '4')", k.rating().eq(4), {A}),
        ("rating neq 4.0", k.rating().neq(4.0), {B, C, D, E}),
        ("rating gt 4.0", k.rating().gt(4.0), {B}),
        ("rating gte 4.0", k.rating().gte(4.0), {A, B}),
        ("rating lt 4.0", k.rating().lt(4.0), {C, E}),
        ("rating lte 4.0", k.rating().lte(4.0), {A, C, E}),
        ("rating eq 1e-07 (sent as '1e-07')", k.rating().eq(1e-07), {C}),
        ("rating gt 1e-07", k.rating().gt(1e-07), {A, B, E}),
        ("rating gte 1e-07", k.rating().gte(1e-07), {A, B, C, E}),
        ("rating lt 1e-07", k.rating().lt(1e-07), set()),
        ("rating lte 1e-07", k.rating().lte(1e-07), {C}),
        ("rating range gt 1e-07 and lt 4.5", (k.rating().gt(1e-07), k.rating().lt(4.5)), {A, E}),
        # review_count: A 120, B 10, C 0, D none, E 4
        ("review_count eq 0", k.review_count().eq(0), {C}),
        ("review_count neq 10", k.review_count().neq(10), {A, C, D, E}),
        ("review_count gt 0", k.review_count().gt(0), {A, B, E}),
        ("review_count gte 10", k.review_count().gte(10), {A, B}),
        ("review_count lt 10", k.review_count().lt(10), {C, E}),
        ("review_count lte 10.0", k.review_count().lte(10.0), {B, C, E}),
        ("review_count gt 1e-07", k.review_count().gt(1e-07), {A, B, E}),
    ]
    check_cases(client, dataset.scope, cases)


# ---------------------------------------------------------------------------
# tags and location
# ---------------------------------------------------------------------------


def test_tags_and_location_filters(client: Klozeo, dataset: Dataset):
    k = klozeo
    cases = [
        # tags: A [vip, b2b], B [b2b], C [], D [vip, partner], E [churned]
        ("tags contains", k.tags().contains("vip"), {A, D}),
        ("tags contains b2b", k.tags().contains("b2b"), {A, B}),
        ("tags not_contains", k.tags().not_contains("vip"), {B, C, E}),
        ("tags is_empty", k.tags().is_empty(), {C}),
        ("tags is_not_empty", k.tags().is_not_empty(), {A, B, D, E}),
        ("tags contains vip and b2b", (k.tags().contains("vip"), k.tags().contains("b2b")), {A}),
        # location: A Berlin, B Potsdam (~26 km), D Hamburg (~255 km), C/E none
        ("within_radius 50 (int → '50')", k.location().within_radius(52.52, 13.405, 50), {A, B}),
        ("within_radius 50.0 (float → '50.0')", k.location().within_radius(52.52, 13.405, 50.0),
         {A, B}),
        ("within_radius 10", k.location().within_radius(52.52, 13.405, 10), {A}),
        ("within_radius 300", k.location().within_radius(52.52, 13.405, 300), {A, B, D}),
        ("within_radius 1e-07 km", k.location().within_radius(52.52, 13.405, 1e-07), {A}),
        ("within_radius around Hamburg", k.location().within_radius(53.55, 10.0, 5), {D}),
        ("location is_set", k.location().is_set(), {A, B, D}),
        ("location is_not_set", k.location().is_not_set(), {C, E}),
    ]
    check_cases(client, dataset.scope, cases)


# ---------------------------------------------------------------------------
# custom attributes
# ---------------------------------------------------------------------------


def test_attribute_filters(client: Klozeo, dataset: Dataset):
    k = klozeo
    cases = [
        # industry (text): A Software, B Hardware, C Software Services, D/E none
        ("attr text eq (case-insensitive)", k.attr("industry").eq("software"), {A}),
        ("attr text neq", k.attr("industry").neq("Software"), {B, C, D, E}),
        ("attr text contains", k.attr("industry").contains("SOFT"), {A, C}),
        # tier (text) with a dot in the value: A gold.plus, E silver
        ("attr text eq with a dot", k.attr("tier").eq("gold.plus"), {A}),
        ("attr text contains a dot", k.attr("tier").contains("d.p"), {A}),
        ("attr text neq with a dot", k.attr("tier").neq("gold.plus"), {B, C, D, E}),
        # employees (number): A 500, B 50, C 4, D/E none
        ("attr eq_number 500 (sent as '500')", k.attr("employees").eq_number(500), {A}),
        ("attr eq_number 500.0 (sent as '500.0')", k.attr("employees").eq_number(500.0), {A}),
        ("attr text eq on a number attribute", k.attr("employees").eq("500"), {A}),
        ("attr gt", k.attr("employees").gt(50), {A}),
        ("attr gte", k.attr("employees").gte(50), {A, B}),
        ("attr lt", k.attr("employees").lt(50), {C}),
        ("attr lte 50.0", k.attr("employees").lte(50.0), {B, C}),
        ("attr gt 4.0", k.attr("employees").gt(4.0), {A, B}),
        # ratio (number): A 0.5, B 1e-07, C 0
        ("attr gt 1e-07", k.attr("ratio").gt(1e-07), {A}),
        ("attr gte 1e-07", k.attr("ratio").gte(1e-07), {A, B}),
        ("attr lt 1e-07", k.attr("ratio").lt(1e-07), {C}),
        ("attr lte 1e-07", k.attr("ratio").lte(1e-07), {B, C}),
        ("attr eq_number 1e-07", k.attr("ratio").eq_number(1e-07), {B}),
        ("attr eq_number 0", k.attr("ratio").eq_number(0), {C}),
        ("attr on a name nobody has", k.attr("nope").eq("x"), set()),
    ]
    check_cases(client, dataset.scope, cases)


# ---------------------------------------------------------------------------
# or_() variants
# ---------------------------------------------------------------------------

# (label, builder taking the root (klozeo module for AND, or_() for OR), expected)
OR_CASES: list[tuple[str, Callable, set[str]]] = [
    ("name eq", lambda r: r.name().eq("Echo"), {E}),
    ("name contains", lambda r: r.name().contains("labs"), {B}),
    ("city eq", lambda r: r.city().eq("Paris"), {C}),
    ("city eq St. Louis", lambda r: r.city().eq(ST_LOUIS), {A, D}),
    ("city is_empty", lambda r: r.city().is_empty(), {E}),
    ("country neq", lambda r: r.country().neq("US"), {B, C, E}),
    ("state is_not_empty", lambda r: r.state().is_not_empty(), {A, B, D}),
    ("category not_contains", lambda r: r.category().not_contains("o"), {C, D, E}),
    ("email is_not_empty", lambda r: r.email().is_not_empty(), {A, B, D}),
    ("phone contains", lambda r: r.phone().contains("+44 20"), {D}),
    ("website is_empty", lambda r: r.website().is_empty(), {B, C, E}),
    ("rating gte 4.0", lambda r: r.rating().gte(4.0), {A, B}),
    ("rating lt 1e-07", lambda r: r.rating().lt(1e-07), set()),
    ("rating eq 1e-07", lambda r: r.rating().eq(1e-07), {C}),
    ("review_count lte 4", lambda r: r.review_count().lte(4), {C, E}),
    ("review_count neq 120", lambda r: r.review_count().neq(120), {B, C, D, E}),
    ("tags contains", lambda r: r.tags().contains("churned"), {E}),
    ("tags not_contains", lambda r: r.tags().not_contains("b2b"), {C, D, E}),
    ("tags is_empty", lambda r: r.tags().is_empty(), {C}),
    ("tags is_not_empty", lambda r: r.tags().is_not_empty(), {A, B, D, E}),
    ("location within_radius", lambda r: r.location().within_radius(52.52, 13.405, 50), {A, B}),
    ("location is_set", lambda r: r.location().is_set(), {A, B, D}),
    ("location is_not_set", lambda r: r.location().is_not_set(), {C, E}),
    ("attr eq", lambda r: r.attr("industry").eq("Hardware"), {B}),
    ("attr neq", lambda r: r.attr("tier").neq("silver"), {A, B, C, D}),
    ("attr contains", lambda r: r.attr("industry").contains("services"), {C}),
    ("attr eq_number", lambda r: r.attr("employees").eq_number(4), {C}),
    ("attr gt", lambda r: r.attr("employees").gt(4.0), {A, B}),
    ("attr gte", lambda r: r.attr("ratio").gte(0.5), {A}),
    ("attr lt", lambda r: r.attr("employees").lt(500), {B, C}),
    ("attr lte", lambda r: r.attr("ratio").lte(0), {C}),
]


def test_or_variants(client: Klozeo, dataset: Dataset):
    cases = []
    for i, (label, build, expected) in enumerate(OR_CASES):
        and_f = build(klozeo)
        or_f = build(or_())
        assert and_f.to_param().startswith("and."), and_f
        assert or_f.to_param().startswith("or."), or_f
        cases.append((f"AND {label}", and_f, expected))
        # A single or-filter must match exactly like its and-twin.
        cases.append((f"OR {label}", or_f, expected))
        # Two or-filters: the union.
        label2, build2, expected2 = OR_CASES[(i + 7) % len(OR_CASES)]
        cases.append((f"OR {label} | OR {label2}", (or_f, build2(or_())), expected | expected2))
    # and + or: every and-filter must hold and at least one or-filter.
    k = klozeo
    cases += [
        ("rating gte 3 AND (city Paris OR tags vip)",
         (k.rating().gte(3), or_().city().eq("Paris"), or_().tags().contains("vip")), {A}),
        ("rating gt 0 AND (tags churned OR attr employees eq 4)",
         (k.rating().gt(0), or_().tags().contains("churned"),
          or_().attr("employees").eq_number(4)), {C, E}),
        ("OR that matches nothing excludes everything",
         (k.name().is_not_empty(), or_().name().eq("nobody")), set()),
    ]
    check_cases(client, dataset.scope, cases)


# ---------------------------------------------------------------------------
# sorting together with filters
# ---------------------------------------------------------------------------


def test_sort_with_filters(client: Klozeo, dataset: Dataset):
    scope = dataset.scope
    problems = []

    def expect(label: str, got: list[str], want: list[str]) -> None:
        if got != want:
            problems.append(f"{label}: expected {want}, got {got}")

    for pages in (False, True):
        how = "pages of 2" if pages else "iterate"
        run = (lambda *f, **kw: paged_names(client, *f, **kw)) if pages else \
            (lambda *f, **kw: iterate_names(client, *f, **kw))
        # rating DESC; the lead without a rating comes last.
        expect(f"rating DESC ({how})",
               run(scope, sort_by=SortField.RATING, sort_order=SortOrder.DESC), [B, A, E, C, D])
        expect(f"rating ASC ({how})",
               run(scope, sort_by=SortField.RATING, sort_order=SortOrder.ASC), [C, E, A, B, D])
        # rating DESC with a rating range (the server can read this from a rating index).
        expect(f"rating DESC + rating gte 1e-07 ({how})",
               run(scope, klozeo.rating().gte(1e-07), sort_by=SortField.RATING,
                   sort_order=SortOrder.DESC), [B, A, E, C])
        expect(f"rating DESC + rating eq 4.0 ({how})",
               run(scope, klozeo.rating().eq(4.0), sort_by=SortField.RATING,
                   sort_order=SortOrder.DESC), [A])
        # name ASC / DESC with a filter.
        expect(f"name ASC ({how})",
               run(scope, sort_by=SortField.NAME, sort_order=SortOrder.ASC), [A, B, C, D, E])
        expect(f"name DESC + tags not empty ({how})",
               run(scope, klozeo.tags().is_not_empty(), sort_by=SortField.NAME,
                   sort_order=SortOrder.DESC), [E, D, B, A])
        expect(f"name ASC + city St. Louis ({how})",
               run(scope, klozeo.city().eq(ST_LOUIS), sort_by=SortField.NAME,
                   sort_order=SortOrder.ASC), [A, D])
        # review_count DESC.
        expect(f"review_count DESC ({how})",
               run(scope, sort_by=SortField.REVIEW_COUNT, sort_order=SortOrder.DESC),
               [A, B, E, C, D])
        # attribute sort: employees A 500, B 50, C 4; D and E have none (they come last).
        got = run(scope, sort_by=attr_sort_field("employees"), sort_order=SortOrder.ASC)
        expect(f"attr:employees ASC ({how}) first three", got[:3], [C, B, A])
        expect(f"attr:employees ASC ({how}) missing last", sorted(got[3:]), [D, E])
        got = run(scope, sort_by=attr_sort_field("employees"), sort_order=SortOrder.DESC)
        expect(f"attr:employees DESC ({how}) first three", got[:3], [A, B, C])
        expect(f"attr:employees DESC ({how}) missing last", sorted(got[3:]), [D, E])
        expect(f"attr:employees DESC + attr gt 4.0 ({how})",
               run(scope, klozeo.attr("employees").gt(4.0),
                   sort_by=attr_sort_field("employees"), sort_order=SortOrder.DESC), [A, B])
        # lower-case sort order string (the SDK passes raw strings through).
        expect(f"rating 'desc' lower-case ({how})",
               run(scope, klozeo.rating().gt(1), sort_by="rating", sort_order="desc"), [B, A, E])
    assert not problems, "\n".join(problems)


def test_invalid_filter_is_bad_request(client: Klozeo):
    with pytest.raises(BadRequestError) as ei:
        client.list(klozeo.rating().gte("four"))  # not a number
    assert ei.value.status_code == 400
    with pytest.raises(BadRequestError):
        client.list(klozeo.location().within_radius(52.52, 13.405, "x"))


# ---------------------------------------------------------------------------
# batch create / update / delete
# ---------------------------------------------------------------------------


def _source_leads(client: Klozeo, src: str) -> dict[str, Lead]:
    return {lead.id: lead for lead in client.iterate(source().eq(src))}


def test_batch_create_mixed_valid_and_invalid(client: Klozeo, cleanup):
    u = uid()
    src = f"sdkpy-batch-{u}"
    email0 = f"batch0.{u}@example.com"
    leads = [
        Lead(name="Batch Zero", source=src, email=email0, city="Lyon", rating=4.0),
        Lead(name="", source=src, email=f"batch1.{u}@example.com"),          # name required
        Lead(name="Batch Two", source=src, tags=["t1", "t2"], review_count=3,
             attributes=[text_attr("industry", "Retail")]),
        Lead(name="Batch Three", source=src, status="bogus"),                # invalid status
        Lead(name="Batch Zero Again", source=src, email=email0.upper(),      # dup of index 0
             city="Marseille"),
        Lead(name="Batch Five", source=src, latitude=200.0, longitude=0.0),  # invalid latitude
    ]
    result = client.batch_create(leads)
    for item in result.created:
        cleanup.append((client, item.id))

    created = {c.index: c for c in result.created}
    errors = {e.index: e for e in result.errors}
    assert sorted(created) == [0, 2, 4], result
    assert sorted(errors) == [1, 3, 5], result
    assert (result.total, result.success, result.failed) == (6, 3, 3), result
    for e in result.errors:
        assert isinstance(e.message, str) and e.message, e
    for c in result.created:
        assert c.id.startswith("cl_")
        assert type(c.created_at) is int and abs(c.created_at - time.time()) < 86_400
    # The in-batch duplicate (same e-mail, other case) was merged into index 0.
    assert created[4].id == created[0].id
    assert created[2].id != created[0].id

    stored = _source_leads(client, src)
    assert set(stored) == {created[0].id, created[2].id}, "rejected items must not be stored"
    zero = client.get(created[0].id)
    assert zero.email.lower() == email0, "one lead for both spellings of the e-mail"
    assert zero.city == "Marseille", "a merge applies the newer non-empty values"
    assert zero.rating == 4.0, "a merge keeps values the newer item does not send"
    two = client.get(created[2].id)
    assert two.name == "Batch Two" and two.tags == ["t1", "t2"] and two.review_count == 3
    assert [(a.name, a.value) for a in two.attributes] == [("industry", "Retail")]


def test_batch_create_all_valid_and_wire_duplicate_flag(client: Klozeo, cleanup, base_url: str,
                                                         api_key: str):
    u = uid()
    src = f"sdkpy-batchok-{u}"
    result = client.batch_create([Lead(name=f"Ok {i}", source=src,
                                       email=f"ok{i}.{u}@example.com") for i in range(3)])
    for item in result.created:
        cleanup.append((client, item.id))
    assert [c.index for c in result.created] == [0, 1, 2]
    assert result.errors == [] and (result.total, result.success, result.failed) == (3, 3, 0)
    assert len({c.id for c in result.created}) == 3

    # The SDK model drops created[].duplicate; check the wire: 207 + duplicate:true.
    body = {"leads": [
        {"name": "Ok 0", "source": src, "email": f"ok0.{u}@example.com"},
        {"name": "New one", "source": src, "email": f"new.{u}@example.com"},
        {"name": "New one again", "source": src, "email": f"new.{u}@example.com"},
        {"source": src},
    ]}
    with httpx.Client(timeout=15) as h:
        r = h.post(f"{base_url}/leads/batch", json=body, headers={"X-API-Key": api_key})
    assert r.status_code == 207, r.text
    data = r.json()
    by_index = {c["index"]: c for c in data["created"]}
    for c in data["created"]:
        cleanup.append((client, c["id"]))
    assert sorted(by_index) == [0, 1, 2], data
    assert by_index[0]["id"] == result.created[0].id and by_index[0].get("duplicate") is True
    assert not by_index[1].get("duplicate")
    assert by_index[2]["id"] == by_index[1]["id"] and by_index[2].get("duplicate") is True
    assert [e["index"] for e in data["errors"]] == [3]
    assert (data["total"], data["success"], data["failed"]) == (4, 3, 1)
    assert len(_source_leads(client, src)) == 4


def test_batch_update(client: Klozeo, create_lead):
    src = f"sdkpy-bupd-{uid()}"
    a = create_lead(source=src, name="Upd A", city="Berlin", status="new", rating=2.0)
    b = create_lead(source=src, name="Upd B", city="Paris", tags=["old"])
    c = create_lead(source=src, name="Upd C", city="Rome")

    result = client.batch_update(
        [a, MISSING_LEAD_ID, b],
        UpdateLeadInput(city="Lyon", status="contacted", tags=["batch", "vip"], rating=4.5))
    assert [r.index for r in result.results] == [0, 1, 2]
    assert [r.id for r in result.results] == [a, MISSING_LEAD_ID, b]
    assert [r.success for r in result.results] == [True, False, True]
    assert isinstance(result.results[1].message, str) and result.results[1].message
    assert (result.total, result.success, result.failed) == (3, 2, 1)

    for lead_id, name in ((a, "Upd A"), (b, "Upd B")):
        lead = client.get(lead_id)
        assert lead.name == name, "fields not in the update are kept"
        assert (lead.city, lead.status, lead.tags, lead.rating) == (
            "Lyon", "contacted", ["batch", "vip"], 4.5)
    untouched = client.get(c)
    assert (untouched.city, untouched.status, untouched.tags) == ("Rome", "new", [])
    # The filter index follows the update.
    assert sorted(iterate_names(client, source().eq(src), klozeo.city().eq("Lyon"))) == [
        "Upd A", "Upd B"]


def test_batch_update_invalid_data_is_bad_request(client: Klozeo, create_lead):
    a = create_lead(status="qualified")
    with pytest.raises(BadRequestError):
        client.batch_update([a], UpdateLeadInput(status="bogus"))
    assert client.get(a).status == "qualified"


def test_batch_delete(client: Klozeo, create_lead):
    src = f"sdkpy-bdel-{uid()}"
    a = create_lead(source=src, name="Del A")
    b = create_lead(source=src, name="Del B")
    c = create_lead(source=src, name="Del C")

    result = client.batch_delete([a, MISSING_LEAD_ID, b])
    assert [r.index for r in result.results] == [0, 1, 2]
    assert [r.id for r in result.results] == [a, MISSING_LEAD_ID, b]
    assert [r.success for r in result.results] == [True, False, True]
    assert (result.total, result.success, result.failed) == (3, 2, 1)
    for gone in (a, b):
        with pytest.raises(NotFoundError):
            client.get(gone)
    assert client.get(c).name == "Del C"
    assert iterate_names(client, source().eq(src)) == ["Del C"]

    again = client.batch_delete([a])
    assert [r.success for r in again.results] == [False]
    assert (again.total, again.success, again.failed) == (1, 0, 1)


# ---------------------------------------------------------------------------
# deduplication through create
# ---------------------------------------------------------------------------


def test_create_same_email_twice_is_a_duplicate(client: Klozeo, cleanup):
    u = uid()
    src = f"sdkpy-dup-{u}"
    email = f"dup.{u}@example.com"
    first = client.create(Lead(name="Dup Co", source=src, email=email, city="Berlin"))
    cleanup.append((client, first.id))
    assert not first.duplicate

    second = client.create(Lead(name="Dup Company", source=src, email=f"  {email.upper()} ",
                                phone="+49 30 1234567"))
    assert second.duplicate is True
    assert second.id == first.id
    assert second.created_at == first.created_at
    lead = client.get(first.id)
    assert lead.phone == "+49 30 1234567" and lead.city == "Berlin"
    assert [l.id for l in client.iterate(source().eq(src))] == [first.id]


def test_create_dedup_other_tiers(client: Klozeo, cleanup):
    u = uid()
    src = f"sdkpy-dup2-{u}"
    phone = f"+33 1 {rand_digits(8)}"

    def create(**fields):
        resp = client.create(Lead(source=src, **fields))
        cleanup.append((client, resp.id))
        return resp

    # Tier 2: source_id.
    s1 = create(name="Sid One", source_id=f"ext-{u}")
    s2 = create(name="Totally different", source_id=f"ext-{u}")
    assert s2.duplicate is True and s2.id == s1.id
    # Tier 3: same phone and a similar name.
    p1 = create(name="Acme Corp", phone=phone)
    p2 = create(name="ACME Corp.", phone=phone.replace(" ", ""))
    assert p2.duplicate is True and p2.id == p1.id
    p3 = create(name="Zenith Labs", phone=phone)
    assert not p3.duplicate and p3.id != p1.id, "same phone, different name: a new lead"
    # Tier 4: same name and city → a new lead with a hint.
    n1 = create(name=f"Hint Co {u}", city="Lyon")
    n2 = create(name=f"hint co {u}", city="LYON")
    assert not n2.duplicate and n2.id != n1.id
    assert n2.potential_duplicate_id == n1.id
    assert len(list(client.iterate(source().eq(src)))) == 5


# ---------------------------------------------------------------------------
# rate limits (429 + Retry-After)
# ---------------------------------------------------------------------------


def _assert_int_header(state: dict, header: str) -> int:
    raw = state.get(header)
    assert raw is not None, f"{header} missing from rate_limit_state() {state}"
    assert raw.strip().isdigit(), f"{header}={raw!r} is not an integer"
    return int(raw)


def test_rate_limited_without_retries_raises(make_burst_client):
    client = make_burst_client(max_retries=0)
    outcomes: list[object] = []
    start = time.monotonic()
    for _ in range(6):
        try:
            client.list(limit=1)
            outcomes.append("ok")
        except RateLimitedError as e:
            outcomes.append(e)
        if len(outcomes) == 1:
            state = client.rate_limit_state()
            assert _assert_int_header(state, "X-RateLimit-Limit") == BURST_LIMIT
            assert _assert_int_header(state, "X-RateLimit-Remaining") == BURST_LIMIT - 1
    elapsed = time.monotonic() - start
    assert elapsed < BURST_WINDOW_SECS, "calls were not quick enough for this test to be valid"

    assert outcomes[:BURST_LIMIT] == ["ok"] * BURST_LIMIT, outcomes
    for e in outcomes[BURST_LIMIT:]:
        assert isinstance(e, RateLimitedError), outcomes
        assert e.status_code == 429
        assert e.code == "rate_limit_exceeded"
        assert e.retry_after > 0, f"retry_after={e.retry_after}"
        assert e.retry_after == int(e.retry_after), "Retry-After must be whole seconds"
        assert e.retry_after <= BURST_WINDOW_SECS + 2
    state = client.rate_limit_state()
    assert _assert_int_header(state, "X-RateLimit-Limit") == BURST_LIMIT
    assert _assert_int_header(state, "X-RateLimit-Remaining") == 0
    assert _assert_int_header(state, "Retry-After") >= 1


def test_rate_limited_calls_succeed_with_sdk_retries(make_burst_client):
    client = make_burst_client()  # the SDK's default: 3 retries honouring Retry-After
    start = time.monotonic()
    for i in range(6):
        page = client.list(limit=1)  # must not raise
        assert page.count == len(page.leads), i
    elapsed = time.monotonic() - start
    assert elapsed >= 2.0, (
        f"6 calls on a 3-per-3-s plan finished in {elapsed:.2f} s: the server did not limit")
    state = client.rate_limit_state()
    assert _assert_int_header(state, "X-RateLimit-Limit") == BURST_LIMIT
    remaining = _assert_int_header(state, "X-RateLimit-Remaining")
    assert 0 <= remaining < BURST_LIMIT
    # A Retry-After was seen on the way (the SDK stores the last value it saw).
    assert _assert_int_header(state, "Retry-After") >= 1


def test_rate_limited_write_is_not_applied(make_burst_client, client: Klozeo, cleanup):
    """A 429 is decided before any side effect: a create rejected with 429 stores nothing."""
    burst = make_burst_client(max_retries=0)
    src = f"sdkpy-429-{uid()}"
    made = []
    rejected = 0
    for i in range(5):
        try:
            made.append(burst.create(Lead(name=f"RL {i}", source=src)).id)
        except RateLimitedError:
            rejected += 1
    assert len(made) == BURST_LIMIT and rejected == 5 - BURST_LIMIT
    # The burst account's leads are read back after the window frees up.
    time.sleep(BURST_WINDOW_SECS + 1.5)
    stored = sorted(lead.id for lead in burst.iterate(source().eq(src)))
    assert stored == sorted(made)
    result = burst.batch_delete(made)  # the 2nd request of this window
    assert result.success == BURST_LIMIT
