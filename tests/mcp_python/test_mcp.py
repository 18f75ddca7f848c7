"""The MCP server through the official `mcp` client: every tool, every error code."""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid

import httpx2
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from conftest import Tools, env, http_session, run

TOOLS = {
    "list_leads", "get_lead", "create_lead", "update_lead", "delete_lead", "create_lead_tag",
    "batch_create_leads", "batch_update_leads", "batch_delete_leads",
    "create_note", "list_notes", "update_note", "delete_note",
    "list_attributes", "create_attribute", "update_attribute", "delete_attribute",
    "list_scoring_rules", "create_scoring_rule", "get_scoring_rule", "update_scoring_rule",
    "delete_scoring_rule", "update_lead_score", "update_all_scores",
    "list_webhooks", "create_webhook", "delete_webhook",
    "list_api_keys", "create_api_key", "delete_api_key",
    "get_stats", "list_categories", "list_cities",
}


def uniq() -> str:
    return uuid.uuid4().hex[:10]


def test_tools_list_names_descriptions_schemas_annotations():
    async def go():
        async with http_session() as s:
            tools = (await s.list_tools()).tools
        assert {t.name for t in tools} == TOOLS
        for t in tools:
            assert t.description and len(t.description) <= 80, t.name
            assert t.input_schema["type"] == "object"
            assert t.output_schema and "data" in t.output_schema["properties"], t.name
            for p in t.input_schema.get("properties", {}).values():
                assert len(p.get("description", "")) <= 40, (t.name, p)
            a = t.annotations
            if t.name.startswith(("list_", "get_")):
                assert a.read_only_hint is True, t.name
            if t.name.startswith("delete_") or t.name == "batch_delete_leads":
                assert a.destructive_hint is True and "confirm" in t.input_schema["properties"]

    run(go())


def test_lead_lifecycle_dedup_tag_search_projection_and_delete():
    async def go():
        async with http_session() as s:
            t = Tools(s)
            email = f"{uniq()}@bistro.example"
            created = await t.ok("create_lead", name="Le Bistro", source="mcp", city="Paris",
                                 category="Restaurant", email=email)
            lead_id = created["id"]
            assert created["message"] == "Lead created successfully"
            assert "duplicate" not in created
            merged = await t.ok("create_lead", name="Le Bistro", source="mcp", email=email,
                                phone="+33 1 23 45 67 89")
            assert merged["id"] == lead_id and merged["duplicate"] is True
            assert merged["match"], merged
            lyon = (await t.ok("create_lead", name="Chez Paul", source="mcp", city="Lyon",
                               category="Restaurant"))["id"]
            bakery = (await t.ok("create_lead", name="Paris Pain", source="mcp", city="Paris",
                                 category="Bakery"))["id"]

            got = await t.ok("get_lead", id=lead_id)
            assert got["phone"] == "+33 1 23 45 67 89" and got["city"] == "Paris"
            upd = await t.ok("update_lead", id=lead_id, status="contacted", rating=4.5)
            assert upd["status"] == "contacted" and upd["rating"] == 4.5

            tagged = await t.ok("create_lead_tag", id=lead_id, tag="vip")
            again = await t.ok("create_lead_tag", id=lead_id, tag="VIP")
            assert tagged["tags"] == ["vip"] and again["tags"] == ["vip"]

            found = await t.ok("list_leads", query="restaurants in Paris", limit=1000)
            ids = {l["id"] for l in found["leads"]}
            assert lead_id in ids and lyon not in ids and bakery not in ids

            structured = await t.ok("list_leads", limit=1000, filters=[
                {"field": "city", "operator": "eq", "value": "paris"},
                {"field": "tags", "operator": "array_contains", "value": "vip"},
            ])
            assert [l["id"] for l in structured["leads"]] == [lead_id]
            rest = await t.ok("list_leads", limit=1000, filters=["and.eq.city.Lyon"])
            assert lyon in {l["id"] for l in rest["leads"]}
            assert all(l["city"] == "Lyon" for l in rest["leads"])

            proj = await t.ok("list_leads", query="Le Bistro", fields=["name", "city"])
            assert proj["leads"] and all(set(l) == {"id", "name", "city"} for l in proj["leads"])

            page1 = await t.ok("list_leads", limit=1, sort="name", sort_order="DESC")
            assert page1["count"] == 1 and page1["has_more"] is True
            page2 = await t.ok("list_leads", limit=1, sort="name", sort_order="DESC",
                               cursor=page1["next_cursor"])
            assert page2["leads"][0]["name"].lower() <= page1["leads"][0]["name"].lower()
            assert page2["leads"][0]["id"] != page1["leads"][0]["id"]

            refused = await t.err("delete_lead", id=lead_id)
            assert refused == {"code": "CONFIRMATION_REQUIRED",
                               "message": "Set confirm: true to delete.", "status": 400}
            assert (await t.err("delete_lead", id=lead_id, confirm=False))["code"] == \
                "CONFIRMATION_REQUIRED"
            await t.ok("get_lead", id=lead_id)  # still there
            done = await t.ok("delete_lead", id=lead_id, confirm=True)
            assert done == {"id": lead_id, "deleted": True}
            gone = await t.err("get_lead", id=lead_id)
            assert gone["code"] == "RESOURCE_NOT_FOUND" and gone["status"] == 404

    run(go())


