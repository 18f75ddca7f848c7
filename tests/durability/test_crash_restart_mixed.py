"""Crash-restart under mixed load (issue 19): `klozeo serve` on the embedded store serves 32
clients doing creates, merges, batches, updates, deletes and notes; it is killed with SIGKILL
five times at random moments and restarted on the same data directory. Clients retry what the
crash interrupted, with the same Idempotency-Key, as the SDKs do.

Afterwards an invariant checker verifies:
- every acknowledged write is present (creates, the last acknowledged name of each lead, notes)
  and every acknowledged delete is absent;
- no lead was duplicated by a retried create or batch (each e-mail at most once);
- the plan-usage counter (`GET /account`) equals a recount through the list;
- every acknowledged create reached the webhook receiver at least once;
- no answer was a 500.
"""

import json
import os
import random
import signal
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from test_kill9 import BIN, all_ids, free_port, start

CLIENTS = 32
KILLS = 5
SEED = int(os.environ.get("KLOZEO_CRASH_SEED", "19"))


class ServerDown(Exception):
    """The server died mid-request or is not back yet."""


def request(port, key, method, path, body=None, idem=None):
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    if idem:
        headers["Idempotency-Key"] = idem
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1{path}", data=data,
                                 method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, json.loads(r.read() or b"null"), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null"), dict(e.headers)
    except (urllib.error.URLError, ConnectionError, OSError) as e:
        raise ServerDown(str(e)) from e


class Run:
    def __init__(self, port, key):
        self.port, self.key = port, key
        self.lock = threading.Lock()
        self.statuses = {}
        self.stop = threading.Event()

    def call(self, method, path, body=None, idem=None, give_up_after=60.0):
        """Retries through crashes, 503 and retryable 409s until a final answer; None when the
        write's outcome stays unknown (its idempotency key still held by a killed attempt)."""
        deadline = time.time() + give_up_after
        while time.time() < deadline:
            try:
                status, resp, headers = request(self.port, self.key, method, path, body, idem)
            except ServerDown:
                time.sleep(0.1)
                continue
            with self.lock:
                self.statuses[status] = self.statuses.get(status, 0) + 1
            assert status != 500, f"{method} {path} answered 500: {resp}"
            if status == 503:
                assert "retry-after" in {k.lower() for k in headers}, "503 without Retry-After"
                time.sleep(0.05)
                continue
            if status == 409:
                if resp and "still in progress" in resp.get("message", ""):
                    # A killed attempt holds the key for its lease: the outcome is unknown.
                    return None
                time.sleep(0.05)
                continue
            return status, resp
        return None


def client(run, who, acked):
    rng = random.Random(SEED * 1000 + who)
    mine = acked[who]
    op = 0
    while not run.stop.is_set():
        op += 1
        tag = f"c{who}-{op}"
        live = [i for i in mine["names"] if i not in mine["deleted"]]
        choice = rng.randrange(8) if live else 0
        if choice in (0, 1):
            email = f"{tag}@example.com"
            r = run.call("POST", "/leads", {"name": tag, "source": "crash", "email": email},
                         idem=f"idem-{tag}")
            mine["attempted_emails"].add(email)
            if r:
                assert r[0] in (200, 201), r
                mine["names"][r[1]["id"]] = {tag}
                mine["emails"][r[1]["id"]] = email
                mine["created"].add(r[1]["id"])
        elif choice == 2:
            leads = [{"name": f"{tag}-b{k}", "source": "crash", "email": f"{tag}-b{k}@example.com"}
                     for k in range(3)]
            for lead in leads:
                mine["attempted_emails"].add(lead["email"])
            r = run.call("POST", "/leads/batch", {"leads": leads}, idem=f"idem-{tag}")
            if r:
                assert r[0] in (201, 207), r
                for c in r[1]["created"]:
                    mine["names"][c["id"]] = {leads[c["index"]]["name"]}
                    mine["emails"][c["id"]] = leads[c["index"]]["email"]
                    mine["created"].add(c["id"])
        elif choice in (3, 4):
            lead = rng.choice(live)
            name = f"{tag}-upd"
            # Until the answer, either name may be stored.
            mine["names"][lead] = mine["names"][lead] | {name}
            r = run.call("PUT", f"/leads/{lead}", {"name": name})
            if r:
                assert r[0] == 200, r
                mine["names"][lead] = {name}
        elif choice == 5:
            lead = rng.choice(live)
            mine["maybe_deleted"].add(lead)
            r = run.call("DELETE", f"/leads/{lead}")
            if r:
                # A retry after a delete that committed before the crash finds nothing.
                assert r[0] in (204, 404), r
                mine["deleted"].add(lead)
                mine["notes"].pop(lead, None)
        elif choice == 7:
            # A push of a lead's e-mail merges into it (last touch wins: the name changes).
            lead = rng.choice(live)
            name = f"{tag}-merge"
            mine["names"][lead] = mine["names"][lead] | {name}
            r = run.call("POST", "/leads", {"name": name, "source": "crash",
                                            "email": mine["emails"][lead]}, idem=f"idem-{tag}")
            if r:
                assert r[0] in (200, 201), r
                if r[1]["id"] == lead:
                    assert r[1].get("duplicate") is True, r
                    mine["names"][lead] = {name}
                else:
                    # The lead was deleted by an unanswered delete: the push created anew.
                    assert lead in mine["maybe_deleted"], r
                    mine["names"][r[1]["id"]] = {name}
                    mine["emails"][r[1]["id"]] = mine["emails"][lead]
                    mine["created"].add(r[1]["id"])
        else:
            lead = rng.choice(live)
            r = run.call("POST", f"/leads/{lead}/notes", {"content": tag}, idem=f"idem-{tag}")
            if r:
                assert r[0] == 201, r
                mine["notes"].setdefault(lead, []).append(tag)


