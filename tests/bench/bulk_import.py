"""Import benchmark: `klozeo import` of a synthetic CSV into a fresh embedded store.

Writes BENCH_ROWS (100000) rows with the fields of tests/bench/load_vs_pocketbase.py's leads
(unique e-mails and phones, so every row runs every dedup lookup and creates a lead), creates an
account with `klozeo account create`, runs `klozeo import`, and prints the rows/s the command
reports and the wall time measured here, for lib/docs/benchmarks.md.

    KLOZEO_BIN=target/release/klozeo python3 tests/bench/bulk_import.py
"""

import csv
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

KLOZEO_BIN = os.environ.get("KLOZEO_BIN", "target/release/klozeo")
ROWS = int(os.environ.get("BENCH_ROWS", "100000"))
CITIES = ["Paris", "Lyon", "Berlin", "Madrid", "Rome", "Vienna", "Oslo", "Lisbon", "Prague", "Dublin"]
WORDS = ["acme", "bistro", "garden", "nova", "atlas", "pixel", "harbor", "summit", "maple", "orbit"]


def main():
    work = tempfile.mkdtemp(prefix="klozeo-import-bench-")
    try:
        run(work)
    finally:
        # A 100,000-lead store is about 400 MB: keep it only when asked.
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)


def run(work):
    data = os.path.join(work, "data")
    path = os.path.join(work, "leads.csv")
    r = random.Random(42)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "source", "email", "phone", "city", "category", "rating", "tags"])
        for i in range(ROWS):
            w.writerow([
                f"{r.choice(WORDS).title()} {r.choice(WORDS)} {i}",
                r.choice(["web", "maps", "csv"]),
                f"lead{i}@example{i % 97}.com",
                f"+33 1 {i // 10000 % 100:02d} {i // 100 % 100:02d} {i % 100:02d} {r.randrange(100):02d}",
                r.choice(CITIES),
                r.choice(["Food", "Retail", "Health"]),
                round(r.uniform(1, 5), 1),
                "vip" if r.random() < 0.3 else "",
            ])
    email = "bench@example.com"
    subprocess.run([KLOZEO_BIN, "account", "create", "--email", email, "--plan", "unlimited",
                    "--data-dir", data], check=True, stdout=subprocess.DEVNULL)
    t = time.monotonic()
    out = subprocess.run([KLOZEO_BIN, "import", "--email", email, path, "--data-dir", data],
                         check=True, capture_output=True, text=True)
    took = time.monotonic() - t
    summary = out.stdout.strip().splitlines()[-1]
    print(summary)
    print(f"{ROWS} rows in {took:.1f} s wall: {ROWS / took:.0f} rows/s")
    lines = [l for l in out.stdout.splitlines() if l.startswith("row ")]
    created = sum(1 for l in lines if " created " in l)
    print(f"{created} rows created")
    if created != ROWS:
        sys.exit(f"expected {ROWS} created rows, got {created}")


if __name__ == "__main__":
    main()