def test_list_leads_format_answers_a_link_to_every_match():
    async def go():
        city = f"Exportville{uniq()}"
        async with http_session() as s:
            t = Tools(s)
            ids = []
            for i in range(3):
                made = await t.ok("create_lead", name=f"Export Co {i}", source="mcp", city=city,
                                  rating=float(i), tags=["vip"] if i else [])
                ids.append(made["id"])
            await t.ok("create_lead", name="Elsewhere Co", source="mcp", city="Nowhere")
            where = [{"field": "city", "operator": "eq", "value": city}]

            got = await t.ok("list_leads", filters=where, sort="rating", sort_order="DESC",
                             format="csv")
            assert set(got) == {"url", "expires_at", "format", "rows", "bytes"}, got
            assert got["format"] == "csv" and got["rows"] == 3
            assert got["url"].startswith("http"), got
            # The link works without the key, and holds exactly the matches in the order asked.
            async with httpx2.AsyncClient(timeout=30) as plain:
                r = await plain.get(got["url"])
            assert r.status_code == 200, r.text
            assert len(r.content) == got["bytes"]
            lines = r.text.strip().splitlines()
            header = lines[0].split(",")
            rows = [line.split(",") for line in lines[1:]]
            assert [row[header.index("id")] for row in rows] == list(reversed(ids))

            js = await t.ok("list_leads", query=city.lower(), format="json")
            async with httpx2.AsyncClient(timeout=30) as plain:
                leads = (await plain.get(js["url"])).json()
            assert sorted(l["id"] for l in leads) == sorted(ids)
            xl = await t.ok("list_leads", filters=where, format="xlsx")
            assert xl["rows"] == 3 and xl["format"] == "xlsx"

            bad = await t.err("list_leads", filters=where, format="csv", limit=10)
            assert bad["code"] == "VALIDATION_ERROR" and "limit" in bad["message"]
            bad = await t.err("list_leads", format="pdf")
            assert bad["code"] == "VALIDATION_ERROR"

    run(go())