def receiver():
    got, lock = set(), threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the stdlib's name)
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            data = body.get("data", {})
            with lock:
                if "id" in data:
                    got.add(data["id"])
                got.update(data.get("ids", []))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, got, lock


@pytest.mark.skipif(not BIN, reason="KLOZEO_BIN is not set")
def test_five_kill_9s_under_mixed_load_keep_every_invariant(monkeypatch, tmp_path):
    monkeypatch.setenv("KLOZEO_WEBHOOK_ALLOW_PRIVATE", "1")
    monkeypatch.setenv("KLOZEO_WEBHOOK_HTTP_HOSTS", "127.0.0.1")
    monkeypatch.setenv("KLOZEO_WEBHOOK_RETRY_SCHEDULE", "1,1,2,2,3")
    rng = random.Random(SEED)
    server, got, got_lock = receiver()
    data_dir = str(tmp_path)
    port = free_port()
    proc, key = start(data_dir, port)
    assert key, "first start must print the development account's key"
    run = Run(port, key)
    r = run.call("POST", "/webhooks", {
        "url": f"http://127.0.0.1:{server.server_address[1]}/hook",
        "events": ["lead.created", "leads.created"],
    })
    assert r and r[0] == 201, r

    acked = [{"names": {}, "emails": {}, "deleted": set(), "maybe_deleted": set(), "notes": {},
              "created": set(), "attempted_emails": set()} for _ in range(CLIENTS)]
    threads = [threading.Thread(target=client, args=(run, n, acked)) for n in range(CLIENTS)]
    errors = []

    def guarded(t):
        try:
            t.run()
        except BaseException as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    runners = [threading.Thread(target=guarded, args=(t,)) for t in threads]
    for t in runners:
        t.start()
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.7, 2.5))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            time.sleep(rng.uniform(0.0, 0.3))
            proc, again = start(data_dir, port)
            assert again is None, "a restart must not create another development account"
        time.sleep(1.5)
    finally:
        run.stop.set()
        for t in runners:
            t.join(timeout=120)
    assert not errors, f"a client saw a broken property: {errors[0]!r}"

    try:
        # Every acknowledged write is present, as last acknowledged.
        stored = set(all_ids(port, key))
        acked_creates = 0
        for mine in acked:
            for lead, names in mine["names"].items():
                status, body, _ = request(port, key, "GET", f"/leads/{lead}")
                if lead in mine["deleted"]:
                    assert status == 404, f"acknowledged delete of {lead} undone: {body}"
                    continue
                if lead in mine["maybe_deleted"] and status == 404:
                    continue  # an unanswered delete may have committed
                assert status == 200, f"acknowledged lead {lead} lost ({status})"
                assert body["name"] in names, f"{lead}: {body['name']} not in {names}"
                acked_creates += 1
                status, notes, _ = request(port, key, "GET", f"/leads/{lead}/notes")
                contents = {n["content"] for n in (notes if isinstance(notes, list)
                                                   else notes.get("notes", []))}
                for n in mine["notes"].get(lead, []):
                    assert n in contents, f"acknowledged note {n} on {lead} lost"
        assert acked_creates > 50, f"too little acknowledged work ({acked_creates})"

        # No duplicate from a retried create or batch; nothing unasked-for exists.
        emails = {}
        for lead in stored:
            _, body, _ = request(port, key, "GET", f"/leads/{lead}")
            emails[body["email"]] = emails.get(body["email"], 0) + 1
        dups = {e: n for e, n in emails.items() if n > 1}
        assert not dups, f"duplicated leads: {dups}"
        attempted = set().union(*(m["attempted_emails"] for m in acked))
        assert set(emails) <= attempted

        # The plan-usage counter equals a recount.
        status, account, _ = request(port, key, "GET", "/account")
        assert status == 200, account
        assert account["usage"]["leads"] == len(stored), (account, len(stored))

        # Every acknowledged create reached the receiver at least once.
        created = set().union(*(m["created"] for m in acked))
        deadline = time.time() + 60
        while True:
            with got_lock:
                missing = created - got
            if not missing:
                break
            assert time.time() < deadline, f"{len(missing)} creation events never arrived"
            time.sleep(0.5)
        print(f"crash-restart: {KILLS} kills, {CLIENTS} clients, {len(stored)} leads, "
              f"{acked_creates} acknowledged leads checked, answers by status {run.statuses}")
    finally:
        proc.terminate()
        proc.wait()
        server.shutdown()