def test_batches():
    async def go():
        async with http_session() as s:
            t = Tools(s)
            tag = uniq()
            out = await t.ok("batch_create_leads", leads=[
                {"name": "B1", "source": tag}, {"name": "B2", "source": tag}, {"name": "no source"},
            ])
            assert out["total"] == 3 and out["success"] == 2 and out["failed"] == 1
            assert out["errors"][0]["index"] == 2
            ids = [c["id"] for c in out["created"]]
            upd = await t.ok("batch_update_leads", ids=ids, data={"status": "qualified"})
            assert upd["success"] == 2
            for i in ids:
                assert (await t.ok("get_lead", id=i))["status"] == "qualified"
            assert (await t.err("batch_delete_leads", ids=ids))["code"] == "CONFIRMATION_REQUIRED"
            assert (await t.ok("get_lead", id=ids[0]))["id"] == ids[0]
            deleted = await t.ok("batch_delete_leads", ids=ids, confirm=True)
            assert deleted["success"] == 2
            assert (await t.err("get_lead", id=ids[1]))["code"] == "RESOURCE_NOT_FOUND"

    run(go())


def test_notes_and_attributes():
    async def go():
        async with http_session() as s:
            t = Tools(s)
            lead = (await t.ok("create_lead", name="Notes Co", source="mcp"))["id"]
            note = await t.ok("create_note", lead_id=lead, content="first call")
            assert note["content"] == "first call" and note["id"].startswith("note_")
            notes = await t.ok("list_notes", lead_id=lead)
            assert [n["id"] for n in notes["notes"]] == [note["id"]]
            edited = await t.ok("update_note", id=note["id"], content="second call")
            assert edited["content"] == "second call"
            assert (await t.err("delete_note", id=note["id"]))["code"] == "CONFIRMATION_REQUIRED"
            await t.ok("delete_note", id=note["id"], confirm=True)
            assert (await t.ok("list_notes", lead_id=lead))["notes"] == []

            attr = await t.ok("create_attribute", lead_id=lead, name="employees", type="number",
                              value=12)
            assert attr["value"] == 12
            listed = await t.ok("list_attributes", lead_id=lead)
            assert [a["name"] for a in listed["attributes"]] == ["employees"]
            changed = await t.ok("update_attribute", lead_id=lead, id=attr["id"], value=40)
            assert changed["value"] == 40
            bad = await t.err("update_attribute", lead_id=lead, id=attr["id"], value="many")
            assert bad["code"] == "VALIDATION_ERROR" and bad["status"] == 400
            assert (await t.err("delete_attribute", lead_id=lead, id=attr["id"]))["code"] == \
                "CONFIRMATION_REQUIRED"
            await t.ok("delete_attribute", lead_id=lead, id=attr["id"], confirm=True)
            assert (await t.ok("list_attributes", lead_id=lead))["attributes"] == []

    run(go())


def test_scoring_rules_and_rescoring():
    async def go():
        async with http_session(env("KLOZEO_API_KEY_2")) as s:
            t = Tools(s)
            lead = (await t.ok("create_lead", name="Scored", source="mcp", website="https://x.example"))["id"]
            rule = await t.ok("create_scoring_rule", name=f"has site {uniq()}",
                              expression="website != ''", weight=30)
            assert rule["weight"] == 30
            rules = await t.ok("list_scoring_rules")
            assert rule["id"] in {r["id"] for r in rules["rules"]}
            assert (await t.ok("get_scoring_rule", id=rule["id"]))["expression"] == "website != ''"
            upd = await t.ok("update_scoring_rule", id=rule["id"], priority=5)
            assert upd["priority"] == 5
            score = await t.ok("update_lead_score", id=lead)
            assert score["id"] == lead and score["score"] > 0
            all_scores = await t.ok("update_all_scores")
            assert all_scores["total"] >= 1 and all_scores["job_id"]
            assert (await t.err("delete_scoring_rule", id=rule["id"]))["code"] == \
                "CONFIRMATION_REQUIRED"
            await t.ok("delete_scoring_rule", id=rule["id"], confirm=True)
            assert (await t.err("get_scoring_rule", id=rule["id"]))["code"] == "RESOURCE_NOT_FOUND"
            await t.ok("delete_lead", id=lead, confirm=True)

    run(go())


def test_webhooks():
    async def go():
        async with http_session() as s:
            t = Tools(s)
            hook = await t.ok("create_webhook", url="https://hooks.example.com/klozeo",
                              events=["lead.created"])
            assert hook["url"] == "https://hooks.example.com/klozeo" and hook["active"] is True
            assert hook["id"] in {w["id"] for w in (await t.ok("list_webhooks"))["webhooks"]}
            assert (await t.err("delete_webhook", id=hook["id"]))["code"] == "CONFIRMATION_REQUIRED"
            await t.ok("delete_webhook", id=hook["id"], confirm=True)
            assert hook["id"] not in {w["id"] for w in (await t.ok("list_webhooks"))["webhooks"]}

    run(go())


def test_api_keys_scopes_stats_categories_and_cities():
    async def go():
        async with http_session() as s:
            t = Tools(s)
            city, category = f"Cité {uniq()}", f"Cat {uniq()}"
            before = await t.ok("get_stats")
            for _ in range(3):
                await t.ok("create_lead", name=f"Stat {uniq()}", source="mcp-stats", city=city,
                           category=category, email=f"{uniq()}@stats.example")
            stats = await t.ok("get_stats")
            assert stats["total"] == before["total"] + 3
            assert stats["with_email"] == before["with_email"] + 3
            assert stats["by_status"]["new"] == before["by_status"]["new"] + 3
            cities = {c["name"]: c["count"] for c in (await t.ok("list_cities"))["cities"]}
            assert cities[city] == 3
            cats = {c["name"]: c["count"] for c in (await t.ok("list_categories"))["categories"]}
            assert cats[category] == 3

            reader = await t.ok("create_api_key", name="reader", scope="read")
            assert reader["key"].startswith("sk_live_") and reader["scope"] == "read"
            listed = (await t.ok("list_api_keys"))["api_keys"]
            assert reader["id"] in {k["id"] for k in listed}
            assert all("key" not in k for k in listed), "a listing never shows a key"
            # A read key reads, and is refused writes and key management, changing nothing.
            async with http_session(key=reader["key"]) as rs:
                r = Tools(rs)
                assert (await r.ok("list_cities"))["cities"]
                e = await r.err("create_lead", name="Refused", source="mcp-stats")
                assert e["status"] == 403 and e["code"] == "UNAUTHORIZED", e
                assert (await r.err("list_api_keys"))["status"] == 403
            assert (await t.ok("get_stats"))["total"] == stats["total"]
            assert (await t.err("delete_api_key", id=reader["id"]))["code"] == "CONFIRMATION_REQUIRED"
            await t.ok("delete_api_key", id=reader["id"], confirm=True)
            assert reader["id"] not in {k["id"] for k in (await t.ok("list_api_keys"))["api_keys"]}
        # The revoked key is refused from its next request on.
        async with httpx2.AsyncClient(timeout=30) as c:
            resp = await c.post(env("KLOZEO_MCP_URL"), json={
                "jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                headers={"Authorization": f"Bearer {reader['key']}",
                         "Accept": "application/json, text/event-stream"})
            assert resp.status_code == 401

    run(go())


def test_validation_conflict_idempotency_and_isolation():
    async def go():
        async with http_session() as s:
            t = Tools(s)
            e = await t.err("create_lead", name="No source")
            assert e["code"] == "VALIDATION_ERROR" and "source" in e["message"]
            e = await t.err("list_leads", sort_by="score")
            assert e["code"] == "VALIDATION_ERROR" and "sort" in e["message"]
            e = await t.err("list_leads", filters=[{"field": "rating", "operator": "gt", "value": "x"}])
            assert e["code"] == "VALIDATION_ERROR"

            key = uniq()
            first = await t.ok("create_lead", name="Idem", source="mcp", idempotency_key=key)
            replay = await t.ok("create_lead", name="Idem", source="mcp", idempotency_key=key)
            assert replay == first
            found = await t.ok("list_leads", filters=[{"field": "source", "operator": "eq",
                                                       "value": "mcp"},
                                                      {"field": "name", "operator": "eq",
                                                       "value": "Idem"}], limit=1000)
            assert [l["id"] for l in found["leads"]] == [first["id"]]
            e = await t.err("create_lead", name="Other", source="mcp", idempotency_key=key)
            assert e["code"] == "CONFLICT" and e["status"] == 409

        async with http_session(env("KLOZEO_API_KEY_2")) as other:
            e = await Tools(other).err("get_lead", id=first["id"])
            assert e["code"] == "RESOURCE_NOT_FOUND"
            e = await Tools(other).err("delete_lead", id=first["id"], confirm=True)
            assert e["code"] == "RESOURCE_NOT_FOUND"

    run(go())


def test_rate_limited():
    async def go():
        async with http_session(env("KLOZEO_API_KEY_BURST")) as s:
            t = Tools(s)
            errors = []
            for _ in range(6):
                r = await t.raw("list_webhooks")
                if r.is_error:
                    errors.append(r.structured_content["error"])
            assert errors, "6 calls within 3 s on a 3-per-3-s plan were all accepted"
            assert errors[0]["code"] == "RATE_LIMITED" and errors[0]["status"] == 429

    run(go())


def test_http_authentication():
    url = env("KLOZEO_MCP_URL")
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream"}
    r = httpx2.post(url, json=body, headers=headers)
    assert r.status_code == 401
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith('Bearer resource_metadata="http')
    assert challenge.endswith('/.well-known/oauth-protected-resource/mcp"')
    r = httpx2.post(url, json=body, headers={**headers, "Authorization": "Bearer sk_live_nope"})
    assert r.status_code == 401 and "www-authenticate" in r.headers
    r = httpx2.post(url, json=body, headers={**headers, "X-API-Key": env("KLOZEO_API_KEY")})
    assert r.status_code == 200 and len(r.json()["result"]["tools"]) == len(TOOLS)


def _stdio(key: str, args: list[str], extra_env: dict[str, str] | None = None):
    e = {**os.environ, "KLOZEO_API_KEY": key, **(extra_env or {})}
    return StdioServerParameters(command=env("KLOZEO_BIN"), args=["mcp", *args], env=e)


def test_stdio_klozeo_mcp():
    data = tempfile.mkdtemp()
    out = subprocess.run([env("KLOZEO_BIN"), "account", "create", "--email", "stdio@example.com",
                          "--plan", "unlimited", "--data-dir", data],
                         check=True, capture_output=True, text=True).stdout
    key = out.strip().splitlines()[-1]

    async def go(k: str):
        async with stdio_client(_stdio(k, ["--data-dir", data, "--store", "embedded"])) as (r, w):
            async with ClientSession(r, w) as s:
                await s.initialize()
                t = Tools(s)
                assert {x.name for x in (await s.list_tools()).tools} == TOOLS
                if k != key:
                    e = await t.err("list_leads")
                    assert e["code"] == "UNAUTHORIZED" and e["status"] == 401
                    return
                made = await t.ok("create_lead", name="Stdio Co", source="stdio", city="Oslo")
                listed = await t.ok("list_leads", query="oslo")
                assert [l["id"] for l in listed["leads"]] == [made["id"]]

    run(go(key))
    run(go("sk_live_00000000000000000000000000000000"))


def test_internal_error_when_the_store_is_down():
    # `klozeo mcp` on DynamoDB at an endpoint where nothing listens: the store is unavailable,
    # which the tools answer as INTERNAL_ERROR (retrying later may succeed).
    async def go():
        params = _stdio("sk_live_" + "0" * 32, ["--store", "dynamodb", "--table-prefix", "down-"],
                        {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "test",
                         "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
                         "AWS_MAX_ATTEMPTS": "1"})
        async with stdio_client(params) as (r, w):
            async with ClientSession(r, w) as s:
                await s.initialize()
                e = await Tools(s).err("get_lead", id="cl_00000000-0000-0000-0000-000000000000")
                assert e == {"code": "INTERNAL_ERROR", "message": e["message"], "status": e["status"]}
                assert e["status"] in (500, 503)

    run(go())
